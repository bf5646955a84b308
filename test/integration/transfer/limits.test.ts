// What one command may cost the file server, and what a client can make it keep: folder entries and
// their depth, repeated roots, manifest bytes, sessions per client, disk space, partial files, and
// the sentences it sends back. A raw client speaks the protocol by hand to go past what FileClient
// would send.
import assert from 'node:assert/strict';
import { statfs } from 'node:fs/promises';
import { mkdir, readdir, rm, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CommandBudget } from '../../../src/protocol/budget.js';
import { MAX_DIRS_PER_COMMAND } from '../../../src/protocol/limits.js';
import type { Message } from '../../../src/protocol/messages.js';
import { CONTROL_CHARS } from '../../../src/protocol/text.js';
import { partialPath } from '../../../src/transfer/safe-path.js';
import {
  connect,
  lastError,
  openClient,
  randomFile,
  rawClient,
  startServer,
  tempDir,
  until,
  type RawPeer,
  type RunningServer,
} from './helpers.js';

const MiB = 1024 * 1024;

/** Every folder under `dir`, recursively. */
async function countFolders(dir: string): Promise<number> {
  let n = 0;
  for (const ent of await readdir(dir, { withFileTypes: true, recursive: true }))
    if (ent.isDirectory()) n++;
  return n;
}

/** Reads a put's or get's accept/manifest parts until the last one. */
async function readParts<T extends 'accept' | 'manifest'>(
  peer: RawPeer,
  t: T,
): Promise<Extract<Message, { t: T }>[]> {
  const parts: Extract<Message, { t: T }>[] = [];
  for (;;) {
    const m = await peer.next(60_000);
    assert.equal(m.t, t, JSON.stringify(m).slice(0, 300));
    if (m.t !== 'accept' && m.t !== 'manifest') throw new Error('unreachable');
    parts.push(m as Extract<Message, { t: T }>);
    if (m.last) return parts;
  }
}

/** Ends an empty exchange: the receiver's done, then ours. */
async function finishPut(peer: RawPeer): Promise<void> {
  peer.send({ t: 'done' });
  assert.equal((await peer.next(60_000)).t, 'done');
  peer.send({ t: 'bye' });
  peer.close();
}

