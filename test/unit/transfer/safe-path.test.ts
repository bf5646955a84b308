import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { execFileSync } from 'node:child_process';
import { isRcppError } from '../../../src/errors.js';
import {
  checkRelativePath,
  foldName,
  isInternalName,
  MAX_RECEIVE_NAME_BYTES,
  normalizeUserPath,
  partialPath,
  prepareCreate,
  SafeRoot,
} from '../../../src/transfer/safe-path.js';

function refusal(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(isRcppError(err));
    return err.code;
  }
  return 'OK';
}

async function asyncCode(fn: () => Promise<unknown>): Promise<string> {
  try {
    await fn();
  } catch (err) {
    assert.ok(isRcppError(err), String(err));
    return err.code;
  }
  return 'OK';
}

describe('checkRelativePath: hostile names are refused', () => {
  const hostile: [string, string][] = [
    ['classic traversal', '../etc/passwd'],
    ['traversal in the middle', 'a/../../b'],
    ['traversal that stays inside on paper', 'a/../b'],
    ['trailing ..', 'photos/..'],
    ['absolute path', '/etc/passwd'],
    ['double-slash absolute', '//server/share'],
    ['empty', ''],
    ['a lone dot', '.'],
    ['leading ./', './a'],
    ['./ alone', './'],
    ['dot component in the middle', 'a/./b'],
    ['double slash', 'a//b'],
    ['trailing slash', 'photos/'],
    ['NUL byte', 'a\u0000b'],
    ['NUL to cut an extension', 'photo.jpg\u0000.txt'],
    ['backslash traversal (Windows style)', '..\\..\\windows'],
    ['backslash in a name', 'a\\b'],
    ['newline (log and terminal injection)', 'a\nb'],
    ['terminal escape', 'a\u001b[2Jb'],
    ['DEL character', 'a\u007fb'],
    ['C1 control (CSI)', 'a\u009bb'],
    ['right-to-left override disguising an extension', 'invoice\u202egnp.exe'],
    ['first strong isolate', 'a\u2068b'],
    ['lone high surrogate', 'a\ud800b'],
    ['lone low surrogate', 'a\udc00'],
    ['name over 255 bytes', 'a'.repeat(256)],
    ['name over 255 bytes in 2-byte UTF-8', 'é'.repeat(128)],
    ['path over 4096 bytes', Array(20).fill('a'.repeat(250)).join('/')],
    ['a partial file', 'photo.jpg.rcpp2p-partial'],
    ['a lock file', 'dir/photo.jpg.rcpp2p-lock'],
    ['a folder named like a partial', 'x.rcpp2p-partial/y'],
    ['division slash, looks like docs/passwd', 'docs\u2215passwd'],
    ['fullwidth solidus', 'docs\uff0fpasswd'],
    ['fraction slash', 'a\u2044b'],
    ['big solidus', 'a\u29f8b'],
    ['fullwidth reverse solidus', 'a\uff3cb'],
    ['zero-width space: two names that look the same', 'report\u200b.pdf'],
    ['zero-width joiner', 'a\u200db'],
    ['byte order mark at the start', '\ufeffnotes.txt'],
    ['word joiner', 'a\u2060b'],
    ['soft hyphen (invisible)', 'pay\u00adroll.xls'],
    ['line separator U+2028', 'a\u2028b'],
    ['paragraph separator U+2029', 'a\u2029b'],
    ['Hangul filler (renders blank)', '\u3164'],
    ['a tag character (format, outside the BMP)', 'a\u{e0041}b'],
    ['129 folders deep', Array(129).fill('d').join('/')],
  ];
  for (const [name, path] of hostile) {
    it(`${name}: ${JSON.stringify(path).slice(0, 60)}`, () => {
      assert.equal(
        refusal(() => checkRelativePath(path)),
        'PATH_REFUSED',
      );
    });
  }

  it('refuses what is not a string', () => {
    assert.equal(
      refusal(() => checkRelativePath(42)),
      'PATH_REFUSED',
    );
  });

  it('names the problem in the sentence and never echoes control characters', () => {
    assert.throws(
      () => checkRelativePath('a\u001b[31m/../b'),
      (err) => {
        assert.ok(isRcppError(err));
        assert.ok(!err.message.includes('\u001b'));
        assert.match(err.message, /control character/);
        assert.ok(err.hint.length > 0);
        return true;
      },
    );
  });

  it('says which kind of lookalike or invisible character it met, escaped', () => {
    assert.throws(() => checkRelativePath('docs\u2215passwd'), /looks like a slash/);
    assert.throws(
      () => checkRelativePath('a\u200bb'),
      (err: Error) => /invisible/.test(err.message) && err.message.includes('\\u200b'),
    );
    assert.throws(() => checkRelativePath(Array(129).fill('d').join('/')), /128 folders deep/);
  });
});

