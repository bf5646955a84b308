// The exec signaling transport, for hosts that forward nothing (DisableForwarding yes) but run
// commands: it needs only a shell account. Each side runs a small /bin/sh loop on the rendezvous
// host (templates in commands.ts), and the loops meet in the server's request folder
// <dir>/signals/<NAME>/ (0700, the account's):
//
//   server  `watch` runs for the whole session: it prints each client line that appears in the
//           folder ("up CID SEQ JSON") and each ended conversation ("end CID"), and files each
//           answer the server writes to its stdin ("down CID SEQ JSON", "fin CID SEQ") as
//           CID.SEQ.down / CID.SEQ.fin. It stops when its stdin closes (the session ended), when
//           a newer watcher takes the folder over, or after 10 minutes, when the server starts the
//           next one (so a loop the host never stopped cannot outlive its session by long).
//   client  `ask` is one conversation: the client's lines become CID.N.up files (the open line
//           and the request travel as one), the server's CID.N.down files its stdout, and
//           CID.N.fin ends it.
//
// Both loops look at the folder every 0.2 s (every 1 s where `sleep` takes whole seconds only),
// which costs the host a sleep process per look and the network nothing; a request and its answer
// each wait at most one look, and no command is started per answer. Each side sees an ordinary
// stream of signaling lines, so the signaling protocol is the same as on the other transports.
// There is no relay this way.
import { randomBytes } from 'node:crypto';
import { Duplex } from 'node:stream';
import type { ClientChannel } from 'ssh2';
import { deadline } from '../deadline.js';
import { RcppError } from '../errors.js';
import { logger } from '../log.js';
import { renderRendezvousCommand } from './commands.js';
import type {
  OnChannel,
  SignalingListener,
  SignalingPlace,
  SignalingRoute,
} from './signaling-transport.js';
import { MAX_SIGNAL_LINE, openMessage, readLine, writeSignal } from './signaling.js';

const log = logger('signaling');

/** How long the host may take to start a loop and print its first line. */
const START_TIMEOUT_MS = 15_000;
/** A watcher that ends sooner than this after starting did not really run. */
const QUICK_END_MS = 2000;
const MAX_QUICK_ENDS = 3;
const WATCH_HEADER = 'rcpp2p watch 1';
const ASK_HEADER = 'rcpp2p ask 1';
const ASK_NO_WATCHER = 'rcpp2p ask 1 no-watcher';
const UP_LINE = /^up ([0-9a-f]{16}) ([1-9]) (.*)$/s;
const END_LINE = /^end ([0-9a-f]{16})$/;
const RECORD_PREFIX = 'record ';

/** The requesting client's record, as the client's ask read it on the rendezvous (exec only). */
const clientRecords = new WeakMap<Duplex, string>();

/**
 * The text of the client record that came with a signaling channel, read by the client's `ask`
 * from the rendezvous account (so no better or worse than reading it again), or undefined.
 */
export function recordSentAhead(channel: Duplex): string | undefined {
  return clientRecords.get(channel);
}

function newId(): string {
  return randomBytes(8).toString('hex');
}

export async function offerExec(
  place: SignalingPlace,
  onChannel: OnChannel,
  signal: AbortSignal,
): Promise<SignalingListener> {
  const watcher = new Watcher(place, onChannel, signal);
  await watcher.start();
  return {
    offer: { via: 'exec' },
    failed: watcher.failed,
    touch: () => watcher.touch(),
    close: () => watcher.close(),
  };
}

type WatcherState =
  | { s: 'running'; channel: ClientChannel; startedAt: number }
  /** Between two loops: answers wait in `queued` for the next one. */
  | { s: 'idle'; queued: string[] }
  | { s: 'closed' };

/**
 * The server's `watch` loop and the conversations it reports. States: idle -> running (one loop's
 * channel) -> the loop ends (its time is up, or the host closed an idle channel) -> idle -> running
 * with a new loop; three loops in a row that end at once -> failed; close() -> closed.
 */
class Watcher {
  readonly failed: Promise<Error>;
  private fail: (err: Error) => void = () => {};
  private state: WatcherState = { s: 'idle', queued: [] };
  private quickEnds = 0;
  private readonly conversations = new Map<string, Conversation>();

