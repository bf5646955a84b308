// Interrupted transfers resume (with the same peer only); changed sources restart; corrupted bytes
// never replace a file, in either direction. Corruption and a source that changes are made by a
// frame-aware proxy between client and server: the production code has no test hooks.
import assert from 'node:assert/strict';
import { appendFileSync } from 'node:fs';
import { mkdir, open, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { TransferResult } from '../../../src/transfer/file-client.js';
import { partialPath } from '../../../src/transfer/safe-path.js';
import {
  openClient,
  randomFile,
  sha256File,
  startProxy,
  startServer,
  tempDir,
  until,
  type ProxyFrame,
  type RunningServer,
} from './helpers.js';

const MiB = 1024 * 1024;

function ok(r: TransferResult | undefined): Extract<TransferResult, { ok: true }> {
  assert.ok(r?.ok, `expected ok, got ${JSON.stringify(r)}`);
  return r;
}

function failedWith(r: TransferResult | undefined, code: string): void {
  assert.ok(r && !r.ok, `expected ${code}, got ${JSON.stringify(r)}`);
  assert.equal(r.error.code, code, r.error.message);
}

/** The partial files of `name` in `dir` (one per peer that left one). */
async function partials(dir: string, name: string): Promise<string[]> {
  return (await readdir(dir)).filter(
    (f) => f.startsWith(`${name}.`) && f.endsWith('.rcpp2p-partial'),
  );
}

/** A proxy rewrite that flips one bit in the first data frame of the file named `path`. */
function corruptFirstChunkOf(path: string): (frame: ProxyFrame) => Buffer | undefined {
  let target: number | undefined;
  let current: number | undefined;
  let done = false;
  return (frame) => {
    if (frame.kind === 'control') {
      const m = frame.msg;
      if (m.t === 'manifest' || m.t === 'put') {
        target ??= m.files.find((f) => f.path === path)?.i;
      }
      if (m.t === 'file') current = m.i;
      return undefined;
    }
    if (done || current === undefined || current !== target) return undefined;
    done = true;
    const copy = Buffer.from(frame.payload);
    copy[100] = copy[100]! ^ 1;
    return copy;
  };
}

/** A proxy rewrite that appends to `source` when the first data frame of any file passes. */
function growOnFirstChunk(source: string): (frame: ProxyFrame) => Buffer | undefined {
  let grown = false;
  return (frame) => {
    if (frame.kind === 'data' && !grown) {
      grown = true;
      appendFileSync(source, 'more');
    }
    return undefined;
  };
}

async function flipFirstByte(path: string): Promise<void> {
  const fh = await open(path, 'r+');
  const b = Buffer.alloc(1);
  await fh.read(b, 0, 1, 0);
  b[0] = b[0]! ^ 0xff;
  await fh.write(b, 0, 1, 0);
  await fh.close();
}

describe('resume and integrity', () => {
  let work: { path: string; cleanup: () => Promise<void> };
  let local: { path: string; cleanup: () => Promise<void> };
  let srv: RunningServer;
  const size = 9 * MiB + 4321;

  before(async () => {
    work = await tempDir('resume-work');
    local = await tempDir('resume-local');
    // One client name for every connection: a partial is resumed only with the peer that left it.
    srv = await startServer({ workDir: work.path, clientName: 'tester' });
  });
  after(async () => {
    await srv.close();
    await work.cleanup();
    await local.cleanup();
  });

  async function cutGet(file: string, into: string, afterBytes: number): Promise<number> {
    const proxy = await startProxy(srv.port, { cut: { direction: 'toClient', afterBytes } });
    const client = await openClient(proxy.port);
    await assert.rejects(
      client.get([file], into),
      (err: Error & { code?: string }) => err.code === 'CONNECTION_LOST',
    );
    await client.close();
    await proxy.close();
    await until(() => srv.server.activeSessions === 0, 5000, 'the server to notice the cut');
    return (await stat(partialPath(join(into, file), 'name:testsrv'))).size;
  }

  it('get: a cut connection leaves a partial; the rerun resumes and ends with the exact bytes', async () => {
    const sha = await randomFile(join(work.path, 'movie.bin'), size);
    const into = join(local.path, 'get-resume');
    await mkdir(into);
    const partial = await cutGet('movie.bin', into, 4 * MiB + 500);
    assert.ok(partial >= 2 * MiB, `partial of ${partial} bytes`);
    assert.deepEqual(
      await readdir(into),
      await partials(into, 'movie.bin'),
      'only the partial: no lock left, no target yet',
    );
    const client = await openClient(srv.port);
    const [r] = await client.get(['movie.bin'], into);
    await client.close();
    const done = ok(r);
    assert.ok(
      done.resumedBytes > 0 && done.resumedBytes <= partial,
      `resumed ${done.resumedBytes} of ${partial}`,
    );
    assert.equal(done.sha256, sha);
    assert.equal(await sha256File(join(into, 'movie.bin')), sha);
    assert.deepEqual(await readdir(into), ['movie.bin']);
  });

  it('get: a source changed since the cut restarts from 0', async () => {
    await randomFile(join(work.path, 'changing.bin'), size);
    const into = join(local.path, 'get-changed');
    await mkdir(into);
    await cutGet('changing.bin', into, 3 * MiB);
    await flipFirstByte(join(work.path, 'changing.bin'));
    const sha = await sha256File(join(work.path, 'changing.bin'));
    const client = await openClient(srv.port);
    const [r] = await client.get(['changing.bin'], into);
    await client.close();
    assert.equal(ok(r).resumedBytes, 0);
    assert.equal(await sha256File(join(into, 'changing.bin')), sha);
  });

  it('put: a cut connection leaves a partial on the server; the rerun resumes', async () => {
    const src = join(local.path, 'upload.bin');
    const sha = await randomFile(src, size);
    await mkdir(join(work.path, 'up'));
    const proxy = await startProxy(srv.port, {
      cut: { direction: 'toServer', afterBytes: 5 * MiB },
    });
    const cut = await openClient(proxy.port);
    await assert.rejects(
      cut.put([src], 'up'),
      (err: Error & { code?: string }) => err.code === 'CONNECTION_LOST',
    );
    await cut.close();
    await proxy.close();
    await until(() => srv.server.activeSessions === 0, 5000, 'the server to notice the cut');
    const [name] = await partials(join(work.path, 'up'), 'upload.bin');
    assert.ok(name, 'a partial is left');
    const partial = (await stat(join(work.path, 'up', name))).size;
    assert.ok(partial >= 2 * MiB, `partial of ${partial} bytes`);
    const client = await openClient(srv.port);
    const [r] = await client.put([src], 'up');
    await client.close();
    const done = ok(r);
    assert.ok(done.resumedBytes > 0, `resumed ${done.resumedBytes}`);
    assert.equal(await sha256File(join(work.path, 'up', 'upload.bin')), sha);
    assert.deepEqual(await readdir(join(work.path, 'up')), ['upload.bin']);
  });

  it('get: a corrupted byte on the way: INTEGRITY_MISMATCH, the old file untouched, no partial kept', async () => {
    await randomFile(join(work.path, 'corrupt.bin'), 2 * MiB);
    const into = join(local.path, 'corrupt');
    await mkdir(into);
    await writeFile(join(into, 'corrupt.bin'), 'the old, good file');
    const proxy = await startProxy(srv.port, {
      onFrame: { direction: 'toClient', rewrite: corruptFirstChunkOf('corrupt.bin') },
    });
    const client = await openClient(proxy.port);
    const [r] = await client.get(['corrupt.bin'], into, { force: true });
    await client.close();
    await proxy.close();
    failedWith(r, 'INTEGRITY_MISMATCH');
    assert.equal(await readFile(join(into, 'corrupt.bin'), 'utf8'), 'the old, good file');
    assert.deepEqual(await readdir(into), ['corrupt.bin']);
  });

  it('put: a corrupted byte on the way: INTEGRITY_MISMATCH, the old file untouched, no partial kept', async () => {
    const src = join(local.path, 'put-corrupt', 'report.bin');
    const sha = await randomFile(src, 2 * MiB);
    await mkdir(join(work.path, 'pc'));
    await writeFile(join(work.path, 'pc', 'report.bin'), 'the old, good file');
    const proxy = await startProxy(srv.port, {
      onFrame: { direction: 'toServer', rewrite: corruptFirstChunkOf('pc/report.bin') },
    });
    const client = await openClient(proxy.port);
    const [r] = await client.put([src], 'pc', { force: true });
    await client.close();
    await proxy.close();
    failedWith(r, 'INTEGRITY_MISMATCH');
    assert.equal(await readFile(join(work.path, 'pc', 'report.bin'), 'utf8'), 'the old, good file');
    assert.deepEqual(await readdir(join(work.path, 'pc')), ['report.bin']);
    // The same put without the proxy goes through: the corruption was the proxy's.
    const again = await openClient(srv.port);
    const [r2] = await again.put([src], 'pc', { force: true });
    await again.close();
    assert.equal(ok(r2).sha256, sha);
  });

  it('get: a source that grows while it is sent: SOURCE_CHANGED, nothing replaced', async () => {
    const source = join(work.path, 'growing.bin');
    await randomFile(source, 16 * MiB);
    const into = join(local.path, 'growing');
    await mkdir(into);
    const proxy = await startProxy(srv.port, {
      onFrame: { direction: 'toClient', rewrite: growOnFirstChunk(source) },
    });
    const client = await openClient(proxy.port);
    const [r] = await client.get(['growing.bin'], into);
    await client.close();
    await proxy.close();
    failedWith(r, 'SOURCE_CHANGED');
    assert.ok(!(await readdir(into)).includes('growing.bin'));
  });

  it('put: a source that grows while it is sent: SOURCE_CHANGED, nothing placed on the server', async () => {
    const source = join(local.path, 'put-growing', 'log.bin');
    await randomFile(source, 16 * MiB);
    await mkdir(join(work.path, 'pg'));
    const proxy = await startProxy(srv.port, {
      onFrame: { direction: 'toServer', rewrite: growOnFirstChunk(source) },
    });
    const client = await openClient(proxy.port);
    const [r] = await client.put([source], 'pg');
    await client.close();
    await proxy.close();
    failedWith(r, 'SOURCE_CHANGED');
    assert.ok(!(await readdir(join(work.path, 'pg'))).includes('log.bin'));
  });

  it('a complete partial from an earlier run is finished without sending the bytes again', async () => {
    const sha = await randomFile(join(work.path, 'whole.bin'), 3 * MiB);
    const into = join(local.path, 'whole');
    await mkdir(into);
    await writeFile(
      partialPath(join(into, 'whole.bin'), 'name:testsrv'),
      await readFile(join(work.path, 'whole.bin')),
    );
    const client = await openClient(srv.port);
    const [r] = await client.get(['whole.bin'], into);
    await client.close();
    assert.equal(ok(r).resumedBytes, 3 * MiB);
    assert.equal(await sha256File(join(into, 'whole.bin')), sha);
  });
});
