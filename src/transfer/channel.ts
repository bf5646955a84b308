// The thin adapter between the sans-IO protocol and a Duplex stream (a TLS socket in production).
//
// Reading: every chunk goes through FrameDecoder; control frames are parsed into Messages at once
// (keepalives are dropped here, they only prove the peer is alive) and queued with data frames.
// Above `highWaterBytes` queued, the stream is paused until the reader catches up, so a fast or
// hostile peer cannot make us buffer more than that plus one frame. read() returns queued items in
// order, then the decoder's or the stream's failure, then CONNECTION_LOST once the peer has ended.
//
// Writing: control messages are written at once; data frames are a header and the payload written
// corked (one writev, no copy); flush() waits for 'drain'. Every wait for the peer (a frame, a drain)
// fails with TIMEOUT after idleTimeoutMs without anything from the peer, or with the signal's reason.

import type { Duplex } from 'node:stream';
import { abortError, RcppError } from '../errors.js';
import { encodeControl, encodeDataHeader, FrameDecoder } from '../protocol/frames.js';
import { decodeMessage, type Message } from '../protocol/messages.js';

export type Incoming = { kind: 'message'; msg: Message } | { kind: 'data'; payload: Buffer };

export interface ChannelOptions {
  /** Who is at the other end, for sentences: "the server ASUS", "client laptop". */
  peer: string;
  /** Fail a wait for the peer after this long without a frame from it; 0 waits forever. */
  idleTimeoutMs: number;
  highWaterBytes?: number;
}

const RESUME_HINT = 'Run the command again; transfers resume from where they stopped.';

export class FrameChannel {
  /** Who is at the other end, for sentences; the client learns the server's name from welcome. */
  peer: string;
  idleTimeoutMs: number;
  private readonly decoder = new FrameDecoder();
  private readonly highWater: number;
  private queue: ({ item: Incoming; bytes: number } | undefined)[] = [];
  private head = 0;
  private queuedBytes = 0;
  private paused = false;
  private discarding = false;
  private ended = false;
  private failure: RcppError | undefined;
  private streamError: Error | undefined;
  private readonly waiters = new Set<() => void>();
  private lastSentAt = Date.now();
  private heartbeat: NodeJS.Timeout | undefined;

  constructor(
    readonly stream: Duplex,
    opts: ChannelOptions,
  ) {
    this.peer = opts.peer;
    this.idleTimeoutMs = opts.idleTimeoutMs;
    this.highWater = opts.highWaterBytes ?? 4 * 1024 * 1024;
    stream.on('data', this.onData);
    stream.on('end', this.onEnd);
    stream.on('close', this.onEnd);
    stream.on('error', (err: Error) => {
      this.streamError ??= err;
      this.onEnd();
    });
    stream.on('drain', this.wake);
  }

  private readonly wake = (): void => {
    for (const w of [...this.waiters]) w();
  };

  private readonly onEnd = (): void => {
    this.ended = true;
    this.wake();
  };

  private readonly onData = (chunk: Buffer): void => {
    if (this.discarding || this.failure) return;
    try {
      for (const frame of this.decoder.push(chunk)) {
        if (frame.kind === 'data') {
          this.enqueue({ kind: 'data', payload: frame.payload }, frame.payload.length);
          continue;
        }
        const msg = decodeMessage(frame.payload);
        if (msg.t !== 'keepalive') this.enqueue({ kind: 'message', msg }, frame.payload.length);
      }
      if (this.decoder.failure) throw this.decoder.failure;
    } catch (err) {
      this.failure = err instanceof RcppError ? err : new RcppError('PROTOCOL_ERROR', String(err));
    }
    if (this.queuedBytes > this.highWater && !this.paused && !this.failure) {
      this.paused = true;
      this.stream.pause();
    }
    this.wake();
  };

  private enqueue(item: Incoming, bytes: number): void {
    this.queue.push({ item, bytes });
    this.queuedBytes += bytes;
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
    this.queuedBytes -= slot.bytes;
    const item = slot.item;
    if (this.paused && this.queuedBytes <= this.highWater / 4) {
      this.paused = false;
      this.stream.resume();
    }
    return item;
  }

  /** The next frame from the peer; throws its failure, TIMEOUT, ABORTED or CONNECTION_LOST. */
  async read(signal?: AbortSignal): Promise<Incoming> {
    for (;;) {
      const item = this.poll();
      if (item) return item;
      if (this.failure) throw this.failure;
      if (this.ended) throw this.lost();
      await this.wait(signal, 'a message');
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
    return !this.ended && !this.stream.destroyed && !this.stream.writableEnded;
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

  /** Waits until the stream's write buffer has drained. */
  async flush(signal?: AbortSignal): Promise<void> {
    while (this.stream.writableNeedDrain) {
      if (!this.writable) throw this.lost();
      await this.wait(signal, 'room to write');
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
    this.discarding = true;
    if (this.paused) this.stream.resume();
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
    this.discarding = true;
    this.stream.destroy();
  }

  lost(): RcppError {
    if (this.failure) return this.failure;
    const why = this.streamError ? ` (${this.streamError.message})` : '';
    const mid = this.decoder.pendingBytes > 0 ? ' in the middle of a frame' : '';
    return new RcppError(
      'CONNECTION_LOST',
      `The connection to ${this.peer} closed${mid}${why}.`,
      RESUME_HINT,
      { cause: this.streamError },
    );
  }

  private wait(signal: AbortSignal | undefined, what: string): Promise<void> {
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
      this.waiters.add(onWake);
      signal?.addEventListener('abort', onAbort, { once: true });
      if (this.idleTimeoutMs > 0) {
        timer = setTimeout(() => {
          cleanup();
          reject(
            new RcppError(
              'TIMEOUT',
              `Waited ${formatMs(this.idleTimeoutMs)} for ${what} from ${this.peer} without hearing from it.`,
              RESUME_HINT,
            ),
          );
        }, this.idleTimeoutMs);
      }
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
