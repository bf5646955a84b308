// Renders progress events as the original tool did: one line per step ("Connecting to rendezvous
// 203.0.113.10:22... Successful."), a cli-progress bar per file ("photo.jpg 100% [=====] 991.82KB
// 276.35KB/s Complete."), and one sentence per failure. Steps and bars go to stderr so that stdout
// carries only results (the file list, or JSON lines with --json).
import cliProgress from 'cli-progress';
import type { ProgressEvent } from '../progress.js';
import { describeNat } from '../nat/nat-kind.js';
import { formatEndpoint, portMappingName } from '../peer.js';
import { formatBytes, formatSeconds, formatSpeed } from './format.js';
import { reportError } from './report-error.js';

export interface ViewOptions {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
  json: boolean;
  /** Prefix step lines with the time of day (the long-running file server). */
  timestamps?: boolean;
  /** Put before every step line ("  [server] " in the demo, where two peers share one console). */
  prefix?: string;
}

/** After this many files, finished files are counted instead of listed. */
const LISTED_FILES = 10;
const BAR_WIDTH = 30;

interface FileProgress {
  file: string;
  total: number;
  resumedFrom: number;
  started: number;
  bar: cliProgress.SingleBar | undefined;
}

export class ConsoleView {
  private openStep = false;
  private current: FileProgress | undefined;
  private filesDone = 0;
  private unlistedFiles = 0;
  private unlistedBytes = 0;

  constructor(private readonly opts: ViewOptions) {}

  readonly onProgress = (event: ProgressEvent): void => {
    this.render(event);
  };

  /** A result line on stdout (human mode). */
  print(line: string): void {
    if (!this.opts.json) this.opts.stdout.write(line + '\n');
  }

  /** A JSON result object on stdout (--json mode). */
  emitJson(value: object): void {
    if (this.opts.json) this.opts.stdout.write(JSON.stringify(value) + '\n');
  }

  /** Ends the output of a failed command: closes an open step, prints the sentence and hint. */
  fail(err: unknown): number {
    this.stopBar('Failed.');
    if (this.openStep) this.write('Failed.\n');
    this.openStep = false;
    const report = reportError(err);
    for (const line of report.lines) this.opts.stderr.write(line + '\n');
    return report.exitCode;
  }

  finish(): void {
    this.stopBar();
    if (this.unlistedFiles > 0) {
      this.line(`... and ${this.unlistedFiles} more files (${formatBytes(this.unlistedBytes)}).`);
    }
  }

