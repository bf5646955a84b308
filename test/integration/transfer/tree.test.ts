// A tree of 1,000 small files in nested folders goes both ways exactly, and the number of round trips
// does not grow with the number of files: a proxy records the conversation and the turns in which
// the client waits for the server are counted, for 1,000 files and for 10. The proxy also holds back
// every per-file confirmation until the receiver's done: a sender that waited for one would stall.
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
  type ProxyFrame,
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

/** Keeps the receiver's per-file confirmations back until its next other message (its done). */
function holdConfirmations(frame: ProxyFrame): 'hold' | undefined {
  return frame.kind === 'control' && (frame.msg.t === 'file-ok' || frame.msg.t === 'file-error')
    ? 'hold'
    : undefined;
}

/**
 * Round trips of one command, from the proxy's log: the turns in which the server speaks after the
 * client did (the client waits for each). The receiver's per-file confirmations (file-ok,
 * file-error) are left out: they travel while the sender goes on and make nobody wait.
 */
function roundTrips(log: { way: 'toServer' | 'toClient'; t: string }[], command: string): number {
  const from = log.findIndex((e) => e.way === 'toServer' && e.t === command);
  assert.ok(from >= 0, `no ${command} on the wire`);
  let turns = 0;
  let speaking: string | undefined;
  for (const { way, t } of log.slice(from)) {
    if (t === 'file-ok' || t === 'file-error' || t === 'keepalive') continue;
    if (way !== speaking && way === 'toClient') turns++;
    speaking = way;
  }
  return turns;
}

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

  async function getVia(what: string, into: string) {
    const proxy = await startProxy(srv.port, {
      onFrame: { direction: 'toServer', rewrite: holdConfirmations },
    });
    const client = await openClient(proxy.port);
    await mkdir(into, { recursive: true });
    const results = await client.get([what], into);
    await client.close();
    await proxy.close();
    return { results, toServer: proxy.toServer, toClient: proxy.toClient, log: proxy.log };
  }

  it('round-trips exactly with get (names, sizes, contents, mtimes), in a constant number of requests', async () => {
    const into = join(local.path, 'got');
    const run = await getVia('tree', into);
    assert.equal(run.results.length, 1000);
    assert.ok(
      run.results.every((r) => r.ok),
      JSON.stringify(run.results.find((r) => !r.ok)),
    );
    assert.deepEqual(await snapshot(join(into, 'tree')), await snapshot(join(work.path, 'tree')));

    const few = await getVia('small', join(local.path, 'got-small'));
    const requests = (types: string[]) => types.filter((t) => ROUND_TRIP_REQUESTS.has(t)).length;
    assert.equal(
      requests(run.toServer),
      2,
      `client requests: ${JSON.stringify(tally(run.toServer))}`,
    );
    assert.equal(requests(run.toServer), requests(few.toServer));
    assert.equal(tally(run.toClient)['manifest'], 1);
    assert.equal(tally(run.toClient)['file'], 1000);
    // get -> manifest, accept -> files and done: two round trips for 1,000 files as for 10.
    assert.equal(roundTrips(run.log, 'get'), 2);
    assert.equal(roundTrips(few.log, 'get'), 2);
  });

  it('round-trips exactly with put, in a constant number of requests and round trips', async () => {
    const src = join(local.path, 'got', 'tree');
    await mkdir(join(work.path, 'back'));
    const put = async (what: string, dir: string) => {
      await mkdir(join(work.path, dir), { recursive: true });
      const proxy = await startProxy(srv.port, {
        onFrame: { direction: 'toClient', rewrite: holdConfirmations },
      });
      const client = await openClient(proxy.port);
      const results = await client.put([what], dir);
      await client.close();
      await proxy.close();
      return { results, toServer: proxy.toServer, toClient: proxy.toClient, log: proxy.log };
    };
    const fast = await put(src, 'back');
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
    // put -> accept, files and done -> done: two round trips for 1,000 files as for 10.
    const few = await put(join(work.path, 'small'), 'back-small');
    assert.ok(few.results.every((r) => r.ok));
    assert.equal(roundTrips(fast.log, 'put'), 2);
    assert.equal(roundTrips(few.log, 'put'), 2);
  });
});
