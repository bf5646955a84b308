// "Any SSH account both machines can log in to": filelist, get and put through each kind of
// rendezvous host, in the NAT lab, with real rcpp2p processes. OpenSSH at its defaults (signaling
// through a Unix socket), with AllowStreamLocalForwarding no (a TCP port on the rendezvous's
// loopback), with DisableForwarding yes (a remote command watching a request folder), and Dropbear
// (a TCP port). For each: an easy pair (two routers that keep ports: direct) whose server's session
// must also survive the host's and the routers' idle limits, and a symmetric pair (the client's NAT
// changes ports: relay where the host allows one, else one sentence saying why not).
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { canMakeNetns, hasCommand, hasSshd, skipUnless } from '../helpers/capability.js';
import { createLab, type Lab, type RendezvousKind } from '../helpers/nat-lab.js';
import {
  describeRun,
  jsonLines,
  setupLabPeers,
  sha256File,
  writeRandomFile,
  type LabPeers,
} from '../helpers/lab-peers.js';
import type { ProcessHandle } from '../helpers/processes.js';

interface Kind {
  rendezvous: RendezvousKind;
  signaling: 'socket' | 'tcp' | 'exec';
  /** What the server's Signaling line says about the transport. */
  says: RegExp;
  /** sshd_config lines for the idle limits (OpenSSH kinds). */
  sshdConfig?: string[];
}

const IDLE_LIMITS = ['ClientAliveInterval 2', 'ClientAliveCountMax 1'];

const KINDS: Kind[] = [
  {
    rendezvous: 'openssh-defaults',
    signaling: 'socket',
    says: /Transport: a Unix socket there; the relay goes through it too\./,
    sshdConfig: IDLE_LIMITS,
  },
  {
    rendezvous: 'openssh-no-streamlocal',
    signaling: 'tcp',
    says: /Transport: a TCP port on its loopback \(the rendezvous host allows no Unix-socket forwarding\); the relay goes through it too\./,
    sshdConfig: IDLE_LIMITS,
  },
  {
    rendezvous: 'openssh-no-forwarding',
    signaling: 'exec',
    says: /Transport: a remote command watching for requests \(the rendezvous host allows no forwarding\); no relay/,
    sshdConfig: IDLE_LIMITS,
  },
  {
    rendezvous: 'dropbear',
    signaling: 'tcp',
    says: /Transport: a TCP port on its loopback \(the rendezvous host allows no Unix-socket forwarding\); the relay goes through it too\./,
  },
];

const skip = skipUnless(
  canMakeNetns(),
  hasSshd(),
  hasCommand('/usr/sbin/dropbear', 'Debian package dropbear-bin'),
);

/** The server router forgets an idle connection after this many seconds (a strict home router). */
const ROUTER_IDLE_SECONDS = 8;

/** Runs the file server for the length of `run`. */
async function withServer(
  peers: LabPeers,
  run: (server: ProcessHandle) => Promise<void>,
): Promise<void> {
  const server = await peers.startServer();
  try {
    await run(server);
  } finally {
    await server.kill(3000);
  }
}

function output(p: ProcessHandle): string {
  return p.stdout() + p.stderr();
}

