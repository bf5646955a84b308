// --search patterns: substring, name glob and path glob, case-insensitive, with cases named after
// what people type.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isRcppError } from '../../../src/errors.js';
import { compilePattern, globMatch } from '../../../src/index/match.js';

const PATHS = [
  'photos/2024/Beach.JPG',
  'photos/2024/beach-2.jpg',
  'photos/2023/IMG_0001.jpg',
  'docs/taxes 2023.pdf',
  'music/Café Tacvba/Ojalá.mp3',
  'backup/beach.jpg.old',
  'notes.txt',
];

function found(pattern: string): string[] {
  const match = compilePattern(pattern);
  return PATHS.filter((p) => match(p));
}

describe('search patterns', () => {
  it('a plain word is a case-insensitive substring of the whole path', () => {
    assert.deepEqual(found('beach'), [
      'photos/2024/Beach.JPG',
      'photos/2024/beach-2.jpg',
      'backup/beach.jpg.old',
    ]);
    assert.deepEqual(found('PHOTOS/2023'), ['photos/2023/IMG_0001.jpg']);
    assert.deepEqual(found('taxes 2023'), ['docs/taxes 2023.pdf']);
    assert.deepEqual(found('[2023]'), [], 'brackets are plain characters');
  });

  it('a glob without a slash matches the file name alone', () => {
    assert.deepEqual(found('*.jpg'), [
      'photos/2024/Beach.JPG',
      'photos/2024/beach-2.jpg',
      'photos/2023/IMG_0001.jpg',
    ]);
    assert.deepEqual(found('img_000?.jpg'), ['photos/2023/IMG_0001.jpg']);
    assert.deepEqual(found('beach*'), [
      'photos/2024/Beach.JPG',
      'photos/2024/beach-2.jpg',
      'backup/beach.jpg.old',
    ]);
    assert.deepEqual(found('notes.txt'.replace('.', '?')), ['notes.txt']);
    assert.deepEqual(found('photos*'), [], 'a folder name is not a file name');
  });

  it('a glob with a slash matches the whole path, * crossing folders', () => {
    assert.deepEqual(found('photos/*.jpg'), [
      'photos/2024/Beach.JPG',
      'photos/2024/beach-2.jpg',
      'photos/2023/IMG_0001.jpg',
    ]);
    assert.deepEqual(found('*/2023/*'), ['photos/2023/IMG_0001.jpg']);
    assert.deepEqual(found('photos/202?/b*'), ['photos/2024/Beach.JPG', 'photos/2024/beach-2.jpg']);
  });

  it('compares accented names whatever their Unicode form', () => {
    const decomposed = 'cafe\u0301';
    assert.deepEqual(found(decomposed), ['music/Café Tacvba/Ojalá.mp3']);
    assert.deepEqual(found('OJALÁ*'), ['music/Café Tacvba/Ojalá.mp3']);
    assert.ok(compilePattern('?.txt')('x/\u{1F600}.txt'), '? takes one emoji (a surrogate pair)');
    assert.ok(!compilePattern('??.txt')('x/\u{1F600}.txt'));
  });

  it('refuses empty, over-long and control-character patterns', () => {
    for (const bad of ['', '   ', 'x'.repeat(1025), 'a\u001bb', 'a\u202eb']) {
      assert.throws(() => compilePattern(bad), isRcppError, JSON.stringify(bad.slice(0, 20)));
    }
  });

  it('a pattern made to backtrack stays fast (no regular expression)', () => {
    const pattern = '*a'.repeat(40) + 'b';
    const text = 'a'.repeat(4000);
    const started = process.cpuUsage();
    assert.equal(globMatch(pattern, text), false);
    const cpuMs = (process.cpuUsage(started).user + process.cpuUsage(started).system) / 1000;
    // An exponential matcher does not finish at all; this bound only separates that from n x m.
    assert.ok(cpuMs < 5000, `${cpuMs} ms`);
  });

  it('matches the edge cases of the wildcard algorithm', () => {
    const table: [string, string, boolean][] = [
      ['*', '', true],
      ['', '', true],
      ['?', '', false],
      ['a*', 'a', true],
      ['*a', 'ba', true],
      ['*a', 'ab', false],
      ['a*b*c', 'axxbyyc', true],
      ['a*b*c', 'axxbyy', false],
      ['**x', 'abx', true],
      ['a?c', 'abc', true],
      ['a?c', 'ac', false],
    ];
    for (const [pattern, text, expected] of table) {
      assert.equal(globMatch(pattern, text), expected, `${pattern} ~ ${text}`);
    }
  });
});
