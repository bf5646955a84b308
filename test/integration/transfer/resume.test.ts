// Interrupted transfers resume; changed sources restart; corrupted bytes never replace a file.
import assert from 'node:assert/strict';
import { appendFileSync } from 'node:fs';
import { mkdir, open, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { TransferResult } from '../../../src/transfer/file-client.js';
import {
  openClient,
  randomFile,
  sha256File,
  startProxy,
  startServer,
  tempDir,
  until,
  type RunningServer,
} from './helpers.js';

const MiB = 1024 * 1024;

function ok(r: TransferResult | undefined): Extract<TransferResult, { ok: true }> {
  assert.ok(r?.ok, `expected ok, got ${JSON.stringify(r)}`);
  return r;
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
    srv = await startServer({
      workDir: work.path,
      hooks: {
        alterChunk: (shown, offset, chunk) => {
          if (shown === 'corrupt.bin' && offset === 0) {
            const copy = Buffer.from(chunk);
            copy[100] = copy[100]! ^ 1;
            return copy;
          }
          if (shown === 'growing.bin' && offset === 0)
            appendFileSync(join(work.path, 'growing.bin'), 'more');
          return chunk;
        },
      },
    });
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
    return (await stat(join(into, `${file}.rcpp2p-partial`))).size;
  }

  it('get: a cut connection leaves a partial; the rerun resumes and ends with the exact bytes', async () => {
    const sha = await randomFile(join(work.path, 'movie.bin'), size);
    const into = join(local.path, 'get-resume');
    await mkdir(into);
    const partial = await cutGet('movie.bin', into, 4 * MiB + 500);
    assert.ok(partial >= 2 * MiB, `partial of ${partial} bytes`);
    assert.deepEqual(
      (await readdir(into)).sort(),
      ['movie.bin.rcpp2p-partial'],
      'no lock left, no target yet',
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
    const partial = (await stat(join(work.path, 'up', 'upload.bin.rcpp2p-partial'))).size;
    assert.ok(partial >= 2 * MiB, `partial of ${partial} bytes`);
    const client = await openClient(srv.port);
    const [r] = await client.put([src], 'up');
    await client.close();
    const done = ok(r);
    assert.ok(done.resumedBytes > 0, `resumed ${done.resumedBytes}`);
    assert.equal(await sha256File(join(work.path, 'up', 'upload.bin')), sha);
    assert.deepEqual(await readdir(join(work.path, 'up')), ['upload.bin']);
  });

  it('a corrupted byte on the way: INTEGRITY_MISMATCH, the old file untouched, no partial kept', async () => {
    await randomFile(join(work.path, 'corrupt.bin'), 2 * MiB);
    const into = join(local.path, 'corrupt');
    await mkdir(into);
    await writeFile(join(into, 'corrupt.bin'), 'the old, good file');
    const client = await openClient(srv.port);
    const [r] = await client.get(['corrupt.bin'], into, { force: true });
    await client.close();
    assert.ok(r && !r.ok);
    assert.equal(r.error.code, 'INTEGRITY_MISMATCH');
    assert.equal(await readFile(join(into, 'corrupt.bin'), 'utf8'), 'the old, good file');
    assert.deepEqual(await readdir(into), ['corrupt.bin']);
  });

  it('a source that grows while it is sent: SOURCE_CHANGED, nothing replaced', async () => {
    await randomFile(join(work.path, 'growing.bin'), 3 * MiB);
    const into = join(local.path, 'growing');
    await mkdir(into);
    const client = await openClient(srv.port);
    const [r] = await client.get(['growing.bin'], into);
    await client.close();
    assert.ok(r && !r.ok);
    assert.equal(r.error.code, 'SOURCE_CHANGED');
    assert.ok(!(await readdir(into)).includes('growing.bin'));
  });

  it('a complete partial from an earlier run is finished without sending the bytes again', async () => {
    const sha = await randomFile(join(work.path, 'whole.bin'), 3 * MiB);
    const into = join(local.path, 'whole');
    await mkdir(into);
    await writeFile(
      join(into, 'whole.bin.rcpp2p-partial'),
      await readFile(join(work.path, 'whole.bin')),
    );
    const client = await openClient(srv.port);
    const [r] = await client.get(['whole.bin'], into);
    await client.close();
    assert.equal(ok(r).resumedBytes, 3 * MiB);
    assert.equal(await sha256File(join(into, 'whole.bin')), sha);
  });
});