describe('limits of one put', () => {
  let base: { path: string; cleanup: () => Promise<void> };
  let srv: RunningServer;
  let work: string;

  before(async () => {
    base = await tempDir('limits-put');
    work = join(base.path, 'work');
    await mkdir(work);
    srv = await startServer({ workDir: work });
  });
  after(async () => {
    await srv.close();
    await base.cleanup();
  });

  it('a path deeper than 128 folders is refused, and nothing is created for it', async () => {
    const deep = Array<string>(129).fill('a').join('/');
    const peer = await rawClient(srv.port);
    peer.send({
      t: 'put',
      files: [{ i: 0, path: `${deep}/f.txt`, size: 1, mtimeMs: 0 }],
      dirs: [{ path: deep, mtimeMs: 0 }],
      force: false,
      last: true,
    });
    const [acc] = await readParts(peer, 'accept');
    assert.deepEqual(acc!.files, []);
    assert.equal(acc!.refused[0]?.code, 'PATH_REFUSED');
    assert.match(acc!.refused[0].message, /more than 128 folders deep/);
    await finishPut(peer);
    assert.deepEqual(await readdir(work), []);
  });

  it('folder entries create one folder each: 100 entries 128 deep make at most 100 + 128 folders', async () => {
    const peer = await rawClient(srv.port);
    const dirs = Array.from({ length: 100 }, (_, k) => ({
      path: ['many', `b${k}`, ...Array<string>(126).fill('a')].join('/'),
      mtimeMs: 0,
    }));
    peer.send({ t: 'put', files: [], dirs, force: false, last: true });
    await readParts(peer, 'accept');
    await finishPut(peer);
    // Before the folder budget, each entry made its 128 folders: 12,800 in all.
    assert.equal(await countFolders(join(work)), 100 + 128);
    await rm(join(work, 'many'), { recursive: true });
  });

  it('folder entries count in the command budget: one past the limit ends the put with PROTOCOL_ERROR', async () => {
    const peer = await rawClient(srv.port);
    const part = Array.from({ length: 16_384 }, () => ({ path: 'same', mtimeMs: 0 }));
    const parts = Math.ceil((MAX_DIRS_PER_COMMAND + 1) / part.length);
    for (let k = 0; k < parts; k++)
      peer.send({ t: 'put', files: [], dirs: part, force: false, last: false });
    const replies = await peer.rest(60_000);
    assert.deepEqual(
      replies.slice(0, parts - 1).map((m) => m.t),
      Array<string>(parts - 1).fill('accept'),
    );
    const err = lastError(replies, 'PROTOCOL_ERROR');
    assert.match(err.message, new RegExp(`${MAX_DIRS_PER_COMMAND} folders`));
    await rm(join(work, 'same'), { recursive: true, force: true });
  });

  it('a path too long for the disk is PATH_REFUSED, and no sentence names the server’s folder', async () => {
    // 15 folders of 255 bytes and a 230-byte name: a legal 4,070-byte path that, with the working
    // directory in front, is longer than the system allows (ENAMETOOLONG).
    const path = [...Array<string>(15).fill('n'.repeat(255)), 'f'.repeat(230)].join('/');
    const peer = await rawClient(srv.port);
    peer.send({
      t: 'put',
      files: [{ i: 0, path, size: 1, mtimeMs: 0 }],
      dirs: [],
      force: false,
      last: true,
    });
    const [acc] = await readParts(peer, 'accept');
    const refusal = acc!.refused[0];
    assert.equal(refusal?.code, 'PATH_REFUSED', JSON.stringify(refusal).slice(0, 300));
    assert.ok(!refusal.message.includes(base.path), 'the sentence names the server’s folder');
    assert.ok(!refusal.message.includes('ENAMETOOLONG'));
    await finishPut(peer);
    await rm(join(work, 'n'.repeat(255)), { recursive: true, force: true });
  });

  it('two names one disk could store as one file are refused in one put', async () => {
    const peer = await rawClient(srv.port);
    const names = ['Report.txt', 'report.txt', 'caf\u00e9.txt', 'cafe\u0301.txt'];
    peer.send({
      t: 'put',
      files: names.map((path, i) => ({ i, path, size: 1, mtimeMs: 0 })),
      dirs: [],
      force: false,
      last: true,
    });
    const [acc] = await readParts(peer, 'accept');
    assert.deepEqual(
      acc!.files.map((f) => f.i),
      [0, 2],
    );
    assert.deepEqual(
      acc!.refused.map((r) => [r.i, r.code]),
      [
        [1, 'PATH_REFUSED'],
        [3, 'PATH_REFUSED'],
      ],
    );
    peer.send({ t: 'done' });
    assert.equal((await peer.next()).t, 'done');
    peer.close();
  });
});

