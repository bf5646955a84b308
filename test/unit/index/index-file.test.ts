// The index file as bytes: what a server writes reads back the same, and every hostile variant a
// shared rendezvous account could hold is refused with one sentence naming the server.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { isRcppError } from '../../../src/errors.js';
import {
  decodeIndex,
  encodeIndex,
  MAX_INDEX_FILES,
  parseIndexSummary,
  type IndexEntry,
} from '../../../src/index/index-file.js';

const AT = new Date('2024-06-01T12:00:00.000Z');
const ENTRIES: IndexEntry[] = [
  { path: 'photos/2024/beach.jpg', size: 1_200_000, mtimeMs: 1_717_000_000_000 },
  { path: 'notes.txt', size: 34, mtimeMs: 1_600_000_000_123 },
  { path: 'Café/menu.pdf', size: 0, mtimeMs: -1000 },
];

function summaryLine(fields: Record<string, unknown>): string {
  return JSON.stringify({
    rcpp2p: 'index',
    v: 1,
    server: 'EVIL',
    files: 1,
    bytes: 1,
    truncated: false,
    at: AT.toISOString(),
    ...fields,
  });
}

/** An index with a hand-made summary and entry lines. */
function handMade(summary: Record<string, unknown>, lines: string[]): Buffer {
  return Buffer.concat([
    Buffer.from(summaryLine(summary) + '\n'),
    gzipSync(lines.map((l) => l + '\n').join('')),
  ]);
}

async function refusal(data: Buffer, server = 'EVIL'): Promise<string> {
  try {
    await decodeIndex(data, server);
  } catch (err) {
    assert.ok(isRcppError(err), String(err));
    assert.equal(err.code, 'RENDEZVOUS_REFUSED');
    assert.match(err.message, new RegExp(`^The index of ${server} on the rendezvous is damaged`));
    return err.message;
  }
  assert.fail('the index was accepted');
}

