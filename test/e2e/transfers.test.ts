// Transfers that never lose data, with real processes in the NAT lab: kill -9 of either side and a
// resumed rerun, a full disk, eight clients at once, and a tree of 1,000 files.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { canMakeNetns, hasSshd, skipUnless } from '../helpers/capability.js';
import { createLab, type Lab } from '../helpers/nat-lab.js';
import {
  describeRun,
  jsonLines,
  RCPP2P_BIN,
  setupLabPeers,
  sha256File,
  writeRandomFile,
  type LabPeers,
} from '../helpers/lab-peers.js';
import { runChecked } from '../helpers/processes.js';

const skip = skipUnless(canMakeNetns(), hasSshd());

async function withLab(
  opts: { rateLimitMbit?: number },
  run: (lab: Lab, peers: LabPeers) => Promise<void>,
): Promise<void> {
  const lab = await createLab({ server: 'drop', client: 'drop', ...opts });
  const peers = await setupLabPeers(lab).catch(async (err: unknown) => {
    await lab.close();
    throw err;
  });
  try {
    await run(lab, peers);
  } finally {
    await lab.close();
    await peers.cleanup();
  }
}

/** The partial files of `name` in `dir` (`name.<peer tag>.rcpp2p-partial`, one per sending peer). */
async function partialsOf(dir: string, name: string): Promise<string[]> {
  return (await readdir(dir).catch(() => []))
    .filter((f) => f.startsWith(`${name}.`) && f.endsWith('.rcpp2p-partial'))
    .map((f) => join(dir, f));
}

/** Resolves when the partial of `name` in `dir` has grown past `bytes` (bounded). */
async function waitForSize(
  dir: string,
  name: string,
  bytes: number,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const [file] = await partialsOf(dir, name);
    const size = (file && (await stat(file).catch(() => undefined))?.size) || 0;
    if (size >= bytes) return;
    await delay(50);
  }
  throw new Error(`the partial of ${name} did not reach ${bytes} bytes within ${timeoutMs} ms`);
}

const BIG = 120 * 1024 * 1024;

describe('transfers survive interruptions and resume', { skip }, () => {
  it('kill -9 of the client mid-download, then the same command resumes and the bytes match', async () => {
    // 200 Mbit/s: a 120 MiB file takes about 5 s, long enough to interrupt.
    await withLab({ rateLimitMbit: 200 }, async (lab, peers) => {
      await peers.startServer();
      const sha = await writeRandomFile(join(peers.workDir, 'movie.bin'), BIG);
      const first = lab.spawn(
        'client',
        process.execPath,
        [RCPP2P_BIN, '--config', peers.clientConfig, '--get', 'ASUS', 'movie.bin'],
        { cwd: peers.clientDir },
      );
      await waitForSize(peers.clientDir, 'movie.bin', 20 * 1024 * 1024, 60_000);
      process.kill(first.pid, 'SIGKILL');
      await first.exited;
      await assert.rejects(
        stat(join(peers.clientDir, 'movie.bin')),
        'no half file under the real name',
      );
      const again = await peers.client(['--get', 'ASUS', 'movie.bin', '--json'], {
        timeoutMs: 120_000,
      });
      assert.equal(again.code, 0, describeRun(again));
      assert.equal(await sha256File(join(peers.clientDir, 'movie.bin')), sha);
      const [result] = jsonLines(again.stdout);
      assert.ok(
        Number(result?.['resumedBytes']) >= 10 * 1024 * 1024,
        `resumed ${String(result?.['resumedBytes'])} bytes`,
      );
      assert.deepEqual(await partialsOf(peers.clientDir, 'movie.bin'), [], 'the partial is gone');
    });
  });

  it('kill -9 of the server mid-upload, restart it, and the same put resumes', async () => {
    await withLab({ rateLimitMbit: 200 }, async (lab, peers) => {
      const server = await peers.startServer();
      const sha = await writeRandomFile(join(peers.clientDir, 'backup.bin'), BIG);
      const first = lab.spawn(
        'client',
        process.execPath,
        [RCPP2P_BIN, '--config', peers.clientConfig, '--put', 'ASUS', 'backup.bin'],
        { cwd: peers.clientDir },
      );
      await waitForSize(peers.workDir, 'backup.bin', 20 * 1024 * 1024, 60_000);
      process.kill(server.pid, 'SIGKILL');
      await server.exited;
      const firstExit = await first.waitExit(60_000);
      assert.notEqual(firstExit.code, 0, 'the interrupted put reports failure');
      assert.match(first.stderr(), /Error: /);
      await peers.startServer();
      const again = await peers.client(['--put', 'ASUS', 'backup.bin', '--json'], {
        timeoutMs: 120_000,
      });
      assert.equal(again.code, 0, describeRun(again));
      assert.equal(await sha256File(join(peers.workDir, 'backup.bin')), sha);
      assert.ok(Number(jsonLines(again.stdout)[0]?.['resumedBytes']) > 0, again.stdout);
    });
  });

  it('a changed source file restarts from zero instead of resuming a stale prefix', async () => {
    await withLab({ rateLimitMbit: 200 }, async (lab, peers) => {
      await peers.startServer();
      await writeRandomFile(join(peers.workDir, 'doc.bin'), BIG);
      const first = lab.spawn(
        'client',
        process.execPath,
        [RCPP2P_BIN, '--config', peers.clientConfig, '--get', 'ASUS', 'doc.bin'],
        { cwd: peers.clientDir },
      );
      await waitForSize(peers.clientDir, 'doc.bin', 10 * 1024 * 1024, 60_000);
      process.kill(first.pid, 'SIGKILL');
      await first.exited;
      const sha = await writeRandomFile(join(peers.workDir, 'doc.bin'), BIG);
      const again = await peers.client(['--get', 'ASUS', 'doc.bin', '--json'], {
        timeoutMs: 120_000,
      });
      assert.equal(again.code, 0, describeRun(again));
      assert.equal(await sha256File(join(peers.clientDir, 'doc.bin')), sha);
      assert.equal(jsonLines(again.stdout)[0]?.['resumedBytes'], 0);
    });
  });
});

