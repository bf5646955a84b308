// Staying reachable (issue 3): the rendezvous host goes away under a running file server (its
// listener and every session killed, as a crash or reboot would) and comes back on the same address
// with the same host key. The server must stay up, say that it lost the rendezvous and is
// reconnecting, publish itself again once the rendezvous is back, and serve the next download.
// Run against both rendezvous kinds: OpenSSH's sshd and rcpp2p's embedded server.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { canMakeNetns, hasSshd, skipUnless } from '../helpers/capability.js';
import {
  createLab,
  RENDEZVOUS_KINDS,
  type Lab,
  type LabOptions,
  type NatKind,
} from '../helpers/nat-lab.js';
import {
  describeRun,
  jsonLines,
  setupLabPeers,
  sha256File,
  writeRandomFile,
  type LabPeers,
  type LabPeersOptions,
} from '../helpers/lab-peers.js';
import type { ProcessHandle } from '../helpers/processes.js';

const skip = skipUnless(canMakeNetns(), hasSshd());

const LOST = /Rendezvous connection lost \([^\n]*\); reconnecting in \d+ s\./g;

function output(p: ProcessHandle): string {
  return p.stdout() + p.stderr();
}

/** Polls (bounded) until `pattern` appears in the process's output after character `from`. */
async function waitForOutputAfter(
  p: ProcessHandle,
  from: number,
  pattern: RegExp,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pattern.test(output(p).slice(from))) {
    if (p.hasExited()) {
      throw new Error(`${p.command} exited before printing ${pattern}:\n${output(p)}`);
    }
    if (Date.now() > deadline) {
      throw new Error(
        `no ${pattern} within ${timeoutMs} ms; output since then:\n${output(p).slice(from)}`,
      );
    }
    await delay(100);
  }
}

function count(text: string, pattern: RegExp): number {
  return [...text.matchAll(pattern)].length;
}

interface Outage {
  name: string;
  server: NatKind;
  /** The server's router also forgets its mappings (as a router reboot would). */
  flushRouter: boolean;
}

const OUTAGES: Outage[] = [
  {
    // the reconnect comes from the same address and port, which ends the old session on the
    // rendezvous host when the link is back
    name: 'same external port',
    server: 'drop',
    flushRouter: false,
  },
  {
    // the reconnect comes from a new external port: the rendezvous host still holds the old, dead
    // session and its signaling socket, which the server must not take for another server with its
    // name (it used to exit with "already running")
    name: 'new external port, old session still held by the rendezvous',
    server: 'symmetric',
    flushRouter: true,
  },
];

const NFT = '/usr/sbin/nft';
/** In the rendezvous namespace: every packet in or out vanishes (no RST, no FIN), like a dead link. */
const CUT_LINK = `table ip rcpp2p_cut {
  chain in { type filter hook input priority -10; policy drop; }
  chain out { type filter hook output priority -10; policy drop; }
}
`;

