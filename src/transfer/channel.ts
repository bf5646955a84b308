// FrameChannel: the thin adapter between the sans-IO protocol and a Duplex stream (a TLS socket in
// production).
//
// Reading: every chunk goes through FrameDecoder; control frames are parsed into Messages at once
// (keepalives are dropped here, they only prove the peer is alive) and queued with data frames (as
// the chunk slices they arrived in, never copied). Each queued item is charged its payload plus
// ITEM_OVERHEAD bytes; above `highWaterBytes` charged or `maxItems` items the stream is paused until
// the reader has taken the queue down to a quarter of both, so a fast or hostile peer cannot make us
// hold more than that plus one frame and one chunk. read() returns queued items in order, then the
// peer's protocol failure or CONNECTION_LOST.
//
// The reading state, every transition in step():
//
//   reading ──full──▶ paused ──room──▶ reading        (full: over a limit; room: down to a quarter)
//   reading | paused ──bad frame──▶ failed             (stream paused; the rest of the input ignored)
//   reading | paused | failed ──gone──▶ ended          (end, close or error of the stream)
//   any ──closing──▶ closing                           (end() or destroy(): what arrives is dropped)
//
// read() in failed, ended or closing, once the queue is empty, throws lost(): the failure if there
// was one, else CONNECTION_LOST. flush() throws the failure at once.
//
// Writing: control messages are written at once; a data frame is one buffer with the header in
// front of the payload (sendFrame: the sender reads file bytes in behind the header's room), or a
// header and a payload written corked (sendData); flush() waits for 'drain'.
//
// Waiting (read, flush) checks the signal on every call, even with items queued, and fails with
// TIMEOUT when the peer makes no progress. Progress is a message other than keepalive, data bytes,
// or a drain of our writes. A peer that sends only keepalives is busy (hashing, fsync): that is
// allowed while keepalives keep coming within `idleTimeoutMs`, for at most `busyLimitMs` in all, so
// keepalives alone cannot hold a connection for ever.

import { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { abortError, RcppError } from '../errors.js';
import {
  encodeControl,
  encodeDataHeader,
  FrameDecoder,
  putDataHeader,
} from '../protocol/frames.js';
import { decodeMessage, type Message } from '../protocol/messages.js';

export type Incoming =
  | { kind: 'message'; msg: Message }
  /** A data frame's payload as the slices it arrived in (`length` bytes in all). */
  | { kind: 'data'; pieces: Buffer[]; length: number };

export interface ChannelOptions {
  /** Who is at the other end, for sentences: "the server ASUS", "client laptop". */
  peer: string;
  /** Fail a wait after this long without progress or keepalive from the peer; 0 waits forever. */
  idleTimeoutMs: number;
  /** Fail a wait after this long with keepalives but no progress (default 10 x idleTimeoutMs). */
  busyLimitMs?: number;
  /** Charged bytes queued before the stream is paused (default 4 MiB). */
  highWaterBytes?: number;
  /** Items queued before the stream is paused (default 4096). */
  maxItems?: number;
}

/** What a queued item costs beyond its payload: the JS objects that carry it. */
export const ITEM_OVERHEAD = 64;

const RESUME_HINT = 'Run the command again; transfers resume from where they stopped.';

type ReadState =
  | { s: 'reading' }
  | { s: 'paused' }
  | { s: 'failed'; error: RcppError }
  | { s: 'ended'; failure: RcppError | undefined; streamError: Error | undefined }
  | { s: 'closing' };

type ReadEvent =
  | { e: 'full' }
  | { e: 'room' }
  | { e: 'bad'; error: RcppError }
  | { e: 'gone'; streamError?: Error }
  | { e: 'closing' };

interface Slot {
  item: Incoming;
  charge: number;
}

export class FrameChannel {
  /** Who is at the other end, for sentences; the client learns the server's name from welcome. */
  peer: string;
  idleTimeoutMs: number;
  private readonly busyLimitMs: number | undefined;
  private readonly decoder = new FrameDecoder();
  private readonly highWater: number;
  private readonly maxItems: number;
  private state: ReadState = { s: 'reading' };
  private queue: (Slot | undefined)[] = [];
  private head = 0;
  private queuedBytes = 0;
  private readonly waiters = new Set<() => void>();
  /** When the peer last sent anything (a keepalive or progress), and last made progress. */
  private lastHeard = Date.now();
  private lastProgress = Date.now();
  private lastSentAt = Date.now();
  /** Whether hold() corked the stream. */
  private held = false;
  private heartbeat: NodeJS.Timeout | undefined;

  constructor(
    readonly stream: Duplex,
    opts: ChannelOptions,
  ) {
    this.peer = opts.peer;
    this.idleTimeoutMs = opts.idleTimeoutMs;
    this.busyLimitMs = opts.busyLimitMs;
    this.highWater = opts.highWaterBytes ?? 4 * 1024 * 1024;
    this.maxItems = opts.maxItems ?? 4096;
    stream.on('data', this.onData);
    stream.on('end', () => this.step({ e: 'gone' }));
    stream.on('close', () => this.step({ e: 'gone' }));
    stream.on('error', (err: Error) => this.step({ e: 'gone', streamError: err }));
    stream.on('drain', this.onDrain);
  }

  /** Every change of the reading state, with its effect on the stream. */
  private step(ev: ReadEvent): void {
    const st = this.state;
    let next: ReadState = st;
    switch (ev.e) {
      case 'full':
        if (st.s === 'reading') next = { s: 'paused' };
        break;
      case 'room':
        if (st.s === 'paused') next = { s: 'reading' };
        break;
      case 'bad':
        if (st.s === 'reading' || st.s === 'paused') next = { s: 'failed', error: ev.error };
        break;
      case 'gone':
        if (st.s === 'reading' || st.s === 'paused' || st.s === 'failed') {
          const failure = st.s === 'failed' ? st.error : undefined;
          next = { s: 'ended', failure, streamError: ev.streamError };
        }
        break;
      case 'closing':
        if (st.s !== 'closing') next = { s: 'closing' };
        break;
    }
    if (next === st) return;
    this.state = next;
    if (next.s === 'paused' || next.s === 'failed') this.stream.pause();
    else if (next.s === 'closing' || (next.s === 'reading' && st.s === 'paused')) {
      this.stream.resume();
    }
    if (next.s !== 'paused' && next.s !== 'reading') this.wake();
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }

  private readonly onDrain = (): void => {
    this.lastHeard = this.lastProgress = Date.now();
    this.wake();
  };

  private readonly onData = (chunk: Buffer): void => {
    if (this.state.s !== 'reading' && this.state.s !== 'paused') return;
    const dataBefore = this.decoder.dataBytes;
    let heard = false;
    let queued = false;
    try {
      for (const frame of this.decoder.push(chunk)) {
        if (frame.kind === 'data') {
          this.enqueue({ kind: 'data', pieces: frame.pieces, length: frame.length }, frame.length);
          queued = true;
          continue;
        }
        const msg = decodeMessage(frame.payload);
        heard = true;
        if (msg.t === 'keepalive') continue;
        this.enqueue({ kind: 'message', msg }, frame.payload.length);
        this.lastProgress = Date.now();
        queued = true;
      }
      if (this.decoder.failure) throw this.decoder.failure;
    } catch (err) {
      const error = err instanceof RcppError ? err : new RcppError('PROTOCOL_ERROR', String(err));
      this.step({ e: 'bad', error });
    }
    if (this.decoder.dataBytes !== dataBefore) this.lastProgress = Date.now();
    if (heard || this.decoder.dataBytes !== dataBefore) this.lastHeard = Date.now();
    if (this.queuedBytes > this.highWater || this.queue.length - this.head > this.maxItems) {
      this.step({ e: 'full' });
    }
    if (queued) this.wake();
  };

  private enqueue(item: Incoming, payloadBytes: number): void {
    const charge = payloadBytes + ITEM_OVERHEAD;
    this.queue.push({ item, charge });
    this.queuedBytes += charge;
  }

  /** What is queued and not read yet: items and the bytes they are charged. */
  get queued(): { items: number; bytes: number } {
    return { items: this.queue.length - this.head, bytes: this.queuedBytes };
  }

  /** The reading state's name (for tests and debugging). */
  get readState(): ReadState['s'] {
    return this.state.s;
  }

  /** The next queued item, without waiting. */
  poll(): Incoming | undefined {
    const slot = this.queue[this.head];
    if (!slot) return undefined;
    this.queue[this.head++] = undefined;
    if (this.head === this.queue.length) {
      this.queue = [];
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    this.queuedBytes -= slot.charge;
    if (
      this.state.s === 'paused' &&
      this.queuedBytes <= this.highWater / 4 &&
      this.queue.length - this.head <= this.maxItems / 4
    ) {
      this.step({ e: 'room' });
    }
    return slot.item;
  }

  /** The next frame from the peer; throws its failure, TIMEOUT, ABORTED or CONNECTION_LOST. */
  async read(signal?: AbortSignal): Promise<Incoming> {
    const since = Date.now();
    for (;;) {
      if (signal?.aborted) throw abortError(signal);
      const item = this.poll();
      if (item) return item;
      const s = this.state.s;
      if (s === 'failed' || s === 'ended' || s === 'closing') throw this.lost();
      await this.wait(signal, 'a message', since);
    }
  }

  /** Reads the next item and requires a control message. */
  async readMessage(signal?: AbortSignal): Promise<Message> {
    const item = await this.read(signal);
    if (item.kind === 'message') return item.msg;
    throw new RcppError(
      'PROTOCOL_ERROR',
      `${capital(this.peer)} sent file data where a message was expected.`,
    );
  }

  get writable(): boolean {
    return this.state.s !== 'ended' && !this.stream.destroyed && !this.stream.writableEnded;
  }

  send(msg: Message): void {
    const buf = encodeControl(msg);
    if (!this.writable) throw this.lost();
    this.stream.write(buf);
    this.lastSentAt = Date.now();
  }

  /** Writes one data frame (header + payload, corked); returns false when the peer is behind. */
  sendData(payload: Buffer): boolean {
    if (!this.writable) throw this.lost();
    this.stream.cork();
    this.stream.write(encodeDataHeader(payload.length));
    this.stream.write(payload);
    this.stream.uncork();
    this.lastSentAt = Date.now();
    return !this.stream.writableNeedDrain;
  }

  /**
   * Writes one data frame held in one buffer: FRAME_HEADER_BYTES of room (filled in here), then the
   * payload. One write, where header + payload would make TLS copy both into one new buffer.
   * `reusable` runs once the stream is done with `frame`, so the caller may fill it again: on a
   * socket (TLS included) after the write completed, since the bytes were copied or encrypted by
   * then; never on other streams, which may hand the buffer itself to a reader.
   */
  sendFrame(frame: Buffer, reusable?: () => void): boolean {
    if (!this.writable) throw this.lost();
    putDataHeader(frame);
    if (reusable && this.stream instanceof Socket) {
      this.stream.write(frame, (err) => {
        if (!err) reusable();
      });
    } else {
      this.stream.write(frame);
    }
    this.lastSentAt = Date.now();
    return !this.stream.writableNeedDrain;
  }

  /**
   * Runs `writes` (sends) with the stream corked, so they leave in one write (one TLS record);
   * returns false when the peer is behind (then flush() before writing more).
   */
  batch(writes: () => void): boolean {
    this.stream.cork();
    try {
      writes();
    } finally {
      this.stream.uncork();
    }
    return this.held || !this.stream.writableNeedDrain;
  }

  /**
   * Keeps what is sent from now on in memory (the stream corked) until release() or flush(), so the
   * frames of many small files leave in a few writes: a few TLS records and packets, not one each.
   * While held, batch() always reports room; the caller releases once pendingBytes is enough.
   */
  hold(): void {
    if (this.held) return;
    this.held = true;
    this.stream.cork();
  }

  /** Ends hold(): what was kept leaves now. */
  release(): void {
    if (!this.held) return;
    this.held = false;
    this.stream.uncork();
  }

  /** Bytes sent but not yet taken by the stream's destination (held ones included). */
  get pendingBytes(): number {
    return this.stream.writableLength;
  }

  /** Waits until the stream's write buffer has drained (releasing a hold first); throws the peer's failure at once. */
  async flush(signal?: AbortSignal): Promise<void> {
    this.release();
    const since = Date.now();
    for (;;) {
      if (signal?.aborted) throw abortError(signal);
      if (this.state.s === 'failed') throw this.state.error;
      if (!this.stream.writableNeedDrain) return;
      if (!this.writable) throw this.lost();
      await this.wait(signal, 'room to write', since);
    }
  }

  /** Sends a keepalive whenever nothing was sent for `intervalMs`, until stopHeartbeat(). */
  startHeartbeat(intervalMs: number): void {
    this.stopHeartbeat();
    if (intervalMs <= 0) return;
    this.heartbeat = setInterval(
      () => {
        if (Date.now() - this.lastSentAt < intervalMs) return;
        if (this.writable && !this.stream.writableNeedDrain) this.send({ t: 'keepalive' });
      },
      Math.max(10, intervalMs / 2),
    );
    this.heartbeat.unref();
  }

  stopHeartbeat(): void {
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = undefined;
  }

  /**
   * Ends our side after a last message and keeps reading (and dropping) what the peer still sends, so
   * the peer reads our last message instead of a reset; destroys the stream after `graceMs`.
   * With `sendFin: false` our side only waits for the peer to close first: the side that sends the
   * first FIN keeps its port in TIME_WAIT, which would block the next punch from that port.
   */
  async end(graceMs = 2000, opts: { sendFin?: boolean } = {}): Promise<void> {
    this.stopHeartbeat();
    this.step({ e: 'closing' });
    if (this.stream.destroyed) return;
    if (opts.sendFin !== false && !this.stream.writableEnded) this.stream.end();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, graceMs);
      timer.unref();
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      if (this.stream.destroyed) done();
      else this.stream.once('close', done);
      // Waiting for the peer to close first: its end is the signal (a relayed TLS stream does not
      // emit 'close' while our own side is still open).
      if (opts.sendFin === false) this.stream.once('end', done);
    });
    this.stream.destroy();
  }

  destroy(): void {
    this.stopHeartbeat();
    this.step({ e: 'closing' });
    this.stream.destroy();
  }

  /** Why reading stopped: the peer's protocol failure, or CONNECTION_LOST. */
  lost(): RcppError {
    const st = this.state;
    if (st.s === 'failed') return st.error;
    if (st.s === 'ended' && st.failure) return st.failure;
    const streamError = st.s === 'ended' ? st.streamError : undefined;
    const why = streamError ? ` (${streamError.message})` : '';
    const mid = this.decoder.pendingBytes > 0 ? ' in the middle of a frame' : '';
    return new RcppError(
      'CONNECTION_LOST',
      `The connection to ${this.peer} closed${mid}${why}.`,
      RESUME_HINT,
      { cause: streamError },
    );
  }

  /** When a wait that began at `since` times out, and the sentence it then fails with. */
  private deadline(since: number, what: string): { at: number; sentence: string } {
    const idle = this.idleTimeoutMs;
    const busy = this.busyLimitMs ?? 10 * idle;
    const quiet = Math.max(since, this.lastHeard) + idle;
    const stalled = Math.max(since, this.lastProgress) + busy;
    if (quiet <= stalled) {
      return {
        at: quiet,
        sentence: `Waited ${formatMs(idle)} for ${what} from ${this.peer} without hearing from it.`,
      };
    }
    return {
      at: stalled,
      sentence:
        `Waited ${formatMs(busy)} for ${what} from ${this.peer}; it kept the connection open ` +
        'but sent nothing else.',
    };
  }

  /** Resolves on the next event (an item queued, a state change, a drain); rejects on timeout or abort. */
  private wait(signal: AbortSignal | undefined, what: string, since: number): Promise<void> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) {
        reject(abortError(signal));
        return;
      }
      let timer: NodeJS.Timeout | undefined;
      const cleanup = (): void => {
        this.waiters.delete(onWake);
        if (timer) clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      };
      const onWake = (): void => {
        cleanup();
        resolve();
      };
      const onAbort = (): void => {
        cleanup();
        reject(abortError(signal!));
      };
      // Re-armed while the peer keeps the deadline moving, so a busy stream costs no timer per chunk.
      const arm = (): void => {
        const { at, sentence } = this.deadline(since, what);
        const left = at - Date.now();
        if (left > 0) {
          timer = setTimeout(arm, left);
          return;
        }
        cleanup();
        reject(new RcppError('TIMEOUT', sentence, RESUME_HINT));
      };
      this.waiters.add(onWake);
      signal?.addEventListener('abort', onAbort, { once: true });
      if (this.idleTimeoutMs > 0) arm();
    });
  }
}

/** How often to prove we are alive while busy, given the peer's announced idle timeout. */
export function heartbeatMs(peerIdleMs: number): number {
  return peerIdleMs > 0 ? Math.max(50, Math.min(5000, Math.floor(peerIdleMs / 3))) : 5000;
}

function capital(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function formatMs(ms: number): string {
  return ms >= 1000 ? `${Math.round(ms / 100) / 10} s` : `${ms} ms`;
}