describe('a full disk', { skip }, () => {
  it('refuses clearly, keeps the old file, and succeeds once space is freed', async () => {
    await withLab({}, async (_lab, peers) => {
      await peers.startServer();
      const small = await mkdtemp(join(peers.dir, 'tmpfs-'));
      await runChecked('/usr/bin/mount', [
        '-t',
        'tmpfs',
        '-o',
        'size=8m,mode=0755',
        'tmpfs',
        small,
      ]);
      try {
        const oldContent = randomBytes(2 * 1024 * 1024);
        await writeFile(join(small, 'data.bin'), oldContent);
        await writeFile(join(small, 'filler.bin'), randomBytes(3 * 1024 * 1024));
        const sha = await writeRandomFile(join(peers.workDir, 'data.bin'), 4 * 1024 * 1024);
        const full = await peers.client(['--get', 'ASUS', 'data.bin', '--to', small, '--force']);
        assert.equal(full.code, 5, describeRun(full));
        assert.match(full.stderr, /full|space/i);
        assert.deepEqual(
          await readFile(join(small, 'data.bin')),
          oldContent,
          'the old file is intact',
        );
        await rm(join(small, 'filler.bin'));
        const ok = await peers.client(['--get', 'ASUS', 'data.bin', '--to', small, '--force']);
        assert.equal(ok.code, 0, describeRun(ok));
        assert.equal(await sha256File(join(small, 'data.bin')), sha);
      } finally {
        await runChecked('/usr/bin/umount', [small]);
      }
    });
  });
});

describe('many transfers', { skip }, () => {
  it('eight clients at once, four downloads and four uploads, all verified', async () => {
    await withLab({}, async (_lab, peers) => {
      await peers.startServer();
      const jobs: Promise<void>[] = [];
      for (let i = 0; i < 4; i++) {
        const down = await writeRandomFile(
          join(peers.workDir, `down-${i}.bin`),
          3 * 1024 * 1024 + i,
        );
        const up = await writeRandomFile(join(peers.clientDir, `up-${i}.bin`), 3 * 1024 * 1024 + i);
        jobs.push(
          peers
            .client(['--get', 'ASUS', `down-${i}.bin`], { timeoutMs: 120_000 })
            .then(async (r) => {
              assert.equal(r.code, 0, describeRun(r));
              assert.equal(await sha256File(join(peers.clientDir, `down-${i}.bin`)), down);
            }),
          peers.client(['--put', 'ASUS', `up-${i}.bin`], { timeoutMs: 120_000 }).then(async (r) => {
            assert.equal(r.code, 0, describeRun(r));
            assert.equal(await sha256File(join(peers.workDir, `up-${i}.bin`)), up);
          }),
        );
      }
      await Promise.all(jobs);
    });
  });

  it('a tree of 1,000 small files in nested folders goes up and comes back exactly', async () => {
    await withLab({}, async (_lab, peers) => {
      await peers.startServer();
      const tree = join(peers.clientDir, 'photos');
      const expected = new Map<string, string>();
      for (let i = 0; i < 1000; i++) {
        const rel = join(`year-${i % 5}`, `month-${i % 12}`, `img-${i}.jpg`);
        await mkdir(join(tree, rel, '..'), { recursive: true });
        const data = randomBytes(100 + (i % 900));
        await writeFile(join(tree, rel), data);
        expected.set(rel, createHash('sha256').update(data).digest('hex'));
      }
      await mkdir(join(tree, 'empty-folder'));
      const up = await peers.client(['--put', 'ASUS', 'photos', '--json'], { timeoutMs: 180_000 });
      assert.equal(up.code, 0, describeRun(up));
      assert.deepEqual(await hashTree(join(peers.workDir, 'photos')), expected);
      assert.ok(
        (await stat(join(peers.workDir, 'photos', 'empty-folder'))).isDirectory(),
        'empty folders travel too',
      );

      const back = join(peers.clientDir, 'back');
      await mkdir(back);
      const down = await peers.client(['--get', 'ASUS', 'photos', '--to', 'back', '--json'], {
        timeoutMs: 180_000,
      });
      assert.equal(down.code, 0, describeRun(down));
      assert.deepEqual(await hashTree(join(back, 'photos')), expected);
      assert.equal(jsonLines(down.stdout).filter((j) => j['ok'] === true).length, 1000);
    });
  });
});

async function hashTree(root: string): Promise<Map<string, string>> {
  const result = new Map<string, string>();
  const walk = async (dir: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) await walk(path);
      else
        result.set(
          relative(root, path),
          createHash('sha256')
            .update(await readFile(path))
            .digest('hex'),
        );
    }
  };
  await walk(root);
  return new Map([...result].sort(([a], [b]) => a.localeCompare(b)));
}
