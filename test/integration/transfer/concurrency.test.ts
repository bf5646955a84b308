// One server, many clients at once; session limits and the one-writer-per-file lock.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { link, mkdir, readdir, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { acquireReceiveLock } from '../../../src/transfer/lock.js';
import {
  openClient,
  randomFile,
  sha256File,
  startServer,
  tempDir,
  until,
  type RunningServer,
} from './helpers.js';

const MiB = 1024 * 1024;

describe('concurrency', () => {
  let work: { path: string; cleanup: () => Promise<void> };
  let local: { path: string; cleanup: () => Promise<void> };
  let srv: RunningServer;

  before(async () => {
    work = await tempDir('conc-work');
    local = await tempDir('conc-local');
    srv = await startServer({ workDir: work.path, maxSessions: 9 });
  });
  after(async () => {
    await srv.close();
    await work.cleanup();
    await local.cleanup();
  });

  it('8 clients at once, mixed get and put, all verified', async () => {
    const shas = new Map<string, string>();
    for (let n = 0; n < 8; n++) {
      if (n % 2 === 0)
        shas.set(
          `server-${n}.bin`,
          await randomFile(join(work.path, `server-${n}.bin`), 3 * MiB + n),
        );
      else
        shas.set(
          `client-${n}.bin`,
          await randomFile(join(local.path, `src-${n}`, `client-${n}.bin`), 3 * MiB + n),
        );
    }
    await mkdir(join(work.path, 'uploads'));
    const jobs = Array.from({ length: 8 }, async (_, n) => {
      const client = await openClient(srv.port, { clientName: `client${n}` });
      try {
        if (n % 2 === 0) {
          const into = join(local.path, `dest-${n}`);
          await mkdir(into);
          const [r] = await client.get([`server-${n}.bin`], into);
          assert.ok(r?.ok, JSON.stringify(r));
          assert.equal(
            await sha256File(join(into, `server-${n}.bin`)),
            shas.get(`server-${n}.bin`),
          );
        } else {
          const [r] = await client.put(
            [join(local.path, `src-${n}`, `client-${n}.bin`)],
            'uploads',
          );
          assert.ok(r?.ok, JSON.stringify(r));
          assert.equal(
            await sha256File(join(work.path, 'uploads', `client-${n}.bin`)),
            shas.get(`client-${n}.bin`),
          );
        }
      } finally {
        await client.close();
      }
    });
    await Promise.all(jobs);
    assert.equal((await readdir(join(work.path, 'uploads'))).length, 4);
  });

  it('refuses connections beyond maxSessions with BUSY and a sentence, and serves again after', async () => {
    await until(() => srv.server.activeSessions === 0, 5000, 'idle server');
    const held = await Promise.all(Array.from({ length: 9 }, () => openClient(srv.port)));
    await until(() => srv.server.activeSessions === 9, 5000, 'nine sessions');
    await assert.rejects(openClient(srv.port), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'BUSY');
      assert.match(err.message, /limit/);
      return true;
    });
    await Promise.all(held.map((c) => c.close()));
    await until(() => srv.server.activeSessions === 0, 5000, 'sessions to end');
    const again = await openClient(srv.port);
    assert.ok((await again.list('')).length > 0);
    await again.close();
  });

  it('refuses a second writer of the same file with BUSY (in-process lock and lock file)', async () => {
    await mkdir(join(local.path, 'lk'));
    await writeFile(join(local.path, 'lk', 'locked.txt'), 'x');
    await writeFile(join(local.path, 'lk', 'free.txt'), 'y');
    const target = join(work.path, 'locked.txt');
    const lock = await acquireReceiveLock(target, 'locked.txt');
    try {
      assert.ok((await readdir(work.path)).includes('locked.txt.rcpp2p-lock'));
      await assert.rejects(
        acquireReceiveLock(target, 'locked.txt'),
        (err: Error & { code?: string }) => err.code === 'BUSY',
      );
      const client = await openClient(srv.port);
      const [busy, free] = await client.put(
        [join(local.path, 'lk', 'locked.txt'), join(local.path, 'lk', 'free.txt')],
        '',
      );
      await client.close();
      assert.ok(busy && !busy.ok && busy.error.code === 'BUSY', JSON.stringify(busy));
      assert.ok(free?.ok, 'another file of the same command is not affected');
    } finally {
      await lock.release();
    }
    assert.ok(!(await readdir(work.path)).includes('locked.txt.rcpp2p-lock'));
  });

  it('takes over a stale lock file whose process is gone: the lock is then ours, and released', async () => {
    const target = join(work.path, 'stale.txt');
    await writeFile(`${target}.rcpp2p-lock`, '999999999\n');
    const lock = await acquireReceiveLock(target, 'stale.txt');
    assert.equal(await readFile(`${target}.rcpp2p-lock`, 'utf8'), `${process.pid}\n`);
    await lock.release();
    assert.ok(!(await readdir(work.path)).includes('stale.txt.rcpp2p-lock'));
  });

  it('takes over a leftover lock file with our own PID that we do not hold (an earlier process)', async () => {
    const target = join(work.path, 'mine-earlier.txt');
    await writeFile(`${target}.rcpp2p-lock`, `${process.pid}\n`);
    const lock = await acquireReceiveLock(target, 'mine-earlier.txt');
    await lock.release();
    assert.ok(!(await readdir(work.path)).includes('mine-earlier.txt.rcpp2p-lock'));
  });

  it('one file under several names has one lock: ./, a linked folder, case and Unicode forms', async () => {
    const dir = join(work.path, 'alias');
    await mkdir(dir);
    await symlink(dir, join(work.path, 'alias-link'));
    const lock = await acquireReceiveLock(join(dir, 'Caf\u00e9.txt'), 'Café.txt');
    try {
      for (const other of [
        `${dir}/./Caf\u00e9.txt`,
        join(work.path, 'alias-link', 'Caf\u00e9.txt'),
        join(dir, 'caf\u00e9.txt'),
        join(dir, 'Cafe\u0301.txt'),
      ]) {
        await assert.rejects(
          acquireReceiveLock(other, 'Café.txt'),
          (err: Error & { code?: string }) => err.code === 'BUSY',
          other,
        );
      }
    } finally {
      await lock.release();
    }
  });

  it('a lock file with our own PID that we hold is not stale, whatever name reaches it', async () => {
    // A disk that stores two names as one file (case-insensitive, normalizing) is made here with a
    // hard link: y's lock file is x's.
    const x = join(work.path, 'held-x.txt');
    const y = join(work.path, 'held-y.txt');
    const lock = await acquireReceiveLock(x, 'held-x.txt');
    try {
      await link(`${x}.rcpp2p-lock`, `${y}.rcpp2p-lock`);
      await assert.rejects(
        acquireReceiveLock(y, 'held-y.txt'),
        (err: Error & { code?: string }) => err.code === 'BUSY',
      );
      assert.equal(await readFile(`${x}.rcpp2p-lock`, 'utf8'), `${process.pid}\n`);
    } finally {
      await lock.release();
    }
  });

  it('the lock files of one folder are links to one owner file, gone with the last lock', async () => {
    const dir = join(work.path, 'owner');
    await mkdir(dir);
    const internal = async (): Promise<string[]> =>
      (await readdir(dir)).filter((n) => n.endsWith('.rcpp2p-lock')).sort();
    const a = await acquireReceiveLock(join(dir, 'a.bin'), 'a.bin');
    const b = await acquireReceiveLock(join(dir, 'b.bin'), 'b.bin');
    const [sa, sb] = await Promise.all([
      stat(join(dir, 'a.bin.rcpp2p-lock')),
      stat(join(dir, 'b.bin.rcpp2p-lock')),
    ]);
    assert.equal(sa.ino, sb.ino, 'one inode for the folder, not one per file');
    assert.equal(sa.mode & 0o777, 0o600);
    assert.equal(await readFile(join(dir, 'b.bin.rcpp2p-lock'), 'utf8'), `${process.pid}\n`);
    assert.equal((await internal()).length, 3, 'two lock names and the owner file');
    await a.release();
    await assert.rejects(
      acquireReceiveLock(join(dir, 'b.bin'), 'b.bin'),
      (err: Error & { code?: string }) => err.code === 'BUSY',
    );
    assert.deepEqual((await internal()).length, 2, 'b is still locked through the owner file');
    await b.release();
    assert.deepEqual(await internal(), []);
  });

  it('another process holding a lock makes it BUSY; once it is killed the lock is taken over and its leftovers go', async () => {
    const dir = join(work.path, 'cross');
    await mkdir(dir);
    const target = join(dir, 'shared.bin');
    const lockModule = fileURLToPath(new URL('../../../src/transfer/lock.js', import.meta.url));
    const child = spawn(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `const { acquireReceiveLock } = await import(${JSON.stringify(lockModule)});
         await acquireReceiveLock(${JSON.stringify(target)}, 'shared.bin');
         await acquireReceiveLock(${JSON.stringify(join(dir, 'other.bin'))}, 'other.bin');
         process.stdout.write('held\\n');
         setInterval(() => {}, 1000);`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    try {
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      await until(() => out.includes('held'), 10_000, 'the child to take its locks');
      await assert.rejects(
        acquireReceiveLock(target, 'shared.bin'),
        (err: Error & { code?: string }) => err.code === 'BUSY',
      );
    } finally {
      child.kill('SIGKILL');
      if (child.exitCode === null && child.signalCode === null) await once(child, 'exit');
    }
    // The killed process left its owner file and two lock names behind.
    assert.equal((await readdir(dir)).filter((n) => n.endsWith('.rcpp2p-lock')).length, 3);
    const lock = await acquireReceiveLock(target, 'shared.bin');
    assert.equal(await readFile(`${target}.rcpp2p-lock`, 'utf8'), `${process.pid}\n`);
    await lock.release();
    // Its owner file is gone; other.bin's lock name stays until someone takes it over.
    assert.deepEqual(await readdir(dir), ['other.bin.rcpp2p-lock']);
    const other = await acquireReceiveLock(join(dir, 'other.bin'), 'other.bin');
    await other.release();
    assert.deepEqual(await readdir(dir), []);
  });

  it('respects a lock file held by another live process', async () => {
    const target = join(work.path, 'other.txt');
    await writeFile(`${target}.rcpp2p-lock`, `${process.ppid}\n`);
    await assert.rejects(
      acquireReceiveLock(target, 'other.txt'),
      (err: Error & { code?: string }) => err.code === 'BUSY',
    );
  });
});