describe('limits of one get', () => {
  let base: { path: string; cleanup: () => Promise<void> };
  let srv: RunningServer;
  let work: string;

  before(async () => {
    base = await tempDir('limits-get');
    work = join(base.path, 'work');
    for (let k = 0; k < 20; k++) await mkdir(join(work, 'shared', `f${k}`), { recursive: true });
    await writeFile(join(work, 'shared', 'f3', 'x.txt'), 'x');
    await symlink('shared', join(work, 'alias'));
    srv = await startServer({ workDir: work });
  });
  after(async () => {
    await srv.close();
    await base.cleanup();
  });

  it('a folder named 1,024 times is walked once; the repeats are refused', async () => {
    const peer = await rawClient(srv.port);
    peer.send({ t: 'get', paths: Array<string>(1024).fill('shared') });
    const parts = await readParts(peer, 'manifest');
    const dirs = parts.flatMap((p) => p.dirs);
    const problems = parts.flatMap((p) => p.problems);
    assert.equal(dirs.length, 21, 'the folder and its 20 sub-folders, once');
    assert.equal(parts.flatMap((p) => p.files).length, 1);
    assert.equal(problems.length, 1023);
    for (const p of problems) {
      assert.equal(p.code, 'PATH_REFUSED');
      assert.match(p.message, /already part of this get/);
    }
    peer.send({
      t: 'accept',
      files: [],
      refused: [{ i: 0, code: 'BUSY', message: 'no' }],
      last: true,
    });
    assert.equal((await peer.next()).t, 'done');
    peer.send({ t: 'done' });
    peer.close();
  });

  it('a path inside another requested folder, or the same folder through a link, is refused', async () => {
    const peer = await rawClient(srv.port);
    peer.send({ t: 'get', paths: ['shared/f3', 'shared', 'alias', 'shared/f3/x.txt'] });
    const [m] = await readParts(peer, 'manifest');
    assert.deepEqual(
      m!.problems.map((p) => [p.root, p.code]),
      [
        [0, 'PATH_REFUSED'],
        [2, 'PATH_REFUSED'],
        [3, 'PATH_REFUSED'],
      ],
    );
    assert.ok(m!.dirs.every((d) => d.root === 1));
    peer.send({
      t: 'accept',
      files: [],
      refused: [{ i: 0, code: 'BUSY', message: 'no' }],
      last: true,
    });
    assert.equal((await peer.next()).t, 'done');
    peer.send({ t: 'done' });
    peer.close();
  });

  it('the manifest of a huge folder is cut to the budget the client enforces, with a sentence', async () => {
    // Files with 3,500-byte paths: about 2,600 of them fill the 12 MiB manifest budget (less the
    // room a server keeps for a problem per requested path).
    const deep = join(work, 'huge', ...Array<string>(13).fill('d'.repeat(250)));
    await mkdir(deep, { recursive: true });
    const n = 4_000;
    for (let k = 0; k < n; k++)
      await writeFile(join(deep, `${String(k).padStart(6, '0')}${'f'.repeat(224)}`), '');
    const peer = await rawClient(srv.port);
    peer.send({ t: 'get', paths: ['huge'] });
    const parts = await readParts(peer, 'manifest');
    // What FileClient does with it: count every entry against the command budget.
    const budget = CommandBudget.forReading();
    for (const p of parts) {
      for (const f of p.files) assert.ok(budget.addFile(f.path), 'a file past the budget');
      for (const d of p.dirs) assert.ok(budget.addDir(d.path), 'a folder past the budget');
      for (const pr of p.problems) assert.ok(budget.addProblem(pr.path, pr.message));
    }
    const files = parts.flatMap((p) => p.files);
    assert.ok(files.length > 2_300 && files.length < n, `${files.length} files`);
    const cut = parts.flatMap((p) => p.problems);
    assert.equal(cut.length, 1);
    assert.equal(cut[0]?.code, 'USAGE');
    assert.match(cut[0].message, /more than one command moves/);
    peer.close();
    await rm(join(work, 'huge'), { recursive: true });
  });
});

