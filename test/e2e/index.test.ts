// The Napster-style index in the NAT lab: two file servers behind one NAT (ASUS and NAS, two
// rcpp2p processes on the server host), a client behind another, a real rendezvous. The client
// sees both servers and where their files are without connecting to either; a stopped server is
// listed offline; a file added while a server runs is found within 15 s; hostile index files in
// the shared account are refused one line each and the others still list. The short scenario runs
// again on the rendezvous kinds without forwarding and the embedded one.
// Run alone: node test/run.js e2e/index
import assert from 'node:assert/strict';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { MAX_INDEX_BYTES } from '../../src/rendezvous/commands.js';
import { canMakeNetns, hasSshd, skipUnless } from '../helpers/capability.js';
import { createLab, type Lab } from '../helpers/nat-lab.js';
import type { RendezvousKind } from '../helpers/lab-rendezvous.js';
import {
  describeRun,
  jsonLines,
  RCPP2P_BIN,
  setupLabPeers,
  type LabPeers,
} from '../helpers/lab-peers.js';
import type { ProcessHandle } from '../helpers/processes.js';

const skip = skipUnless(canMakeNetns(), hasSshd());
const FOUND_WITHIN_MS = 15_000;

interface IndexLab {
  lab: Lab;
  peers: LabPeers;
  nasDir: string;
  servers: Map<string, ProcessHandle>;
  startServer(name: 'ASUS' | 'NAS'): Promise<ProcessHandle>;
  close(): Promise<void>;
}

/** A lab with ASUS and NAS (publishIndex yes) on the server host, and their files. */
async function openIndexLab(rendezvous: RendezvousKind): Promise<IndexLab> {
  const lab = await createLab({ server: 'drop', client: 'drop', rendezvous });
  try {
    const peers = await setupLabPeers(lab);
    const nasDir = join(peers.dir, 'nas-files');
    await mkdir(nasDir);
    const configs = { ASUS: peers.serverConfig, NAS: join(peers.dir, 'nas.json') };
    await peers.configure(configs.ASUS, [
      '--server-name',
      'ASUS',
      '--port',
      '40001',
      '--dir',
      peers.workDir,
      '--publish-index',
      'yes',
    ]);
    await peers.configure(configs.NAS, [
      '--server-name',
      'NAS',
      '--port',
      '40003',
      '--dir',
      nasDir,
      '--publish-index',
      'yes',
    ]);
    await mkdir(join(peers.workDir, 'photos', '2024'), { recursive: true });
    await writeFile(join(peers.workDir, 'photos', '2024', 'beach.jpg'), Buffer.alloc(2048, 1));
    await writeFile(join(peers.workDir, 'readme.txt'), 'ASUS\n');
    await mkdir(join(nasDir, 'backup'), { recursive: true });
    await writeFile(join(nasDir, 'backup', 'taxes-2023.pdf'), Buffer.alloc(9000, 2));
    const servers = new Map<string, ProcessHandle>();
    return {
      lab,
      peers,
      nasDir,
      servers,
      async startServer(name) {
        const server = lab.spawn(
          'server',
          process.execPath,
          [RCPP2P_BIN, '--config', configs[name]],
          {
            cwd: name === 'ASUS' ? peers.workDir : nasDir,
            env: { ...process.env, RCPP2P_DEBUG: process.env['RCPP2P_DEBUG'] ?? '' },
          },
        );
        servers.set(name, server);
        await server.waitForOutput(/Index published: /, 30_000);
        return server;
      },
      async close() {
        await lab.close();
        await peers.cleanup();
      },
    };
  } catch (err) {
    await lab.close();
    throw err;
  }
}