  constructor(
    private readonly place: SignalingPlace,
    private readonly onChannel: OnChannel,
    private readonly signal: AbortSignal,
  ) {
    this.failed = new Promise<Error>((resolve) => (this.fail = resolve));
  }

  /** Starts a loop and waits for its first line; throws when the host does not run it. */
  async start(): Promise<void> {
    const wid = newId();
    const command = renderRendezvousCommand({
      op: 'watch',
      dir: this.place.directory.dir,
      name: this.place.serverName,
      wid,
    });
    log(`starting watcher ${wid}`);
    const wait = deadline(
      this.signal,
      START_TIMEOUT_MS,
      () => new RcppError('RENDEZVOUS_TIMEOUT', 'The rendezvous host did not start the watcher.'),
    );
    let channel: ClientChannel | undefined;
    try {
      channel = await this.place.session.execStream(command, { signal: wait.signal });
      const header = await readLine(channel, { signal: wait.signal });
      if (header !== WATCH_HEADER) {
        throw new RcppError(
          'RENDEZVOUS_REFUSED',
          'The rendezvous host did not run the rcpp2p watcher as expected.',
          'The account needs a POSIX /bin/sh.',
        );
      }
    } catch (err) {
      channel?.destroy();
      throw err;
    } finally {
      wait.clear();
    }
    const state = this.state;
    if (state.s !== 'idle') {
      channel.end();
      return;
    }
    this.state = { s: 'running', channel, startedAt: Date.now() };
    for (const part of state.queued) channel.write(part);
    this.read(channel);
  }

  /** A blank line on the loop's stdin: channel traffic that the loop ignores. */
  touch(): Promise<void> {
    const state = this.state;
    if (state.s === 'running') state.channel.write('\n');
    return Promise.resolve();
  }

  /** Hands one part of an answer to the loop, which files it for the client's ask. */
  part(cid: string, seq: number, what: 'down' | 'fin', line = ''): void {
    const text = `${what} ${cid} ${seq}${line ? ` ${line}` : ''}\n`;
    const state = this.state;
    if (state.s === 'running') state.channel.write(text);
    else if (state.s === 'idle') state.queued.push(text);
  }

  private read(channel: ClientChannel): void {
    let buffered = '';
    channel.setEncoding('utf8');
    channel.on('data', (text: string) => {
      buffered += text;
      let newline: number;
      while ((newline = buffered.indexOf('\n')) >= 0) {
        this.onLine(buffered.slice(0, newline), channel);
        buffered = buffered.slice(newline + 1);
      }
      if (buffered.length > MAX_SIGNAL_LINE + 64) {
        log('the watcher printed an overlong line; starting it again');
        buffered = '';
        channel.destroy();
      }
    });
    channel.once('close', () => this.onEnded(channel));
  }

  private onLine(line: string, channel: ClientChannel): void {
    const up = UP_LINE.exec(line);
    if (up) {
      const [, cid = '', seq = '', text = ''] = up;
      let conversation = this.conversations.get(cid);
      if (conversation === undefined) {
        if (seq !== '1') return; // the rest of a conversation this server never saw begin
        conversation = new Conversation(cid, (n, what, l) => this.part(cid, n, what, l));
        this.conversations.set(cid, conversation);
        const known = conversation;
        known.once('close', () => {
          if (this.conversations.get(cid) === known) this.conversations.delete(cid);
        });
        this.onChannel(conversation);
      }
      if (seq === '1' && conversation.expectsRecord && text.startsWith(RECORD_PREFIX)) {
        clientRecords.set(conversation, text.slice(RECORD_PREFIX.length));
      } else {
        conversation.push(text + '\n');
      }
      conversation.expectsRecord = false;
      return;
    }
    const end = END_LINE.exec(line);
    if (end) {
      this.conversations.get(end[1] ?? '')?.remoteEnded();
      return;
    }
    if (line === 'end') {
      // Its time is up: what we write from now on waits for the next loop.
      this.onEnded(channel);
      return;
    }
    log(`unexpected watcher line: ${JSON.stringify(line.slice(0, 80))}`);
  }