for (const kind of RENDEZVOUS_KINDS) {
  describe(`staying reachable when the rendezvous goes away (${kind} rendezvous)`, { skip }, () => {
    it('the file server stays up, reconnects on its own and serves the next download', async () => {
      const labOptions: LabOptions = { server: 'drop', client: 'drop', rendezvous: kind };
      await withServingLab(labOptions, {}, async ({ lab, peers, server, context }) => {
        assert.equal(count(output(server), LOST), 0, 'no reconnect before the outage' + context());

        // the rendezvous host goes down: listener and sessions killed by PID
        await lab.rendezvous.halt();
        await waitForOutputAfter(server, 0, LOST, 30_000);
        // ... and it keeps trying while the rendezvous stays down: a failed connect is reported as
        // another reconnect, not as a reason to exit
        const downSince = output(server).length;
        await waitForOutputAfter(server, downSince, LOST, 30_000);
        assert.equal(server.hasExited(), false, 'the server is still running' + context());

        // the rendezvous comes back (same address, port and host key)
        const upSince = output(server).length;
        await lab.rendezvous.restart();
        await republishes(server, upSince, 30_000, context);

        await downloadsExactly(peers, 'after.bin', 2 * 1024 * 1024 + 7, context);
      });
    });

    for (const outage of OUTAGES) {
      it(`the file server notices a silently dead rendezvous link and serves again once it is back: ${outage.name}`, async () => {
        const labOptions: LabOptions = { server: outage.server, client: 'drop', rendezvous: kind };
        // keepalives every 2 s: the dead link is noticed after a few missed answers
        const peerOptions = { keepaliveSeconds: 2 };
        await withServingLab(labOptions, peerOptions, async ({ lab, peers, server, context }) => {
          // packets to and from the rendezvous host vanish; its sessions stay open on its side
          const cut = await lab.exec('rendezvous', NFT, ['-f', '-'], { input: CUT_LINK });
          assert.equal(cut.code, 0, cut.stderr);
          await waitForOutputAfter(server, 0, LOST, 30_000);
          if (outage.flushRouter) await lab.flushConntrack('server');
          assert.equal(server.hasExited(), false, 'the server is still running' + context());

          const upSince = output(server).length;
          const heal = await lab.exec('rendezvous', NFT, ['delete', 'table', 'ip', 'rcpp2p_cut']);
          assert.equal(heal.code, 0, heal.stderr);
          // a connect attempt made while the link was dead gets through on a SYN retransmission; one
          // refused because the old connection still holds the local port is retried with backoff
          await republishes(server, upSince, 60_000, context);

          await downloadsExactly(peers, 'after.bin', 2 * 1024 * 1024 + 7, context);
        });
      });
    }
  });
}

/** Puts `size` random bytes on the server as `name`; a --get must bring back exactly those bytes. */
async function downloadsExactly(
  peers: LabPeers,
  name: string,
  size: number,
  context: () => string,
): Promise<void> {
  const sha = await writeRandomFile(join(peers.workDir, name), size);
  const r = await peers.client(['--get', 'ASUS', name, '--json'], { timeoutMs: 90_000 });
  assert.equal(r.code, 0, describeRun(r) + context());
  assert.equal(await sha256File(join(peers.clientDir, name)), sha);
  assert.equal(jsonLines(r.stdout)[0]?.['sha256'], sha, describeRun(r));
}

/** The server publishes itself and opens live signaling again, and is still running. */
async function republishes(
  server: ProcessHandle,
  since: number,
  timeoutMs: number,
  context: () => string,
): Promise<void> {
  await waitForOutputAfter(
    server,
    since,
    /Published file server ASUS on the rendezvous\.[\s\S]*Signaling: live channel through the rendezvous\./,
    timeoutMs,
  );
  assert.equal(server.hasExited(), false, 'the server is still running' + context());
}

interface ServingLab {
  lab: Lab;
  peers: LabPeers;
  server: ProcessHandle;
  /** The server's output and the rendezvous log, for failure messages. */
  context: () => string;
}

/**
 * Builds a lab, starts the file server and checks one download works; runs `body`; then closes
 * the lab (processes by PID, namespaces) and removes the peers' folders, whatever happened.
 */
async function withServingLab(
  labOptions: LabOptions,
  peerOptions: LabPeersOptions,
  body: (running: ServingLab) => Promise<void>,
): Promise<void> {
  const lab = await createLab(labOptions);
  const peers = await setupLabPeers(lab, peerOptions).catch(async (err: unknown) => {
    await lab.close();
    throw err;
  });
  let server: ProcessHandle | undefined;
  const context = (): string =>
    `\n--- server\n${server ? output(server) : ''}\n--- rendezvous\n${lab.rendezvous.logText()}`;
  try {
    server = await peers.startServer();
    await downloadsExactly(peers, 'before.bin', 300_001, context);
    await body({ lab, peers, server, context });
  } finally {
    await lab.close();
    await peers.cleanup();
  }
}