describe('index file', () => {
  it('reads back what it wrote, sorted by path, with the summary first in plain text', async () => {
    const { data, summary } = await encodeIndex('ASUS', ENTRIES, {
      maxBytes: 1 << 20,
      truncated: false,
      at: AT,
    });
    assert.deepEqual(summary, {
      server: 'ASUS',
      files: 3,
      bytes: 1_200_034,
      truncated: false,
      at: AT.toISOString(),
    });
    const firstLine = data.subarray(0, data.indexOf(0x0a)).toString();
    assert.deepEqual(parseIndexSummary(firstLine, 'ASUS'), summary);
    const back = await decodeIndex(data, 'ASUS');
    assert.deepEqual(back.summary, summary);
    assert.deepEqual(
      back.entries.map((e) => e.path),
      ['Café/menu.pdf', 'notes.txt', 'photos/2024/beach.jpg'],
    );
    assert.deepEqual(
      back.entries.find((e) => e.path === 'notes.txt'),
      ENTRIES[1],
    );
  });

  it('an empty folder is an index of no files', async () => {
    const { data } = await encodeIndex('ASUS', [], { maxBytes: 1 << 20, truncated: false });
    assert.deepEqual((await decodeIndex(data, 'ASUS')).entries, []);
  });

  it('leaves out the end of the list and says truncated when the bytes do not fit', async () => {
    const many: IndexEntry[] = Array.from({ length: 20_000 }, (_, n) => ({
      path: `f/${n.toString(36)}-${((n * 2654435761) >>> 0).toString(16)}.bin`,
      size: n,
      mtimeMs: 1_700_000_000_000 + n * 977,
    }));
    const { data, summary } = await encodeIndex('ASUS', many, {
      maxBytes: 40_000,
      truncated: false,
    });
    assert.ok(data.length <= 40_000, `${data.length} bytes`);
    assert.equal(summary.truncated, true);
    assert.ok(summary.files > 1000 && summary.files < 20_000, `${summary.files} files`);
    const back = await decodeIndex(data, 'ASUS');
    assert.equal(back.entries.length, summary.files);
  });

  it('keeps at most MAX_INDEX_FILES entries', async () => {
    const many: IndexEntry[] = Array.from({ length: MAX_INDEX_FILES + 5 }, (_, n) => ({
      path: `d/${String(n).padStart(7, '0')}`,
      size: 1,
      mtimeMs: 0,
    }));
    const { summary } = await encodeIndex('ASUS', many, { maxBytes: 8 << 20, truncated: false });
    assert.equal(summary.files, MAX_INDEX_FILES);
    assert.equal(summary.truncated, true);
  });

  it('refuses a summary that is not one', () => {
    const cases: [string, RegExp][] = [
      ['', /it is empty/],
      ['{"rcpp2p":"index"', /not JSON/],
      ['[1,2]', /is not an object/],
      [summaryLine({ rcpp2p: 'other' }), /not an rcpp2p index/],
      [summaryLine({ v: 2 }), /unknown version 2/],
      [summaryLine({ server: 'ASUS' }), /names another server \(ASUS\)/],
      [summaryLine({ server: '../x' }), /server is not in the expected form/],
      [summaryLine({ files: -1 }), /files must be a whole number/],
      [summaryLine({ files: MAX_INDEX_FILES + 1 }), /files must be a whole number/],
      [summaryLine({ bytes: 1e300 }), /bytes must be a whole number/],
      [summaryLine({ bytes: '12' }), /bytes must be a whole number/],
      [summaryLine({ truncated: 'no' }), /truncated must be true or false/],
      [summaryLine({ at: 'yesterday' }), /at is not a time/],
      [summaryLine({ pad: 'x'.repeat(2000) }), /summary line is too long/],
    ];
    for (const [line, expected] of cases) {
      assert.throws(
        () => parseIndexSummary(line, 'EVIL'),
        (err: unknown) => isRcppError(err) && expected.test(err.message),
        line.slice(0, 80),
      );
    }
  });

  it('refuses hostile entries: bad names, huge sizes, lies about counts and totals', async () => {
    const entry = (p: unknown, s: unknown = 1, m: unknown = 0): string =>
      JSON.stringify({ p, s, m });
    const cases: [Buffer, RegExp][] = [
      [
        handMade({}, [entry('../../etc/passwd')]),
        /entry 1: the path "..\/..\/etc\/passwd" goes up/,
      ],
      [handMade({}, [entry('/etc/passwd')]), /entry 1: the path "\/etc\/passwd" is absolute/],
      [
        handMade({}, [entry('a/\u001b[2Jb')]),
        /entry 1: the path "a\/\\u001b\[2Jb" contains a control/,
      ],
      [handMade({}, [entry('a\\b')]), /contains a backslash/],
      [handMade({}, [entry('x.rcpp2p-partial')]), /internal file/],
      [handMade({}, [entry('a//b')]), /empty component/],
      [handMade({}, [entry('x'.repeat(5000))]), /p must be a string of at most 4096 bytes/],
      [handMade({}, [entry(42)]), /p must be a string/],
      [handMade({}, [entry('a', 1e300)]), /entry 1: s must be a whole number/],
      [handMade({}, [entry('a', -5)]), /s must be a whole number/],
      [handMade({}, [entry('a', 1, 'noon')]), /m must be a whole number/],
      [handMade({}, ['not json']), /entry 1: is not JSON/],
      [handMade({}, ['{"p":"' + 'a'.repeat(30_000) + '"}']), /entry 1: is too long/],
      [handMade({ files: 2, bytes: 2 }, [entry('b'), entry('a')]), /entry 2: is out of order/],
      [handMade({ files: 2, bytes: 2 }, [entry('a'), entry('a')]), /listed twice/],
      [handMade({ files: 1 }, [entry('a'), entry('b')]), /more files than the 1 its summary/],
      [handMade({ files: 2, bytes: 2 }, [entry('a')]), /lists 1 files, but its summary says 2/],
      [handMade({ bytes: 7 }, [entry('a')]), /do not add up/],
      [
        handMade({ files: 2, bytes: 1 }, [
          entry('a', Number.MAX_SAFE_INTEGER),
          entry('b', Number.MAX_SAFE_INTEGER),
        ]),
        /entry 2: makes the total size larger/,
      ],
    ];
    for (const [data, expected] of cases) {
      assert.match(await refusal(data), expected);
    }
  });

  it('refuses damaged packing: no summary, not gzip, cut short, a gzip bomb', async () => {
    const good = (await encodeIndex('EVIL', ENTRIES, { maxBytes: 1 << 20, truncated: false })).data;
    assert.match(await refusal(Buffer.from('x'.repeat(3000))), /no summary line/);
    assert.match(
      await refusal(Buffer.concat([Buffer.from(summaryLine({}) + '\n'), Buffer.from('plain')])),
      /not gzip data, or is cut short/,
    );
    assert.match(await refusal(good.subarray(0, good.length - 9)), /cut short/);
    const bomb = Buffer.concat([
      Buffer.from(summaryLine({ files: 1 }) + '\n'),
      gzipSync(Buffer.alloc(80 * 1024 * 1024, 0x20)),
    ]);
    assert.ok(bomb.length < 200_000, `the bomb is ${bomb.length} bytes packed`);
    assert.match(await refusal(bomb), /unpacks to more than 67108864 bytes/);
    assert.match(
      await refusal(handMade({}, ['{"p":"a","s":1,"m":0}']).subarray(0, 10)),
      /no summary line/,
    );
  });

  it('refuses an index filed under another server name', async () => {
    const { data } = await encodeIndex('ASUS', ENTRIES, { maxBytes: 1 << 20, truncated: false });
    assert.match(await refusal(data, 'NAS'), /names another server \(ASUS\)/);
  });
});