describe('--servers and --search in the NAT lab (OpenSSH rendezvous)', { skip }, () => {
  let t: IndexLab;
  before(async () => {
    t = await openIndexLab('openssh');
    await t.startServer('ASUS');
    await t.startServer('NAS');
  });
  after(async () => {
    await t?.close();
  });

  it('--servers lists both servers online, with their NAT, the likely path and their index', async () => {
    const r = await t.peers.client(['--servers', '--json']);
    assert.equal(r.code, 0, describeRun(r));
    const rows = jsonLines(r.stdout);
    assert.deepEqual(
      rows.map((o) => [o['server'], o['online'], o['files'], o['bytes'], o['nat']]),
      [
        ['ASUS', true, 2, 2053, 'port-preserving'],
        ['NAS', true, 1, 9000, 'port-preserving'],
      ],
    );
    for (const row of rows) {
      assert.equal(row['likelyPath'], 'direct');
      assert.equal(row['likelyPathReason'], 'simultaneous open through both NATs');
    }
    const human = await t.peers.client(['--servers']);
    assert.match(human.stdout, /this peer: NAT keeps ports/);
    assert.match(
      human.stdout,
      /^ {2}NAS +online +1 +8\.79 KiB +NAT keeps ports +direct \(simultaneous open through both NATs\)$/m,
    );
    assert.doesNotMatch(human.stderr, /Connected:/, 'no connection to a file server');
  });

  it('--search finds the file in a subfolder on the right server and not on the other', async () => {
    const r = await t.peers.client(['--search', 'beach', '--json']);
    assert.equal(r.code, 0, describeRun(r));
    assert.deepEqual(
      jsonLines(r.stdout).map((h) => [h['server'], h['file'], h['bytes'], h['online']]),
      [['ASUS', 'photos/2024/beach.jpg', 2048, true]],
    );
    const onNas = await t.peers.client(['--search', 'beach', '--server', 'NAS', '--json']);
    assert.equal(onNas.code, 0, describeRun(onNas));
    assert.deepEqual(jsonLines(onNas.stdout), []);
    const human = await t.peers.client(['--search', 'BEACH']);
    assert.match(
      human.stdout,
      /^ {2}ASUS {2}photos\/2024\/beach\.jpg {2}2\.00 KiB {2}\d{4}-\d\d-\d\d \d\d:\d\d$/m,
    );
    assert.match(human.stdout, /^Fetch it with: rcpp2p --get ASUS photos\/2024\/beach\.jpg$/m);
  });

  it('a file added while a server runs is on the rendezvous within 15 s, and --search finds it', async () => {
    const nas = t.servers.get('NAS');
    assert.ok(nas);
    const started = Date.now();
    await writeFile(join(t.nasDir, 'backup', 'scan 0042.tiff'), Buffer.alloc(777, 3));
    await nas.waitForOutput(/Index published: 2 files/, FOUND_WITHIN_MS);
    const publishedMs = Date.now() - started;
    const r = await t.peers.client(['--search', 'scan 00', '--json']);
    assert.deepEqual(
      jsonLines(r.stdout).map((h) => [h['server'], h['file'], h['bytes']]),
      [['NAS', 'backup/scan 0042.tiff', 777]],
      `published ${publishedMs} ms after the write, yet not found: ${describeRun(r)}`,
    );
    const one = await t.peers.client(['--search', 'scan 0042']);
    assert.match(one.stdout, /^Fetch it with: rcpp2p --get NAS 'backup\/scan 0042\.tiff'$/m);
  });

  it('hostile indexes (bad names, huge sizes, an oversized file) are refused, one clear line each', async () => {
    const dir = join(t.lab.rendezvous.rendezvousDirOnDisk, 'indexes');
    const summary = (server: string): string =>
      JSON.stringify({
        rcpp2p: 'index',
        v: 1,
        server,
        files: 1,
        bytes: 1,
        truncated: false,
        at: new Date().toISOString(),
      }) + '\n';
    const planted: Record<string, Buffer> = {
      'BADNAMES.idx': Buffer.concat([
        Buffer.from(summary('BADNAMES')),
        gzipSync(JSON.stringify({ p: '../../root/.ssh/id_ed25519', s: 1, m: 0 }) + '\n'),
      ]),
      'HUGESIZE.idx': Buffer.concat([
        Buffer.from(summary('HUGESIZE').replace('"bytes":1', '"bytes":1e300')),
        gzipSync(JSON.stringify({ p: 'beach.iso', s: 1e300, m: 0 }) + '\n'),
      ]),
      'OVERSIZED.idx': Buffer.concat([
        Buffer.from(summary('OVERSIZED')),
        Buffer.alloc(MAX_INDEX_BYTES + 1024, 0x41),
      ]),
    };
    for (const [file, data] of Object.entries(planted)) {
      await writeFile(join(dir, file), data, { mode: 0o600 });
    }
    try {
      const servers = await t.peers.client(['--servers', '--json']);
      assert.equal(servers.code, 0, describeRun(servers));
      assert.deepEqual(
        jsonLines(servers.stdout)
          .filter((o) => o['online'] === true)
          .map((o) => o['server']),
        ['ASUS', 'NAS'],
      );
      assert.match(
        servers.stderr,
        /^The index of HUGESIZE on the rendezvous is damaged \(bytes must be a whole number/m,
      );
      assert.match(
        servers.stderr,
        /^The index of OVERSIZED on the rendezvous is larger than 8\.00 MiB/m,
      );

      const search = await t.peers.client(['--search', 'beach', '--json']);
      assert.equal(search.code, 0, describeRun(search));
      assert.deepEqual(
        jsonLines(search.stdout).map((h) => `${String(h['server'])}:${String(h['file'])}`),
        ['ASUS:photos/2024/beach.jpg'],
      );
      const lines = search.stderr.split('\n');
      const about = (name: string): string[] =>
        lines.filter((l) => l.startsWith(`The index of ${name} `));
      assert.match(
        about('BADNAMES').join('\n'),
        /damaged \(entry 1: the path "..\/..\/root\/.ssh\/id_ed25519" goes up with ".."\); it is left out\./,
      );
      assert.match(about('HUGESIZE').join('\n'), /bytes must be a whole number/);
      assert.match(about('OVERSIZED').join('\n'), /more than rcpp2p reads; it is left out\./);
      for (const name of ['BADNAMES', 'HUGESIZE', 'OVERSIZED']) {
        assert.equal(about(name).length, 1, `one line about ${name}:\n${search.stderr}`);
      }
    } finally {
      for (const file of Object.keys(planted)) await rm(join(dir, file), { force: true });
    }
  });

  it('after NAS stops it is listed offline, and its files are still found, marked offline', async () => {
    const nas = t.servers.get('NAS');
    assert.ok(nas);
    const exit = await nas.kill(10_000);
    assert.equal(exit.code, 0, nas.stderr());
    const servers = await t.peers.client(['--servers', '--json']);
    const rows = new Map(jsonLines(servers.stdout).map((o) => [o['server'], o]));
    assert.equal(rows.get('ASUS')?.['online'], true);
    assert.equal(rows.get('NAS')?.['online'], false);
    assert.equal(rows.get('NAS')?.['files'], 2, 'its index stays on the rendezvous');
    const human = await t.peers.client(['--servers']);
    assert.match(human.stdout, /^ {2}NAS +offline, last seen (just now|\d+ seconds ago) /m);
    assert.match(human.stdout, /1 of 2 file servers online\./);
    const search = await t.peers.client(['--search', 'taxes']);
    assert.match(search.stdout, /^ {2}NAS {2}backup\/taxes-2023\.pdf .*\(offline\)$/m);
  });
});

for (const kind of ['openssh-no-forwarding', 'embedded'] as const) {
  describe(`--servers and --search in the NAT lab (${kind} rendezvous)`, { skip }, () => {
    let t: IndexLab;
    before(async () => {
      t = await openIndexLab(kind);
    });
    after(async () => {
      await t?.close();
    });

    it('both servers publish, are listed online, and a search finds the right one', async () => {
      const asus = await t.startServer('ASUS');
      await t.startServer('NAS');
      // (without forwarding, live signaling goes through a remote command on the rendezvous)
      assert.match(asus.stderr(), /Signaling: live channel/);
      const servers = await t.peers.client(['--servers', '--json']);
      assert.equal(servers.code, 0, describeRun(servers));
      const rows = jsonLines(servers.stdout);
      assert.deepEqual(
        rows.map((o) => [o['server'], o['online'], o['files']]),
        [
          ['ASUS', true, 2],
          ['NAS', true, 1],
        ],
      );
      assert.equal(rows[0]?.['likelyPath'], 'direct');
      const search = await t.peers.client(['--search', '*.pdf', '--json']);
      assert.deepEqual(
        jsonLines(search.stdout).map((h) => [h['server'], h['file']]),
        [['NAS', 'backup/taxes-2023.pdf']],
      );
    });
  });
}
