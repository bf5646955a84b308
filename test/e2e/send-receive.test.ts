// rcpp2p send / receive between two hosts behind real kernel NATs, through a real OpenSSH
// rendezvous: the sender on one site, the receiver on the other, neither registered as a client
// (the code introduces them). Easy NATs give a direct punched connection; a NAT that changes ports
// gives the relay; both deliver the files byte for byte and say which path they took.
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { canMakeNetns, hasSshd, skipUnless } from '../helpers/capability.js';
import { createLab, type LabOptions } from '../helpers/nat-lab.js';
import {
  describeRun,
  jsonLines,
  RCPP2P_BIN,
  setupLabPeers,
  sha256File,
  writeRandomFile,
} from '../helpers/lab-peers.js';

const skip = skipUnless(canMakeNetns(), hasSshd());

const SCENARIOS: { name: string; lab: Pick<LabOptions, 'server' | 'client'>; path: string }[] = [
  {
    name: 'both NATs keep ports: a direct punched connection',
    lab: { server: 'drop', client: 'drop' },
    path: 'direct',
  },
  {
    name: "the receiver's NAT changes ports: the relay",
    lab: { server: 'drop', client: 'symmetric' },
    path: 'relay',
  },
];

describe('send and receive between two NATs (openssh rendezvous)', { skip }, () => {
  for (const scenario of SCENARIOS) {
    it(scenario.name, async () => {
      const lab = await createLab({ ...scenario.lab, rendezvous: 'openssh' });
      const peers = await setupLabPeers(lab, { addClient: false }).catch(async (err: unknown) => {
        await lab.close();
        throw err;
      });
      try {
        const outbox = join(peers.workDir, 'outbox');
        await mkdir(join(outbox, 'album'), { recursive: true });
        const video = await writeRandomFile(join(outbox, 'video.bin'), 6 * 1024 * 1024 + 5);
        const photo = await writeRandomFile(join(outbox, 'album', 'a.jpg'), 70_000);
        const sender = lab.spawn(
          'server',
          process.execPath,
          [RCPP2P_BIN, '--config', peers.serverConfig, 'send', 'video.bin', 'album'],
          { cwd: outbox },
        );
        const [, code] = await sender.waitForOutput(/Code: (\S+)/, 30_000);
        const r = await peers.client(['receive', code!, '--json']);
        assert.equal(r.code, 0, describeRun(r));
        const results = jsonLines(r.stdout);
        assert.deepEqual(results.map((x) => [x['file'], x['ok'], x['path']]).sort(), [
          ['album/a.jpg', true, scenario.path],
          ['video.bin', true, scenario.path],
        ]);
        assert.equal(await sha256File(join(peers.clientDir, 'video.bin')), video);
        assert.equal(await sha256File(join(peers.clientDir, 'album', 'a.jpg')), photo);
        const done = await sender.waitExit(20_000);
        assert.equal(done.code, 0, sender.stdout() + sender.stderr());
      } finally {
        await lab.close();
        await peers.cleanup();
      }
    });
  }
});
