// The signaling transports against real SSH servers on loopback: OpenSSH at its defaults (a Unix
// socket), with AllowStreamLocalForwarding no (a TCP port on the host's loopback), with
// DisableForwarding yes (a remote command watching a request folder), and Dropbear (a TCP port; and
// the remote command when asked). For each: which transport the file server offers and names in
// its record, a client that reaches it through that transport, the relay (or the sentence saying
// there is none), a hung server found out by the answer deadline, Ctrl-C, and name conflicts.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import ssh2 from 'ssh2';
import { isRcppError } from '../../src/errors.js';
import { joinRendezvous, type RendezvousSettings } from '../../src/link/join-rendezvous.js';
import type { Link } from '../../src/link/link.js';
import { openLink, type ClientLinkOptions } from '../../src/link/open-link.js';
import { serveRendezvous, type ServeRendezvousOptions } from '../../src/link/serve-rendezvous.js';
import type { SignalingKind } from '../../src/peer.js';
import type { ProgressEvent } from '../../src/progress.js';
import { renderRendezvousCommand } from '../../src/rendezvous/commands.js';
import {
  parsePeerRecord,
  selfRecord,
  serializePeerRecord,
  type SignalingOffer,
} from '../../src/rendezvous/peer-record.js';
import { encodeSignal } from '../../src/rendezvous/signaling.js';
import type { SshAuth } from '../../src/rendezvous/ssh-auth.js';
import { generateIdentity, type Identity } from '../../src/secure/identity.js';
import { KnownPeers } from '../../src/secure/known-peers.js';
import { hasSshd, skipUnless } from '../helpers/capability.js';
import {
  canRunLoopbackDropbear,
  startLoopbackRendezvous,
  type LoopbackKind,
  type LoopbackRendezvousOptions,
} from '../helpers/loopback-rendezvous.js';
import type { SshdFixture } from '../helpers/sshd.js';
import { generateSshKeyPair } from '../../src/rendezvous/ssh-key.js';

const SERVER = 'ASUS';
const CLIENT = 'LAPTOP';

interface Setup {
  kind: LoopbackKind;
  /** Only these transports, when the test asks for one the host would not pick first. */
  only?: ServeRendezvousOptions['signaling'];
  expected: SignalingKind;
}

const SETUPS: Setup[] = [
  { kind: 'openssh-defaults', expected: 'socket' },
  { kind: 'openssh-no-streamlocal', expected: 'tcp' },
  { kind: 'openssh-no-forwarding', expected: 'exec' },
  { kind: 'dropbear', expected: 'tcp' },
  { kind: 'dropbear', only: ['exec'], expected: 'exec' },
];

interface World {
  fx: SshdFixture;
  rendezvous: RendezvousSettings;
  auth: SshAuth;
  serverIdentity: Identity;
  clientIdentity: Identity;
}

