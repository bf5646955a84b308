// The Napster-style index on both kinds of rendezvous on loopback (a real OpenSSH sshd and the
// embedded one), no root: the index templates through the rendezvous layer, then real file-server
// processes publishing their folders and `--servers` / `--search` as a user runs them, with
// hostile index files planted in the shared account next to the good ones.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { encodeIndex } from '../../src/index/index-file.js';
import { MAX_INDEX_BYTES, renderRendezvousCommand } from '../../src/rendezvous/commands.js';
import { RendezvousIndexes } from '../../src/rendezvous/index-store.js';
import { RendezvousSession } from '../../src/rendezvous/ssh-session.js';
import { MAX_INDEX_BYTES_PER_ACCOUNT } from '../../src/rendezvous-server/index-commands.js';
import { hasSshd, skipUnless } from '../helpers/capability.js';
import type { ProcessHandle } from '../helpers/processes.js';
import {
  jsonObjects,
  setupIndexPeers,
  startLoopbackRendezvous,
  type IndexPeers,
  type LoopbackKind,
  type LoopbackRendezvous,
} from '../helpers/index-peers.js';

const NEVER = new AbortController().signal;
const KINDS: [LoopbackKind, false | string][] = [
  ['embedded', false],
  ['openssh', skipUnless(hasSshd())],
];

async function openSession(rv: LoopbackRendezvous): Promise<RendezvousSession> {
  const [user, hostPort] = rv.target.split('@') as [string, string];
  const port = Number(hostPort.split(':')[1]);
  return RendezvousSession.open({
    host: '127.0.0.1',
    port,
    user,
    auth: { method: 'key', path: rv.keyFile, privateKey: await readFile(rv.keyFile) },
    knownHostsFile: rv.knownHostsFile,
    localPort: 0,
    portFallback: 'any',
    keepaliveSeconds: 15,
    signal: NEVER,
  });
}

async function indexOf(server: string, paths: string[]): Promise<Buffer> {
  const entries = paths.map((path, n) => ({ path, size: n + 1, mtimeMs: 1_700_000_000_000 }));
  return (await encodeIndex(server, entries, { maxBytes: MAX_INDEX_BYTES, truncated: false })).data;
}

/** A summary line saying `server`, then whatever `body` is. */
function withSummary(server: string, body: Buffer, files = 1, bytes = 1): Buffer {
  const summary = {
    rcpp2p: 'index',
    v: 1,
    server,
    files,
    bytes,
    truncated: false,
    at: new Date().toISOString(),
  };
  return Buffer.concat([Buffer.from(JSON.stringify(summary) + '\n'), body]);
}