describe('checkRelativePath: ordinary names pass', () => {
  const fine = [
    'photo.jpg',
    'photos/2024/IMG_0001.JPG',
    'Fotos/Größe.txt',
    '日本語/ファイル.txt',
    'emoji 😀.png',
    '.hidden',
    '..dots-in-name',
    'name with spaces',
    'a'.repeat(255),
    Array(16).fill('b'.repeat(255)).join('/'),
    Array(128).fill('d').join('/'),
    'fraction ½ and a slash-free name',
  ];
  for (const path of fine) {
    it(JSON.stringify(path).slice(0, 60), () => {
      assert.deepEqual(checkRelativePath(path), path.split('/'));
    });
  }

  it('lets the root itself through only when asked', () => {
    assert.deepEqual(checkRelativePath('', { allowRoot: true }), []);
    assert.deepEqual(checkRelativePath('.', { allowRoot: true }), []);
  });

  it('trims what users type around paths', () => {
    assert.equal(normalizeUserPath('photos/'), 'photos');
    assert.equal(normalizeUserPath('./photos//'), 'photos');
    assert.equal(normalizeUserPath('./'), '');
    assert.equal(normalizeUserPath('/'), '/');
  });
});

describe('names of one file on a case-insensitive or normalizing disk', () => {
  it('fold to one key: case, NFC and NFD', () => {
    assert.equal(foldName('Photo.JPG'), foldName('photo.jpg'));
    assert.equal(foldName('Cafe\u0301.txt'), foldName('Caf\u00e9.txt'));
    assert.notEqual(foldName('a.txt'), foldName('b.txt'));
  });
});

describe('partial file names', () => {
  it('carry a tag of the peer that sends, and count as internal names', () => {
    const a = partialPath('/x/movie.bin', 'SHA256:aaaa');
    assert.match(a, /^\/x\/movie\.bin\.[0-9a-f]{8}\.rcpp2p-partial$/);
    assert.equal(partialPath('/x/movie.bin', 'SHA256:aaaa'), a, 'the same peer, the same partial');
    assert.notEqual(partialPath('/x/movie.bin', 'SHA256:bbbb'), a);
    assert.ok(isInternalName(a.slice(3)));
  });

  it('leave room for the tag and suffix in a 255-byte name', () => {
    const longest = 'n'.repeat(MAX_RECEIVE_NAME_BYTES);
    assert.equal(partialPath(longest, 'p').length, 255);
  });
});

