// Security through the NAT lab with real processes: strangers get nothing, a peer whose key does not
// match its record is refused on both sides, a changed rendezvous host key is refused like ssh does,
// hostile names are refused, and the bytes on the wire are not the file's bytes.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile, readdir, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { canMakeNetns, hasCommand, hasSshd, skipUnless } from '../helpers/capability.js';
import { createLab, type Lab } from '../helpers/nat-lab.js';
import {
  describeRun,
  jsonLines,
  RCPP2P_BIN,
  setupLabPeers,
  sha256File,
  writeRandomFile,
  type LabPeers,
} from '../helpers/lab-peers.js';
import type { ProcessHandle } from '../helpers/processes.js';

/** The hand-speaking client (raw-get.ts, compiled beside this file). */
const RAW_GET = fileURLToPath(new URL('./raw-get.js', import.meta.url));

const skip = skipUnless(
  canMakeNetns(),
  hasSshd(),
  hasCommand('/usr/bin/tcpdump', 'Debian package tcpdump'),
);

describe('security in the NAT lab', { skip }, () => {
  let lab: Lab;
  let peers: LabPeers;
  let server: ProcessHandle;

  before(async () => {
    lab = await createLab({ server: 'public', client: 'drop' });
    peers = await setupLabPeers(lab);
    server = await peers.startServer();
  });

  after(async () => {
    await server?.kill(3000);
    await lab?.close();
    await peers?.cleanup();
  });

  it('a stranger that connects to the server’s published address and port gets no data, and the server keeps serving', async () => {
    const probe = await lab.tcpConnect('stranger', {
      host: lab.hosts.server.ip,
      port: 40001,
      timeoutMs: 2000,
    });
    assert.notEqual(
      probe.outcome,
      'connected',
      `the punching port must not accept strangers: ${JSON.stringify(probe)}`,
    );
    assert.equal(probe.firstLine ?? '', '');
    await writeRandomFile(join(peers.workDir, 'after-stranger.bin'), 50_000);
    const r = await peers.client(['--get', 'ASUS', 'after-stranger.bin']);
    assert.equal(r.code, 0, describeRun(r));
  });

  it('a client whose certificate does not match its record is refused, and both sides say why', async () => {
    // An impostor registers the name LAPTOP with its own identity: the real LAPTOP no longer matches.
    const impostorConfig = join(peers.dir, 'impostor.json');
    await peers.configure(impostorConfig, ['--client-name', 'LAPTOP', '--port', '40003']);
    const register = await lab.exec('client', process.execPath, [
      RCPP2P_BIN,
      '--config',
      impostorConfig,
      '--addclient',
      '--replace',
    ]);
    assert.equal(register.code, 0, describeRun(register));
    try {
      await writeRandomFile(join(peers.workDir, 'secret.bin'), 10_000);
      // The server has met the real LAPTOP before (known_peers): the changed record is refused
      // before any connection, and the server's log says why.
      const pinned = await peers.client(['--get', 'ASUS', 'secret.bin']);
      assert.equal(pinned.code, 4, describeRun(pinned));
      assert.match(pinned.stderr, /WARNING: client LAPTOP now claims identity SHA256:/);
      await server.waitForOutput(
        /Refused LAPTOP: WARNING: client LAPTOP now claims identity/,
        10_000,
      );
      // A server that never met LAPTOP trusts the record, and TLS catches the real LAPTOP's key.
      const forget = await lab.exec('server', process.execPath, [
        RCPP2P_BIN,
        '--config',
        peers.serverConfig,
        '--forget-peer',
        'LAPTOP',
      ]);
      assert.equal(forget.code, 0, describeRun(forget));
      const r = await peers.client(['--get', 'ASUS', 'secret.bin']);
      assert.equal(r.code, 4, describeRun(r));
      assert.match(r.stderr, /refused this peer's certificate/);
      await server.waitForOutput(/Client LAPTOP failed: .*presented certificate SHA256:/, 10_000);
      await assert.rejects(readFile(join(peers.clientDir, 'secret.bin')), 'nothing was received');
    } finally {
      const again = await peers.client(['--addclient', '--replace']);
      assert.equal(again.code, 0, describeRun(again));
    }
  });

  it('a server record with another fingerprint is refused by the client before any request', async () => {
    const recordFile = join(lab.rendezvous.rendezvousDir, 'servers', 'ASUS.json');
    const original = await readFile(recordFile, 'utf8');
    const record = JSON.parse(original) as { fingerprint: string };
    record.fingerprint = 'SHA256:' + randomBytes(32).toString('base64').replace(/=+$/, '');
    await writeFile(recordFile, JSON.stringify(record));
    try {
      // The client has met ASUS before: the changed record is refused with both fingerprints.
      const pinned = await peers.client(['--filelist', 'ASUS']);
      assert.equal(pinned.code, 4, describeRun(pinned));
      assert.match(
        pinned.stderr,
        /WARNING: file server ASUS now claims identity SHA256:\S+ .* known it as SHA256:/,
      );
      // the advice names this peer's --config (the lab's configs are never the default one)
      assert.match(pinned.stderr, /rcpp2p --config \S+ --forget-peer ASUS/);
      // A client that never met ASUS trusts the record, and TLS catches the real server's key.
      const forget = await peers.client(['--forget-peer', 'ASUS']);
      assert.equal(forget.code, 0, describeRun(forget));
      const r = await peers.client(['--filelist', 'ASUS']);
      assert.equal(r.code, 4, describeRun(r));
      assert.match(
        r.stderr,
        /presented certificate SHA256:\S+, but its rendezvous record says SHA256:/,
      );
    } finally {
      await writeFile(recordFile, original);
    }
  });

  it('a changed rendezvous host key is refused with a warning like ssh’s', async () => {
    const knownHosts = lab.rendezvous.knownHostsFile;
    const original = await readFile(knownHosts, 'utf8');
    const fake = 'AAAAC3NzaC1lZDI1NTE5AAAAI' + randomBytes(24).toString('base64').slice(0, 43);
    await writeFile(knownHosts, original.replace(/ssh-ed25519 \S+/, `ssh-ed25519 ${fake}`));
    try {
      const r = await peers.client(['--filelist', 'ASUS']);
      assert.equal(r.code, 3, describeRun(r));
      assert.match(r.stderr, /WARNING: the host key of 203\.0\.113\.10 has changed/);
      assert.match(r.stderr, /ssh-keygen -R/);
    } finally {
      await writeFile(knownHosts, original);
    }
  });

  it('hostile names are refused by the server and nothing outside the working directory is read or written', async () => {
    const outside = join(peers.dir, 'outside-secret.txt');
    await writeFile(outside, 'do not leak');
    await writeFile(join(peers.workDir, 'ok.txt'), 'fine');
    await symlink(outside, join(peers.workDir, 'escape'));
    // FileClient refuses most of these names itself, so a raw client over the real link sends
    // them: each request names a valid file and one hostile name, and the server must answer for
    // both (the valid file offered, the hostile name refused with its code).
    const names: [string, string][] = [
      ['../outside-secret.txt', 'PATH_REFUSED'],
      ['../../etc/passwd', 'PATH_REFUSED'],
      ['/etc/passwd', 'PATH_REFUSED'],
      ['a/../../outside-secret.txt', 'PATH_REFUSED'],
      ['..', 'PATH_REFUSED'],
      ['.', 'PATH_REFUSED'],
      ['', 'PATH_REFUSED'],
      ['x\\..\\..\\outside-secret.txt', 'PATH_REFUSED'],
      ['a/b/../../../outside-secret.txt', 'PATH_REFUSED'],
      ['ok/../../../root', 'PATH_REFUSED'],
      ['\u202Etxt.exe', 'PATH_REFUSED'],
      ['a'.repeat(300), 'PATH_REFUSED'],
      ['d/'.repeat(1000) + 'x', 'PATH_REFUSED'],
      ['file.rcpp2p-partial', 'PATH_REFUSED'],
      ['file.rcpp2p-lock', 'PATH_REFUSED'],
      ['./../outside-secret.txt', 'PATH_REFUSED'],
      ['\u0007bell', 'PATH_REFUSED'],
      ['C:\\Windows\\win.ini', 'PATH_REFUSED'],
      ['//etc/passwd', 'PATH_REFUSED'],
      ['escape', 'PATH_REFUSED'],
      ['ok.txt\u2215..\u2215..\u2215outside-secret.txt', 'PATH_REFUSED'],
      ['ok.txt\u200b', 'PATH_REFUSED'],
      // A literal name: nothing expands "~" on the server, and there is no such folder.
      ['~/.ssh/id_ed25519', 'FILE_NOT_FOUND'],
    ];
    for (const [name, code] of names) {
      const r = await lab.exec(
        'client',
        process.execPath,
        [RAW_GET, peers.clientConfig, peers.serverName, JSON.stringify(['ok.txt', name])],
        { cwd: peers.clientDir, timeoutMs: 60_000 },
      );
      assert.equal(r.code, 0, `${JSON.stringify(name)}: ${describeRun(r)}`);
      const answer = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as {
        files: { root: number; path: string }[];
        problems: { root: number; code: string; message: string }[];
      };
      assert.deepEqual(
        answer.files.map((f) => [f.root, f.path]),
        [[0, 'ok.txt']],
        `${JSON.stringify(name)}: the valid name is served, nothing else`,
      );
      assert.deepEqual(
        answer.problems.map((p) => [p.root, p.code]),
        [[1, code]],
        `${JSON.stringify(name)}: ${JSON.stringify(answer.problems)}`,
      );
    }
    // A path longer than any path may be is refused with the whole request.
    const tooLong = await lab.exec(
      'client',
      process.execPath,
      [
        RAW_GET,
        peers.clientConfig,
        peers.serverName,
        JSON.stringify(['ok.txt', 'd/'.repeat(2100) + 'x']),
      ],
      { cwd: peers.clientDir, timeoutMs: 60_000 },
    );
    assert.equal(tooLong.code, 0, describeRun(tooLong));
    assert.match(tooLong.stdout, /"error":\{"code":"PROTOCOL_ERROR"/);
    assert.equal(await readFile(outside, 'utf8'), 'do not leak');
    const clientFiles = await readdir(peers.clientDir);
    assert.ok(
      !clientFiles.includes('outside-secret.txt') && !clientFiles.includes('passwd'),
      clientFiles.join(', '),
    );
    // --put cannot aim outside either
    await writeFile(join(peers.clientDir, 'x.txt'), 'x');
    const put = await peers.client(['--put', 'ASUS', 'x.txt', '--to', '../escape']);
    assert.notEqual(put.code, 0, describeRun(put));
    await assert.rejects(readFile(join(peers.workDir, '..', 'escape', 'x.txt')));
    await rm(join(peers.clientDir, 'x.txt'));
  });

  it('the bytes on the wire do not contain the file’s plaintext', async () => {
    const marker = 'RCPP2P-PLAINTEXT-MARKER-';
    const plaintext = marker.repeat(80_000); // 1.9 MB
    await writeFile(join(peers.workDir, 'plain.txt'), plaintext);
    const pcap = join(peers.dir, 'wire.pcap');
    const router = lab.natRouterNs('client');
    assert.ok(router, 'the client sits behind a router');
    const capture = lab.spawn(
      { name: 'client', ns: router, ip: '', publicIp: '', nat: 'drop', routerNs: undefined },
      '/usr/bin/tcpdump',
      ['-i', 'wan0', '--immediate-mode', '-U', '-B', '32768', '-s', '0', '-w', pcap, 'tcp'],
    );
    await capture.waitForOutput(/listening on/, 10_000);
    const r = await peers.client(['--get', 'ASUS', 'plain.txt', '--json']);
    await untilStable(pcap); // tcpdump writes the packets still in its buffer before it is stopped
    await capture.kill(2000);
    assert.equal(r.code, 0, describeRun(r));
    assert.equal(
      jsonLines(r.stdout)[0]?.['sha256'],
      await sha256File(join(peers.workDir, 'plain.txt')),
    );
    const wire = await readFile(pcap);
    // TLS adds bytes, never removes them: a capture smaller than the file missed the transfer.
    assert.ok(
      wire.length > plaintext.length,
      `the capture saw the transfer (${wire.length} bytes for a ${plaintext.length}-byte file)`,
    );
    assert.equal(wire.indexOf(Buffer.from(marker)), -1, 'plaintext found on the wire');
  });
});

/** Waits (at most 8 s) until a growing file has kept its size for 1.2 s (libpcap hands packets
 * over in blocks; a block can wait up to a second before it is written). */
async function untilStable(file: string): Promise<void> {
  let last = -1;
  let stableFor = 0;
  for (let waited = 0; waited < 8000 && stableFor < 1200; waited += 100) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    const size = (await stat(file)).size;
    stableFor = size === last ? stableFor + 100 : 0;
    last = size;
  }
}
