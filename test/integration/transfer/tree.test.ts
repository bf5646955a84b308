// A tree of 1,000 small files in nested folders goes both ways exactly, and the number of round trips
// does not grow with the number of files: the requests that wait for an answer are counted on the
// wire, and a proxy adding 50 ms each way shows the added time is a few round trips, not one per file.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, readdir, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  openClient,
  startProxy,
  startServer,
  tally,
  tempDir,
  type RunningServer,
} from './helpers.js';

interface Snapshot {
  [path: string]: { size: number; sha: string; mtimeMs: number } | 'dir';
}

async function snapshot(root: string, rel = ''): Promise<Snapshot> {
  const out: Snapshot = {};
  for (const ent of await readdir(join(root, rel), { withFileTypes: true })) {
    const p = rel ? `${rel}/${ent.name}` : ent.name;
    if (ent.isDirectory()) {
      out[p] = 'dir';
      Object.assign(out, await snapshot(root, p));
    } else {
      const buf = await readFile(join(root, p));
      const st = await stat(join(root, p));
      out[p] = {
        size: buf.length,
        sha: createHash('sha256').update(buf).digest('hex'),
        mtimeMs: Math.round(st.mtimeMs),
      };
    }
  }
  return out;
}

async function makeTree(root: string, files: number): Promise<void> {
  for (let n = 0; n < files; n++) {
    const dir = join(
      root,
      `d${n % 10}`,
      `s${Math.floor(n / 10) % 10}`,
      n % 3 === 0 ? 'deeper' : '',
    );
    await mkdir(dir, { recursive: true });
    const path = join(dir, `file-${n}.txt`);
    await writeFile(path, randomBytes(n % 4096));
    const t = Date.UTC(2020, 0, 1) + n * 1000 + 123;
    await utimes(path, t / 1000, t / 1000);
  }
  await mkdir(join(root, 'empty-folder'));
}

const ROUND_TRIP_REQUESTS = new Set(['get', 'put', 'accept', 'list']);

describe('a tree of 1,000 small files', () => {
  let work: { path: string; cleanup: () => Promise<void> };
  let local: { path: string; cleanup: () => Promise<void> };
  let srv: RunningServer;

  before(async () => {
    work = await tempDir('tree-work');
    local = await tempDir('tree-local');
    await makeTree(join(work.path, 'tree'), 1000);
    await makeTree(join(work.path, 'small'), 10);
    srv = await startServer({ workDir: work.path });
  });
  after(async () => {
    await srv.close();
    await work.cleanup();
    await local.cleanup();
  });

  async function getVia(latencyMs: number, what: string, into: string) {
    const proxy = await startProxy(srv.port, { latencyMs });
    const client = await openClient(proxy.port);
    await mkdir(into, { recursive: true });
    const t0 = Date.now();
    const results = await client.get([what], into);
    const ms = Date.now() - t0;
    await client.close();
    await proxy.close();
    return { results, ms, toServer: proxy.toServer, toClient: proxy.toClient };
  }

  it('round-trips exactly with get (names, sizes, contents, mtimes), in a constant number of requests', async () => {
    const into = join(local.path, 'got');
    const run = await getVia(0, 'tree', into);
    assert.equal(run.results.length, 1000);
    assert.ok(
      run.results.every((r) => r.ok),
      JSON.stringify(run.results.find((r) => !r.ok)),
    );
    assert.deepEqual(await snapshot(join(into, 'tree')), await snapshot(join(work.path, 'tree')));

    const few = await getVia(0, 'small', join(local.path, 'got-small'));
    const requests = (types: string[]) => types.filter((t) => ROUND_TRIP_REQUESTS.has(t)).length;
    assert.equal(
      requests(run.toServer),
      2,
      `client requests: ${JSON.stringify(tally(run.toServer))}`,
    );
    assert.equal(requests(run.toServer), requests(few.toServer));
    assert.equal(tally(run.toClient)['manifest'], 1);
    assert.equal(tally(run.toClient)['file'], 1000);
  });

  it('adds only a few round trips of latency for 1,000 files (get)', async () => {
    const base = await getVia(0, 'tree', join(local.path, 'lat0'));
    const slow = await getVia(50, 'tree', join(local.path, 'lat50'));
    assert.ok(slow.results.every((r) => r.ok));
    const extra = slow.ms - base.ms;
    // One round trip per file would add 1,000 x 100 ms = 100 s.
    assert.ok(extra < 20 * 100, `100 ms round trips added ${extra} ms (${base.ms} -> ${slow.ms})`);
  });

  it('round-trips exactly with put, in a constant number of requests and round trips', async () => {
    const src = join(local.path, 'got', 'tree');
    await mkdir(join(work.path, 'back'));
    const put = async (latencyMs: number, dir: string) => {
      await mkdir(join(work.path, dir), { recursive: true });
      const proxy = await startProxy(srv.port, { latencyMs });
      const client = await openClient(proxy.port);
      const t0 = Date.now();
      const results = await client.put([src], dir);
      const ms = Date.now() - t0;
      await client.close();
      await proxy.close();
      return { results, ms, toServer: proxy.toServer, toClient: proxy.toClient };
    };
    const fast = await put(0, 'back');
    assert.equal(fast.results.length, 1000);
    assert.ok(
      fast.results.every((r) => r.ok),
      JSON.stringify(fast.results.find((r) => !r.ok)),
    );
    assert.deepEqual(
      await snapshot(join(work.path, 'back', 'tree')),
      await snapshot(join(work.path, 'tree')),
    );
    assert.deepEqual(
      fast.toServer.filter((t) => ROUND_TRIP_REQUESTS.has(t)),
      ['put'],
      `client messages: ${JSON.stringify(tally(fast.toServer))}`,
    );
    assert.equal(tally(fast.toClient)['accept'], 1);
    const slow = await put(50, 'back-slow');
    assert.ok(slow.results.every((r) => r.ok));
    assert.ok(slow.ms - fast.ms < 20 * 100, `100 ms round trips added ${slow.ms - fast.ms} ms`);
  });
});
