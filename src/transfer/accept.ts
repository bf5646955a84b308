// The accept step, shared by both directions: the receiver prepares every announced file at once
// (checks, locks, partial hashes, free space) and answers with one accept message (in parts when
// long) listing the files to send, with resume info, and the refused ones with a code and sentence.
// Each accepted file reserves the bytes it still misses (space.ts) until its lock is released, so
// the files of one command, and of commands running at once, never add up to more than the disk
// holds. The sender reads those parts back and checks them against what it announced.

import { fsError, isRcppError, RcppError } from '../errors.js';
import type { AcceptFile, Refusal } from '../protocol/messages.js';
import { packParts } from '../protocol/parts.js';
import type { FrameChannel } from './channel.js';
import type { ReceiveLock } from './lock.js';
import { prepareReceive, type Prepared, type ReceiveSpec } from './receive-file.js';
import type { SafeRoot } from './safe-path.js';
import { reserveSpace, type Reservation } from './space.js';

const PREPARE_CONCURRENCY = 8;

export interface Prepares {
  prepared: Map<number, Prepared>;
  accept: AcceptFile[];
  refused: Refusal[];
}

/** Prepares files (or records the refusal a caller already decided); keeps the order of `specs`. */
export async function prepareAll(
  root: SafeRoot,
  specs: (ReceiveSpec | { i: number; refusal: RcppError })[],
  force: boolean,
  signal?: AbortSignal,
): Promise<Prepares> {
  type One =
    { i: number; prepared: Prepared } | { i: number; prepared?: undefined; error: RcppError };
  const results = await mapLimit(specs, PREPARE_CONCURRENCY, async (s): Promise<One> => {
    if ('refusal' in s) return { i: s.i, error: s.refusal };
    try {
      return { i: s.i, prepared: await prepareReceive(root, s, force, signal) };
    } catch (err) {
      if (isRcppError(err)) return { i: s.i, error: err };
      // A raw error's message may name our absolute paths: never sent to the peer.
      return { i: s.i, error: fsError(err, s.shown) };
    }
  });
  const out: Prepares = { prepared: new Map(), accept: [], refused: [] };
  // In order, one at a time: which files fit is decided in the order the sender announced them.
  for (const r of results) {
    let error = r.prepared ? undefined : r.error;
    const p = r.prepared;
    if (p) {
      try {
        const need = p.spec.size - (p.partialState?.info.length ?? 0);
        p.lock = alsoReleasing(p.lock, await reserveSpace(p.dir, need, p.spec.shown));
      } catch (err) {
        await p.lock.release();
        error = isRcppError(err) ? err : fsError(err, p.spec.shown);
      }
    }
    if (p && !error) {
      out.prepared.set(r.i, p);
      const info = p.partialState?.info;
      out.accept.push(info ? { i: r.i, resume: info } : { i: r.i });
    } else if (error) {
      out.refused.push({ i: r.i, code: error.code, message: error.message });
    }
  }
  return out;
}

/** The lock, whose release also gives back the file's reserved space. */
function alsoReleasing(lock: ReceiveLock, space: Reservation): ReceiveLock {
  return {
    target: lock.target,
    release() {
      space.release();
      return lock.release();
    },
  };
}

/** Frees every lock of a preparation that will not be streamed (the command failed before). */
export async function releaseAll(prepared: Map<number, Prepared>): Promise<void> {
  await Promise.all([...prepared.values()].map((p) => p.lock.release()));
}

export function sendAccept(
  ch: FrameChannel,
  accept: AcceptFile[],
  refused: Refusal[],
  last: boolean,
): void {
  const parts = packParts({ files: accept, refused });
  parts.forEach((part, n) => {
    ch.send({
      t: 'accept',
      files: part.files,
      refused: part.refused,
      last: last && n === parts.length - 1,
    });
  });
}

/**
 * Reads accept parts until the last one. Every index must be one the sender announced (`known`) and
 * appear once. Returns the files to send in the receiver's order, and the refusals.
 */
export async function readAccept(
  ch: FrameChannel,
  known: (i: number) => boolean,
  signal?: AbortSignal,
): Promise<{ files: AcceptFile[]; refused: Refusal[] }> {
  const seen = new Set<number>();
  const files: AcceptFile[] = [];
  const refused: Refusal[] = [];
  const check = (i: number): void => {
    if (!known(i) || seen.has(i)) {
      throw new RcppError('PROTOCOL_ERROR', `${ch.peer} answered for a file it was not offered.`);
    }
    seen.add(i);
  };
  for (;;) {
    const msg = await ch.readMessage(signal);
    if (msg.t === 'error') throw new RcppError(msg.code, msg.message);
    if (msg.t !== 'accept') {
      throw new RcppError('PROTOCOL_ERROR', `${ch.peer} sent ${msg.t} where accept was expected.`);
    }
    for (const f of msg.files) {
      check(f.i);
      files.push(f);
    }
    for (const r of msg.refused) {
      check(r.i);
      refused.push(r);
    }
    if (msg.last) return { files, refused };
  }
}

export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const k = next++;
      out[k] = await fn(items[k]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