  private render(e: ProgressEvent): void {
    switch (e.type) {
      case 'rendezvous:connecting':
        this.step(
          `Connecting to rendezvous ${e.host}:${e.port} from ${e.localPort === 0 ? 'a fresh local port' : `local port ${e.localPort}`}... `,
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
          `External address: ${e.external.ip}:${e.external.port} (${describeNat(e.natKind)}).`,
        );
        break;
      case 'peer:found':
        this.line(
          `Found ${e.role === 'server' ? 'file server' : 'client'} ${e.name} (record updated ${ago(e.lastSeen)}).`,
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
      case 'transfer:start':
        this.startFile(e.file, e.size, e.resumedFrom);
        break;
      case 'transfer:bytes':
        this.updateFile(e.done);
        break;
      case 'transfer:verifying':
        break;
      case 'transfer:done':
        this.endFile(e.bytes, 'Complete.');
        break;
      case 'transfer:failed':
        this.endFile(undefined, `Failed: ${e.message}`);
        break;
      case 'portmap:mapped':
        this.line(
          `Port mapping${e.changed ? ' moved' : ''}: ${e.via} on router ${e.gateway} opened ` +
            `${formatEndpoint(e.external)} to local port ${e.internal.port} for ${formatLease(e.lifetimeSeconds)}.`,
        );
        break;
      case 'portmap:renewed':
        this.line(
          `Port mapping ${formatEndpoint(e.external)} renewed for ${formatLease(e.lifetimeSeconds)} (${portMappingName(e.protocol)}).`,
        );
        break;
      case 'portmap:removed':
        this.line(
          `Port mapping ${formatEndpoint(e.external)} removed from the router (${portMappingName(e.protocol)}).`,
        );
        break;
      case 'portmap:failed':
        this.line(
          e.stage === 'map'
            ? `Port mapping not used: ${e.message}.`
            : e.stage === 'renew'
              ? `Port mapping lost: ${e.message}; asking again in a minute.`
              : `Port mapping not confirmed removed: ${e.message}; the router drops it when its lease ends.`,
        );
        break;
      case 'portmap:unusable':
        this.line(`Port mapping cannot help: ${e.reason}; not used.`);
        break;
      case 'portmap:unavailable':
        this.line(`Port mapping: no router answered (UPnP, NAT-PMP, PCP); not used.`);
        break;
      case 'note':
        this.line(e.text);
        break;
    }
  }

  private startFile(file: string, total: number, resumedFrom: number): void {
    this.stopBar();
    const listed = this.filesDone < LISTED_FILES;
    const useBar = listed && this.opts.stderr.isTTY === true && !this.opts.json;
    if (listed && resumedFrom > 0) {
      this.line(`Resuming ${file} from ${formatBytes(resumedFrom)} of ${formatBytes(total)}.`);
    }
    let bar: cliProgress.SingleBar | undefined;
    if (useBar) {
      bar = new cliProgress.SingleBar(
        {
          format: '{file} {percentage}% [{bar}] {size} {speed} {status}',
          barsize: BAR_WIDTH,
          barCompleteChar: '=',
          barIncompleteChar: ' ',
          hideCursor: true,
          stream: this.opts.stderr,
          fps: 10,
        },
        cliProgress.Presets.legacy,
      );
      bar.start(Math.max(total, 1), resumedFrom, {
        file,
        size: formatBytes(total),
        speed: '-',
        status: '',
      });
    }
    this.current = { file, total, resumedFrom, started: Date.now(), bar };
  }

  private updateFile(done: number): void {
    const c = this.current;
    if (!c?.bar) return;
    c.bar.update(done, { speed: formatSpeed(done - c.resumedFrom, Date.now() - c.started) });
  }

  private endFile(bytes: number | undefined, status: string): void {
    const c = this.current;
    this.current = undefined;
    if (!c) return;
    const size = bytes ?? c.total;
    const speed = formatSpeed(size - c.resumedFrom, Date.now() - c.started);
    if (c.bar) {
      c.bar.update(bytes === undefined ? c.bar.getProgress() * c.total : size, { speed, status });
      c.bar.stop();
    } else if (this.filesDone < LISTED_FILES || bytes === undefined) {
      const bar = '='.repeat(bytes === undefined ? 0 : BAR_WIDTH).padEnd(BAR_WIDTH, ' ');
      const percent = bytes === undefined ? '' : '100% ';
      this.line(`${c.file} ${percent}[${bar}] ${formatBytes(size)} ${speed} ${status}`);
    } else {
      this.unlistedFiles++;
      this.unlistedBytes += size;
    }
    this.filesDone++;
  }

  private stopBar(status?: string): void {
    const c = this.current;
    if (c?.bar) {
      if (status) c.bar.update(c.bar.getProgress() * c.total, { status });
      c.bar.stop();
    }
  }

  private step(text: string): void {
    if (this.openStep) this.write('\n');
    this.write(this.stamp() + text);
    this.openStep = true;
  }

  private endStep(text: string): void {
    this.write((this.openStep ? '' : this.stamp()) + text + '\n');
    this.openStep = false;
  }

  private line(text: string): void {
    if (this.openStep) this.write('\n');
    this.openStep = false;
    this.write(this.stamp() + text + '\n');
  }

  private stamp(): string {
    const prefix = this.opts.prefix ?? '';
    if (!this.opts.timestamps) return prefix;
    return `${prefix}[${new Date().toTimeString().slice(0, 8)}] `;
  }

  private write(text: string): void {
    this.opts.stderr.write(text);
  }
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

/** "60 min", "2 min", "45 s" */
function formatLease(seconds: number): string {
  return seconds >= 120 ? `${Math.round(seconds / 60)} min` : `${seconds} s`;
}

function ago(iso: string): string {
  const seconds = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  if (seconds < 60) return seconds <= 1 ? 'just now' : `${seconds} s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  return `${Math.floor(seconds / 3600)} h ago`;
}
