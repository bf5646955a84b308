// The rendezvous layer against both kinds of rendezvous on loopback: a real OpenSSH sshd and the
// embedded ssh2 server. Same tests for both: login and host-key checks, the external address,
// records, and a Unix-socket channel from one peer to another.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { isRcppError } from '../../src/errors.js';
import { RendezvousDirectory } from '../../src/rendezvous/directory.js';
import { formatKnownHostsLine } from '../../src/rendezvous/known-hosts.js';
import type { PeerRecord } from '../../src/rendezvous/peer-record.js';
import { readSignal, writeSignal } from '../../src/rendezvous/signaling.js';
import type { SshAuth } from '../../src/rendezvous/ssh-auth.js';
import {
  RendezvousSession,
  type RendezvousSessionOptions,
} from '../../src/rendezvous/ssh-session.js';
import { hashPassword, saveAccounts } from '../../src/rendezvous-server/accounts.js';
import { startRendezvousServer } from '../../src/rendezvous-server/server.js';
import { hasSshd, skipUnless } from '../helpers/capability.js';
import { startSshd, type SshdFixture } from '../helpers/sshd.js';
import { generateSshKeyPair } from '../../src/rendezvous/ssh-key.js';

interface Target {
  host: string;
  port: number;
  user: string;
  auth: SshAuth;
  knownHostsFile: string;
  dir: string;
  /** Another key or password that must be refused. */
  wrongAuth: SshAuth;
  stop(): Promise<void>;
}

async function openSshdTarget(): Promise<Target> {
  const fx: SshdFixture = await startSshd({ listenAddress: '127.0.0.1' });
  const wrong = generateSshKeyPair();
  return {
    host: fx.host,
    port: fx.port,
    user: fx.user,
    auth: { method: 'key', path: fx.clientKeyFile, privateKey: await readFile(fx.clientKeyFile) },
    knownHostsFile: fx.knownHostsFile,
    dir: fx.rendezvousDir,
    wrongAuth: { method: 'key', path: 'wrong-key', privateKey: Buffer.from(wrong.private) },
    stop: () => fx.stop(),
  };
}

