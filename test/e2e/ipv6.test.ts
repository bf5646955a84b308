// IPv6 through the NAT lab: routers that are IPv4 NATs and stateful IPv6 firewalls (no NAT66), a
// rendezvous reachable over both families under one name (rv.lab, A and AAAA), and peers that are
// dual-stack, IPv4-only or IPv6-only. Each scenario downloads a file with the real CLI, compares its
// bytes, and checks the path and the address family the client reports.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { canMakeNetns, hasSshd, skipUnless } from '../helpers/capability.js';
import { createLab, RENDEZVOUS_IP6, type LabOptions } from '../helpers/nat-lab.js';
import {
  describeRun,
  jsonLines,
  setupLabPeers,
  sha256File,
  writeRandomFile,
  type LabPeersOptions,
} from '../helpers/lab-peers.js';

const skip = skipUnless(canMakeNetns(), hasSshd());

interface Scenario {
  name: string;
  lab: LabOptions;
  path: string;
  family: 4 | 6;
  /** Words the client's output must show. */
  says: RegExp[];
  peers?: (lab: Awaited<ReturnType<typeof createLab>>) => LabPeersOptions;
}

const byName = (lab: Awaited<ReturnType<typeof createLab>>): LabPeersOptions => ({
  rendezvous: `${lab.rendezvous.user}@${lab.rendezvousName ?? ''}:${lab.rendezvous.port}`,
});

const SCENARIOS: Scenario[] = [
  {
    name: 'both dual-stack behind symmetric IPv4 NATs: direct over IPv6',
    lab: { server: 'symmetric', client: 'symmetric', ipv6: {} },
    path: 'direct',
    family: 6,
    says: [
      /External address: .*IPv6 \[2001:db8:2::2\]:\d+ \(no NAT\)/,
      /Connected: direct connection to \[2001:db8:1::2\]:\d+ .*over IPv6, no NAT on either side/,
    ],
    peers: byName,
  },
  {
    name: 'a dual-stack server and an IPv4-only client behind easy NATs: direct over IPv4',
    lab: { server: 'drop', client: 'drop', ipv6: { client: 'v4only' } },
    path: 'direct',
    family: 4,
    says: [
      /Connected: direct connection to 203\.0\.113\.21:\d+ .*simultaneous open through both NATs/,
    ],
    peers: byName,
  },
  {
    name: 'an IPv6-only client and a dual-stack server: direct over IPv6',
    lab: { server: 'drop', client: 'drop', ipv6: { client: 'v6only' } },
    path: 'direct',
    family: 6,
    says: [/External address: IPv6 \[2001:db8:2::2\]:\d+ \(no NAT\)\./, /over IPv6/],
    peers: byName,
  },
  {
    name: 'the rendezvous given as an IPv6 literal: direct over IPv6',
    lab: { server: 'drop', client: 'drop', ipv6: {} },
    path: 'direct',
    family: 6,
    says: [/Connecting to rendezvous \[2001:db8::10\]:22/, /over IPv6/],
    peers: (lab) => ({ rendezvous: `${lab.rendezvous.user}@[${RENDEZVOUS_IP6}]:22` }),
  },
];

describe('IPv6: dual-stack, IPv4-only and IPv6-only peers (NAT lab)', { skip }, () => {
  for (const scenario of SCENARIOS) {
    it(scenario.name, async () => {
      const lab = await createLab(scenario.lab);
      const peers = await setupLabPeers(lab, scenario.peers?.(lab) ?? {}).catch(
        async (err: unknown) => {
          await lab.close();
          throw err;
        },
      );
      try {
        const server = await peers.startServer();
        const sha = await writeRandomFile(join(peers.workDir, 'data.bin'), 1024 * 1024 + 3);
        const r = await peers.client(['--get', 'ASUS', 'data.bin', '--json'], {
          timeoutMs: 60_000,
        });
        const context = describeRun(r) + `\n--- server\n${server.stdout()}${server.stderr()}`;
        assert.equal(r.code, 0, context);
        assert.equal(await sha256File(join(peers.clientDir, 'data.bin')), sha);
        const [result] = jsonLines(r.stdout);
        assert.equal(result?.['path'], scenario.path, context);
        assert.equal(result?.['family'], scenario.family, context);
        for (const words of scenario.says) assert.match(r.stderr, words, context);
      } finally {
        await lab.close();
        await peers.cleanup();
      }
    });
  }
});
