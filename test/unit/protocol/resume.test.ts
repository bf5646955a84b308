import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  blockCount,
  blockRange,
  canResume,
  firstMismatch,
  isResumeOffset,
  resumeBlockSize,
  resumeOffset,
} from '../../../src/protocol/resume.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

describe('resume block size', () => {
  const cases: [string, number, number][] = [
    ['a few bytes of a photo', 10, MiB],
    ['a 700 MiB video cut early', 700 * MiB, MiB],
    ['exactly 4 GiB (4096 blocks of 1 MiB)', 4 * GiB, MiB],
    ['one byte over 4 GiB', 4 * GiB + 1, 2 * MiB],
    ['a 50 GiB disk image', 50 * GiB, 16 * MiB],
    ['the largest JSON-safe size', Number.MAX_SAFE_INTEGER, 2 ** 41],
  ];
  for (const [name, length, expected] of cases) {
    it(`${name}: ${expected / MiB} MiB blocks, at most 4096`, () => {
      const size = resumeBlockSize(length);
      assert.equal(size, expected);
      assert.ok(blockCount(length, size) <= 4096);
    });
  }
});

describe('resume ranges and offsets', () => {
  it('cuts the last block short', () => {
    assert.deepEqual(blockRange(0, MiB, MiB + 5), [0, MiB]);
    assert.deepEqual(blockRange(1, MiB, MiB + 5), [MiB, MiB + 5]);
    assert.equal(blockCount(MiB + 5, MiB), 2);
  });

  const info = { blockSize: MiB, length: 3 * MiB + 100, hashes: ['a', 'b', 'c', 'd'] };
  const table: [string, string[], number][] = [
    ['the whole partial matches: continue from its end', ['a', 'b', 'c', 'd'], 3 * MiB + 100],
    ['the last (short) block differs: resend from its start', ['a', 'b', 'c', 'x'], 3 * MiB],
    ['the source changed at the start: restart at 0', ['x', 'b', 'c', 'd'], 0],
    ['a change in the middle: resend from that block', ['a', 'x', 'c', 'd'], MiB],
  ];
  for (const [name, ours, offset] of table) {
    it(name, () => {
      assert.equal(resumeOffset(info, firstMismatch(info.hashes, ours)), offset);
      assert.ok(isResumeOffset(offset, info));
    });
  }

  it('compares only as far as the shorter list', () => {
    assert.equal(firstMismatch(['a', 'b'], ['a']), 1);
    assert.equal(firstMismatch([], ['a']), 0);
  });

  it('refuses a partial longer than the source, or with a foreign block size', () => {
    assert.equal(canResume(info, 3 * MiB + 99), false);
    assert.equal(canResume(info, 3 * MiB + 100), true);
    assert.equal(canResume({ ...info, blockSize: 2 * MiB }, 10 * MiB), false);
  });

  it('accepts only 0, block starts inside the partial, or its end as offsets', () => {
    assert.equal(isResumeOffset(0, undefined), true);
    assert.equal(isResumeOffset(MiB, undefined), false);
    assert.equal(isResumeOffset(2 * MiB, info), true);
    assert.equal(isResumeOffset(2 * MiB + 1, info), false);
    assert.equal(isResumeOffset(4 * MiB, info), false);
  });
});
