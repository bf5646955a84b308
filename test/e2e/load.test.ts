// A burst of clients: 50 different clients behind one home router start a command at the same
// moment against one file server, through an OpenSSH rendezvous with its default settings. OpenSSH's
// MaxStartups 10:30:100 drops new connections at random while more than 10 are unauthenticated; the
// clients must ride that out (retry with jittered back-off) and every command must succeed.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { saveConfig } from '../../src/config/config.js';
import { identityPathFor } from '../../src/config/paths.js';
import { selfRecord, serializePeerRecord } from '../../src/rendezvous/peer-record.js';
import { createIdentity } from '../../src/secure/identity.js';
import { canMakeNetns, hasSshd, skipUnless } from '../helpers/capability.js';
import { createLab } from '../helpers/nat-lab.js';
import { describeRun, jsonLines, RCPP2P_BIN, setupLabPeers } from '../helpers/lab-peers.js';
import type { RunResult } from '../helpers/processes.js';

const skip = skipUnless(canMakeNetns(), hasSshd());
const CLIENTS = 50;

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length - 1) * p))] ?? NaN;
}

describe('a burst of clients (NAT lab, OpenSSH with its default MaxStartups)', { skip }, () => {
  it(`${CLIENTS} clients starting together all get their answer`, async () => {
    const lab = await createLab({ server: 'drop', client: 'drop', rendezvous: 'openssh-defaults' });
    const peers = await setupLabPeers(lab).catch(async (err: unknown) => {
      await lab.close();
      throw err;
    });
    try {
      const server = await peers.startServer();
      await writeFile(join(peers.workDir, 'hello.txt'), 'hello\n');
      // 50 peers of their own: a config, an identity, and a registered client record each (written
      // straight into the rendezvous folder: the burst, not --addclient, is what is measured).
      const rv = lab.rendezvous;
      const configs: string[] = [];
      for (let n = 0; n < CLIENTS; n++) {
        const name = `LOAD${String(n).padStart(2, '0')}`;
        const config = join(peers.dir, `${name}.json`);
        await saveConfig(config, {
          version: 1,
          rendezvous: { host: rv.host, port: rv.port, user: rv.user, dir: rv.rendezvousDir },
          auth: { method: 'key', identityFile: rv.clientKeyFile },
          knownHostsFile: rv.knownHostsFile,
          clientName: name,
          port: 41000 + n,
          pollSeconds: 2,
          keepaliveSeconds: 5,
        });
        const identity = await createIdentity(identityPathFor(config), name);
        const record = selfRecord(
          { role: 'client', name, fingerprint: identity.fingerprint },
          {
            external: { ip: lab.hosts.client.publicIp, port: 41000 + n },
            local: [],
            nat: 'port-preserving',
          },
        );
        await writeFile(
          join(rv.rendezvousDirOnDisk, 'clients', `${name}.json`),
          serializePeerRecord(record),
        );
        configs.push(config);
      }

      const runs: RunResult[] = await Promise.all(
        configs.map((config) =>
          lab.exec(
            'client',
            process.execPath,
            [RCPP2P_BIN, '--config', config, '--filelist', 'ASUS', '--json'],
            {
              cwd: peers.clientDir,
              timeoutMs: 180_000,
            },
          ),
        ),
      );
      const failed = runs.filter((r) => r.code !== 0);
      const setups = runs
        .map((r) => Number(jsonLines(r.stdout)[0]?.['setupMs']))
        .filter((ms) => Number.isFinite(ms))
        .sort((a, b) => a - b);
      const paths = runs.map((r) => String(jsonLines(r.stdout)[0]?.['path']));
      console.log(
        `# ${CLIENTS - failed.length}/${CLIENTS} succeeded; set-up p50 ${percentile(setups, 0.5)} ms, ` +
          `p95 ${percentile(setups, 0.95)} ms; paths: ${[...new Set(paths)].join(', ')}`,
      );
      assert.deepEqual(
        failed.map((r) => describeRun(r)),
        [],
        `every client succeeds\n--- server\n${server.stdout()}${server.stderr()}`,
      );
    } finally {
      await lab.close();
      await peers.cleanup();
    }
  });
});
