// Renders progress events as the original tool did: one line per step ("Connecting to rendezvous
// 203.0.113.10:22... Successful."), progress per file and overall (transfer-view.ts), and one
// sentence per failure. Steps and progress go to stderr so that stdout carries only results (the
// file list, or JSON lines with --json).
//
// Every line passes through escapeControls() on its way out: file names, peer names and sentences
// from peers may carry terminal escapes or bidi overrides, and this is the last place to stop them.
import { familyOf, formatEndpoint, hostPort, type Endpoint, type NatKind } from '../peer.js';
import type { ProgressEvent } from '../progress.js';
import { describeNat } from '../nat/nat-kind.js';
import { formatSeconds } from './format.js';
import { reportError } from './report-error.js';
import { escapeControls } from './safe-text.js';
import { TransferView } from './transfer-view.js';

export interface ViewOptions {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  json: boolean;
  /** Prefix step lines with the time of day (the long-running file server). */
  timestamps?: boolean;
  /** Put before every step line ("  [server] " in the demo, where two peers share one console). */
  prefix?: string;
  /** Rewrites "rcpp2p --configure"-style advice for this peer (adds --config PATH when needed). */
  advice?: (text: string) => string;
  now?: () => number;
}

export class ConsoleView {
  private openStep = false;
  private stopping = false;
  private readonly transfer: TransferView;
  private readonly now: () => number;

  constructor(private readonly opts: ViewOptions) {
    this.now = opts.now ?? Date.now;
    this.transfer = new TransferView({
      stream: opts.stderr,
      live: opts.stderr.isTTY === true && !opts.json,
      writeLine: (text) => this.write(this.stamp() + text + '\n'),
      now: this.now,
    });
  }

  readonly onProgress = (event: ProgressEvent): void => {
    this.render(event);
  };

  /** A result line on stdout (human mode). */
  print(line: string): void {
    if (!this.opts.json) this.opts.stdout.write(escapeControls(line) + '\n');
  }

  /** Advice that names an rcpp2p command this peer runs, with --config when it is not the default. */
  advise(line: string): void {
    this.print(this.advice(line));
  }

  /** A JSON result object on stdout (--json mode). */
  emitJson(value: object): void {
    if (this.opts.json) this.opts.stdout.write(JSON.stringify(value) + '\n');
  }

  /**
   * The first Ctrl-C: leaves any progress line as it is (ended by a newline), says once that the
   * command is stopping, and ignores the transfer's last events. The command then ends by itself.
   */
  interrupt(): void {
    if (this.stopping) return;
    const transferring = this.transfer.hasFileInFlight();
    this.transfer.freeze();
    this.stopping = true;
    this.line(
      transferring
        ? 'Stopping. Run the same command again to resume; press Ctrl-C again to quit at once.'
        : 'Stopping... (press Ctrl-C again to quit at once)',
    );
  }

  /** Ends the output of a failed command: closes an open step, prints the sentence and hint. */
  fail(err: unknown): number {
    this.transfer.freeze();
    if (this.openStep) this.write('Failed.\n');
    this.openStep = false;
    const report = reportError(err);
    // after "Stopping..." the stop needs no second sentence
    if (this.stopping && report.json.code === 'ABORTED') return report.exitCode;
    for (const line of report.lines) this.errorLine(line);
    return report.exitCode;
  }

  /** One file's failure at the end of a get or put (the others may have worked). */
  fileError(sentence: string, hint: string): void {
    this.errorLine(`Error: ${sentence}`);
    if (hint) this.errorLine(hint);
  }

  finish(): void {
    this.transfer.finish();
  }

  private errorLine(text: string): void {
    for (const part of text.split('\n')) {
      this.opts.stderr.write(escapeControls(this.advice(part)) + '\n');
    }
  }

  private advice(text: string): string {
    return this.opts.advice ? this.opts.advice(text) : text;
  }

