// Sending one file: `file {i, offset}`, data frames of up to 1 MiB, then `file-end {i, sha256}`.
// A file of up to 64 KiB without resume info takes a short path (sendSmall) built for trees of many
// small files: synchronous reads, one write for its three frames, then the same backpressure.
//
// The file is opened and checked against the size and mtime announced earlier; with resume info the
// matching prefix is skipped (block-hashes.ts). Reading is double-buffered: the next 1 MiB read is in
// flight on libuv's pool while this chunk is written to the stream and hashed. Each chunk is read
// in behind 5 bytes of room for its frame header, so a frame goes out as one buffer; the buffers
// are reused once the channel is done with them. Backpressure: after each frame, wait for 'drain'
// when the stream asks for it. A file that
// changes size or mtime while it is sent ends with `file-error SOURCE_CHANGED` instead of file-end.
//
// Local file problems come back as { ok: false } (the caller reports them per file); connection
// problems (CONNECTION_LOST, TIMEOUT, ABORTED) are thrown.

import { createHash, hash, type Hash } from 'node:crypto';
import { closeSync, constants, fstatSync, openSync, readSync, type Stats } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { abortError, fsError, isRcppError, RcppError } from '../errors.js';
import { DATA_CHUNK_BYTES, FRAME_HEADER_BYTES } from '../protocol/limits.js';
import type { ResumeInfo } from '../protocol/messages.js';
import { canResume } from '../protocol/resume.js';
import { quote } from '../protocol/text.js';
import { matchPrefix } from './block-hashes.js';
import type { FrameChannel } from './channel.js';

export interface SendSpec {
  i: number;
  /** Absolute path of the file to read. */
  abs: string;
  /** How the file is named to the user. */
  shown: string;
  size: number;
  mtimeMs: number;
}

export interface SendContext {
  signal?: AbortSignal;
  onStart?: (offset: number) => void;
  onBytes?: (sent: number) => void;
  /** Reads what the peer sent meanwhile; returns true when the peer gave up on this file. */
  peerStopped: () => boolean;
}

export type SendOutcome =
  | { kind: 'sent'; sha256: string; offset: number }
  | { kind: 'failed'; error: RcppError }
  | { kind: 'stopped' };

function changed(shown: string): RcppError {
  return new RcppError(
    'SOURCE_CHANGED',
    `${quote(shown)} changed while it was being sent.`,
    'Run the command again once the file is no longer being written.',
  );
}

/** A file-system error while sending, kept apart from connection errors. */
class LocalError extends Error {
  constructor(readonly error: RcppError) {
    super(error.message);
  }
}

async function local<T>(shown: string, op: () => Promise<T>): Promise<T> {
  try {
    return await op();
  } catch (err) {
    throw new LocalError(isRcppError(err) ? err : fsError(err, shown));
  }
}

export async function sendFile(
  ch: FrameChannel,
  spec: SendSpec,
  resume: ResumeInfo | undefined,
  ctx: SendContext,
): Promise<SendOutcome> {
  if (isSmallSend(spec, resume)) {
    const { outcome, room } = sendSmall(ch, spec, ctx);
    if (!room) await ch.flush(ctx.signal);
    return outcome;
  }
  let fh: FileHandle | undefined;
  try {
    fh = await local(spec.shown, () => open(spec.abs, constants.O_RDONLY | constants.O_NOFOLLOW));
    const file = fh;
    const st = await local(spec.shown, () => file.stat());
    if (st.size !== spec.size || st.mtimeMs !== spec.mtimeMs)
      throw new LocalError(changed(spec.shown));
    let offset = 0;
    let hash: Hash = createHash('sha256');
    if (resume && canResume(resume, spec.size)) {
      ({ offset, whole: hash } = await local(spec.shown, () =>
        matchPrefix(file, resume, ctx.signal),
      ));
    }
    ch.send({ t: 'file', i: spec.i, offset });
    ctx.onStart?.(offset);
    if (!(await streamBody(ch, file, spec, offset, hash, ctx))) return { kind: 'stopped' };
    const after = await local(spec.shown, () => file.stat());
    if (after.size !== spec.size || after.mtimeMs !== spec.mtimeMs)
      throw new LocalError(changed(spec.shown));
    const sha256 = hash.digest('hex');
    ch.send({ t: 'file-end', i: spec.i, sha256 });
    return { kind: 'sent', sha256, offset };
  } catch (err) {
    if (!(err instanceof LocalError)) throw err;
    return { kind: 'failed', error: err.error };
  } finally {
    await fh?.close().catch(() => {});
  }
}

/** Files up to this size are sent by sendSmall(). */
const SMALL_FILE = 64 * 1024;

/** Whether sendFile() sends this file in one go (sendSmall). */
export function isSmallSend(spec: SendSpec, resume: ResumeInfo | undefined): boolean {
  return spec.size <= SMALL_FILE && !resume;
}

/**
 * A small file in one go. Opening, reading and checking it are synchronous calls: a few µs each on
 * a local disk, where each asynchronous call costs about 30 µs of CPU in thread hand-offs (measured
 * on the bench machine: 10 times the call itself), and a tree of small files is nothing but such
 * calls. Its `file` message, data frame and `file-end` leave in one write (one TLS record).
 */