describe('sessions, sentences and logs', () => {
  let base: { path: string; cleanup: () => Promise<void> };

  before(async () => {
    base = await tempDir('limits-sessions');
  });
  after(async () => {
    await base.cleanup();
  });

  it('one client cannot take every session: BUSY beyond its share, others still served', async () => {
    const work = join(base.path, 'per-client');
    await mkdir(work);
    await writeFile(join(work, 'a.txt'), 'a');
    const srv = await startServer({ workDir: work, maxSessions: 8, clientName: 'greedy' });
    const other = await startServer({ workDir: work, maxSessions: 8 });
    try {
      // Paths that lost a client's race reach the server too, and never say hello: they do not
      // count against the client's share.
      const losers = await Promise.all([connect(srv.port), connect(srv.port)]);
      await until(() => srv.server.activeSessions === 2, 5000, 'two silent connections');
      const held = await Promise.all([openClient(srv.port), openClient(srv.port)]);
      for (const l of losers) l.destroy();
      await until(() => srv.server.activeSessions === 2, 5000, 'two sessions');
      await assert.rejects(openClient(srv.port), (err: Error & { code?: string }) => {
        assert.equal(err.code, 'BUSY');
        assert.match(err.message, /connections of greedy, the limit for one client/);
        return true;
      });
      const refused = srv.events.find((e) => e.type === 'server:refused');
      assert.ok(refused?.type === 'server:refused' && refused.client === 'greedy');
      // Another client of a server with the same limits is served.
      const c = await openClient(other.port);
      assert.equal((await c.list('')).length, 1);
      await c.close();
      await Promise.all(held.map((h) => h.close()));
      await until(() => srv.server.activeSessions === 0, 5000, 'sessions to end');
      const again = await openClient(srv.port);
      await again.close();
    } finally {
      await srv.close();
      await other.close();
    }
  });

  it('a request reaches the server log only once checked: escaped, and a long list cut', async () => {
    const work = join(base.path, 'log');
    await mkdir(work);
    const srv = await startServer({ workDir: work });
    try {
      const evil = 'x\u001b]0;owned\u0007\u001b[2J\r[12:00:00] Client alice connected';
      const peer = await rawClient(srv.port);
      peer.send({ t: 'list', path: evil, recursive: false });
      assert.equal((await peer.next()).t, 'error');
      peer.send({ t: 'get', paths: [...Array.from({ length: 50 }, (_, k) => `f${k}`), evil] });
      await readParts(peer, 'manifest');
      peer.send({ t: 'accept', files: [], refused: [], last: true });
      await peer.next();
      peer.send({ t: 'done' });
      peer.close();
      const requests = srv.events.filter((e) => e.type === 'server:request');
      assert.equal(requests.length, 2);
      for (const r of requests) {
        assert.ok(r.type === 'server:request');
        assert.ok(!CONTROL_CHARS.test(r.detail), JSON.stringify(r.detail));
      }
      assert.deepEqual(
        requests.map((r) => r.type === 'server:request' && r.detail),
        ['1 refused path', '"f0", "f1", "f2" and 47 more (1 refused)'],
      );
    } finally {
      await srv.close();
    }
  });

  it('the server never names its real folder in a sentence', async () => {
    const work = join(base.path, 'gone');
    await mkdir(work);
    const srv = await startServer({ workDir: work });
    try {
      await rm(work, { recursive: true });
      const peer = await rawClient(srv.port);
      peer.send({ t: 'list', path: '', recursive: false });
      const m = await peer.next();
      assert.ok(m.t === 'error' && m.code === 'FILE_NOT_FOUND', JSON.stringify(m));
      assert.equal(m.message, 'The shared folder does not exist.');
      peer.close();
    } finally {
      await srv.close();
    }
  });
});