async function openEmbeddedTarget(): Promise<Target> {
  const dir = await mkdtemp(join(tmpdir(), 'rcpp2p-embedded-'));
  const pair = generateSshKeyPair();
  await saveAccounts(join(dir, 'state'), [
    {
      user: 'peer',
      authorizedKeys: [pair.public],
      passwordHash: await hashPassword('correct horse'),
    },
  ]);
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
    host: '127.0.0.1',
    port: rv.port,
    user: 'peer',
    auth: { method: 'key', path: 'demo-key', privateKey: Buffer.from(pair.private) },
    knownHostsFile,
    dir: '.rcpp2p',
    wrongAuth: { method: 'password', password: 'wrong horse' },
    async stop() {
      await rv.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

function sessionOptions(
  t: Target,
  overrides: Partial<RendezvousSessionOptions> = {},
): RendezvousSessionOptions {
  return {
    host: t.host,
    port: t.port,
    user: t.user,
    auth: t.auth,
    knownHostsFile: t.knownHostsFile,
    localPort: 0,
    portFallback: 'any',
    keepaliveSeconds: 15,
    readyTimeoutMs: 10_000,
    signal: new AbortController().signal,
    ...overrides,
  };
}

const FP = 'SHA256:' + 'B'.repeat(43);
/** A signal for calls these tests never cancel. */
const NEVER = new AbortController().signal;

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

for (const [kind, open, skip] of [
  ['OpenSSH sshd', openSshdTarget, skipUnless(hasSshd())],
  ['embedded rendezvous', openEmbeddedTarget, false],
] as const) {
  describe(`rendezvous layer against the ${kind}`, { skip }, () => {
    let t: Target;
    before(async () => {
      t = await open();
    });
    after(async () => {
      await t?.stop();
    });

    it('logs in from a chosen local port and learns that port back as the external address', async () => {
      const port = await freePort();
      const session = await RendezvousSession.open(
        sessionOptions(t, { localPort: port, portFallback: 'fail' }),
      );
      assert.equal(session.localPort, port);
      try {
        const hello = await new RendezvousDirectory(session, t.dir).hello(
          'server',
          'NOBODY',
          NEVER,
        );
        assert.equal(hello.observed.ip, '127.0.0.1');
        assert.equal(hello.observed.port, session.localPort);
        assert.equal(hello.record, undefined);
        assert.ok(hello.home.startsWith('/'), hello.home);
      } finally {
        await session.close();
      }
    });

    it('publishes, reads and lists records', async () => {
      const session = await RendezvousSession.open(sessionOptions(t));
      try {
        const directory = new RendezvousDirectory(session, t.dir);
        const record: PeerRecord = {
          v: 1,
          role: 'server',
          name: 'ASUS',
          fingerprint: FP,
          lastSeen: new Date().toISOString(),
          software: 'test',
          online: true,
          signaling: { via: 'socket' },
        };
        await directory.publish(record, NEVER);
        assert.deepEqual(await directory.read('server', 'ASUS', NEVER), record);
        await directory.publish({ ...record, name: 'NAS' }, NEVER);
        assert.deepEqual((await directory.list('server', NEVER)).map((r) => r.name).sort(), [
          'ASUS',
          'NAS',
        ]);
      } finally {
        await session.close();
      }
    });

    it('carries a signaling channel from one peer to another through a Unix socket', async () => {
      const server = await RendezvousSession.open(sessionOptions(t));
      const client = await RendezvousSession.open(sessionOptions(t));
      try {
        const directory = new RendezvousDirectory(server, t.dir);
        const { home } = await directory.hello('server', 'ASUS', NEVER);
        const path = directory.socketPath(home, 'SIGTEST');
        await directory.unlinkSocket('SIGTEST', NEVER);
        const received = new Promise<string>((resolve) => {
          server.onIncoming((stream) => {
            readSignal(stream).then(
              (m) => resolve(JSON.stringify(m)),
              () => resolve('error'),
            );
          });
        });
        await server.forwardIn(path, { signal: NEVER });
        const channel = await client.forwardOut(path, { signal: NEVER });
        writeSignal(channel, { t: 'open', v: 1, kind: 'signal' });
        assert.deepEqual(JSON.parse(await received), { t: 'open', v: 1, kind: 'signal' });
        channel.destroy();
      } finally {
        await client.close();
        await server.close();
      }
    });

    it('refuses a login that is wrong, with a sentence', async () => {
      await assert.rejects(
        RendezvousSession.open(sessionOptions(t, { auth: t.wrongAuth })),
        (err: unknown) =>
          isRcppError(err) &&
          err.code === 'AUTH_FAILED' &&
          /refused the login for user/.test(err.message),
      );
    });

    it('refuses an unknown host key', async () => {
      const empty = join(tmpdir(), `rcpp2p-empty-known-hosts-${randomBytes(4).toString('hex')}`);
      try {
        await assert.rejects(
          RendezvousSession.open(sessionOptions(t, { knownHostsFile: empty })),
          (err: unknown) =>
            isRcppError(err) && err.code === 'HOST_KEY_UNKNOWN' && /is not in/.test(err.message),
        );
      } finally {
        await rm(empty, { force: true });
      }
    });

    it('refuses a changed host key with a warning', async () => {
      const changed = join(
        tmpdir(),
        `rcpp2p-changed-known-hosts-${randomBytes(4).toString('hex')}`,
      );
      const other = generateSshKeyPair();
      const blob = Buffer.from(other.public.split(' ')[1] ?? '', 'base64');
      await writeFile(changed, formatKnownHostsLine(t.host, t.port, 'ssh-ed25519', blob) + '\n');
      try {
        await assert.rejects(
          RendezvousSession.open(sessionOptions(t, { knownHostsFile: changed })),
          (err: unknown) =>
            isRcppError(err) &&
            err.code === 'HOST_KEY_MISMATCH' &&
            /WARNING: the host key of .* has changed/.test(err.message),
        );
      } finally {
        await rm(changed, { force: true });
      }
    });

    it('says who did not answer when the rendezvous is down', async () => {
      await assert.rejects(
        RendezvousSession.open(sessionOptions(t, { port: 1 })),
        (err: unknown) =>
          isRcppError(err) &&
          err.code === 'RENDEZVOUS_UNREACHABLE' &&
          /refused the connection/.test(err.message),
      );
    });
  });
}
