// Turns per-file notifications of a get or put into ProgressEvents for the CLI: transfer:start,
// transfer:bytes (at most every 100 ms per file, plus the final count), transfer:done, transfer:failed.

import type { RcppError } from '../errors.js';
import type { OnProgress } from '../progress.js';
import type { FileEvents } from './stream-files.js';

const EVERY_MS = 100;

export function progressEvents(
  op: 'get' | 'put',
  onProgress: OnProgress | undefined,
  fileOf: (i: number) => { file: string; size: number } | undefined,
): FileEvents {
  if (!onProgress) return {};
  const offsets = new Map<number, number>();
  const last = new Map<number, number>();
  return {
    start(i, offset) {
      const f = fileOf(i);
      if (!f) return;
      offsets.set(i, offset);
      last.set(i, Date.now());
      onProgress({ type: 'transfer:start', op, file: f.file, size: f.size, resumedFrom: offset });
    },
    bytes(i, sent) {
      const f = fileOf(i);
      if (!f) return;
      const now = Date.now();
      const done = (offsets.get(i) ?? 0) + sent;
      if (done < f.size && now - (last.get(i) ?? 0) < EVERY_MS) return;
      last.set(i, now);
      onProgress({ type: 'transfer:bytes', op, file: f.file, done, total: f.size });
    },
    done(i, sha256) {
      const f = fileOf(i);
      if (!f) return;
      onProgress({ type: 'transfer:done', op, file: f.file, bytes: f.size, sha256 });
    },
    failed(i: number, error: RcppError) {
      const f = fileOf(i);
      if (!f) return;
      onProgress({ type: 'transfer:failed', op, file: f.file, message: error.message });
    },
  };
}