describe('disk space and partial files', () => {
  let base: { path: string; cleanup: () => Promise<void> };

  before(async () => {
    base = await tempDir('limits-disk');
  });
  after(async () => {
    await base.cleanup();
  });

  it('free space is promised per command and across commands: files that cannot all fit are refused', async () => {
    const work = join(base.path, 'space');
    await mkdir(work);
    const srv = await startServer({ workDir: work });
    try {
      const s = await statfs(work);
      const big = Math.floor(s.bavail * s.bsize * 0.6);
      const offer = (peer: RawPeer, names: string[]): void =>
        peer.send({
          t: 'put',
          files: names.map((path, i) => ({ i, path, size: big, mtimeMs: 0 })),
          dirs: [],
          force: false,
          last: true,
        });
      // One command: the second file does not fit beside the first.
      const a = await rawClient(srv.port);
      offer(a, ['a.bin', 'b.bin']);
      const [accA] = await readParts(a, 'accept');
      assert.deepEqual(accA!.files, [{ i: 0 }]);
      assert.equal(accA!.refused[0]?.code, 'DISK_FULL');
      assert.match(accA!.refused[0].message, /promised to other files/);
      // Another command at the same time: the space is still promised to a.bin.
      const b = await rawClient(srv.port, 'other');
      offer(b, ['c.bin']);
      const [accB] = await readParts(b, 'accept');
      assert.equal(accB!.refused[0]?.code, 'DISK_FULL');
      b.send({ t: 'done' });
      await b.next();
      b.close();
      // a.bin never comes: once its command ends, its space is free again.
      a.send({ t: 'done' });
      assert.equal((await a.next()).t, 'done');
      a.close();
      const c = await rawClient(srv.port, 'third');
      offer(c, ['d.bin']);
      const [accC] = await readParts(c, 'accept');
      assert.deepEqual(accC!.files, [{ i: 0 }]);
      c.send({ t: 'done' });
      await c.next();
      c.close();
    } finally {
      await srv.close();
    }
  });

  it('partials untouched for 7 days are removed when the server starts; others stay, and none is ever listed', async () => {
    const work = join(base.path, 'partials');
    await mkdir(join(work, 'sub'), { recursive: true });
    const old = partialPath(join(work, 'sub', 'old.bin'), 'name:x');
    const fresh = partialPath(join(work, 'fresh.bin'), 'name:x');
    const locked = partialPath(join(work, 'locked.bin'), 'name:x');
    for (const p of [old, fresh, locked]) await writeFile(p, 'partial bytes');
    await writeFile(join(work, 'locked.bin.rcpp2p-lock'), '1\n');
    const eightDaysAgo = (Date.now() - 8 * 86_400_000) / 1000;
    await utimes(old, eightDaysAgo, eightDaysAgo);
    await utimes(locked, eightDaysAgo, eightDaysAgo);
    const srv = await startServer({ workDir: work });
    try {
      await until(
        () => srv.events.some((e) => e.type === 'note' && /Removed 1 partial file/.test(e.text)),
        5000,
        'the sweep',
      );
      await assert.rejects(stat(old));
      await stat(fresh);
      await stat(locked);
      const client = await openClient(srv.port);
      const entries = await client.list('', { recursive: true });
      await client.close();
      assert.deepEqual(
        entries.map((e) => e.path),
        ['sub'],
      );
    } finally {
      await srv.close();
    }
  });

  it('a partial left by one client is not resumed by another: it starts from zero beside it', async () => {
    const work = join(base.path, 'bound');
    const local = join(base.path, 'bound-local');
    await mkdir(work);
    const src = join(local, 'data.bin');
    await randomFile(src, 3 * MiB);
    // alice leaves a partial of the first 2 MiB, block-aligned, by hand.
    const { readFile } = await import('node:fs/promises');
    const bytes = await readFile(src);
    await writeFile(partialPath(join(work, 'data.bin'), 'name:alice'), bytes.subarray(0, 2 * MiB));
    const bob = await startServer({ workDir: work, clientName: 'bob' });
    try {
      const client = await openClient(bob.port);
      const [r] = await client.put([src], '');
      await client.close();
      assert.ok(r?.ok, JSON.stringify(r));
      assert.equal(r.resumedBytes, 0, 'bob got no block hashes of alice’s partial');
    } finally {
      await bob.close();
    }
    const alice = await startServer({ workDir: work, clientName: 'alice' });
    try {
      const client = await openClient(alice.port);
      const [r] = await client.put([src], '', { force: true });
      await client.close();
      assert.ok(r?.ok, JSON.stringify(r));
      assert.equal(r.resumedBytes, 2 * MiB, 'alice resumes her own partial');
    } finally {
      await alice.close();
    }
  });
});
