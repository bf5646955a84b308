// The index publisher on a real folder with real watches, its sink a recorder instead of the
// rendezvous: what it sends, when, and what it leaves alone (rcpp2p's own partial files, changes
// that change nothing), and that close() leaves no timer or watch behind.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { appendFile, mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { decodeIndex, type IndexContent } from '../../src/index/index-file.js';
import { FolderWatch } from '../../src/index/folder-watch.js';
import { IndexPublisher, type IndexEvent } from '../../src/index/publisher.js';
import { DEFAULT_RESCAN_TIMING } from '../../src/index/rescan-timing.js';

const FAST = { ...DEFAULT_RESCAN_TIMING, quietMs: 100, maxWaitMs: 400 };

interface Recorder {
  published: IndexContent[];
  events: IndexEvent[];
  /** Resolves with the n-th published index (1-based), within ms. */
  nth(n: number, ms?: number): Promise<IndexContent>;
}

function recorder(): Recorder & { sink: (data: Buffer) => Promise<void> } {
  const published: IndexContent[] = [];
  const waiting: { n: number; resolve: (c: IndexContent) => void }[] = [];
  const r = {
    published,
    events: [] as IndexEvent[],
    async sink(data: Buffer): Promise<void> {
      published.push(await decodeIndex(data, 'ASUS'));
      for (const w of waiting.filter((w) => w.n <= published.length))
        w.resolve(published[w.n - 1]!);
    },
    nth(n: number, ms = 10_000): Promise<IndexContent> {
      if (published.length >= n) return Promise.resolve(published[n - 1]!);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`index ${n} was not published within ${ms} ms`)),
          ms,
        );
        waiting.push({
          n,
          resolve: (c) => {
            clearTimeout(timer);
            resolve(c);
          },
        });
      });
    },
  };
  return r;
}

const paths = (c: IndexContent): string[] => c.entries.map((e) => e.path);

/** inotify watches this process holds (Linux: /proc/self/fdinfo of its inotify descriptors). */
function inotifyWatches(): number {
  let count = 0;
  for (const fd of readdirSync('/proc/self/fd')) {
    let target = '';
    try {
      target = readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      continue;
    }
    if (!target.includes('inotify')) continue;
    const info = readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8');
    count += info.split('\n').filter((l) => l.startsWith('inotify wd:')).length;
  }
  return count;
}

