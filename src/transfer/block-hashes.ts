// The file-reading half of resume (the arithmetic is in protocol/resume.ts).
// Receiver: describePartial() hashes its partial file block by block, and the whole of it at the same
// time, so a resume from the partial's end needs no second read. Sender: matchPrefix() hashes the same
// block ranges of its own file until one differs and returns where to continue, with the SHA-256 of
// the bytes before that point (the receiver's file-end check covers the whole file).

import { createHash, type Hash } from 'node:crypto';
import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { abortError } from '../errors.js';
import type { ResumeInfo } from '../protocol/messages.js';
import { blockCount, blockRange, resumeBlockSize, resumeOffset } from '../protocol/resume.js';

const CHUNK = 1024 * 1024;

/** Reads [start, end) of a file in 1 MiB chunks; each chunk is valid only during `onChunk`. */
export async function readRange(
  fh: FileHandle,
  start: number,
  end: number,
  onChunk: (chunk: Buffer) => void,
  signal?: AbortSignal,
  buf = Buffer.allocUnsafe(CHUNK),
): Promise<number> {
  let pos = start;
  while (pos < end) {
    if (signal?.aborted) throw abortError(signal);
    const want = Math.min(buf.length, end - pos);
    const { bytesRead } = await fh.read(buf, 0, want, pos);
    if (bytesRead === 0) break;
    onChunk(buf.subarray(0, bytesRead));
    pos += bytesRead;
  }
  return pos - start;
}

export interface PartialState {
  info: ResumeInfo;
  /** SHA-256 state over the whole partial, for when the sender continues from its end. */
  whole: Hash;
}

/** Describes an existing partial file for resume; undefined when there is none or it is empty. */
export async function describePartial(
  path: string,
  signal?: AbortSignal,
): Promise<PartialState | undefined> {
  let fh: FileHandle;
  try {
    fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch {
    return undefined;
  }
  try {
    const st = await fh.stat();
    if (!st.isFile() || st.size === 0) return undefined;
    const length = st.size;
    const blockSize = resumeBlockSize(length);
    const whole = createHash('sha256');
    const hashes: string[] = [];
    const buf = Buffer.allocUnsafe(CHUNK);
    for (let k = 0; k < blockCount(length, blockSize); k++) {
      const [start, end] = blockRange(k, blockSize, length);
      const block = createHash('sha256');
      const both = (c: Buffer): void => {
        block.update(c);
        whole.update(c);
      };
      const got = await readRange(fh, start, end, both, signal, buf);
      if (got !== end - start) return undefined; // shrank under us: start over
      hashes.push(block.digest('hex'));
    }
    return { info: { blockSize, length, hashes }, whole };
  } finally {
    await fh.close();
  }
}

/** SHA-256 state over the first `length` bytes of a file. */
export async function hashPrefix(
  fh: FileHandle,
  length: number,
  signal?: AbortSignal,
): Promise<Hash> {
  const hash = createHash('sha256');
  const got = await readRange(fh, 0, length, (c) => hash.update(c), signal);
  if (got !== length) throw new Error(`the file is shorter than ${length} bytes`);
  return hash;
}

/**
 * Sender side: compares the receiver's block hashes with this file's same ranges and returns the
 * offset to continue from and the SHA-256 state over [0, offset).
 */
export async function matchPrefix(
  fh: FileHandle,
  info: ResumeInfo,
  signal?: AbortSignal,
): Promise<{ offset: number; whole: Hash }> {
  let whole = createHash('sha256');
  const buf = Buffer.allocUnsafe(CHUNK);
  let matched = 0;
  for (; matched < info.hashes.length; matched++) {
    const [start, end] = blockRange(matched, info.blockSize, info.length);
    const before = whole.copy();
    const block = createHash('sha256');
    const current = whole;
    const both = (c: Buffer): void => {
      block.update(c);
      current.update(c);
    };
    const got = await readRange(fh, start, end, both, signal, buf);
    if (got !== end - start || block.digest('hex') !== info.hashes[matched]) {
      whole = before;
      break;
    }
  }
  return { offset: resumeOffset(info, matched), whole };
}
