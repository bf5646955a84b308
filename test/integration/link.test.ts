// The link layer end to end on loopback, no root needed: the embedded rendezvous on 127.0.0.1, a file
// server's presence (serveRendezvous) and a client (openLink) in this process. Covers what the NAT lab
// covers with real routers, minus the routers: the path race, the relay, identity checks, periodic
// mode, refusals, and cancellation down to the SSH channel.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { getEventListeners } from 'node:events';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import ssh2 from 'ssh2';
import { isRcppError } from '../../src/errors.js';
import type { RendezvousSettings } from '../../src/link/join-rendezvous.js';
import type { Link } from '../../src/link/link.js';
import { openLink, type ClientLinkOptions } from '../../src/link/open-link.js';
import { serveRendezvous, type ServeRendezvousOptions } from '../../src/link/serve-rendezvous.js';
import type { ProgressEvent } from '../../src/progress.js';
import { formatKnownHostsLine } from '../../src/rendezvous/known-hosts.js';
import { selfRecord, serializePeerRecord } from '../../src/rendezvous/peer-record.js';
import type { SshAuth } from '../../src/rendezvous/ssh-auth.js';
import { saveAccounts } from '../../src/rendezvous-server/accounts.js';
import {
  startRendezvousServer,
  type RunningRendezvous,
} from '../../src/rendezvous-server/server.js';
import { generateIdentity, type Identity } from '../../src/secure/identity.js';
import { KnownPeers } from '../../src/secure/known-peers.js';
import { generateSshKeyPair } from '../../src/rendezvous/ssh-key.js';

const SERVER = 'ASUS';
const CLIENT = 'LAPTOP';

interface World {
  dir: string;
  rendezvous: RendezvousSettings;
  auth: SshAuth;
  rv: RunningRendezvous;
  /** Where the embedded rendezvous keeps the account's rcpp2p folder. */
  recordsDir: string;
  serverIdentity: Identity;
  clientIdentity: Identity;
}

async function makeWorld(): Promise<World> {
  const dir = await mkdtemp(join(tmpdir(), 'rcpp2p-link-'));
  const pair = generateSshKeyPair();
  await saveAccounts(join(dir, 'state'), [{ user: 'peer', authorizedKeys: [pair.public] }]);
  const rv = await startRendezvousServer({
    stateDir: join(dir, 'state'),
    host: '127.0.0.1',
    port: 0,
  });
  const knownHostsFile = join(dir, 'known_hosts');
  await writeFile(
    knownHostsFile,
    formatKnownHostsLine('127.0.0.1', rv.port, rv.hostKey.type, rv.hostKey.blob) + '\n',
  );
  return {
    dir,
    rv,
    rendezvous: {
      host: '127.0.0.1',
      port: rv.port,
      user: 'peer',
      dir: '.rcpp2p',
      knownHostsFile,
      keepaliveSeconds: 15,
    },
    auth: { method: 'key', path: 'test-key', privateKey: Buffer.from(pair.private) },
    recordsDir: join(dir, 'state', 'home', 'peer', '.rcpp2p'),
    serverIdentity: generateIdentity(SERVER),
    clientIdentity: generateIdentity(CLIENT),
  };
}

/** A TCP port nothing listens on right now. */
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
  stop(): Promise<void>;
  events: ProgressEvent[];
  /** Links the server was handed, by client name. */
  links: Link[];
}

/**
 * Runs a file server's presence until stop(); every link it is handed gets a greeting naming the
 * client, then the server waits for the client to hang up.
 */
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

/** Publishes the client's record, as --addclient does. */
async function addClient(w: World, identity: Identity = w.clientIdentity): Promise<void> {
  const record = selfRecord(
    { role: 'client', name: CLIENT, fingerprint: identity.fingerprint },
    { external: { ip: '127.0.0.1', port: 1 }, local: [], nat: 'public' },
  );
  await writeFile(join(w.recordsDir, 'clients', `${CLIENT}.json`), serializePeerRecord(record));
}

let trustFiles = 0;

/** An empty known_peers file of its own, so each test starts without pinned peers. */
function freshTrust(w: World, who: string): Promise<KnownPeers> {
  return KnownPeers.load(join(w.dir, `${who}-${++trustFiles}.known_peers`));
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

/**
 * A link attempt that should fail: if it succeeds after all, the link is closed (so the test fails
 * on its assertion instead of hanging on an open link) and the promise rejects with a plain Error.
 */
async function refusedLink(opts: ClientLinkOptions): Promise<never> {
  const link = await openLink(opts);
  await link.close();
  throw new Error(`expected a refusal, but a ${link.path} link to ${link.peer} was made`);
}

/** A string as a literal inside a RegExp. */
function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** The promise's outcome, or a failure naming the wait when it takes longer than `ms`. */
function within<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`still pending after ${ms} ms`)), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

