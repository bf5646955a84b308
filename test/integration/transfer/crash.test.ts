// A receiver killed in the middle of a tree (SIGKILL: no clean-up runs), while a large file is half
// written and many small files are being committed at once (fsync, then placed). Whatever it hits, every name the tree shows is a complete, verified file; the rest are
// partials (internal names) or absent, and a rerun finishes the tree.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { statSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { isInternalName, partialPath } from '../../../src/transfer/safe-path.js';
import { openClient, randomFile, startServer, tempDir, until } from './helpers.js';

const KiB = 1024;
const LARGE = 16 * 1024 * KiB;

/** Relative path -> SHA-256 of every file under `root`, internal names apart. */
async function contents(root: string): Promise<{ files: Map<string, string>; internal: number }> {
  const files = new Map<string, string>();
  let internal = 0;
  for (const e of await readdir(root, { withFileTypes: true, recursive: true })) {
    if (!e.isFile()) continue;
    if (isInternalName(e.name)) {
      internal++;
      continue;
    }
    const path = join(e.parentPath, e.name);
    const sha = createHash('sha256')
      .update(await readFile(path))
      .digest('hex');
    files.set(relative(root, path), sha);
  }
  return { files, internal };
}

describe('a receiver killed in the middle of a tree', () => {
  let work: { path: string; cleanup: () => Promise<void> };
  let local: { path: string; cleanup: () => Promise<void> };
  const source = new Map<string, string>();

  before(async () => {
    work = await tempDir('crash-work');
    local = await tempDir('crash-local');
    // 600 small files, and large ones among them, so the kill also finds a file half written.
    for (let n = 0; n < 600; n++) {
      const rel = `tree/d${Math.floor(n / 100)}/f${String(n).padStart(3, '0')}.bin`;
      const size = n % 100 === 50 ? LARGE : 4 * KiB;
      source.set(rel, await randomFile(join(local.path, rel), size));
    }
  });
  after(async () => {
    await work.cleanup();
    await local.cleanup();
  });

  it('shows only complete, verified files under real names; a rerun completes the tree', async () => {
    const distSrc = fileURLToPath(new URL('../../../src/', import.meta.url));
    const child = spawn(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `import net from 'node:net';
         const { FileServer } = await import(${JSON.stringify(join(distSrc, 'transfer/file-server.js'))});
         const server = new FileServer({ workDir: ${JSON.stringify(work.path)}, serverName: 'victim' });
         const l = net.createServer((s) => void server.serve(s, { name: 'tester' }).finally(() => s.destroy()));
         l.listen(0, '127.0.0.1', () => process.stdout.write('port ' + l.address().port + '\\n'));`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    let putDone: Promise<unknown> | undefined;
    try {
      await until(() => /port \d+/.test(out), 10_000, 'the server child');
      const port = Number(/port (\d+)/.exec(out)![1]);
      const client = await openClient(port);
      putDone = client.put([join(local.path, 'tree')], '').catch((err: unknown) => err);
      // Kill while the first large file is half written (its partial has some of its bytes).
      const partial = partialPath(join(work.path, 'tree', 'd0', 'f050.bin'), 'name:tester');
      await until(
        () => {
          const size = statSync(partial, { throwIfNoEntry: false })?.size ?? 0;
          return size > 0 && size < LARGE;
        },
        20_000,
        'a large file to be half written',
      );
    } finally {
      child.kill('SIGKILL');
      if (child.exitCode === null && child.signalCode === null) await once(child, 'exit');
    }
    await putDone;
    const killed = await contents(work.path);
    assert.ok(killed.files.size < source.size, 'the kill came before the end of the tree');
    for (const [rel, sha] of killed.files) {
      assert.equal(sha, source.get(rel), `${rel} is under its real name but not complete`);
    }
    // The rerun (same client name, so partials resume) brings the rest; placed files are refused
    // as existing, and nothing else fails.
    const srv = await startServer({ workDir: work.path, clientName: 'tester' });
    try {
      const client = await openClient(srv.port);
      const results = await client.put([join(local.path, 'tree')], '');
      await client.close();
      for (const r of results) {
        assert.ok(r.ok || r.error.code === 'FILE_EXISTS', JSON.stringify(r));
      }
    } finally {
      await srv.close();
    }
    const done = await contents(work.path);
    assert.deepEqual(done.files, source);
  });
});