  private render(e: ProgressEvent): void {
    switch (e.type) {
      case 'rendezvous:connecting':
        this.step(
          `Connecting to rendezvous ${hostPort(e.host, e.port)} from ${e.localPort === 0 ? 'a fresh local port' : `local port ${e.localPort}`}... `,
        );
        break;
      case 'rendezvous:connected':
        this.endStep(`Successful. (${formatSeconds(e.ms)})`);
        break;
      case 'rendezvous:failed':
        this.endStep('Failed.');
        break;
      case 'rendezvous:reconnecting':
        this.line(
          `Rendezvous connection lost (${e.message}); reconnecting in ${Math.round(e.inMs / 1000)} s.`,
        );
        break;
      case 'nat:external-address':
        this.line(
          `External address: ${describeReach(e.external, e.natKind)}` +
            (e.other ? `; ${describeReach(e.other.external, e.other.natKind)}` : '') +
            '.',
        );
        break;
      case 'peer:found':
        this.line(
          `Found ${e.role === 'server' ? 'file server' : 'client'} ${e.name} (record updated ${ago(e.lastSeen, this.now())}).`,
        );
        break;
      case 'peer:first-contact':
        this.line(
          `First contact with ${e.role === 'server' ? 'file server' : 'client'} ${e.name}: ` +
            `remembered its identity ${e.fingerprint} in ${e.file}.`,
        );
        break;
      case 'record:published':
        this.line(
          `Published ${e.role === 'server' ? 'file server' : 'client'} ${e.name} on the rendezvous.`,
        );
        break;
      case 'signaling:ready':
        this.line(
          e.mode === 'socket'
            ? 'Signaling: live channel through the rendezvous.'
            : `Signaling: periodic mode, reading client requests from the records (${e.reason ?? 'no live channel'}).`,
        );
        break;
      case 'link:trying':
        this.line(`  trying ${e.path}: ${e.remote}`);
        break;
      case 'link:attempt-failed':
        this.line(`  ${e.path} failed: ${e.message}`);
        break;
      case 'link:established':
        this.line(
          `Connected: ${pathWords(e.path)} to ${e.remote} in ${formatSeconds(e.ms)} (${e.reason}).`,
        );
        break;
      case 'link:secured':
        this.line(`Encrypted with TLS 1.3; ${e.peer} proved identity ${e.fingerprint}.`);
        break;
      case 'server:listening':
        this.line(`File server ${e.name} is serving ${e.workDir}. Press Ctrl-C to stop.`);
        break;
      case 'server:client-connected':
        this.line(
          `Client ${e.client} connected: ${pathWords(e.path)} from ${e.remote} (${e.reason}).`,
        );
        break;
      case 'server:client-failed':
        this.line(`Client ${e.client} failed: ${e.message}`);
        break;
      case 'server:request':
        this.line(`${e.client}: ${e.op} ${e.detail}`);
        break;
      case 'server:session-ended':
        this.line(
          `Client ${e.client} disconnected${e.message ? `: ${e.message.replace(/\.$/, '')}` : ''}.`,
        );
        break;
      case 'server:refused':
        this.line(`Refused ${e.client}: ${e.message}`);
        break;
      case 'transfer:plan':
        this.transfer.setPlan(e.files, e.bytes);
        break;
      case 'transfer:start':
        if (!this.stopping) this.transfer.start(e.file, e.size, e.resumedFrom);
        break;
      case 'transfer:bytes':
        if (!this.stopping) this.transfer.bytes(e.file, e.done);
        break;
      case 'transfer:verifying':
        break;
      case 'transfer:done':
        if (!this.stopping) this.transfer.done(e.file, e.bytes);
        break;
      case 'transfer:failed':
        if (!this.stopping) this.transfer.failed(e.file);
        break;
      case 'note':
        this.line(e.text);
        break;
    }
  }

  private step(text: string): void {
    if (this.openStep) this.write('\n');
    this.write(this.stamp() + escapeControls(text));
    this.openStep = true;
  }

  private endStep(text: string): void {
    this.write((this.openStep ? '' : this.stamp()) + escapeControls(text) + '\n');
    this.openStep = false;
  }

  private line(text: string): void {
    if (this.openStep) this.write('\n');
    this.openStep = false;
    if (this.transfer.isLive) this.transfer.log(this.stamp() + escapeControls(text));
    else this.write(this.stamp() + escapeControls(text) + '\n');
  }

  private stamp(): string {
    const prefix = this.opts.prefix ?? '';
    if (!this.opts.timestamps) return prefix;
    return `${prefix}[${new Date(this.now()).toTimeString().slice(0, 8)}] `;
  }

  private write(text: string): void {
    this.opts.stderr.write(text);
  }
}

/** "203.0.113.21:40001 (NAT keeps ports)", "IPv6 [2001:db8:1::2]:40001 (no NAT)". */
function describeReach(external: Endpoint, nat: NatKind): string {
  const family = familyOf(external.ip);
  return `${family === 6 ? 'IPv6 ' : ''}${formatEndpoint(external)} (${describeNat(nat, family)})`;
}

function pathWords(path: string): string {
  switch (path) {
    case 'lan':
      return 'LAN connection';
    case 'direct':
      return 'direct connection';
    case 'reversed':
      return 'reversed connection';
    case 'periodic':
      return 'direct connection (periodic mode)';
    case 'relay':
      return 'relayed through the rendezvous';
    default:
      return path;
  }
}

function ago(iso: string, now: number): string {
  const seconds = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (seconds < 60) return seconds <= 1 ? 'just now' : `${seconds} s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  return `${Math.floor(seconds / 3600)} h ago`;
}
