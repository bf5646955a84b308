// A file server's reader of client records. Admitting a client needs its record from the
// rendezvous account; read with a remote command each time, that costs a channel and a shell on
// the host, about 0.25 s of every connection set-up on OpenSSH. So the server keeps one command
// running for its session (`read-clients` in commands.ts): a client name written to its stdin is
// answered with that client's record on its stdout, a line each way on an open channel.
//
// The reader only saves time: where the host does not run it (the embedded rendezvous answers
// every command in-process, cheaply, and refuses this one), where it ended (a host's idle limit,
// a lost channel), or where it answered wrongly or late, the directory's own read answers, and a
// reader that ended is started again for the next client.
import type { ClientChannel } from 'ssh2';
import { deadline } from '../deadline.js';
import { RcppError } from '../errors.js';
import { logger } from '../log.js';
import { isPeerName } from '../peer.js';
import { renderRendezvousCommand } from './commands.js';
import type { RendezvousDirectory } from './directory.js';
import { MAX_RECORD_BYTES, parsePeerRecord, type PeerRecord } from './peer-record.js';
import { readLine } from './signaling.js';
import type { RendezvousSession } from './ssh-session.js';

const log = logger('records');

const HEADER = 'rcpp2p read-clients 1';
const RECORD_PREFIX = 'record ';
/** How long the host may take to start the reader. */
const START_TIMEOUT_MS = 5000;
/** A reader that takes longer than this for one name is given up (the directory answers). */
const ANSWER_TIMEOUT_MS = 2000;

interface Waiter {
  resolve(line: string): void;
  reject(err: Error): void;
}

type ReaderState =
  | { s: 'stopped' }
  | { s: 'starting'; started: Promise<void> }
  | { s: 'running'; channel: ClientChannel; waiting: Waiter[] }
  /** The host does not run it: every read goes to the directory for this session. */
  | { s: 'unavailable' }
  | { s: 'closed' };

export class ClientRecordReader {
  private state: ReaderState = { s: 'stopped' };
  /** Reads the directory answered instead (for the tests and the debug log). */
  fallbacks = 0;

  constructor(
    private readonly session: RendezvousSession,
    private readonly directory: RendezvousDirectory,
    /** The session's signal: the reader ends with it. */
    private readonly signal: AbortSignal,
  ) {}

  /** True while the command runs on the host. */
  get running(): boolean {
    return this.state.s === 'running';
  }

  /** Starts the reader ahead of the first client (so that one gains too); never throws. */
  start(): Promise<void> {
    if (this.state.s !== 'stopped') return Promise.resolve();
    const started = this.launch().catch((err: unknown) => {
      log(`the host does not run the record reader: ${(err as Error).message}`);
      if (this.state.s === 'starting') this.state = { s: 'unavailable' };
    });
    this.state = { s: 'starting', started };
    return started;
  }

  /** Client `name`'s record, or undefined when it has none; damaged records throw as in hello. */
  async read(name: string, signal: AbortSignal): Promise<PeerRecord | undefined> {
    const line = isPeerName(name) ? await this.ask(name, signal) : undefined;
    if (line === undefined) {
      this.fallbacks++;
      return this.directory.read('client', name, signal);
    }
    if (line === 'none') return undefined;
    return parsePeerRecord(line.slice(RECORD_PREFIX.length), { role: 'client', name });
  }

  close(): void {
    const state = this.state;
    this.state = { s: 'closed' };
    if (state.s === 'running') {
      state.channel.end();
      this.rejectAll(state.waiting, 'the record reader was closed');
    }
  }

  /** The reader's line for `name`, or undefined when the directory must answer instead. */
  private async ask(name: string, signal: AbortSignal): Promise<string | undefined> {
    if (this.state.s === 'stopped') void this.start();
    if (this.state.s === 'starting') await this.state.started;
    const state = this.state;
    if (state.s !== 'running') return undefined;
    const wait = deadline(
      signal,
      ANSWER_TIMEOUT_MS,
      () => new RcppError('RENDEZVOUS_TIMEOUT', 'The record reader did not answer in time.'),
    );
    try {
      return await new Promise<string>((resolve, reject) => {
        state.waiting.push({ resolve, reject });
        wait.signal.addEventListener('abort', () => reject(wait.signal.reason as Error), {
          once: true,
        });
        state.channel.write(`${name}\n`);
      });
    } catch (err) {
      if (signal.aborted) throw err;
      // Late or broken: its next answers would be out of step with the questions; start afresh.
      log(`record reader: ${(err as Error).message}; the directory answers`);
      this.restart(state);
      return undefined;
    } finally {
      wait.clear();
    }
  }

  private async launch(): Promise<void> {
    const command = renderRendezvousCommand({ op: 'read-clients', dir: this.directory.dir });
    const wait = deadline(
      this.signal,
      START_TIMEOUT_MS,
      () => new RcppError('RENDEZVOUS_TIMEOUT', 'The host did not start the record reader.'),
    );
    let channel: ClientChannel | undefined;
    try {
      channel = await this.session.execStream(command, { signal: wait.signal });
      const header = await readLine(channel, { signal: wait.signal });
      if (header !== HEADER) throw new Error(`it printed ${JSON.stringify(header.slice(0, 80))}`);
    } catch (err) {
      channel?.destroy();
      throw err;
    } finally {
      wait.clear();
    }
    if (this.state.s !== 'starting') {
      channel.end(); // closed meanwhile
      return;
    }
    const running = { s: 'running' as const, channel, waiting: [] as Waiter[] };
    this.state = running;
    this.listen(running);
  }

  private listen(state: Extract<ReaderState, { s: 'running' }>): void {
    const { channel } = state;
    let buffered = '';
    channel.setEncoding('utf8');
    channel.on('data', (text: string) => {
      buffered += text;
      let newline: number;
      while ((newline = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        const waiter = state.waiting.shift();
        const valid = line === 'none' || line.startsWith(RECORD_PREFIX);
        if (waiter === undefined || !valid) {
          this.restart(state);
          return;
        }
        waiter.resolve(line);
      }
      // A record is one line of at most MAX_RECORD_BYTES: anything longer is not one.
      if (buffered.length > MAX_RECORD_BYTES + RECORD_PREFIX.length) {
        this.restart(state, 'a record line too long to be one');
      }
    });
    channel.once('close', () => {
      if (this.state === state) this.state = { s: 'stopped' };
      this.rejectAll(state.waiting, 'the record reader ended');
    });
  }

  /** Ends a running reader (its waiters go to the directory); the next read starts a new one. */
  private restart(state: Extract<ReaderState, { s: 'running' }>, why?: string): void {
    if (why) log(`record reader: ${why}`);
    if (this.state === state) this.state = { s: 'stopped' };
    this.rejectAll(state.waiting, why ?? 'the record reader answered out of step');
    state.channel.destroy();
  }

  private rejectAll(waiting: Waiter[], why: string): void {
    for (const w of waiting.splice(0)) w.reject(new Error(why));
  }
}
