// Atomic receive and the file side of resume, without a network: partial, hash, fsync, rename.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { open, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { isRcppError } from '../../../src/errors.js';
import { describePartial, matchPrefix } from '../../../src/transfer/block-hashes.js';
import { checkSpace, FileSink, prepareReceive } from '../../../src/transfer/receive-file.js';
import { partialPath, SafeRoot } from '../../../src/transfer/safe-path.js';

const MiB = 1024 * 1024;
const PEER = 'SHA256:peer-a';
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    assert.ok(isRcppError(err), String(err));
    return err.code;
  }
  return 'OK';
}

describe('receiving a file', () => {
  let dir: string;
  let root: SafeRoot;
  const content = randomBytes(2 * MiB + 12345);
  const mtimeMs = Date.UTC(2019, 2, 3, 4, 5, 6, 789);
  const spec = (rel: string, body = content) => ({
    i: 0,
    rel,
    shown: rel,
    size: body.length,
    mtimeMs,
    peer: PEER,
  });

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rcpp2p-receive-'));
    root = await SafeRoot.open(dir);
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function writeAll(sink: FileSink, body: Buffer, from: number): Promise<void> {
    for (let at = from; at < body.length; at += MiB)
      await sink.write(body.subarray(at, Math.min(at + MiB, body.length)));
  }

  it('writes a partial (0600), verifies, sets the mtime and renames into place; no lock left', async () => {
    const p = await prepareReceive(root, spec('a.bin'), false);
    const sink = await FileSink.open(p, 0);
    await sink.write(content.subarray(0, 1000));
    assert.equal((await stat(partialPath(join(dir, 'a.bin'), PEER))).mode & 0o777, 0o600);
    await writeAll(sink, content, 1000);
    assert.equal(await sink.commit(sha(content)), sha(content));
    await p.lock.release();
    assert.ok((await readFile(join(dir, 'a.bin'))).equals(content));
    assert.ok(Math.abs((await stat(join(dir, 'a.bin'))).mtimeMs - mtimeMs) < 1);
    assert.deepEqual(await readdir(dir), ['a.bin']);
  });

  it('refuses the same target while it is being received (BUSY)', async () => {
    const p = await prepareReceive(root, spec('b.bin'), false);
    assert.equal(await code(prepareReceive(root, spec('b.bin'), false)), 'BUSY');
    await p.lock.release();
  });

  it('on a hash mismatch deletes the partial and leaves the old file alone', async () => {
    await writeFile(join(dir, 'old.bin'), 'old');
    const p = await prepareReceive(root, spec('old.bin'), true);
    const sink = await FileSink.open(p, 0);
    await writeAll(sink, content, 0);
    assert.equal(await code(sink.commit('0'.repeat(64))), 'INTEGRITY_MISMATCH');
    await p.lock.release();
    assert.equal(await readFile(join(dir, 'old.bin'), 'utf8'), 'old');
    assert.ok(!(await readdir(dir)).some((f) => f.startsWith('old.bin.')));
  });

  it('on a short file refuses too', async () => {
    const p = await prepareReceive(root, spec('short.bin'), false);
    const sink = await FileSink.open(p, 0);
    await sink.write(content.subarray(0, 10));
    assert.equal(await code(sink.commit(sha(content))), 'INTEGRITY_MISMATCH');
    await p.lock.release();
  });

  it('keeps an abandoned partial, describes it by blocks, and resumes from its end', async () => {
    const p = await prepareReceive(root, spec('r.bin'), false);
    const sink = await FileSink.open(p, 0);
    await sink.write(content.subarray(0, MiB));
    await sink.write(content.subarray(MiB, MiB + 500));
    await sink.abandon(true);
    await p.lock.release();
    const again = await prepareReceive(root, spec('r.bin'), false);
    const info = again.partialState!.info;
    assert.deepEqual(info, {
      blockSize: MiB,
      length: MiB + 500,
      hashes: [sha(content.subarray(0, MiB)), sha(content.subarray(MiB, MiB + 500))],
    });
    const sink2 = await FileSink.open(again, info.length);
    await writeAll(sink2, content, info.length);
    assert.equal(await sink2.commit(sha(content)), sha(content));
    await again.lock.release();
    assert.ok((await readFile(join(dir, 'r.bin'))).equals(content));
  });

  it('resumes a partial only with the peer that left it; another peer starts from zero', async () => {
    const p = await prepareReceive(root, spec('mine.bin'), false);
    const sink = await FileSink.open(p, 0);
    await sink.write(content.subarray(0, MiB + 10));
    await sink.abandon(true);
    await p.lock.release();
    const other = await prepareReceive(root, { ...spec('mine.bin'), peer: 'SHA256:peer-b' }, false);
    assert.equal(other.partialState, undefined, 'no block hashes of peer A reach peer B');
    assert.notEqual(other.partial, p.partial);
    await other.lock.release();
    const again = await prepareReceive(root, spec('mine.bin'), false);
    assert.equal(again.partialState?.info.length, MiB + 10);
    await again.lock.release();
  });

  it('the sender continues from the first block that differs, with the prefix hash carried over', async () => {
    const partial = Buffer.from(content.subarray(0, 2 * MiB + 100));
    partial[MiB + 7] = partial[MiB + 7]! ^ 1; // the second block differs
    await writeFile(partialPath(join(dir, 'm.bin'), PEER), partial);
    const state = (await describePartial(partialPath(join(dir, 'm.bin'), PEER)))!;
    await writeFile(join(dir, 'source.bin'), content);
    const fh = await open(join(dir, 'source.bin'), 'r');
    const { offset, whole } = await matchPrefix(fh, state.info);
    await fh.close();
    assert.equal(offset, MiB);
    assert.equal(whole.copy().update(content.subarray(MiB)).digest('hex'), sha(content));
    // The receiver restarts from that block, hashing its kept prefix again.
    const p = await prepareReceive(root, spec('m.bin'), false);
    const sink = await FileSink.open(p, offset);
    await writeAll(sink, content, offset);
    assert.equal(await sink.commit(sha(content)), sha(content));
    await p.lock.release();
    assert.ok((await readFile(join(dir, 'm.bin'))).equals(content));
  });

  it('ignores a partial longer than the announced file', async () => {
    await writeFile(partialPath(join(dir, 'long.bin'), PEER), randomBytes(100));
    const p = await prepareReceive(root, spec('long.bin', Buffer.alloc(10)), false);
    assert.equal(p.partialState, undefined);
    await p.lock.release();
  });

  it('refuses with DISK_FULL when the file cannot fit', async () => {
    assert.equal(await code(checkSpace(dir, 2 ** 52, 'huge.bin')), 'DISK_FULL');
    assert.equal(
      await code(prepareReceive(root, { ...spec('huge.bin'), size: 2 ** 52 }, false)),
      'DISK_FULL',
    );
    assert.ok(
      !(await readdir(dir)).includes('huge.bin.rcpp2p-lock'),
      'the lock is released on refusal',
    );
  });
});