function sendSmall(
  ch: FrameChannel,
  spec: SendSpec,
  ctx: SendContext,
): { outcome: SendOutcome; room: boolean } {
  let frame: Buffer;
  let fd: number | undefined;
  try {
    fd = openSync(spec.abs, constants.O_RDONLY | constants.O_NOFOLLOW);
    if (!unchanged(fstatSync(fd), spec)) return failed(changed(spec.shown));
    frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + spec.size);
    let got = 0;
    while (got < spec.size) {
      const n = readSync(fd, frame, FRAME_HEADER_BYTES + got, spec.size - got, got);
      if (n === 0) break;
      got += n;
    }
    if (got !== spec.size || !unchanged(fstatSync(fd), spec)) return failed(changed(spec.shown));
  } catch (err) {
    return failed(isRcppError(err) ? err : fsError(err, spec.shown));
  } finally {
    if (fd !== undefined) closeQuietly(fd);
  }
  const content = frame.subarray(FRAME_HEADER_BYTES);
  const sha256 = hash('sha256', content, 'hex');
  const room = ch.batch(() => {
    ch.send({ t: 'file', i: spec.i, offset: 0 });
    if (spec.size > 0) ch.sendFrame(frame);
    ch.send({ t: 'file-end', i: spec.i, sha256 });
  });
  ctx.onStart?.(0);
  ctx.onBytes?.(spec.size);
  ctx.peerStopped(); // reads what the peer sent meanwhile; this file is complete on the wire anyway
  return { outcome: { kind: 'sent', sha256, offset: 0 }, room };
}

function failed(error: RcppError): { outcome: SendOutcome; room: boolean } {
  return { outcome: { kind: 'failed', error }, room: true };
}

function unchanged(st: Stats, spec: SendSpec): boolean {
  return st.size === spec.size && st.mtimeMs === spec.mtimeMs;
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // nothing was written: a failed close loses nothing
  }
}

/**
 * Frame buffers for one file (header room, then up to 1 MiB read from the file), reused once the
 * channel is done with them: a fresh 1 MiB buffer per chunk costs the kernel a page fault per 4 KiB
 * (about 0.6 s of CPU per GiB on the bench machine).
 */
class FrameBuffers {
  private readonly free: Buffer[] = [];

  take(len: number): Buffer {
    if (len < SMALL_READ) return Buffer.allocUnsafe(FRAME_HEADER_BYTES + len);
    return this.free.pop() ?? Buffer.allocUnsafeSlow(FRAME_HEADER_BYTES + DATA_CHUNK_BYTES);
  }

  give(buf: Buffer): void {
    if (buf.length === FRAME_HEADER_BYTES + DATA_CHUNK_BYTES && this.free.length < MAX_FREE) {
      this.free.push(buf);
    }
  }
}

/** Reads shorter than this get a buffer of their own (small files). */
const SMALL_READ = 64 * 1024;
/** Buffers kept for reuse: one being read, one or two in the channel. */
const MAX_FREE = 4;

/** Streams [offset, size); false when the peer stopped this file. */
async function streamBody(
  ch: FrameChannel,
  fh: FileHandle,
  spec: SendSpec,
  offset: number,
  hash: Hash,
  ctx: SendContext,
): Promise<boolean> {
  const buffers = new FrameBuffers();
  let pos = offset;
  let next = pos < spec.size ? readChunk(fh, pos, spec, buffers) : undefined;
  while (next) {
    if (ctx.signal?.aborted) throw abortError(ctx.signal);
    const { buf, frame } = await next;
    const chunk = frame.subarray(FRAME_HEADER_BYTES);
    if (chunk.length === 0) throw new LocalError(changed(spec.shown));
    pos += chunk.length;
    // The next read runs on libuv's pool while this chunk goes out and is hashed.
    next = pos < spec.size ? readChunk(fh, pos, spec, buffers) : undefined;
    const room = ch.sendFrame(frame, () => buffers.give(buf));
    hash.update(chunk); // while the frame is on its way
    ctx.onBytes?.(pos - offset);
    if (ctx.peerStopped()) return false;
    if (!room) await ch.flush(ctx.signal);
  }
  return true;
}

/** Reads up to 1 MiB at `pos` behind a frame header's room; `frame` is the part filled. */
function readChunk(
  fh: FileHandle,
  pos: number,
  spec: SendSpec,
  buffers: FrameBuffers,
): Promise<{ buf: Buffer; frame: Buffer }> {
  const len = Math.min(DATA_CHUNK_BYTES, spec.size - pos);
  const p = (async () => {
    const buf = buffers.take(len);
    try {
      const { bytesRead } = await fh.read(buf, FRAME_HEADER_BYTES, len, pos);
      return { buf, frame: buf.subarray(0, FRAME_HEADER_BYTES + bytesRead) };
    } catch (err) {
      throw new LocalError(fsError(err, spec.shown));
    }
  })();
  // A read still in flight when sending stops early must not become an unhandled rejection.
  void p.catch(() => {});
  return p;
}
