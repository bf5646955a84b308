// A real FileServer and FileClient over TCP on 127.0.0.1: list, get, put, per-file failures.
import assert from 'node:assert/strict';
import { mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { ProgressEvent } from '../../../src/progress.js';
import type { FileClient, TransferResult } from '../../../src/transfer/file-client.js';
import {
  openClient,
  randomFile,
  sha256File,
  startServer,
  tempDir,
  type RunningServer,
} from './helpers.js';

const MiB = 1024 * 1024;

function okResult(r: TransferResult | undefined): Extract<TransferResult, { ok: true }> {
  assert.ok(r, 'missing result');
  assert.ok(r.ok, `expected ok, got ${JSON.stringify(r)}`);
  return r;
}

function failure(r: TransferResult | undefined): Extract<TransferResult, { ok: false }> {
  assert.ok(r && !r.ok, `expected a failure, got ${JSON.stringify(r)}`);
  return r;
}

describe('transfer over TCP', () => {
  let work: { path: string; cleanup: () => Promise<void> };
  let local: { path: string; cleanup: () => Promise<void> };
  let srv: RunningServer;
  let client: FileClient;
  let bigSha: string;
  const bigSize = 7 * MiB + 12345;
  const mtime = Date.UTC(2021, 5, 1, 12, 0, 0, 250);

  before(async () => {
    work = await tempDir('work');
    local = await tempDir('local');
    bigSha = await randomFile(join(work.path, 'big.bin'), bigSize, mtime);
    await writeFile(join(work.path, 'hello.txt'), 'hello\n');
    await mkdir(join(work.path, 'docs', 'sub'), { recursive: true });
    await writeFile(join(work.path, 'docs', 'a.txt'), 'A');
    await writeFile(join(work.path, 'docs', 'sub', 'b.txt'), 'BB');
    await writeFile(join(work.path, 'docs', 'x.rcpp2p-partial'), 'internal');
    srv = await startServer({ workDir: work.path });
    client = await openClient(srv.port);
  });
  after(async () => {
    await client.close();
    await srv.close();
    await work.cleanup();
    await local.cleanup();
  });

  it('greets with the server name', () => {
    assert.equal(client.serverName, 'testsrv');
  });

  it('lists the working directory with sizes, times and folders, hiding internal files', async () => {
    const entries = await client.list('');
    assert.deepEqual(
      entries.map((e) => [e.path, e.kind, e.size]),
      [
        ['big.bin', 'file', bigSize],
        ['docs', 'dir', 0],
        ['hello.txt', 'file', 6],
      ],
    );
    assert.equal(Math.round(entries[0]!.mtimeMs), mtime);
    const tree = await client.list('docs', { recursive: true });
    assert.deepEqual(
      tree.map((e) => e.path),
      ['docs/a.txt', 'docs/sub', 'docs/sub/b.txt'],
    );
  });

  it('refuses a list of a missing folder and stays usable', async () => {
    await assert.rejects(
      client.list('nope'),
      (err: Error & { code?: string }) => err.code === 'FILE_NOT_FOUND',
    );
    assert.equal((await client.list('hello.txt')).length, 1);
  });

  it('gets a multi-MiB random file: same bytes, same mtime, progress reported', async () => {
    const events: ProgressEvent[] = [];
    const [r] = await client.get(['big.bin'], local.path, { onProgress: (e) => events.push(e) });
    const ok = okResult(r);
    assert.equal(ok.sha256, bigSha);
    assert.equal(ok.bytes, bigSize);
    assert.equal(ok.resumedBytes, 0);
    assert.equal(ok.file, 'big.bin');
    assert.equal(ok.localPath, join(local.path, 'big.bin'));
    assert.equal(await sha256File(join(local.path, 'big.bin')), bigSha);
    const st = await stat(join(local.path, 'big.bin'));
    assert.ok(Math.abs(st.mtimeMs - mtime) < 1, `mtime ${st.mtimeMs} vs ${mtime}`);
    assert.equal(st.mode & 0o777, 0o666 & ~process.umask(), 'a finished file gets the usual mode');
    const types = events.map((e) => e.type);
    assert.deepEqual(events[0], { type: 'transfer:plan', op: 'get', files: 1, bytes: bigSize });
    assert.equal(types[1], 'transfer:start');
    assert.ok(types.includes('transfer:bytes'));
    assert.equal(types.at(-1), 'transfer:done');
    const lastBytes = events.filter((e) => e.type === 'transfer:bytes').at(-1) as {
      done: number;
      total: number;
    };
    assert.equal(lastBytes.done, bigSize);
    assert.deepEqual((await readdir(local.path)).sort(), ['big.bin']);
  });

  it('puts a multi-MiB random file into a folder on the server', async () => {
    await mkdir(join(work.path, 'incoming'));
    const src = join(local.path, 'upload.bin');
    const sha = await randomFile(src, 5 * MiB + 7, mtime);
    const [r] = await client.put([src], 'incoming');
    const ok = okResult(r);
    assert.equal(ok.file, 'incoming/upload.bin');
    assert.equal(ok.localPath, src);
    assert.equal(ok.sha256, sha);
    assert.equal(await sha256File(join(work.path, 'incoming', 'upload.bin')), sha);
    assert.ok(
      Math.abs((await stat(join(work.path, 'incoming', 'upload.bin'))).mtimeMs - mtime) < 1,
    );
    assert.deepEqual(await readdir(join(work.path, 'incoming')), ['upload.bin']);
  });

  it('gets several files and a folder as a real tree in one command', async () => {
    const dest = join(local.path, 'several');
    await mkdir(dest);
    const results = await client.get(['hello.txt', 'docs'], dest);
    assert.deepEqual(
      results.map((r) => [r.file, r.ok]),
      [
        ['hello.txt', true],
        ['docs/a.txt', true],
        ['docs/sub/b.txt', true],
      ],
    );
    assert.equal(await readFile(join(dest, 'docs', 'sub', 'b.txt'), 'utf8'), 'BB');
    assert.deepEqual((await readdir(join(dest, 'docs'))).sort(), ['a.txt', 'sub']);
  });

  it('lands a nested folder under its own name', async () => {
    const dest = join(local.path, 'nested');
    await mkdir(dest);
    const [r] = await client.get(['docs/sub'], dest);
    assert.equal(okResult(r).localPath, join(dest, 'sub', 'b.txt'));
    assert.equal(await readFile(join(dest, 'sub', 'b.txt'), 'utf8'), 'BB');
  });

  it('reports a missing file as FILE_NOT_FOUND while the other files succeed', async () => {
    const dest = join(local.path, 'mixed');
    await mkdir(dest);
    const results = await client.get(['hello.txt', 'missing.txt', 'docs/a.txt'], dest);
    assert.equal(results.length, 3);
    okResult(results[0]);
    const miss = failure(results[1]);
    assert.equal(miss.error.code, 'FILE_NOT_FOUND');
    assert.ok(miss.error.hint.length > 0);
    okResult(results[2]);
  });

  it('never overwrites without force: FILE_EXISTS, old file untouched; force replaces', async () => {
    const dest = join(local.path, 'exists');
    await mkdir(dest);
    await writeFile(join(dest, 'hello.txt'), 'old content');
    const [r] = await client.get(['hello.txt'], dest);
    const f = failure(r);
    assert.equal(f.error.code, 'FILE_EXISTS');
    assert.match(f.error.hint, /--force/);
    assert.equal(await readFile(join(dest, 'hello.txt'), 'utf8'), 'old content');
    const [again] = await client.get(['hello.txt'], dest, { force: true });
    okResult(again);
    assert.equal(await readFile(join(dest, 'hello.txt'), 'utf8'), 'hello\n');
    // The same on the server side for put.
    await writeFile(join(work.path, 'keep.txt'), 'server copy');
    await writeFile(join(dest, 'keep.txt'), 'client copy');
    const [p] = await client.put([join(dest, 'keep.txt')], '');
    assert.equal(failure(p).error.code, 'FILE_EXISTS');
    assert.equal(await readFile(join(work.path, 'keep.txt'), 'utf8'), 'server copy');
  });

  it('refuses to replace a folder with a file: IS_A_DIRECTORY', async () => {
    const dest = join(local.path, 'isdir');
    await mkdir(join(dest, 'hello.txt'), { recursive: true });
    const [r] = await client.get(['hello.txt'], dest, { force: true });
    assert.equal(failure(r).error.code, 'IS_A_DIRECTORY');
  });

  it('puts a missing local file as FILE_NOT_FOUND and the rest still goes', async () => {
    const a = join(local.path, 'put-a.txt');
    await writeFile(a, 'a');
    const results = await client.put([join(local.path, 'absent.txt'), a], 'incoming');
    assert.equal(failure(results[0]).error.code, 'FILE_NOT_FOUND');
    okResult(results[1]);
  });

  it('transfers empty files', async () => {
    await writeFile(join(work.path, 'empty'), '');
    const dest = join(local.path, 'empty-dir');
    await mkdir(dest);
    const [r] = await client.get(['empty'], dest);
    assert.equal(okResult(r).bytes, 0);
    assert.equal((await stat(join(dest, 'empty'))).size, 0);
  });

  it('reports requests on the server side', () => {
    const ops = srv.events
      .filter((e) => e.type === 'server:request')
      .map((e) => (e as { op: string }).op);
    assert.ok(ops.includes('list') && ops.includes('get') && ops.includes('put'));
  });

  it('closes idempotently and refuses later commands', async () => {
    const c2 = await openClient(srv.port);
    await Promise.all([c2.close(), c2.close()]);
    await assert.rejects(
      c2.list(''),
      (err: Error & { code?: string }) => err.code === 'CONNECTION_LOST',
    );
  });
});
