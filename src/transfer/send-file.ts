// Sending one file: `file {i, offset}`, data frames of up to 1 MiB, then `file-end {i, sha256}`.
//
// The file is opened and checked against the size and mtime announced earlier; with resume info the
// matching prefix is skipped (block-hashes.ts). Reading is double-buffered: the next 1 MiB read is in
// flight on libuv's pool while this chunk is written to the stream (header + chunk, one writev) and
// hashed. Backpressure: after each frame, wait for 'drain' when the stream asks for it. A file that
// changes size or mtime while it is sent ends with `file-error SOURCE_CHANGED` instead of file-end.
//
// Local file problems come back as { ok: false } (the caller reports them per file); connection
// problems (CONNECTION_LOST, TIMEOUT, ABORTED) are thrown.

import { createHash, type Hash } from 'node:crypto';
import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { fsError, isRcppError, RcppError } from '../errors.js';
import { DATA_CHUNK_BYTES } from '../protocol/limits.js';
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

/** Streams [offset, size); false when the peer stopped this file. */
async function streamBody(
  ch: FrameChannel,
  fh: FileHandle,
  spec: SendSpec,
  offset: number,
  hash: Hash,
  ctx: SendContext,
): Promise<boolean> {
  let pos = offset;
  let next = pos < spec.size ? readChunk(fh, pos, spec) : undefined;
  while (next) {
    const chunk = await next;
    if (chunk.length === 0) throw new LocalError(changed(spec.shown));
    pos += chunk.length;
    // The next read runs on libuv's pool while this chunk goes out and is hashed.
    next = pos < spec.size ? readChunk(fh, pos, spec) : undefined;
    const room = ch.sendData(chunk);
    hash.update(chunk); // while the frame is on its way
    ctx.onBytes?.(pos - offset);
    if (ctx.peerStopped()) return false;
    if (!room) await ch.flush(ctx.signal);
  }
  return true;
}

function readChunk(fh: FileHandle, pos: number, spec: SendSpec): Promise<Buffer> {
  const len = Math.min(DATA_CHUNK_BYTES, spec.size - pos);
  const p = (async () => {
    const buf = Buffer.allocUnsafe(len);
    try {
      const { bytesRead } = await fh.read(buf, 0, len, pos);
      return bytesRead === len ? buf : buf.subarray(0, bytesRead);
    } catch (err) {
      throw new LocalError(fsError(err, spec.shown));
    }
  })();
  // A read still in flight when sending stops early must not become an unhandled rejection.
  void p.catch(() => {});
  return p;
}