async function makeWorld(kind: LoopbackKind, opts: LoopbackRendezvousOptions = {}): Promise<World> {
  const fx = await startLoopbackRendezvous(kind, opts);
  return {
    fx,
    rendezvous: {
      host: fx.host,
      port: fx.port,
      user: fx.user,
      dir: fx.rendezvousDir,
      knownHostsFile: fx.knownHostsFile,
      keepaliveSeconds: 15,
    },
    auth: {
      method: 'key',
      path: fx.clientKeyFile,
      privateKey: await readFile(fx.clientKeyFile),
    },
    serverIdentity: generateIdentity(SERVER),
    clientIdentity: generateIdentity(CLIENT),
  };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

interface RunningServer {
  events: ProgressEvent[];
  links: Link[];
  stop(): Promise<void>;
}

async function startServer(
  w: World,
  extra: Partial<ServeRendezvousOptions> = {},
): Promise<RunningServer> {
  const stop = new AbortController();
  const events: ProgressEvent[] = [];
  const links: Link[] = [];
  let ready: () => void = () => {};
  const signalingReady = new Promise<void>((resolve) => (ready = resolve));
  const serving = serveRendezvous({
    rendezvous: w.rendezvous,
    auth: w.auth,
    localPort: await freePort(),
    serverName: SERVER,
    identity: w.serverIdentity,
    pollSeconds: 1,
    signal: stop.signal,
    onProgress: (e) => {
      events.push(e);
      if (e.type === 'signaling:ready') ready();
    },
    onLink: async (link) => {
      links.push(link);
      link.stream.write(`hello ${link.peer}\n`);
      await new Promise<void>((resolve) => link.stream.once('close', () => resolve()));
    },
    trust: await freshTrust(w, 'server'),
    ...extra,
  });
  await Promise.race([signalingReady, serving]);
  return {
    events,
    links,
    async stop() {
      stop.abort();
      await serving.catch(() => {});
    },
  };
}

async function addClient(w: World): Promise<void> {
  const record = selfRecord(
    { role: 'client', name: CLIENT, fingerprint: w.clientIdentity.fingerprint },
    { external: { ip: '127.0.0.1', port: 1 }, local: [], nat: 'public' },
  );
  await mkdir(join(w.fx.rendezvousDir, 'clients'), { recursive: true });
  await writeFile(
    join(w.fx.rendezvousDir, 'clients', `${CLIENT}.json`),
    serializePeerRecord(record),
  );
}

let trustFiles = 0;

/** An empty known_peers file of its own, so each link starts without pinned peers. */
function freshTrust(w: World, who: string): Promise<KnownPeers> {
  return KnownPeers.load(join(w.fx.dir, `${who}-${++trustFiles}.known_peers`));
}

async function clientOptions(
  w: World,
  extra: Partial<ClientLinkOptions> = {},
): Promise<ClientLinkOptions> {
  return {
    trust: await freshTrust(w, 'client'),
    rendezvous: w.rendezvous,
    auth: w.auth,
    localPort: 0,
    clientName: CLIENT,
    identity: w.clientIdentity,
    serverName: SERVER,
    signal: new AbortController().signal,
    ...extra,
  };
}

async function serverRecordOffer(w: World): Promise<SignalingOffer | undefined> {
  const text = await readFile(join(w.fx.rendezvousDir, 'servers', `${SERVER}.json`), 'utf8');
  return parsePeerRecord(text, { role: 'server', name: SERVER }).signaling;
}

function firstLine(link: Link): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const onData = (chunk: Buffer): void => {
      text += chunk.toString('utf8');
      const newline = text.indexOf('\n');
      if (newline >= 0) {
        link.stream.off('data', onData);
        resolve(text.slice(0, newline));
      }
    };
    link.stream.on('data', onData);
    link.stream.once('error', reject);
  });
}

/** A plain ssh2 login to the fixture, for playing a hung server or a stranger. */
async function login(w: World): Promise<ssh2.Client> {
  const client = new ssh2.Client();
  await new Promise<void>((resolve, reject) => {
    client.once('ready', () => resolve());
    client.once('error', reject);
    client.connect({
      host: w.fx.host,
      port: w.fx.port,
      username: w.fx.user,
      privateKey: w.auth.method === 'key' ? w.auth.privateKey : undefined,
      hostVerifier: () => true,
      strictVendor: false,
    });
  });
  client.on('error', () => {});
  return client;
}

/**
 * Logs in like a file server, offers the transport, publishes an online record naming it, and then
 * never answers anything: what a SIGSTOPped server looks like from the rendezvous.
 */
