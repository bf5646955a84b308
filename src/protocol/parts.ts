// Splitting long lists into message parts. A manifest of 100,000 files does not fit in one 1 MiB
// control frame, so manifest, put, accept and listing messages carry their lists in consecutive parts,
// the last one flagged `last: true`. packParts() fills each part up to a byte budget, in order.

import { CONTROL_PART_BUDGET, MAX_ENTRIES_PER_PART } from './limits.js';
import { encodedSize } from './frames.js';

type Groups = Record<string, readonly unknown[]>;
type Packed<G extends Groups> = { [K in keyof G]: G[K][number][] };

/**
 * Packs the lists of `groups` into parts whose encoded lists together stay within `budget` bytes and
 * `maxItems` items per list. Items keep their order (all of the first list, then the next...); every
 * list exists in every part (maybe empty); there is always at least one part.
 */
export function packParts<G extends Groups>(
  groups: G,
  budget = CONTROL_PART_BUDGET,
  maxItems = MAX_ENTRIES_PER_PART,
): Packed<G>[] {
  const keys = Object.keys(groups);
  const empty = (): Record<string, unknown[]> =>
    Object.fromEntries(keys.map((k): [string, unknown[]] => [k, []]));
  const parts: Record<string, unknown[]>[] = [empty()];
  let used = 0;
  for (const key of keys) {
    for (const item of groups[key] ?? []) {
      const size = encodedSize(item) + 1;
      let part = parts[parts.length - 1]!;
      if ((used > 0 && used + size > budget) || part[key]!.length >= maxItems) {
        part = empty();
        parts.push(part);
        used = 0;
      }
      part[key]!.push(item);
      used += size;
    }
  }
  return parts as unknown as Packed<G>[];
}