describe('index publisher on a real folder', () => {
  let dir: string;
  let publisher: IndexPublisher | undefined;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rcpp2p-publisher-'));
  });
  afterEach(async () => {
    await publisher?.close();
    await rm(dir, { recursive: true, force: true });
  });

  function start(r: ReturnType<typeof recorder>, maxBytes = 1 << 20): IndexPublisher {
    publisher = new IndexPublisher({
      workDir: dir,
      serverName: 'ASUS',
      maxBytes,
      timing: FAST,
      onEvent: (e) => r.events.push(e),
    });
    publisher.start();
    publisher.attach((data) => r.sink(data), new AbortController().signal);
    return publisher;
  }

  it('publishes at start, then again after a file appears in a new subfolder', async () => {
    await writeFile(join(dir, 'a.txt'), 'a');
    const r = recorder();
    start(r);
    assert.deepEqual(paths(await r.nth(1)), ['a.txt']);
    await mkdir(join(dir, 'new', 'deeper'), { recursive: true });
    await writeFile(join(dir, 'new', 'deeper', 'b.txt'), 'bb');
    let latest = await r.nth(2);
    // The folder may be published before the file in it: wait for the one that has it.
    for (let n = 3; !paths(latest).includes('new/deeper/b.txt'); n++) latest = await r.nth(n);
    assert.deepEqual(paths(latest), ['a.txt', 'new/deeper/b.txt']);
    // The new folder is watched now: a file written there later is seen too.
    const before = r.published.length;
    await writeFile(join(dir, 'new', 'deeper', 'c.txt'), 'c');
    let after = await r.nth(before + 1);
    for (let n = before + 2; !paths(after).includes('new/deeper/c.txt'); n++) {
      after = await r.nth(n);
    }
    assert.ok(paths(after).includes('new/deeper/c.txt'));
  });

  it('an upload in progress (a .rcpp2p-partial file) is not published until it is renamed', async () => {
    const r = recorder();
    start(r);
    await r.nth(1);
    const partial = join(dir, 'movie.mp4.rcpp2p-partial');
    for (let i = 0; i < 10; i++) {
      await appendFile(partial, Buffer.alloc(64 * 1024));
      await delay(50);
    }
    await delay(FAST.maxWaitMs + 300);
    assert.equal(r.published.length, 1, 'nothing published while the partial grew');
    assert.equal(
      r.events.filter((e) => e.type === 'index:scanned').length,
      1,
      'not even a rescan: the watch ignores rcpp2p partial files',
    );
    await rename(partial, join(dir, 'movie.mp4'));
    assert.deepEqual(paths(await r.nth(2)), ['movie.mp4']);
  });

  it('a change that changes nothing (a file made and removed) sends nothing', async () => {
    await writeFile(join(dir, 'keep.txt'), 'k');
    const r = recorder();
    start(r);
    await r.nth(1);
    await writeFile(join(dir, 'tmp.txt'), 't');
    await rm(join(dir, 'tmp.txt'));
    // Wait until the rescan the change caused has run.
    const scans = (): number => r.events.filter((e) => e.type === 'index:scanned').length;
    const deadline = Date.now() + 5000;
    while (scans() < 2 && Date.now() < deadline) await delay(50);
    assert.ok(scans() >= 2, 'the change caused a rescan');
    assert.equal(r.published.length, 1);
  });

  it('reports a sink failure, and publishes the same index to the next session', async () => {
    await writeFile(join(dir, 'a.txt'), 'a');
    const events: IndexEvent[] = [];
    publisher = new IndexPublisher({
      workDir: dir,
      serverName: 'ASUS',
      maxBytes: 1 << 20,
      timing: FAST,
      onEvent: (e) => events.push(e),
    });
    publisher.start();
    publisher.attach(
      () => Promise.reject(new Error('quota exceeded')),
      new AbortController().signal,
    );
    const deadline = Date.now() + 5000;
    while (!events.some((e) => e.type === 'index:publish-failed') && Date.now() < deadline) {
      await delay(20);
    }
    const failed = events.find((e) => e.type === 'index:publish-failed');
    assert.ok(failed?.type === 'index:publish-failed' && /quota exceeded/.test(failed.message));
    const r = recorder();
    publisher.attach((data) => r.sink(data), new AbortController().signal);
    assert.deepEqual(paths(await r.nth(1)), ['a.txt']);
  });

  it('a session that ended gets nothing more; close() stops scanning and watching', async () => {
    const r = recorder();
    const session = new AbortController();
    publisher = new IndexPublisher({
      workDir: dir,
      serverName: 'ASUS',
      maxBytes: 1 << 20,
      timing: FAST,
    });
    publisher.start();
    publisher.attach((data) => r.sink(data), session.signal);
    await r.nth(1);
    session.abort();
    await writeFile(join(dir, 'late.txt'), 'x');
    await delay(FAST.maxWaitMs + 300);
    assert.equal(r.published.length, 1, 'the ended session got nothing');
    assert.ok(inotifyWatches() > 0, 'the folder was watched');
    await publisher.close();
    await publisher.close(); // idempotent
    assert.equal(inotifyWatches(), 0, 'no watch left after close()');
  });

  it('keeps to the byte limit: the end of the list is left out and the summary says truncated', async () => {
    await mkdir(join(dir, 'many'));
    for (let i = 0; i < 3000; i++) {
      await writeFile(join(dir, 'many', `file-${i}-${(i * 2654435761) >>> 0}.bin`), '');
    }
    const r = recorder();
    start(r, 20_000);
    const index = await r.nth(1);
    assert.equal(index.summary.truncated, true);
    assert.ok(index.entries.length > 100 && index.entries.length < 3000, `${index.entries.length}`);
  });
});

describe('folder watch', () => {
  it('watches at most maxWatches folders and says how many it covers', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'rcpp2p-watch-'));
    const folders = ['a', 'b', 'c'].map((n) => join(dir, n));
    for (const f of folders) await mkdir(f);
    let changes = 0;
    const watch = new FolderWatch(() => changes++, { maxWatches: 2, perFolder: true });
    try {
      assert.deepEqual(watch.update(folders), { watched: 2, folders: 3 });
      await writeFile(join(folders[2]!, 'unwatched.txt'), 'x');
      await delay(300);
      assert.equal(changes, 0, 'the third folder is past the limit');
      await writeFile(join(folders[0]!, 'watched.txt'), 'x');
      const deadline = Date.now() + 3000;
      while (changes === 0 && Date.now() < deadline) await delay(20);
      assert.ok(changes > 0, 'a change in a watched folder is seen');
      assert.deepEqual(watch.update(folders.slice(1)), { watched: 2, folders: 2 });
    } finally {
      watch.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
