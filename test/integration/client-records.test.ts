// The file server's reader of client records (src/rendezvous/client-records.ts) against a real
// OpenSSH sshd and the embedded rendezvous on loopback: it answers exactly what a read through the
// directory answers, through its one running command where the host runs it, and the directory
// answers whenever it cannot (a line that is not a record, a reader the host ended, a host that
// does not run it).
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { isRcppError } from '../../src/errors.js';
import { ClientRecordReader } from '../../src/rendezvous/client-records.js';
import { RendezvousDirectory } from '../../src/rendezvous/directory.js';
import {
  selfRecord,
  serializePeerRecord,
  type PeerRecord,
} from '../../src/rendezvous/peer-record.js';
import { RendezvousSession } from '../../src/rendezvous/ssh-session.js';
import { hasSshd, skipUnless } from '../helpers/capability.js';
import {
  startLoopbackRendezvous,
  type LoopbackKind,
  type LoopbackRendezvous,
} from '../helpers/index-peers.js';

interface Host {
  rv: LoopbackRendezvous;
  /** Where the account's client records are on disk. */
  clientsDir: string;
  stop(): Promise<void>;
}

async function openHost(kind: LoopbackKind, sshdConfig: string[] = []): Promise<Host> {
  const root = await mkdtemp(join(tmpdir(), 'rcpp2p-records-'));
  const rv = await startLoopbackRendezvous(kind, root, sshdConfig);
  return {
    rv,
    clientsDir: join(dirname(rv.indexesDir), 'clients'),
    async stop() {
      await rv.stop();
      await rm(root, { recursive: true, force: true });
    },
  };
}

const NEVER = new AbortController().signal;

function record(name: string, n: number): PeerRecord {
  return selfRecord(
    { role: 'client', name, fingerprint: 'SHA256:' + String(n % 10).repeat(43) },
    { external: { ip: '203.0.113.7', port: 40000 + n }, local: [], nat: 'port-preserving' },
  );
}

async function connect(h: Host): Promise<{
  session: RendezvousSession;
  directory: RendezvousDirectory;
  reader: ClientRecordReader;
  stop: AbortController;
}> {
  const stop = new AbortController();
  const [user, hostPort] = h.rv.target.split('@') as [string, string];
  const session = await RendezvousSession.open({
    host: '127.0.0.1',
    port: Number(hostPort.split(':')[1]),
    user,
    auth: { method: 'key', path: h.rv.keyFile, privateKey: await readFile(h.rv.keyFile) },
    knownHostsFile: h.rv.knownHostsFile,
    localPort: 0,
    portFallback: 'any',
    keepaliveSeconds: 15,
    readyTimeoutMs: 10_000,
    signal: stop.signal,
  });
  const directory = new RendezvousDirectory(session, h.rv.dir);
  await directory.hello('server', 'ASUS', NEVER); // makes the folders, as a server's login does
  return {
    session,
    directory,
    reader: new ClientRecordReader(session, directory, stop.signal),
    stop,
  };
}

/** Waits (bounded) until `check` holds. */
async function until(check: () => boolean, what: string, ms = 15_000): Promise<void> {
  const started = Date.now();
  while (!check()) {
    if (Date.now() - started > ms) throw new Error(`gave up waiting for ${what} after ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('client record reader on OpenSSH', { skip: skipUnless(hasSshd()) }, () => {
  let h: Host;
  before(async () => {
    h = await openHost('openssh');
  });
  after(() => h?.stop());

  it('answers what the directory answers, through its one running command', async () => {
    const c = await connect(h);
    try {
      await c.reader.start();
      assert.equal(c.reader.running, true, 'the host runs the reader');
      await c.directory.publish(record('LAPTOP', 1), NEVER);
      // a record written without a final newline, as any account member may write one
      await writeFile(join(h.clientsDir, 'NAS.json'), serializePeerRecord(record('NAS', 2)));
      for (const name of ['LAPTOP', 'NAS', 'NOBODY', 'LAPTOP']) {
        assert.deepEqual(
          await c.reader.read(name, NEVER),
          await c.directory.read('client', name, NEVER),
          name,
        );
      }
      const both = await Promise.all([c.reader.read('NAS', NEVER), c.reader.read('LAPTOP', NEVER)]);
      assert.deepEqual(
        both.map((r) => r?.name),
        ['NAS', 'LAPTOP'],
        'answers in the order asked',
      );
      assert.equal(c.reader.fallbacks, 0, 'no read went to the directory');
    } finally {
      c.reader.close();
      await c.session.close();
    }
  });

  it('a line that is not a record (100 KiB) gets the directory’s answer, and a new reader serves the next read', async () => {
    const c = await connect(h);
    try {
      await c.reader.start();
      await c.directory.publish(record('LAPTOP', 1), NEVER);
      await writeFile(join(h.clientsDir, 'EVIL.json'), 'x'.repeat(100 * 1024));
      await assert.rejects(
        c.reader.read('EVIL', NEVER),
        (err: unknown) =>
          isRcppError(err) && err.code === 'RENDEZVOUS_REFUSED' && /damaged/.test(err.message),
      );
      assert.equal(c.reader.fallbacks, 1, 'the directory answered the hostile line');
      assert.equal((await c.reader.read('LAPTOP', NEVER))?.name, 'LAPTOP');
      assert.equal(c.reader.fallbacks, 1, 'the next read went through a new reader');
      assert.equal(c.reader.running, true);
    } finally {
      c.reader.close();
      await c.session.close();
    }
  });
});

describe(
  'client record reader on OpenSSH that closes idle commands',
  { skip: skipUnless(hasSshd()) },
  () => {
    let h: Host;
    before(async () => {
      h = await openHost('openssh', ['ChannelTimeout session:command=3s']);
    });
    after(() => h?.stop());

    it('a reader the host ended is started again, and the read still answers', async () => {
      const c = await connect(h);
      try {
        await c.directory.publish(record('LAPTOP', 1), NEVER);
        await c.reader.start();
        assert.equal((await c.reader.read('LAPTOP', NEVER))?.name, 'LAPTOP');
        await until(() => !c.reader.running, 'the host to close the idle reader');
        assert.equal((await c.reader.read('LAPTOP', NEVER))?.name, 'LAPTOP');
        assert.equal(c.reader.fallbacks, 0);
      } finally {
        c.reader.close();
        await c.session.close();
      }
    });
  },
);

describe('client record reader on the embedded rendezvous', () => {
  let h: Host;
  before(async () => {
    h = await openHost('embedded');
  });
  after(() => h?.stop());

  it('is not run there: every read goes to the directory, with the same answers', async () => {
    const c = await connect(h);
    try {
      await c.reader.start();
      assert.equal(c.reader.running, false);
      await c.directory.publish(record('LAPTOP', 1), NEVER);
      await mkdir(h.clientsDir, { recursive: true });
      assert.equal((await c.reader.read('LAPTOP', NEVER))?.name, 'LAPTOP');
      assert.equal(await c.reader.read('NOBODY', NEVER), undefined);
      assert.equal(c.reader.fallbacks, 2);
    } finally {
      c.reader.close();
      await c.session.close();
    }
  });
});