describe('SafeRoot on a real file system', () => {
  let base: string;
  let root: string;
  let outside: string;
  let sr: SafeRoot;

  before(async () => {
    base = await mkdtemp(join(tmpdir(), 'rcpp2p-safepath-'));
    root = join(base, 'root');
    outside = join(base, 'outside');
    await mkdir(join(root, 'inner'), { recursive: true });
    await mkdir(outside);
    await writeFile(join(outside, 'secret.txt'), 'secret');
    await writeFile(join(root, 'inner', 'ok.txt'), 'ok');
    await symlink(join(outside, 'secret.txt'), join(root, 'escape-file'));
    await symlink(outside, join(root, 'escape-dir'));
    await symlink('inner/ok.txt', join(root, 'inside-link'));
    await symlink('inner', join(root, 'inside-dir-link'));
    await symlink(join(base, 'missing'), join(root, 'dangling'));
    execFileSync('mkfifo', [join(root, 'fifo')]);
    sr = await SafeRoot.open(root);
  });
  after(async () => {
    await rm(base, { recursive: true, force: true });
  });

  it('resolves files and folders inside the root, also through links that stay inside', async () => {
    assert.equal((await sr.resolveExisting('inner/ok.txt')).kind, 'file');
    assert.equal((await sr.resolveExisting('inside-link')).kind, 'file');
    assert.equal((await sr.resolveExisting('inside-dir-link')).kind, 'dir');
    assert.equal((await sr.resolveExisting('', { allowRoot: true })).kind, 'dir');
  });

  it('refuses links that lead outside, to a file or through a folder', async () => {
    assert.equal(await asyncCode(() => sr.resolveExisting('escape-file')), 'PATH_REFUSED');
    assert.equal(
      await asyncCode(() => sr.resolveExisting('escape-dir/secret.txt')),
      'PATH_REFUSED',
    );
    assert.equal(await asyncCode(() => sr.resolveExisting('escape-dir')), 'PATH_REFUSED');
  });

  it('reports missing files and special files by their own codes', async () => {
    assert.equal(await asyncCode(() => sr.resolveExisting('nope.txt')), 'FILE_NOT_FOUND');
    assert.equal(await asyncCode(() => sr.resolveExisting('dangling')), 'FILE_NOT_FOUND');
    assert.equal(await asyncCode(() => sr.resolveExisting('fifo')), 'NOT_A_FILE');
  });

  it('creates parents inside the root but never through a link that leads outside', async () => {
    sr.allowNewFolders(2);
    const ok = await prepareCreate(sr, 'new/deep/file.txt', false);
    assert.equal(ok.target, join(root, 'new', 'deep', 'file.txt'));
    assert.ok((await stat(join(root, 'new', 'deep'))).isDirectory());
    assert.equal(
      await asyncCode(() => prepareCreate(sr, 'escape-dir/planted.txt', false)),
      'PATH_REFUSED',
    );
    assert.deepEqual(await readdir(outside), ['secret.txt']);
  });

  it('never writes through a link at the final component, even with force', async () => {
    assert.equal(await asyncCode(() => prepareCreate(sr, 'escape-file', true)), 'PATH_REFUSED');
    assert.equal(await asyncCode(() => prepareCreate(sr, 'inside-link', true)), 'PATH_REFUSED');
  });

  it('refuses to replace a folder, a special file, or an existing file without force', async () => {
    assert.equal(await asyncCode(() => prepareCreate(sr, 'inner', true)), 'IS_A_DIRECTORY');
    assert.equal(await asyncCode(() => prepareCreate(sr, 'fifo', true)), 'NOT_A_FILE');
    assert.equal(await asyncCode(() => prepareCreate(sr, 'inner/ok.txt', false)), 'FILE_EXISTS');
    assert.equal((await prepareCreate(sr, 'inner/ok.txt', true)).replaces, true);
    assert.equal(
      await asyncCode(() => prepareCreate(sr, 'inner/ok.txt/below', false)),
      'NOT_A_FILE',
    );
  });

  it('creates no more folders than it was allowed; existing folders cost nothing', async () => {
    const r = await SafeRoot.open(root);
    r.allowNewFolders(2);
    await r.ensureDir(['inner'], 'inner');
    await r.ensureDir(['budget', 'one'], 'budget/one');
    assert.equal(
      await asyncCode(() => r.ensureDir(['budget', 'one', 'two'], 'budget/one/two')),
      'PATH_REFUSED',
    );
    assert.deepEqual(await readdir(join(root, 'budget')), ['one']);
    assert.deepEqual(await readdir(join(root, 'budget', 'one')), []);
  });

  it('refuses a name with no room for the partial suffix', async () => {
    assert.equal(await asyncCode(() => prepareCreate(sr, 'x'.repeat(250), false)), 'PATH_REFUSED');
  });
});
