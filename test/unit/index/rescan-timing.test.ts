// When the index publisher rescans, as a table of real situations.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  DEFAULT_RESCAN_TIMING as T,
  periodicRescanMs,
  scanDueAt,
} from '../../../src/index/rescan-timing.js';

describe('rescan timing', () => {
  it('scans a second after one change, or five after a stream of them', () => {
    const cases: [string, number, number, number][] = [
      // [situation, first change, last change, expected due]
      ['one file saved', 0, 0, 1000],
      ['a few files copied within 300 ms', 0, 300, 1300],
      ['a copy still running after 4.5 s', 0, 4500, 5000],
      ['a copy still running after a minute', 0, 60_000, 5000],
    ];
    for (const [situation, first, last, due] of cases) {
      assert.equal(
        scanDueAt(T, { firstChangeAt: first, lastChangeAt: last }, undefined),
        due,
        situation,
      );
    }
  });

  it('waits four times the last scan after it ended (a huge folder that keeps changing)', () => {
    const changes = { firstChangeAt: 10_000, lastChangeAt: 10_000 };
    assert.equal(scanDueAt(T, changes, { endedAt: 9_000, ms: 50 }), 11_000, 'a small folder');
    assert.equal(scanDueAt(T, changes, { endedAt: 9_000, ms: 3_000 }), 21_000, '100,000 files');
  });

  it('rescans every minute for small folders and up to every 30 minutes for huge ones', () => {
    assert.equal(periodicRescanMs(T, 20), 60_000);
    assert.equal(periodicRescanMs(T, 3_000), 300_000);
    assert.equal(periodicRescanMs(T, 60_000), 30 * 60_000);
  });
});