  private onEnded(channel: ClientChannel): void {
    const state = this.state;
    if (state.s !== 'running' || state.channel !== channel) return;
    this.state = { s: 'idle', queued: [] };
    // Its stdin reader files what is still in the pipe, then sees the end and goes.
    channel.end();
    if (this.signal.aborted) return;
    const lived = Date.now() - state.startedAt;
    this.quickEnds = lived < QUICK_END_MS ? this.quickEnds + 1 : 0;
    if (this.quickEnds >= MAX_QUICK_ENDS) {
      this.fail(new RcppError('RENDEZVOUS_REFUSED', 'The signaling watcher keeps ending at once.'));
      return;
    }
    log(`watcher ended after ${lived} ms; starting the next one`);
    const pause = this.quickEnds > 0 ? 1000 : 0;
    setTimeout(() => {
      if (this.state.s !== 'idle' || this.signal.aborted) return;
      this.start().catch((err: unknown) => {
        if (!this.signal.aborted) this.fail(err as Error);
      });
    }, pause).unref();
  }

  close(): Promise<void> {
    const state = this.state;
    this.state = { s: 'closed' };
    // The end of its stdin stops the loop on the host and removes its mark from the folder.
    if (state.s === 'running') state.channel.end();
    for (const conversation of this.conversations.values()) conversation.destroy();
    return Promise.resolve();
  }
}

/**
 * One client's conversation, as the file server sees it: lines the watcher reports are pushed in;
 * each line the server writes is one part for the watcher to file. end() sends the final part,
 * which ends the client's `ask` (after a refusal or a pong).
 */
class Conversation extends Duplex {
  /** Until its first line: the ask may send the client's record ahead of it. */
  expectsRecord = true;
  private partial = '';
  private seq = 0;
  private finished = false;

  constructor(
    readonly cid: string,
    private readonly sendPart: (seq: number, what: 'down' | 'fin', line?: string) => void,
  ) {
    super();
  }

  /** The client's ask ended (its stdin closed or its time was up). */
  remoteEnded(): void {
    this.push(null);
  }

  override _read(): void {}

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: () => void): void {
    const lines = (this.partial + chunk.toString('utf8')).split('\n');
    this.partial = lines.pop() ?? '';
    for (const line of lines) if (!this.finished) this.sendPart(++this.seq, 'down', line);
    callback();
  }

  override _final(callback: () => void): void {
    if (!this.finished) {
      if (this.partial) this.sendPart(++this.seq, 'down', this.partial);
      this.sendPart(++this.seq, 'fin');
      this.finished = true;
    }
    callback();
  }

  // No final part on destroy: the client has usually left by then (it hangs up after its last
  // line), and a part filed after its ask ended would only wait for the next sweep. An ask the
  // server drops ends with the client's own deadline.
  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    this.finished = true;
    callback(err);
  }
}

export function routeExec(place: SignalingPlace): SignalingRoute {
  return {
    kind: 'exec',
    relays: false,
    async open(purpose, signal) {
      const command = renderRendezvousCommand({
        op: 'ask',
        dir: place.directory.dir,
        name: place.serverName,
        cid: newId(),
        // a request goes with its open line, so the server sees both in one look
        first: purpose.kind === 'signal' ? 2 : 1,
        // and with the client's record, which the server would otherwise read with a command
        client: place.clientName ?? place.serverName,
      });
      const channel = await place.session.execStream(command, { signal });
      try {
        const header = await readLine(channel, { signal });
        if (header === ASK_NO_WATCHER) {
          throw new RcppError(
            'PEER_OFFLINE',
            `File server ${place.serverName} watches no request folder on the rendezvous.`,
          );
        }
        if (header !== ASK_HEADER) {
          throw new RcppError(
            'RENDEZVOUS_REFUSED',
            'The rendezvous host did not run the rcpp2p request command as expected.',
            'The account needs a POSIX /bin/sh.',
          );
        }
        writeSignal(channel, openMessage(purpose));
        return channel;
      } catch (err) {
        channel.destroy();
        throw err;
      }
    },
  };
}
