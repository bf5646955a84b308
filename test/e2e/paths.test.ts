// Every pair of peers connects: one NAT lab per setup, a real file server and a real client, a
// download whose bytes are compared, and the path the client reports (and why).
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { canMakeNetns, hasSshd, skipUnless } from '../helpers/capability.js';
import { createLab, RENDEZVOUS_KINDS, type LabOptions } from '../helpers/nat-lab.js';
import {
  describeRun,
  jsonLines,
  setupLabPeers,
  sha256File,
  writeRandomFile,
} from '../helpers/lab-peers.js';

const skip = skipUnless(canMakeNetns(), hasSshd());

interface Scenario {
  name: string;
  lab: LabOptions;
  /** Paths the client may report; more than one only where the lab's timing decides (see `why`). */
  paths: string[];
  /** Why the lab allows more than one path: a test that accepts two must say so. */
  why?: string;
  /** Words the human output must give as the reason. */
  reason?: RegExp;
  serverArgs?: string[];
  /** Also run against the embedded rendezvous (every scenario runs against OpenSSH). */
  embedded?: boolean;
}

const SCENARIOS: Scenario[] = [
  {
    name: 'two home routers that keep ports and drop strays: direct',
    lab: { server: 'drop', client: 'drop' },
    paths: ['direct'],
    reason: /simultaneous open through both NATs/,
    embedded: true,
  },
  {
    name: 'a public server and a NATed client: direct',
    lab: { server: 'public', client: 'drop' },
    paths: ['direct'],
  },
  {
    name: 'a NATed server and a public client: reversed or direct',
    lab: { server: 'drop', client: 'public' },
    paths: ['reversed', 'direct'],
    why:
      'the server dials the public client’s listener (reversed) while both punch; the client’s own ' +
      'SYN_SENT socket may meet the server’s SYN first (a direct simultaneous open), one RTT either way',
  },
  {
    name: 'both behind the same router (no hairpinning): lan',
    lab: { server: 'drop', client: 'drop', sameLan: true },
    paths: ['lan'],
    reason: /same router/,
  },
  {
    name: 'the server behind a router that answers strays with RST',
    lab: { server: 'rst', client: 'drop' },
    paths: ['direct', 'relay'],
    why:
      'a client SYN that reaches the RST router before the server’s own SYN opened its mapping is ' +
      'answered with RST and tears down the router’s entry; punching still wins in 19 of 20 trials ' +
      '(docs/nat-lab.md), the relay takes the rest',
  },
  {
    name: 'the client behind a NAT that changes ports per destination: relay',
    lab: { server: 'drop', client: 'symmetric' },
    paths: ['relay'],
    reason: /NAT changes ports/,
    embedded: true,
  },
  {
    name: 'both behind NATs that change ports: relay',
    lab: { server: 'symmetric', client: 'symmetric' },
    paths: ['relay'],
    reason: /both NATs change ports/,
  },
  {
    name: 'a rendezvous that refuses socket forwarding: periodic',
    lab: { server: 'drop', client: 'drop', forwarding: false },
    paths: ['periodic'],
    reason: /does not allow socket forwarding|periodic/,
  },
];

for (const kind of RENDEZVOUS_KINDS) {
  describe(`every pair of peers connects, and says how (${kind} rendezvous)`, { skip }, () => {
    for (const scenario of SCENARIOS.filter((s) => kind === 'openssh' || s.embedded)) {
      it(scenario.name, async () => {
        const lab = await createLab({ ...scenario.lab, rendezvous: kind });
        const peers = await setupLabPeers(lab).catch(async (err: unknown) => {
          await lab.close();
          throw err;
        });
        try {
          const server = await peers.startServer(scenario.serverArgs);
          const sha = await writeRandomFile(join(peers.workDir, 'data.bin'), 2 * 1024 * 1024 + 11);
          const r = await peers.client(['--get', 'ASUS', 'data.bin', '--json'], {
            timeoutMs: 90_000,
          });
          assert.equal(
            r.code,
            0,
            describeRun(r) + `\n--- server\n${server.stdout()}${server.stderr()}`,
          );
          assert.equal(await sha256File(join(peers.clientDir, 'data.bin')), sha);
          const [result] = jsonLines(r.stdout);
          assert.ok(
            scenario.paths.includes(String(result?.['path'])),
            `path ${String(result?.['path'])}, expected one of ${scenario.paths.join(', ')}` +
              `${scenario.why ? ` (${scenario.why})` : ''}\n${describeRun(r)}`,
          );
          assert.ok(scenario.paths.length === 1 || scenario.why, 'two accepted paths need a why');
          if (scenario.reason) assert.match(r.stderr, scenario.reason, describeRun(r));
          assert.match(
            r.stderr,
            /^Connected: .* \(.+\)\.$/m,
            'the human output names the path and the reason',
          );
        } finally {
          await lab.close();
          await peers.cleanup();
        }
      });
    }
  });
}

describe('staying reachable', { skip }, () => {
  it('a request after the server router lost its NAT mappings still succeeds', async () => {
    const lab = await createLab({ server: 'drop', client: 'drop' });
    const peers = await setupLabPeers(lab, { keepaliveSeconds: 2 });
    try {
      await peers.startServer();
      await writeRandomFile(join(peers.workDir, 'a.bin'), 100_000);
      const first = await peers.client(['--get', 'ASUS', 'a.bin', '--json']);
      assert.equal(first.code, 0, describeRun(first));
      await lab.flushConntrack('server');
      const second = await peers.client(['--get', 'ASUS', 'a.bin', '--json', '--force'], {
        timeoutMs: 90_000,
      });
      assert.equal(second.code, 0, describeRun(second));
    } finally {
      await lab.close();
      await peers.cleanup();
    }
  });

  it('a stopped server is reported offline at once, with when it was last seen', async () => {
    const lab = await createLab({ server: 'drop', client: 'drop' });
    const peers = await setupLabPeers(lab);
    try {
      const server = await peers.startServer();
      await server.kill(5000);
      const started = Date.now();
      const r = await peers.client(['--filelist', 'ASUS']);
      assert.equal(r.code, 4, describeRun(r));
      assert.match(
        r.stderr,
        /File server ASUS is offline \(last seen (just now|\d+ seconds? ago)\)/,
      );
      assert.ok(Date.now() - started < 15_000, 'no hang');
    } finally {
      await lab.close();
      await peers.cleanup();
    }
  });

  it('a server killed without warning is reported offline, not waited for', async () => {
    const lab = await createLab({ server: 'drop', client: 'drop' });
    const peers = await setupLabPeers(lab);
    try {
      const server = await peers.startServer();
      process.kill(server.pid, 'SIGKILL');
      await server.exited;
      const r = await peers.client(['--filelist', 'ASUS'], { timeoutMs: 60_000 });
      assert.equal(r.code, 4, describeRun(r));
      assert.match(r.stderr, /File server ASUS is offline/);
    } finally {
      await lab.close();
      await peers.cleanup();
    }
  });
});
