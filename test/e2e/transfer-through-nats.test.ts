// The product's main job, end to end: a file server and a client, each behind its own NAT router
// (port-preserving, silently dropping unsolicited SYNs), meet through a real rendezvous, punch a
// direct TCP connection, and list, download and upload a multi-megabyte file. The whole suite runs
// once per rendezvous kind: OpenSSH's sshd and rcpp2p's embedded server.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { canMakeNetns, hasSshd, skipUnless } from '../helpers/capability.js';
import { createLab, RENDEZVOUS_KINDS, type Lab } from '../helpers/nat-lab.js';
import {
  describeRun,
  jsonLines,
  setupLabPeers,
  sha256File,
  writeRandomFile,
  type LabPeers,
} from '../helpers/lab-peers.js';
import type { ProcessHandle } from '../helpers/processes.js';

const skip = skipUnless(canMakeNetns(), hasSshd());

for (const kind of RENDEZVOUS_KINDS) {
  describe(
    `filelist, get and put between two hosts behind NAT routers (${kind} rendezvous)`,
    { skip },
    () => {
      let lab: Lab;
      let peers: LabPeers;
      let server: ProcessHandle;

      before(async () => {
        lab = await createLab({ server: 'drop', client: 'drop', rendezvous: kind });
        peers = await setupLabPeers(lab);
        server = await peers.startServer();
      });

      after(async () => {
        await server?.kill(3000);
        await lab?.close();
        await peers?.cleanup();
      });

      it('lists the working directory with sizes', async () => {
        await writeRandomFile(join(peers.workDir, 'photo.jpg'), 5 * 1024 * 1024 + 17);
        const r = await peers.client(['--filelist', 'ASUS', '--json']);
        assert.equal(r.code, 0, describeRun(r));
        const [result] = jsonLines(r.stdout);
        assert.equal(result?.['op'], 'filelist');
        const entries = result?.['entries'] as { path: string; kind: string; size: number }[];
        assert.deepEqual(
          entries.filter((e) => e.path === 'photo.jpg').map((e) => [e.kind, e.size]),
          [['file', 5 * 1024 * 1024 + 17]],
        );
      });

      it('downloads a file over a direct punched connection, byte for byte', async () => {
        const sha = await writeRandomFile(join(peers.workDir, 'video.bin'), 8 * 1024 * 1024 + 3);
        const r = await peers.client(['--get', 'ASUS', 'video.bin', '--json']);
        assert.equal(r.code, 0, describeRun(r));
        assert.equal(await sha256File(join(peers.clientDir, 'video.bin')), sha);
        const [result] = jsonLines(r.stdout);
        assert.equal(result?.['op'], 'get');
        assert.equal(result?.['path'], 'direct', describeRun(r));
        assert.equal(result?.['sha256'], sha);
        assert.equal(result?.['bytes'], 8 * 1024 * 1024 + 3);
        assert.equal(typeof result?.['setupMs'], 'number');
        assert.equal(typeof result?.['transferMs'], 'number');
      });

      it('uploads a file into the working directory, byte for byte', async () => {
        const sha = await writeRandomFile(join(peers.clientDir, 'upload.bin'), 3 * 1024 * 1024 + 5);
        const r = await peers.client(['--put', 'ASUS', 'upload.bin', '--json']);
        assert.equal(r.code, 0, describeRun(r));
        assert.equal(await sha256File(join(peers.workDir, 'upload.bin')), sha);
        const [result] = jsonLines(r.stdout);
        assert.equal(result?.['op'], 'put');
        assert.equal(result?.['path'], 'direct');
      });

      it('back-to-back commands each get the direct path, not the relay', async () => {
        // the routers still hold the previous connection's closed entries for ~10 s
        const paths: unknown[] = [];
        for (let i = 0; i < 3; i++) {
          const r = await peers.client(['--filelist', 'ASUS', '--json']);
          assert.equal(r.code, 0, describeRun(r));
          paths.push(jsonLines(r.stdout)[0]?.['path']);
        }
        assert.deepEqual(paths, ['direct', 'direct', 'direct']);
      });

      it('prints every step like the original tool', async () => {
        await writeRandomFile(join(peers.workDir, 'small.txt'), 1000);
        const r = await peers.client(['--get', 'ASUS', 'small.txt']);
        assert.equal(r.code, 0, describeRun(r));
        // the client punches from a fresh port each time, and its NAT keeps that port
        assert.match(
          r.stderr,
          /Connecting to rendezvous 203\.0\.113\.10:22 from a fresh local port\.\.\. Successful\./,
        );
        assert.match(r.stderr, /External address: 203\.0\.113\.22:\d{5} \(NAT keeps ports\)/);
        assert.match(r.stderr, /Connected: direct connection to 203\.0\.113\.21:40001/);
        assert.match(r.stderr, /small\.txt 100% \[=+\] 1000 B .* Complete\./);
      });

      it('says clearly when the file does not exist, and exits non-zero', async () => {
        const r = await peers.client(['--get', 'ASUS', 'missing.txt']);
        assert.notEqual(r.code, 0);
        assert.match(r.stderr, /missing\.txt/);
        assert.match(r.stderr, /does not exist|not found/i);
      });

      it('says clearly when the server name is unknown', async () => {
        const r = await peers.client(['--filelist', 'NOSUCH']);
        assert.equal(r.code, 4, describeRun(r));
        assert.match(r.stderr, /No file server named NOSUCH/);
        assert.match(r.stderr, /Known file servers: ASUS/);
      });

      // Last: it freezes the server. A stopped process (or a laptop gone to sleep) keeps its SSH
      // session, so its record still says online; the client must not wait without limit.
      it('a frozen (SIGSTOPped) file server makes a get fail after the answer deadline, exit 4', async () => {
        process.kill(server.pid, 'SIGSTOP');
        try {
          const r = await peers.client(['--get', 'ASUS', 'small.txt', '--force'], {
            timeoutMs: 40_000,
          });
          assert.equal(r.code, 4, describeRun(r));
          assert.match(r.stderr, /Found file server ASUS/);
          assert.match(
            r.stderr,
            /File server ASUS does not answer \(asleep or hung\?\); it did not reply within 10 s/,
          );
        } finally {
          process.kill(server.pid, 'SIGCONT');
        }
      });
    },
  );
}