/** Waits (bounded) until `check` holds. */
async function until(check: () => boolean, what: string, ms = 20_000): Promise<void> {
  const started = Date.now();
  while (!check()) {
    if (Date.now() - started > ms) throw new Error(`gave up waiting for ${what} after ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
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

describe('the link layer on loopback (embedded rendezvous, no root)', () => {
  let w: World;
  let server: RunningServer | undefined;
  before(async () => {
    w = await makeWorld();
  });
  afterEach(async () => {
    await server?.stop();
    server = undefined;
  });
  after(async () => {
    await w.rv.close();
    await rm(w.dir, { recursive: true, force: true });
  });

  it('two peers on one machine meet on the LAN path, and each learns who the other is', async () => {
    server = await startServer(w);
    await addClient(w);
    const link = await openLink(await clientOptions(w));
    try {
      assert.equal(link.path, 'lan');
      assert.equal(link.peer, SERVER);
      assert.match(link.reason, /both peers are on this machine/);
      assert.equal(await firstLine(link), `hello ${CLIENT}`);
      assert.equal(server.links.length, 1);
      assert.equal(server.links[0]?.peer, CLIENT);
      assert.equal(server.links[0]?.path, 'lan');
    } finally {
      await link.close();
    }
  });

  it('the relay carries the link when it is the only path', async () => {
    server = await startServer(w);
    await addClient(w);
    const link = await openLink(await clientOptions(w, { paths: ['relay'] }));
    try {
      assert.equal(link.path, 'relay');
      assert.equal(link.remote, 'the rendezvous host');
      assert.equal(await firstLine(link), `hello ${CLIENT}`);
    } finally {
      await link.close();
    }
  });

  it('a server record with another fingerprint stops the race with PEER_IDENTITY_MISMATCH', async () => {
    server = await startServer(w);
    await addClient(w);
    // Someone rewrote the server's record with another identity (or the server made a new one).
    const file = join(w.recordsDir, 'servers', `${SERVER}.json`);
    const record = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
    await writeFile(
      file,
      JSON.stringify({ ...record, fingerprint: generateIdentity('MALLORY').fingerprint }),
    );
    await assert.rejects(
      refusedLink(await clientOptions(w)),
      (err: unknown) => isRcppError(err) && err.code === 'PEER_IDENTITY_MISMATCH',
    );
    assert.equal(server.links.length, 0, 'the server handed out no stream');
  });

  it('a client whose record holds another fingerprint is refused by the server', async () => {
    server = await startServer(w);
    await addClient(w, generateIdentity(CLIENT));
    await assert.rejects(
      refusedLink(await clientOptions(w)),
      (err: unknown) => isRcppError(err) && err.code === 'PEER_IDENTITY_MISMATCH',
    );
    assert.equal(server.links.length, 0);
  });

  it('an unregistered client is refused on the signaling channel with a sentence', async () => {
    server = await startServer(w);
    await rm(join(w.recordsDir, 'clients', `${CLIENT}.json`), { force: true });
    await assert.rejects(
      refusedLink(await clientOptions(w)),
      (err: unknown) =>
        isRcppError(err) &&
        err.code === 'PEER_REFUSED' &&
        /does not know a client named LAPTOP/.test(err.message) &&
        /--addclient/.test(err.hint),
    );
  });

  it('periodic mode (records only) connects', async () => {
    server = await startServer(w, { forcePeriodic: true });
    await addClient(w);
    const link = await openLink(await clientOptions(w));
    try {
      assert.equal(link.path, 'periodic');
      assert.match(link.reason, /periodic mode was requested|reads requests every 1 s/);
      assert.equal(await firstLine(link), `hello ${CLIENT}`);
    } finally {
      await link.close();
    }
  });

  it('a file server at its limit of set-ups in progress refuses the next client with BUSY, in words', async () => {
    const server = await startServer(w, { maxPendingSetups: 1 });
    try {
      await addClient(w);
      // A set-up stays counted for a few seconds after its link is made (late relay channels).
      const first = await openLink(await clientOptions(w));
      await first.close();
      await assert.rejects(
        refusedLink(await clientOptions(w)),
        (err: unknown) =>
          isRcppError(err) &&
          err.code === 'BUSY' &&
          /is setting up 1 connections at once, its limit/.test(err.message),
      );
    } finally {
      await server.stop();
    }
  });

  it('a second file server with the same name and another identity is refused: NAME_IN_USE', async () => {
    server = await startServer(w);
    await assert.rejects(
      startServer(w, { identity: generateIdentity(SERVER) }),
      (err: unknown) =>
        isRcppError(err) &&
        err.code === 'NAME_IN_USE' &&
        /Another file server named ASUS/.test(err.message),
    );
  });

  describe('pinning (known_peers on each side)', () => {
    it('a first contact is remembered, and a changed server identity is then refused with both fingerprints', async () => {
      server = await startServer(w);
      await addClient(w);
      const trust = await freshTrust(w, 'client');
      const events: ProgressEvent[] = [];
      const first = await openLink(
        await clientOptions(w, { trust, onProgress: (e) => events.push(e) }),
      );
      await first.close();
      const contact = events.find((e) => e.type === 'peer:first-contact');
      assert.ok(contact, 'the first contact is announced');
      assert.match(
        await readFile(trust.file, 'utf8'),
        new RegExp(`^server ${SERVER} ${escape(w.serverIdentity.fingerprint)} `, 'm'),
      );

      // Someone else now runs a file server called ASUS (or ASUS made a new identity).
      await server.stop();
      const impostor = generateIdentity(SERVER);
      server = await startServer(w, { identity: impostor });
      await assert.rejects(refusedLink(await clientOptions(w, { trust })), (err: unknown) => {
        assert.ok(isRcppError(err) && err.code === 'PEER_IDENTITY_CHANGED', String(err));
        assert.match(err.message, new RegExp(escape(impostor.fingerprint)));
        assert.match(err.message, new RegExp(escape(w.serverIdentity.fingerprint)));
        assert.match(err.message, /record was updated/);
        assert.match(err.hint, /rcpp2p --forget-peer ASUS/);
        return true;
      });
      assert.equal(server.links.length, 0, 'nothing was attempted with the impostor');

      // The user knows ASUS was set up again: forget the old identity, and the next link pins the new one.
      assert.equal((await trust.forget(SERVER)).length, 1);
      const again = await openLink(await clientOptions(w, { trust }));
      await again.close();
      assert.equal(trust.check('server', SERVER, impostor.fingerprint).status, 'known');
    });

    it('a client that comes back with another identity is refused by the server, which says why', async () => {
      const serverTrust = await freshTrust(w, 'server');
      server = await startServer(w, { trust: serverTrust });
      await addClient(w);
      const ok = await openLink(await clientOptions(w));
      await ok.close();
      await until(
        () => serverTrust.check('client', CLIENT, w.clientIdentity.fingerprint).status === 'known',
        'the server to pin the client',
      );
      const other = generateIdentity(CLIENT);
      await addClient(w, other);
      await assert.rejects(
        refusedLink(await clientOptions(w, { identity: other })),
        (err: unknown) =>
          isRcppError(err) &&
          err.code === 'PEER_IDENTITY_CHANGED' &&
          /client LAPTOP now claims identity/.test(err.message),
      );
      assert.ok(
        server.events.some(
          (e) => e.type === 'server:refused' && /now claims identity/.test(e.message),
        ),
        'the server log says why',
      );
    });

    it('allowClients: a client not on the list, or a new client when only known ones are served, is refused', async () => {
      server = await startServer(w, { clientPolicy: ['DESKTOP'] });
      await addClient(w);
      await assert.rejects(
        refusedLink(await clientOptions(w)),
        (err: unknown) =>
          isRcppError(err) &&
          err.code === 'PEER_REFUSED' &&
          /not in allowClients/.test(err.message),
      );
      await server.stop();
      server = await startServer(w, { clientPolicy: 'known' });
      await assert.rejects(
        refusedLink(await clientOptions(w)),
        (err: unknown) =>
          isRcppError(err) && err.code === 'PEER_REFUSED' && /LAPTOP is new/.test(err.message),
      );
    });
  });

  it('a file server whose own port is taken stops at once with PORT_IN_USE, not retrying forever', async () => {
    const holder = net.createServer();
    await new Promise<void>((resolve) => holder.listen(0, '0.0.0.0', resolve));
    const port = (holder.address() as net.AddressInfo).port;
    const events: ProgressEvent[] = [];
    try {
      await assert.rejects(
        within(
          serveRendezvous({
            rendezvous: w.rendezvous,
            auth: w.auth,
            localPort: port,
            serverName: SERVER,
            identity: w.serverIdentity,
            trust: await freshTrust(w, 'server'),
            pollSeconds: 1,
            signal: new AbortController().signal,
            onProgress: (e) => events.push(e),
            onLink: () => Promise.resolve(),
          }),
          5000,
        ),
        (err: unknown) =>
          isRcppError(err) &&
          err.code === 'PORT_IN_USE' &&
          new RegExp(`Local port ${port} is already in use`).test(err.message),
      );
      assert.equal(events.filter((e) => e.type === 'rendezvous:reconnecting').length, 0);
    } finally {
      holder.close();
    }
  });

  describe('a file server that does not answer (hung, asleep, or a socket left behind)', () => {
    let hung: ssh2.Client | undefined;
    afterEach(() => {
      hung?.end();
      hung = undefined;
    });

    /**
     * Logs in like a file server, offers the signaling socket and publishes an online record, but
     * never accepts a channel: what a SIGSTOPped server looks like to the embedded rendezvous.
     */
    async function startHungServer(): Promise<void> {
      const client = new ssh2.Client();
      hung = client;
      await new Promise<void>((resolve, reject) => {
        client.once('ready', () => resolve());
        client.once('error', reject);
        client.connect({
          host: '127.0.0.1',
          port: w.rv.port,
          username: 'peer',
          privateKey: w.auth.method === 'key' ? w.auth.privateKey : undefined,
          hostVerifier: () => true,
          strictVendor: false,
        });
      });
      client.on('unix connection', () => {
        // never accept, never reject
      });
      const socketPath = join(w.recordsDir, 'sockets', `${SERVER}.sock`);
      await rm(socketPath, { force: true });
      await new Promise<void>((resolve, reject) =>
        client.openssh_forwardInStreamLocal(socketPath, (err) => (err ? reject(err) : resolve())),
      );
      const record = selfRecord(
        { role: 'server', name: SERVER, fingerprint: w.serverIdentity.fingerprint },
        { external: { ip: '127.0.0.1', port: 40001 }, local: [], nat: 'public' },
        { online: true, signaling: { via: 'socket' }, pollSeconds: 10 },
      );
      await writeFile(join(w.recordsDir, 'servers', `${SERVER}.json`), serializePeerRecord(record));
    }

    it('Ctrl-C while waiting for its socket ends openLink within 100 ms', async () => {
      await startHungServer();
      await addClient(w);
      const stop = new AbortController();
      const opening = openLink(
        await clientOptions(w, {
          signal: stop.signal,
          onProgress: (e) => {
            // abort once the client waits on the server, well before the answer deadline
            if (e.type === 'peer:found') setTimeout(() => stop.abort(), 200);
          },
        }),
      );
      let abortedAt = 0;
      stop.signal.addEventListener('abort', () => (abortedAt = performance.now()));
      await assert.rejects(
        within(opening, 5000),
        (err: unknown) => isRcppError(err) && err.code === 'ABORTED',
      );
      const ms = performance.now() - abortedAt;
      assert.ok(abortedAt > 0 && ms < 100, `rejected ${ms.toFixed(0)} ms after the abort`);
    });

    it('is reported as not answering after the deadline, naming when it was last seen', async () => {
      await startHungServer();
      await addClient(w);
      await assert.rejects(
        refusedLink(await clientOptions(w, { answerTimeoutMs: 500 })),
        (err: unknown) =>
          isRcppError(err) &&
          err.code === 'PEER_NOT_ANSWERING' &&
          /File server ASUS does not answer \(asleep or hung\?\)/.test(err.message) &&
          /last updated/.test(err.message),
      );
    });
  });

  it('a reconnecting file server leaves no abort listener behind on its signal', async () => {
    const stop = new AbortController();
    const reconnects: number[] = [];
    let onReconnect: () => void = () => {};
    const serving = serveRendezvous({
      rendezvous: w.rendezvous,
      auth: w.auth,
      localPort: await freePort(),
      serverName: SERVER,
      identity: w.serverIdentity,
      trust: await freshTrust(w, 'server'),
      pollSeconds: 1,
      signal: stop.signal,
      onProgress: (e) => {
        if (e.type === 'signaling:ready')
          reconnects.push(getEventListeners(stop.signal, 'abort').length);
        if (e.type === 'rendezvous:reconnecting') onReconnect();
      },
      onLink: () => Promise.resolve(),
    });
    try {
      for (let round = 0; round < 3; round++) {
        await until(() => reconnects.length > round, 'the server to publish again');
        // Cut every session on the rendezvous: the server must reconnect.
        const cut = new Promise<void>((resolve) => (onReconnect = resolve));
        await w.rv.close();
        await cut;
        w.rv = await startRendezvousServer({
          stateDir: join(w.dir, 'state'),
          host: '127.0.0.1',
          port: w.rendezvous.port,
        });
      }
      await until(() => reconnects.length === 4, 'the server to publish again');
      assert.equal(
        new Set(reconnects).size,
        1,
        `abort listeners per session: ${reconnects.join(', ')}`,
      );
    } finally {
      stop.abort();
      await serving.catch(() => {});
    }
  });
});