for (const [kind, skip] of KINDS) {
  describe(`index files on the ${kind} rendezvous`, { skip }, () => {
    let root: string;
    let rv: LoopbackRendezvous;
    let session: RendezvousSession;
    let store: RendezvousIndexes;
    before(async () => {
      root = await mkdtemp(join(tmpdir(), 'rcpp2p-index-store-'));
      rv = await startLoopbackRendezvous(kind, root);
      session = await openSession(rv);
      store = new RendezvousIndexes(session, rv.dir);
    });
    after(async () => {
      await session?.close();
      await rv?.stop();
      await rm(root, { recursive: true, force: true });
    });

    it('publishes, lists, reads back and removes an index, byte for byte', async () => {
      const data = await indexOf('ASUS', ['a.txt', 'photos/b.jpg']);
      await store.publish('ASUS', data, NEVER);
      const listed = await store.list(NEVER);
      assert.deepEqual(listed.damaged, []);
      const asus = listed.indexes.find((i) => i.name === 'ASUS');
      assert.equal(asus?.bytes, data.length);
      assert.equal(asus?.summary, data.subarray(0, data.indexOf(0x0a)).toString());
      const back = await store.read('ASUS', NEVER);
      assert.equal(back.kind, 'index');
      assert.ok(back.kind === 'index' && back.bytes.equals(data), 'the same bytes');
      await store.remove('ASUS', NEVER);
      assert.deepEqual(await store.read('ASUS', NEVER), { kind: 'none' });
      assert.equal(
        (await store.list(NEVER)).indexes.find((i) => i.name === 'ASUS'),
        undefined,
      );
    });

    it('an upload cut short (fewer bytes than announced) leaves the old index in place', async () => {
      const good = await indexOf('NAS', ['kept.txt']);
      await store.publish('NAS', good, NEVER);
      const command = renderRendezvousCommand({
        op: 'publish-index',
        dir: rv.dir,
        name: 'NAS',
        bytes: good.length + 100,
      });
      const r = await session.exec(command, { signal: NEVER, stdin: good.subarray(0, 10) });
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /index upload incomplete/);
      const back = await store.read('NAS', NEVER);
      assert.ok(back.kind === 'index' && back.bytes.equals(good), 'the old index is intact');
    });

    it('lists hostile entries as damaged lines and stops reading an oversized index', async () => {
      await mkdir(rv.indexesDir, { recursive: true });
      await writeFile(join(rv.indexesDir, 'bad name.idx'), 'x\n');
      await writeFile(join(rv.indexesDir, '.hidden.idx'), 'x\n');
      await mkdir(join(rv.indexesDir, 'FOLDER.idx'), { recursive: true });
      await writeFile(join(rv.indexesDir, 'BINARY.idx'), Buffer.from([0xff, 0x00, 0x1b, 0x9b]));
      await writeFile(join(rv.indexesDir, 'HUGE.idx'), Buffer.alloc(MAX_INDEX_BYTES + 1, 0x41));
      const listed = await store.list(NEVER);
      const names = listed.indexes.map((i) => i.name);
      assert.ok(!names.includes('FOLDER') && !names.includes('hidden'), names.join(' '));
      assert.equal(listed.indexes.find((i) => i.name === 'HUGE')?.bytes, MAX_INDEX_BYTES + 1);
      assert.ok(names.includes('BINARY') && names.includes('NAS'), names.join(' '));
      assert.equal(listed.damaged.length, 1, listed.damaged.join('\n'));
      assert.match(listed.damaged[0] ?? '', /is not one rcpp2p wrote \("index bad name/);
      assert.deepEqual(await store.read('HUGE', NEVER), {
        kind: 'too-large',
        limit: MAX_INDEX_BYTES,
      });
      for (const file of ['bad name.idx', '.hidden.idx', 'BINARY.idx', 'HUGE.idx']) {
        await rm(join(rv.indexesDir, file));
      }
    });

    if (kind === 'embedded') {
      it('refuses an index over the size limit, and more indexes than the account may keep', async () => {
        await assert.rejects(
          session
            .exec(
              renderRendezvousCommand({
                op: 'publish-index',
                dir: rv.dir,
                name: 'BIG',
                bytes: MAX_INDEX_BYTES + 1,
              }),
              { signal: NEVER, stdin: Buffer.alloc(MAX_INDEX_BYTES + 1) },
            )
            .then((r) => {
              if (r.code !== 0) throw new Error(`exit ${r.code}`);
            }),
        );
        const full = withSummary('X', Buffer.alloc(MAX_INDEX_BYTES - 200, 0x20));
        const count = Math.floor(MAX_INDEX_BYTES_PER_ACCOUNT / full.length);
        for (let n = 0; n < count; n++) await store.publish(`FILLER${n}`, full, NEVER);
        await assert.rejects(
          store.publish('ONE-MORE', full, NEVER),
          /indexes would take \d+ bytes, more than its limit/,
        );
        await store.publish('FILLER0', full.subarray(0, 100), NEVER); // replacing one fits
        for (let n = 0; n < count; n++) await store.remove(`FILLER${n}`, NEVER);
      });
    }
  });

  describe(`--servers and --search on the ${kind} rendezvous`, { skip }, () => {
    let peers: IndexPeers;
    let nas: ProcessHandle;
    before(async () => {
      peers = await setupIndexPeers(kind, ['ASUS', 'NAS']);
      const asus = peers.folders.get('ASUS')!;
      const nasDir = peers.folders.get('NAS')!;
      await mkdir(join(asus, 'photos', '2024'), { recursive: true });
      await writeFile(join(asus, 'photos', '2024', 'Beach.jpg'), Buffer.alloc(1500));
      await writeFile(join(asus, 'notes.txt'), 'hello\n');
      await mkdir(join(nasDir, 'backup'), { recursive: true });
      await writeFile(join(nasDir, 'backup', 'taxes-2023.pdf'), Buffer.alloc(4000));
      await peers.startServer('ASUS');
      nas = await peers.startServer('NAS');
    });
    after(async () => {
      await peers?.stop();
    });

    it('--servers lists both servers online with their file counts and sizes', async () => {
      const r = await peers.client(['--servers', '--json']);
      assert.equal(r.code, 0, r.stderr);
      const rows = jsonObjects(r.stdout);
      assert.deepEqual(
        rows.map((o) => [o['server'], o['online'], o['files'], o['bytes']]),
        [
          ['ASUS', true, 2, 1506],
          ['NAS', true, 1, 4000],
        ],
      );
      for (const row of rows) {
        assert.ok(!Number.isNaN(Date.parse(String(row['lastSeen']))), String(row['lastSeen']));
        assert.equal(row['likelyPath'], 'lan', 'both on this machine');
      }
      const human = await peers.client(['--servers']);
      assert.match(human.stdout, /^ {2}ASUS +online +2 +1\.47 KiB +publicly reachable/m);
      assert.match(human.stdout, /2 of 2 file servers online\./);
    });

    it('--search finds a file in a subfolder on the right server only, case-insensitively', async () => {
      const r = await peers.client(['--search', 'beach', '--json']);
      assert.equal(r.code, 0, r.stderr);
      const hits = jsonObjects(r.stdout);
      assert.equal(hits.length, 1, r.stdout);
      assert.equal(hits[0]?.['server'], 'ASUS');
      assert.equal(hits[0]?.['file'], 'photos/2024/Beach.jpg');
      assert.equal(hits[0]?.['bytes'], 1500);
      assert.equal(hits[0]?.['online'], true);
      const human = await peers.client(['--search', 'BEACH']);
      assert.match(human.stdout, /Fetch it with: rcpp2p --get ASUS photos\/2024\/Beach\.jpg$/m);
      const onNas = await peers.client(['--search', 'beach', '--server', 'NAS', '--json']);
      assert.equal(onNas.code, 0, onNas.stderr);
      assert.deepEqual(jsonObjects(onNas.stdout), []);
      const glob = await peers.client(['--search', '*.pdf', '--json']);
      assert.deepEqual(
        jsonObjects(glob.stdout).map((h) => `${String(h['server'])}:${String(h['file'])}`),
        ['NAS:backup/taxes-2023.pdf'],
      );
    });

    it('a file added while the server runs is on the rendezvous within 15 s, and --search finds it', async () => {
      const started = Date.now();
      await writeFile(
        join(peers.folders.get('NAS')!, 'backup', 'new-scan.tiff'),
        Buffer.alloc(321),
      );
      await nas.waitForOutput(/Index published: 2 files/, 15_000);
      const publishedMs = Date.now() - started;
      const hits = jsonObjects((await peers.client(['--search', 'new-scan', '--json'])).stdout);
      assert.deepEqual(
        hits.map((h) => [h['server'], h['file'], h['bytes']]),
        [['NAS', 'backup/new-scan.tiff', 321]],
        `published after ${publishedMs} ms`,
      );
    });

    it('hostile indexes are refused with one line each and the others still list', async () => {
      const dir = peers.rv.indexesDir;
      const planted = {
        'EVIL-NAMES.idx': withSummary(
          'EVIL-NAMES',
          gzipSync(JSON.stringify({ p: '../../etc/passwd', s: 1, m: 0 }) + '\n'),
        ),
        'EVIL-SIZE.idx': withSummary(
          'EVIL-SIZE',
          gzipSync(JSON.stringify({ p: 'beach.iso', s: 1e300, m: 0 }) + '\n'),
        ),
        'EVIL-HUGE.idx': withSummary('EVIL-HUGE', Buffer.alloc(MAX_INDEX_BYTES + 10, 0x41)),
        'EVIL-SUMMARY.idx': Buffer.from('{"rcpp2p":"index","v":1,"files":"many"}\n'),
      };
      for (const [file, data] of Object.entries(planted)) await writeFile(join(dir, file), data);
      try {
        const servers = await peers.client(['--servers', '--json']);
        assert.equal(servers.code, 0, servers.stderr);
        const rows = jsonObjects(servers.stdout);
        assert.deepEqual(
          rows.filter((o) => o['online'] === true).map((o) => [o['server'], o['files']]),
          [
            ['ASUS', 2],
            ['NAS', 2],
          ],
        );
        assert.match(servers.stderr, /The index of EVIL-HUGE on the rendezvous is larger than/);
        assert.match(servers.stderr, /The index of EVIL-SUMMARY on the rendezvous is damaged/);

        const search = await peers.client(['--search', 'beach', '--json']);
        assert.equal(search.code, 0, search.stderr);
        assert.deepEqual(
          jsonObjects(search.stdout).map((h) => h['server']),
          ['ASUS'],
        );
        const lines = search.stderr.split('\n');
        const about = (name: string): string[] =>
          lines.filter((l) => l.includes(`The index of ${name} `));
        assert.match(
          about('EVIL-NAMES').join('\n'),
          /entry 1: the path "..\/..\/etc\/passwd" goes up/,
        );
        assert.match(about('EVIL-SIZE').join('\n'), /entry 1: s must be a whole number/);
        assert.match(
          about('EVIL-HUGE').join('\n'),
          /larger than 8\.00 MiB, more than rcpp2p reads/,
        );
        assert.match(about('EVIL-SUMMARY').join('\n'), /damaged/);
        for (const name of ['EVIL-NAMES', 'EVIL-SIZE', 'EVIL-HUGE', 'EVIL-SUMMARY']) {
          assert.equal(about(name).length, 1, `one line about ${name}:\n${search.stderr}`);
        }
      } finally {
        for (const file of Object.keys(planted)) await rm(join(dir, file), { force: true });
      }
    });

    it('a stopped server is listed offline and its files are still found, marked offline', async () => {
      const stopped = await peers.stopServer('NAS');
      assert.equal(stopped.code, 0, 'stopped cleanly, as after Ctrl-C');
      const servers = jsonObjects((await peers.client(['--servers', '--json'])).stdout);
      const nas = servers.find((o) => o['server'] === 'NAS');
      assert.equal(nas?.['online'], false);
      assert.ok(Number(nas?.['files']) >= 1, 'its index stays');
      const human = await peers.client(['--search', 'taxes']);
      assert.match(human.stdout, /NAS +backup\/taxes-2023\.pdf .*\(offline\)$/m);
      assert.match(human.stdout, /Fetch it once NAS is back \(offline, last seen/);
    });

    it('a server that stops publishing removes its index from the rendezvous', async () => {
      await peers.reconfigure('NAS', ['--publish-index', 'no']);
      const nasAgain = await peers.startServer('NAS', /Signaling: /);
      const deadline = Date.now() + 15_000;
      let nas: Record<string, unknown> | undefined;
      while (Date.now() < deadline) {
        const rows = jsonObjects((await peers.client(['--servers', '--json'])).stdout);
        nas = rows.find((o) => o['server'] === 'NAS');
        if (nas?.['indexed'] === false) break;
      }
      assert.equal(nas?.['online'], true);
      assert.equal(nas?.['indexed'], false, JSON.stringify(nas));
      assert.equal(nas?.['files'], null);
      const search = await peers.client(['--search', 'taxes', '--server', 'NAS']);
      assert.equal(search.code, 4, search.stderr);
      assert.match(search.stderr, /File server NAS publishes no index to search\./);
      assert.doesNotMatch(nasAgain.stderr(), /Index/);
    });
  });
}
