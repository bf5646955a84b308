// Resume arithmetic, pure. A receiver with a partial file of `length` bytes describes it as SHA-256
// hashes of fixed blocks: block k covers [k*blockSize, min((k+1)*blockSize, length)), the last block
// may be short. blockSize = max(1 MiB, the next power of two >= ceil(length / 4096)), so a partial
// never needs more than 4096 hashes. The sender hashes the same ranges of its own file and continues
// from the first block that differs: offset = k*blockSize, or `length` when every block matches.
// A partial longer than the source, or a source that changed in the first block, restarts at 0.

import { RESUME_MAX_BLOCKS, RESUME_MIN_BLOCK } from './limits.js';

/** What a receiver tells the sender about a partial file it kept: block hashes of its prefix. */
export interface ResumeInfo {
  blockSize: number;
  length: number;
  hashes: string[];
}

export function resumeBlockSize(length: number): number {
  let size = RESUME_MIN_BLOCK;
  while (size * RESUME_MAX_BLOCKS < length) size *= 2;
  return size;
}

export function blockCount(length: number, blockSize: number): number {
  return Math.ceil(length / blockSize);
}

/** Byte range [start, end) of block k of a partial of `length` bytes. */
export function blockRange(k: number, blockSize: number, length: number): [number, number] {
  const start = k * blockSize;
  return [start, Math.min(start + blockSize, length)];
}

/** Index of the first position where the two hash lists differ (the shorter length if none). */
export function firstMismatch(theirs: readonly string[], ours: readonly string[]): number {
  const n = Math.min(theirs.length, ours.length);
  for (let k = 0; k < n; k++) if (theirs[k] !== ours[k]) return k;
  return n;
}

/** Whether the sender can use this partial at all: it must not be longer than the source. */
export function canResume(info: ResumeInfo, sourceSize: number): boolean {
  return info.length <= sourceSize && info.blockSize === resumeBlockSize(info.length);
}

/**
 * The offset the sender continues from, given how many leading blocks matched. Every block matching
 * means the whole partial is good; otherwise the first differing block is sent again.
 */
export function resumeOffset(info: ResumeInfo, matchedBlocks: number): number {
  if (matchedBlocks >= info.hashes.length) return info.length;
  return matchedBlocks * info.blockSize;
}

/** Whether `offset` is one the receiver can accept for its partial (0, a block start, or its end). */
export function isResumeOffset(offset: number, info: ResumeInfo | undefined): boolean {
  if (offset === 0) return true;
  if (!info) return false;
  return offset === info.length || (offset < info.length && offset % info.blockSize === 0);
}