async function startHungServer(w: World, via: SignalingKind): Promise<ssh2.Client> {
  const client = await login(w);
  let offer: SignalingOffer;
  switch (via) {
    case 'socket': {
      const path = join(w.fx.rendezvousDir, 'sockets', `${SERVER}.sock`);
      await mkdir(join(w.fx.rendezvousDir, 'sockets'), { recursive: true });
      await rm(path, { force: true }); // the last hung server's (StreamLocalBindUnlink no)
      client.on('unix connection', () => {});
      await new Promise<void>((resolve, reject) =>
        client.openssh_forwardInStreamLocal(path, (err) => (err ? reject(err) : resolve())),
      );
      offer = { via };
      break;
    }
    case 'tcp': {
      client.on('tcp connection', () => {});
      const port = await new Promise<number>((resolve, reject) =>
        client.forwardIn('127.0.0.1', 0, (err, p) => (err ? reject(err) : resolve(p))),
      );
      offer = { via, port, token: 'ab'.repeat(16) };
      break;
    }
    case 'exec': {
      const command = renderRendezvousCommand({
        op: 'watch',
        dir: w.fx.rendezvousDir,
        name: SERVER,
        wid: randomBytes(8).toString('hex'),
      });
      await new Promise<void>((resolve, reject) =>
        client.exec(command, (err, channel) => {
          if (err) return reject(err);
          // reads the header, then nothing: requests pile up unanswered
          channel.once('data', () => resolve());
        }),
      );
      offer = { via };
      break;
    }
    case 'records':
      throw new Error('no hung server in periodic mode');
  }
  const record = selfRecord(
    { role: 'server', name: SERVER, fingerprint: w.serverIdentity.fingerprint },
    { external: { ip: '127.0.0.1', port: 40001 }, local: [], nat: 'public' },
    { online: true, signaling: offer, pollSeconds: 10 },
  );
  await mkdir(join(w.fx.rendezvousDir, 'servers'), { recursive: true });
  await writeFile(
    join(w.fx.rendezvousDir, 'servers', `${SERVER}.json`),
    serializePeerRecord(record),
  );
  return client;
}

/**
 * Processes running rcpp2p's watcher loop (the loop, and its background stdin reader: a fork with
 * the same command line), anywhere on this host: a loop its SSH server left behind is reparented.
 * With `wid`, only that watcher's.
 */
async function watcherProcesses(wid = 'rcpp2p watch 1'): Promise<number[]> {
  const found: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.includes('rcpp2p watch 1') && cmdline.includes(wid)) found.push(Number(entry));
  }
  return found;
}

/** The watcher ids whose marks are in the server's request folder now. */
async function watcherMarks(w: World): Promise<string[]> {
  const folder = join(w.fx.rendezvousDir, 'signals', SERVER);
  return (await readdir(folder).catch(() => [] as string[]))
    .filter((f) => f.startsWith('w.'))
    .map((f) => f.slice(2));
}

