// Fitting a progress line to a terminal, and the units every size is printed in.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatBytes, formatEta, formatSpeed } from '../../../src/cli/format.js';
import { displayWidth, fitLine, shorten, type BarLine } from '../../../src/cli/progress-line.js';

const running: BarLine = {
  name: 'holiday video 2024.mp4',
  ratio: 0.58,
  amount: '580.00 MiB/1.00 GiB',
  speed: '221.15 MiB/s',
  tail: 'ETA 2s',
};
const finished: BarLine = {
  name: 'holiday video 2024.mp4',
  ratio: 1,
  amount: '1.00 GiB',
  speed: '221.15 MiB/s',
  tail: 'Complete.',
  tailIsStatus: true,
};

describe('fitLine', () => {
  const cases: [string, BarLine, number | undefined, string][] = [
    [
      'a log (no terminal): everything, a full-size bar',
      running,
      undefined,
      'holiday video 2024.mp4  58% [=================             ] 580.00 MiB/1.00 GiB 221.15 MiB/s ETA 2s',
    ],
    [
      '120 columns: the same',
      running,
      119,
      'holiday video 2024.mp4  58% [=================             ] 580.00 MiB/1.00 GiB 221.15 MiB/s ETA 2s',
    ],
    [
      '80 columns: the bar shrinks and the name is cut in the middle, every figure stays',
      running,
      79,
      'holiday …deo 2024.mp4  58% [=====     ] 580.00 MiB/1.00 GiB 221.15 MiB/s ETA 2s',
    ],
    [
      '60 columns: the ETA and the speed go',
      running,
      59,
      'holiday …deo 2024.mp4  58% [=====     ] 580.00 MiB/1.00 GiB',
    ],
    ['50 columns: then the bar', running, 49, 'holiday video 2024.mp4  58% 580.00 MiB/1.00 GiB'],
    ['30 columns: name and percentage', running, 29, 'holiday video 2024.mp4  58%'],
    ['20 columns: the name shrinks, the percentage stays', running, 19, 'holida…024.mp4  58%'],
    [
      'a finished line keeps "Complete." before the speed',
      finished,
      49,
      'holid…24.mp4 100% [==========] 1.00 GiB Complete.',
    ],
    ['a finished line, 30 columns', finished, 30, 'holida…2024.mp4 100% Complete.'],
    [
      'no known total (the overall line before the plan): no percentage, no bar',
      { name: '3 files done', ratio: undefined, amount: '1.20 GiB', speed: '200.00 MiB/s' },
      79,
      '3 files done 1.20 GiB 200.00 MiB/s',
    ],
  ];
  for (const [name, line, width, expected] of cases) {
    it(name, () => {
      const out = fitLine(line, width);
      assert.equal(out, expected);
      if (width !== undefined) assert.ok(displayWidth(out) <= width, `${out.length} > ${width}`);
    });
  }

  it('never exceeds the width and always shows the percentage', () => {
    const name = 'a very long file name for the holiday video 2024 with even more words.mp4';
    for (let width = 12; width <= 160; width++) {
      for (const line of [running, finished]) {
        const out = fitLine({ ...line, name }, width);
        assert.ok(displayWidth(out) <= width, `width ${width}: "${out}"`);
        assert.match(out, /(100|\s\d\d)%/, `width ${width}: "${out}"`);
      }
    }
  });

  it('counts wide characters as two columns', () => {
    const out = fitLine({ ...running, name: '写真アルバム2024年夏休みの思い出.jpg' }, 49);
    assert.ok(displayWidth(out) <= 49, out);
    assert.match(out, /…/);
  });
});

describe('shorten', () => {
  it('keeps the start and the end (the extension) of a name', () => {
    assert.equal(shorten('tree2/tree/c/with space.txt', 16), 'tree2/…space.txt');
    assert.equal(shorten('short.txt', 16), 'short.txt');
    assert.equal(shorten('abc', 1), '…');
  });
});

describe('units', () => {
  it('binary prefixes, said as such', () => {
    assert.equal(formatBytes(0), '0 B');
    assert.equal(formatBytes(7), '7 B');
    assert.equal(formatBytes(1023), '1023 B');
    assert.equal(formatBytes(1024), '1.00 KiB');
    assert.equal(formatBytes(1_015_624), '991.82 KiB');
    assert.equal(formatBytes(200 * 1024 * 1024), '200.00 MiB');
    assert.equal(formatBytes(1024 ** 3), '1.00 GiB');
    assert.equal(formatBytes(1024 * 1024 - 1), '1.00 MiB', 'no "1024.00 KiB"');
    assert.equal(formatSpeed(282_982, 1000), '276.35 KiB/s');
    assert.equal(formatSpeed(5, 0), '-');
  });

  it('ETAs', () => {
    assert.equal(formatEta(400), '1s');
    assert.equal(formatEta(65_000), '1m05s');
    assert.equal(formatEta(2 * 3600_000 + 3 * 60_000), '2h03m');
  });
});