for (const kind of KINDS) {
  const relay = kind.signaling === 'exec' ? 'none' : kind.signaling;

  describe(
    `through the ${kind.rendezvous} rendezvous host (${kind.signaling} signaling)`,
    { skip },
    () => {
      describe('an easy pair: two routers that keep ports', () => {
        let lab: Lab;
        let peers: LabPeers;
        let server: ProcessHandle;

        before(async () => {
          lab = await createLab({
            server: 'drop',
            client: 'drop',
            rendezvous: kind.rendezvous,
            ...(kind.sshdConfig && { sshdConfig: kind.sshdConfig }),
          });
          // the server's router drops idle connections quickly; the server's session must not be one
          const router = lab.natRouterNs('server');
          assert.ok(router);
          const r = await lab.exec({ ns: router }, '/usr/sbin/sysctl', [
            '-w',
            `net.netfilter.nf_conntrack_tcp_timeout_established=${ROUTER_IDLE_SECONDS}`,
          ]);
          assert.equal(r.code, 0, describeRun(r));
          peers = await setupLabPeers(lab, { keepaliveSeconds: 3 });
          server = await peers.startServer();
        });
        after(async () => {
          await server?.kill(3000);
          await lab?.close();
          await peers?.cleanup();
        });

        it(`the server says it offers ${kind.signaling} signaling and which relay`, () => {
          assert.match(output(server), kind.says);
        });

        it('lists, downloads and uploads, byte for byte, over the direct path', async () => {
          const sha = await writeRandomFile(join(peers.workDir, 'down.bin'), 4 * 1024 * 1024 + 7);
          const list = await peers.client(['--filelist', 'ASUS', '--json']);
          assert.equal(list.code, 0, describeRun(list));
          const [listed] = jsonLines(list.stdout);
          const entries = listed?.['entries'] as { path: string; size: number }[];
          assert.deepEqual(
            entries.filter((e) => e.path === 'down.bin').map((e) => e.size),
            [4 * 1024 * 1024 + 7],
          );
          assert.equal(listed?.['signaling'], kind.signaling);

          const get = await peers.client(['--get', 'ASUS', 'down.bin', '--json']);
          assert.equal(get.code, 0, describeRun(get));
          assert.equal(await sha256File(join(peers.clientDir, 'down.bin')), sha);
          const [got] = jsonLines(get.stdout);
          assert.equal(got?.['path'], 'direct', describeRun(get));
          assert.equal(got?.['signaling'], kind.signaling);
          assert.equal(got?.['relay'], relay);

          const upSha = await writeRandomFile(join(peers.clientDir, 'up.bin'), 3 * 1024 * 1024 + 1);
          const put = await peers.client(['--put', 'ASUS', 'up.bin', '--json']);
          assert.equal(put.code, 0, describeRun(put));
          assert.equal(await sha256File(join(peers.workDir, 'up.bin')), upSha);
          const [sent] = jsonLines(put.stdout);
          assert.equal(sent?.['path'], 'direct');
          assert.equal(sent?.['signaling'], kind.signaling);
        });

        it("the server's session outlives the idle limits of the host and of its router", async () => {
          const before = output(server).length;
          await delay((ROUTER_IDLE_SECONDS * 2 + 2) * 1000);
          const r = await peers.client(['--filelist', 'ASUS', '--json']);
          assert.equal(r.code, 0, describeRun(r));
          assert.equal(jsonLines(r.stdout)[0]?.['signaling'], kind.signaling);
          assert.doesNotMatch(output(server).slice(before), /Rendezvous connection lost/);
        });
      });

      describe('a symmetric pair: the client behind a NAT that changes ports', () => {
        let lab: Lab;
        let peers: LabPeers;

        before(async () => {
          lab = await createLab({
            server: 'drop',
            client: 'symmetric',
            rendezvous: kind.rendezvous,
          });
          peers = await setupLabPeers(lab);
        });
        after(async () => {
          await lab?.close();
          await peers?.cleanup();
        });

        if (relay === 'none') {
          it('says in one sentence that the host allows no relay', async () => {
            await withServer(peers, async () => {
              await writeRandomFile(join(peers.workDir, 'data.bin'), 1000);
              const r = await peers.client(['--get', 'ASUS', 'data.bin'], { timeoutMs: 90_000 });
              assert.notEqual(r.code, 0, describeRun(r));
              assert.match(
                r.stderr,
                /the rendezvous host allows no forwarding, so rcpp2p cannot relay through it\./,
              );
            });
          });
        } else {
          it(`downloads and uploads through the relay (${relay}), byte for byte`, async () => {
            await withServer(peers, async (server) => {
              const sha = await writeRandomFile(
                join(peers.workDir, 'data.bin'),
                2 * 1024 * 1024 + 3,
              );
              const get = await peers.client(['--get', 'ASUS', 'data.bin', '--json'], {
                timeoutMs: 90_000,
              });
              assert.equal(get.code, 0, describeRun(get) + `\n--- server\n${output(server)}`);
              assert.equal(await sha256File(join(peers.clientDir, 'data.bin')), sha);
              const [got] = jsonLines(get.stdout);
              assert.equal(got?.['path'], 'relay', describeRun(get));
              assert.equal(got?.['relay'], relay);
              assert.match(get.stderr, /Connected: relayed through the rendezvous/);

              const upSha = await writeRandomFile(join(peers.clientDir, 'up.bin'), 1024 * 1024 + 9);
              const put = await peers.client(['--put', 'ASUS', 'up.bin', '--json'], {
                timeoutMs: 90_000,
              });
              assert.equal(put.code, 0, describeRun(put));
              assert.equal(await sha256File(join(peers.workDir, 'up.bin')), upSha);
              assert.equal(jsonLines(put.stdout)[0]?.['path'], 'relay');
            });
          });
        }
      });
    },
  );
}