async function until(check: () => Promise<boolean>, what: string, ms = 20_000): Promise<void> {
  const started = Date.now();
  while (!(await check())) {
    if (Date.now() - started > ms) throw new Error(`gave up waiting for ${what} after ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function label(s: Setup): string {
  return `${s.kind}${s.only ? ` (only ${s.only.join(', ')})` : ''}`;
}

for (const setup of SETUPS) {
  const skip =
    setup.kind === 'dropbear' ? skipUnless(canRunLoopbackDropbear()) : skipUnless(hasSshd());
  describe(`signaling through ${label(setup)}: ${setup.expected}`, { skip }, () => {
    let w: World;
    let server: RunningServer | undefined;
    let stranger: ssh2.Client | undefined;
    const serve = (extra: Partial<ServeRendezvousOptions> = {}): Promise<RunningServer> =>
      startServer(w, { ...(setup.only && { signaling: setup.only }), ...extra });

    before(async () => {
      w = await makeWorld(setup.kind);
    });
    afterEach(async () => {
      await server?.stop();
      server = undefined;
      stranger?.end();
      stranger = undefined;
    });
    after(async () => {
      await w?.fx.stop();
    });

    it(`the file server offers ${setup.expected}, names it in its record, and a client reaches it`, async () => {
      server = await serve();
      await addClient(w);
      const ready = server.events.find((e) => e.type === 'signaling:ready');
      assert.equal(ready?.type === 'signaling:ready' && ready.mode, setup.expected);
      assert.equal((await serverRecordOffer(w))?.via, setup.expected);
      const link = await openLink(await clientOptions(w));
      try {
        assert.equal(link.signaling, setup.expected);
        assert.equal(link.relay, setup.expected === 'exec' ? 'none' : setup.expected);
        assert.equal(link.path, 'lan');
        assert.equal(typeof link.answerMs, 'number');
        assert.equal(await firstLine(link), `hello ${CLIENT}`);
        assert.equal(server.links[0]?.signaling, setup.expected);
      } finally {
        await link.close();
      }
      // and again: a second client command on the same server
      const again = await openLink(await clientOptions(w));
      await again.close();
    });

    if (setup.expected === 'exec') {
      it('without forwarding there is no relay, and a pair that needs one is told so in one sentence', async () => {
        server = await serve();
        await addClient(w);
        await assert.rejects(
          openLink(await clientOptions(w, { paths: ['relay'] })),
          (err: unknown) =>
            isRcppError(err) &&
            err.code === 'NO_PATH' &&
            /the rendezvous host allows no forwarding, so rcpp2p cannot relay through it\.$/.test(
              err.message,
            ),
        );
        assert.equal(server.links.length, 0);
      });
    } else {
      it(`the relay goes through the ${setup.expected}`, async () => {
        server = await serve();
        await addClient(w);
        const link = await openLink(await clientOptions(w, { paths: ['relay'] }));
        try {
          assert.equal(link.path, 'relay');
          assert.equal(link.relay, setup.expected);
          assert.equal(await firstLine(link), `hello ${CLIENT}`);
        } finally {
          await link.close();
        }
      });
    }

    it('a hung server is reported as not answering after the deadline', async () => {
      stranger = await startHungServer(w, setup.expected);
      await addClient(w);
      await assert.rejects(
        openLink(await clientOptions(w, { answerTimeoutMs: 1500 })),
        (err: unknown) =>
          isRcppError(err) &&
          err.code === 'PEER_NOT_ANSWERING' &&
          /File server ASUS does not answer \(asleep or hung\?\)/.test(err.message),
      );
    });

    it('Ctrl-C while waiting for the answer ends openLink at once, not at the answer deadline', async () => {
      stranger = await startHungServer(w, setup.expected);
      await addClient(w);
      const stop = new AbortController();
      let abortedAt = 0;
      stop.signal.addEventListener('abort', () => (abortedAt = performance.now()));
      const opening = openLink(
        await clientOptions(w, {
          signal: stop.signal,
          onProgress: (e) => {
            if (e.type === 'peer:found') setTimeout(() => stop.abort(), 300);
          },
        }),
      );
      await assert.rejects(opening, (err: unknown) => isRcppError(err) && err.code === 'ABORTED');
      const ms = performance.now() - abortedAt;
      // (closing the SSH session is part of it; the answer deadline is 10 s)
      assert.ok(abortedAt > 0 && ms < 1000, `rejected ${ms.toFixed(0)} ms after the abort`);
    });

    it('a second file server with the same name and another identity is refused: NAME_IN_USE', async () => {
      server = await serve();
      await assert.rejects(
        startServer(w, {
          identity: generateIdentity(SERVER),
          ...(setup.only && { signaling: setup.only }),
        }),
        (err: unknown) =>
          isRcppError(err) &&
          err.code === 'NAME_IN_USE' &&
          /Another file server named ASUS/.test(err.message),
      );
    });

    it('a server that stopped is reported offline, and the next one takes the name', async () => {
      server = await serve();
      await server.stop();
      server = undefined;
      await addClient(w);
      await assert.rejects(
        openLink(await clientOptions(w)),
        (err: unknown) => isRcppError(err) && err.code === 'PEER_OFFLINE',
      );
      server = await serve({ identity: generateIdentity(SERVER) });
      assert.equal((await serverRecordOffer(w))?.via, setup.expected);
    });

    if (setup.kind === 'dropbear' && !setup.only) {
      it("Dropbear's host key is checked against known_hosts: another key is refused", async () => {
        const other = join(w.fx.dir, 'other_known_hosts');
        const key = generateSshKeyPair();
        const blob = ssh2.utils.parseKey(key.public);
        assert.ok(!(blob instanceof Error));
        await writeFile(
          other,
          `[${w.fx.host}]:${w.fx.port} ssh-ed25519 ${blob.getPublicSSH().toString('base64')}\n`,
        );
        await assert.rejects(
          joinRendezvous(
            {
              rendezvous: { ...w.rendezvous, knownHostsFile: other },
              auth: w.auth,
              localPort: 0,
              portFallback: 'any',
              signal: new AbortController().signal,
            },
            { role: 'client', name: CLIENT },
          ),
          (err: unknown) => isRcppError(err) && err.code === 'HOST_KEY_MISMATCH',
        );
      });
    }

    if (setup.kind === 'openssh-no-forwarding') {
      it('a record naming a transport this login may not open is told apart from an offline server', async () => {
        // a file server that could offer a TCP port (another login, a Match block) names it
        const record = selfRecord(
          { role: 'server', name: SERVER, fingerprint: w.serverIdentity.fingerprint },
          { external: { ip: '127.0.0.1', port: 40001 }, local: [], nat: 'public' },
          {
            online: true,
            signaling: { via: 'tcp', port: 40999, token: 'ab'.repeat(16) },
            pollSeconds: 10,
          },
        );
        await mkdir(join(w.fx.rendezvousDir, 'servers'), { recursive: true });
        await writeFile(
          join(w.fx.rendezvousDir, 'servers', `${SERVER}.json`),
          serializePeerRecord(record),
        );
        await addClient(w);
        await assert.rejects(
          openLink(await clientOptions(w)),
          (err: unknown) =>
            isRcppError(err) &&
            err.code === 'RENDEZVOUS_REFUSED' &&
            /does not let this client open file server ASUS's signaling port/.test(err.message),
        );
      });
    }

    if (setup.expected === 'tcp') {
      it('a channel to the signaling port without the token is closed and reaches nothing', async () => {
        server = await serve();
        await addClient(w);
        const offer = await serverRecordOffer(w);
        assert.equal(offer?.via, 'tcp');
        if (offer?.via !== 'tcp') return;
        stranger = await login(w);
        for (const token of [undefined, 'cd'.repeat(16)]) {
          const channel = await new Promise<ssh2.ClientChannel>((resolve, reject) =>
            (stranger as ssh2.Client).forwardOut('127.0.0.1', 0, '127.0.0.1', offer.port, (e, c) =>
              e ? reject(e) : resolve(c),
            ),
          );
          const received: Buffer[] = [];
          channel.on('data', (d: Buffer) => received.push(d));
          // the server closes its end at once: the stranger sees the end of the stream
          const closed = new Promise<void>((resolve) => {
            channel.once('end', () => resolve());
            channel.once('close', () => resolve());
          });
          channel.write(
            encodeSignal({ t: 'open', v: 1, kind: 'signal', ...(token && { token }) }) +
              encodeSignal({
                t: 'request',
                session: 'ef'.repeat(16),
                client: CLIENT,
                external: { ip: '127.0.0.1', port: 9 },
                local: [],
                nat: 'public',
              }),
          );
          await closed;
          channel.destroy();
          assert.equal(Buffer.concat(received).length, 0, 'the server said nothing');
        }
        assert.equal(server.links.length, 0);
      });
    }

    if (setup.expected === 'exec') {
      it('the files of a finished conversation are removed while the server runs', async () => {
        server = await serve();
        await addClient(w);
        const folder = join(w.fx.rendezvousDir, 'signals', SERVER);
        // (earlier tests may have left files behind a watcher that is gone: not this one's)
        const before = new Set(await readdir(folder));
        const link = await openLink(await clientOptions(w));
        await link.close();
        const left = async (): Promise<string[]> =>
          (await readdir(folder)).filter((f) => !before.has(f) && !f.startsWith('w.'));
        await until(
          async () => (await left()).length === 0,
          'the conversation files to go',
          20_000,
        ).catch(async (err: Error) => {
          throw new Error(`${err.message}; left: ${(await left()).join(', ')}`);
        });
      });

      it('the watcher loop on the host ends with the server, and takes its mark with it', async () => {
        server = await serve();
        const [wid] = await watcherMarks(w);
        assert.ok(wid !== undefined, 'the running watcher marked the folder');
        assert.ok((await watcherProcesses(wid)).length > 0, 'its loop runs on the host');
        await server.stop();
        server = undefined;
        await until(async () => (await watcherProcesses(wid)).length === 0, 'the loop to end');
        assert.deepEqual(await watcherMarks(w), []);
      });

      it('the watcher loop ends when its SSH session is cut', async () => {
        stranger = await startHungServer(w, 'exec');
        const [wid] = await watcherMarks(w);
        assert.ok(wid !== undefined && (await watcherProcesses(wid)).length > 0);
        stranger.destroy();
        stranger = undefined;
        await until(async () => (await watcherProcesses(wid)).length === 0, 'the loop to end');
        assert.deepEqual(await watcherMarks(w), []);
      });
    }
  });
}

describe('idle limits of the host: the server stays reachable on every transport', () => {
  // OpenSSH closes channels idle for 3 s (ChannelTimeout) and probes the client every second
  // (ClientAliveInterval); the exec transport's watcher channel is idle between requests.
  for (const kind of [
    'openssh-defaults',
    'openssh-no-streamlocal',
    'openssh-no-forwarding',
  ] as const) {
    it(
      `${kind} with ChannelTimeout session:command=3s and ClientAliveInterval 1`,
      { skip: skipUnless(hasSshd()) },
      async () => {
        const w = await makeWorld(kind, {
          sshdConfig: [
            'ChannelTimeout session:command=3s',
            'ClientAliveInterval 1',
            'ClientAliveCountMax 2',
          ],
        });
        let server: RunningServer | undefined;
        try {
          w.rendezvous.keepaliveSeconds = 1;
          server = await startServer(w);
          await addClient(w);
          await new Promise((r) => setTimeout(r, 7000));
          const link = await openLink(await clientOptions(w));
          await link.close();
          assert.equal(
            server.events.filter((e) => e.type === 'rendezvous:reconnecting').length,
            0,
            'the server kept its session',
          );
        } finally {
          await server?.stop();
          await w.fx.stop();
        }
      },
    );
  }

  it(
    'a watcher whose idle channel the host closes is started again (ChannelTimeout, no touches)',
    { skip: skipUnless(hasSshd()) },
    async () => {
      const w = await makeWorld('openssh-no-forwarding', {
        sshdConfig: ['ChannelTimeout session:command=2s'],
      });
      let server: RunningServer | undefined;
      try {
        w.rendezvous.keepaliveSeconds = 0; // nothing keeps the watcher's channel busy
        server = await startServer(w);
        await addClient(w);
        const [first] = await watcherMarks(w);
        assert.ok(first !== undefined);
        await until(async () => {
          const marks = await watcherMarks(w);
          return marks.length === 1 && marks[0] !== first;
        }, 'the host to close the idle watcher and the server to start the next');
        const link = await openLink(await clientOptions(w));
        assert.equal(link.signaling, 'exec');
        await link.close();
      } finally {
        await server?.stop();
        await w.fx.stop();
      }
    },
  );

  it(
    'dropbear with an idle timeout (-I 3)',
    { skip: skipUnless(canRunLoopbackDropbear()) },
    async () => {
      const w = await makeWorld('dropbear', { dropbearArgs: ['-I', '3'] });
      let server: RunningServer | undefined;
      try {
        w.rendezvous.keepaliveSeconds = 1;
        for (const only of [['tcp'], ['exec']] as const) {
          server = await startServer(w, { signaling: only });
          await addClient(w);
          await new Promise((r) => setTimeout(r, 7000));
          const link = await openLink(await clientOptions(w));
          assert.equal(link.signaling, only[0]);
          await link.close();
          assert.equal(
            server.events.filter((e) => e.type === 'rendezvous:reconnecting').length,
            0,
            `the server kept its session (${only[0]})`,
          );
          await server.stop();
          server = undefined;
        }
      } finally {
        await server?.stop();
        await w.fx.stop();
      }
    },
  );
});

describe('an account without a shell (SFTP only)', { skip: skipUnless(hasSshd()) }, () => {
  it('is refused at once with a sentence naming what the account lacks', async () => {
    const w = await makeWorld('openssh-defaults', { sshdConfig: ['ForceCommand internal-sftp'] });
    try {
      await assert.rejects(
        joinRendezvous(
          {
            rendezvous: w.rendezvous,
            auth: w.auth,
            localPort: 0,
            portFallback: 'any',
            signal: new AbortController().signal,
          },
          { role: 'client', name: CLIENT },
        ),
        (err: unknown) =>
          isRcppError(err) &&
          err.code === 'RENDEZVOUS_REFUSED' &&
          /did not run the rcpp2p command as expected/.test(err.message) &&
          /The account needs a POSIX \/bin\/sh/.test(err.hint),
      );
    } finally {
      await w.fx.stop();
    }
  });
});
