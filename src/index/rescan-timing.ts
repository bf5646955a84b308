// When the index publisher scans the shared folder again. Pure, so it is table-tested.
//
//   a change is seen      -> scan once the folder has been quiet for quietMs, but no later than
//                            maxWaitMs after the first change (a folder that never goes quiet,
//                            such as one being copied into, is still indexed every few seconds)
//   a scan just finished  -> the next waits at least cooldownFactor x its duration, so a huge
//                            folder that changes all the time costs at most a fixed share of a core
//   nothing changes       -> a full rescan every periodicFactor x the last scan's duration, within
//                            [periodicMinMs, periodicMaxMs]: changes a watch misses (network
//                            shares, folders past the watch limit) are found within that time
export interface RescanTiming {
  quietMs: number;
  maxWaitMs: number;
  cooldownFactor: number;
  periodicFactor: number;
  periodicMinMs: number;
  periodicMaxMs: number;
}

export const DEFAULT_RESCAN_TIMING: RescanTiming = {
  quietMs: 1000,
  maxWaitMs: 5000,
  cooldownFactor: 4,
  periodicFactor: 100,
  periodicMinMs: 60_000,
  periodicMaxMs: 30 * 60_000,
};

export interface ChangeWindow {
  /** When the first change not yet scanned was seen (ms, any clock). */
  firstChangeAt: number;
  /** When the latest one was seen. */
  lastChangeAt: number;
}

export interface LastScan {
  endedAt: number;
  ms: number;
}

/** The time the next scan should start for the changes seen. */
export function scanDueAt(
  timing: RescanTiming,
  changes: ChangeWindow,
  last: LastScan | undefined,
): number {
  const settled = Math.min(
    changes.lastChangeAt + timing.quietMs,
    changes.firstChangeAt + timing.maxWaitMs,
  );
  const cooled = last ? last.endedAt + timing.cooldownFactor * last.ms : -Infinity;
  return Math.max(settled, cooled);
}

/** How long after a scan the next full rescan runs when nothing was seen to change. */
export function periodicRescanMs(timing: RescanTiming, lastScanMs: number): number {
  return Math.min(
    timing.periodicMaxMs,
    Math.max(timing.periodicMinMs, timing.periodicFactor * lastScanMs),
  );
}
