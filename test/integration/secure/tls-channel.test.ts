// The TLS 1.3 channel over real loopback sockets and over an in-memory Duplex pair (the shape of an
// SSH channel used as a relay): data flows both ways after mutual fingerprint checks, and every
// wrong peer is refused on both sides before any application byte crosses.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';
import { Duplex } from 'node:stream';
import { isRcppError, type ErrorCode } from '../../../src/errors.js';
import { generateIdentity, type Identity } from '../../../src/secure/identity.js';
import {
  secureAsClient,
  secureAsServer,
  type SecureChannel,
} from '../../../src/secure/tls-channel.js';

const server = generateIdentity('ASUS');
const client = generateIdentity('laptop');
const impostor = generateIdentity('ASUS'); // same name, another key

const expectServer = (id: Identity = server) => ({ name: 'ASUS', fingerprint: id.fingerprint });
const expectClient = (id: Identity = client) => ({ name: 'laptop', fingerprint: id.fingerprint });

type Pair = () => Promise<[Duplex, Duplex]>;

/** A connected pair of loopback TCP sockets: [accepted side, dialling side]. */
async function tcpPair(): Promise<[net.Socket, net.Socket]> {
  const listener = net.createServer();
  await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
  const { port } = listener.address() as net.AddressInfo;
  const accepted = new Promise<net.Socket>((resolve) => listener.once('connection', resolve));
  const dialled = net.connect(port, '127.0.0.1');
  await new Promise<void>((resolve, reject) =>
    dialled.once('connect', resolve).once('error', reject),
  );
  const a = await accepted;
  listener.close(); // stops accepting; its callback would wait for these sockets to close
  for (const s of [a, dialled]) s.on('error', () => {}); // resets after a test ended on purpose
  return [a, dialled];
}

/** Two Duplex objects wired to each other in memory; neither is a net.Socket. */
function memoryPair(): Promise<[Duplex, Duplex]> {
  const make = (peer: () => Duplex): Duplex =>
    new Duplex({
      read() {},
      write(chunk: Buffer, _encoding, callback) {
        peer().push(chunk);
        callback();
      },
      final(callback) {
        peer().push(null);
        callback();
      },
      destroy(err, callback) {
        if (!peer().destroyed) peer().destroy();
        callback(err);
      },
    });
  const a: Duplex = make(() => b);
  const b: Duplex = make(() => a);
  for (const s of [a, b]) s.on('error', () => {});
  return Promise.resolve([a, b]);
}

const PAIRS: [string, Pair][] = [
  ['loopback TCP', tcpPair],
  ['in-memory Duplex', memoryPair],
];

function isError(code: ErrorCode, pattern?: RegExp) {
  return (err: unknown): boolean => {
    assert.ok(isRcppError(err), `not an RcppError: ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (pattern) assert.match(err.message, pattern);
    return true;
  };
}

function readAll(stream: Duplex, bytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let got = 0;
    const onData = (d: Buffer): void => {
      chunks.push(d);
      got += d.length;
      if (got >= bytes) {
        stream.off('data', onData);
        resolve(Buffer.concat(chunks));
      }
    };
    stream.on('data', onData);
    stream.once('error', reject);
    stream.once('close', () => reject(new Error(`closed after ${got} of ${bytes} bytes`)));
  });
}

/** Everything a raw stream receives until it closes (or `ms` pass). */
function collectUntilClose(stream: Duplex, ms = 3000): Promise<Buffer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const done = (): void => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks));
    };
    const timer = setTimeout(done, ms);
    stream.on('data', (d: Buffer) => chunks.push(d));
    stream.on('error', () => {});
    stream.once('close', done);
    stream.once('end', done);
  });
}

function closeAll(...channels: SecureChannel[]): void {
  for (const c of channels) c.socket.destroy();
}

for (const [kind, pair] of PAIRS) {
  describe(`TLS channel over ${kind}`, () => {
    it('handshakes with TLS 1.3 and AES-128-GCM, then carries data both ways', async () => {
      const [a, b] = await pair();
      const [srv, cli] = await Promise.all([
        secureAsServer(a, { identity: server, expected: expectClient() }),
        secureAsClient(b, { identity: client, expected: expectServer() }),
      ]);
      try {
        assert.deepEqual(srv.peer, expectClient());
        assert.deepEqual(cli.peer, expectServer());
        assert.equal(cli.socket.getProtocol(), 'TLSv1.3');
        assert.equal(srv.socket.getProtocol(), 'TLSv1.3');
        assert.equal(cli.socket.getCipher().standardName, 'TLS_AES_128_GCM_SHA256');

        // the server speaks first, at once: nothing of it may be eaten by the verdict exchange
        srv.socket.write('welcome\n');
        assert.equal((await readAll(cli.socket, 8)).toString(), 'welcome\n');

        // then an echo of 3 MiB in 1 MiB writes
        srv.socket.on('data', (d: Buffer) => srv.socket.write(d));
        const payload = randomBytes(3 * 1024 * 1024);
        const echoed = readAll(cli.socket, payload.length);
        for (let i = 0; i < payload.length; i += 1024 * 1024)
          cli.socket.write(payload.subarray(i, i + 1024 * 1024));
        const back = await echoed;
        assert.equal(
          createHash('sha256').update(back).digest('hex'),
          createHash('sha256').update(payload).digest('hex'),
        );
      } finally {
        closeAll(srv, cli);
      }
    });

    it('the client speaking first right after the handshake loses nothing', async () => {
      const [a, b] = await pair();
      const [srv, cli] = await Promise.all([
        secureAsServer(a, { identity: server, expected: expectClient() }),
        secureAsClient(b, { identity: client, expected: expectServer() }).then((c) => {
          c.socket.write('hello\n');
          return c;
        }),
      ]);
      try {
        assert.equal((await readAll(srv.socket, 6)).toString(), 'hello\n');
      } finally {
        closeAll(srv, cli);
      }
    });

    it('a server with another key is refused on both sides', async () => {
      const [a, b] = await pair();
      const [srv, cli] = await Promise.allSettled([
        secureAsServer(a, { identity: impostor, expected: expectClient() }),
        secureAsClient(b, { identity: client, expected: expectServer() }),
      ]);
      assert.equal(cli.status, 'rejected');
      assert.equal(srv.status, 'rejected');
      const clientErr = cli.reason as unknown;
      const serverErr = srv.reason as unknown;
      assert.ok(
        isError('PEER_IDENTITY_MISMATCH', /file server ASUS presented certificate/)(clientErr),
      );
      assert.ok(isRcppError(clientErr) && clientErr.message.includes(impostor.fingerprint));
      assert.ok(isRcppError(clientErr) && clientErr.message.includes(server.fingerprint));
      assert.ok(isError('PEER_IDENTITY_MISMATCH', /client laptop refused/)(serverErr));
    });

    it('a client with another key is refused on both sides', async () => {
      const stranger = generateIdentity('laptop');
      const [a, b] = await pair();
      const [srv, cli] = await Promise.allSettled([
        secureAsServer(a, { identity: server, expected: expectClient() }),
        secureAsClient(b, { identity: stranger, expected: expectServer() }),
      ]);
      assert.equal(srv.status, 'rejected');
      assert.equal(cli.status, 'rejected');
      const serverErr = srv.reason as unknown;
      assert.ok(
        isError('PEER_IDENTITY_MISMATCH', /client laptop presented certificate/)(serverErr),
      );
      assert.ok(isRcppError(serverErr) && serverErr.message.includes(stranger.fingerprint));
      assert.ok(isRcppError(serverErr) && /--addclient/.test(serverErr.hint));
      assert.ok(isError('PEER_IDENTITY_MISMATCH', /file server ASUS refused/)(cli.reason));
    });

    it('a TLS client without a certificate is refused and gets nothing but the refusal', async () => {
      const [a, b] = await pair();
      const serving = secureAsServer(a, { identity: server, expected: expectClient() });
      const bare = tls.connect({ socket: b, rejectUnauthorized: false, minVersion: 'TLSv1.3' });
      const received = collectUntilClose(bare);
      await assert.rejects(serving, isError('PEER_IDENTITY_MISMATCH', /presented no certificate/));
      const got = await received;
      assert.ok(got.length <= 1 && (got.length === 0 || got[0] === 0), got.toString('hex'));
      bare.destroy();
    });

    it('a stranger speaking plain text gets nothing readable back; the server fails cleanly', async () => {
      for (const text of [
        'GET / HTTP/1.1\r\nHost: asus\r\n\r\n',
        `hello?\n${randomBytes(600).toString('base64')}`,
      ]) {
        const [a, b] = await pair();
        const serving = secureAsServer(a, {
          identity: server,
          expected: expectClient(),
          timeoutMs: 3000,
        });
        const received = collectUntilClose(b);
        b.write(text);
        await assert.rejects(serving, (err: unknown) => {
          assert.ok(isRcppError(err), String(err));
          assert.ok(
            ['PROTOCOL_ERROR', 'CONNECTION_LOST'].includes(err.code),
            `${err.code}: ${err.message}`,
          );
          return true;
        });
        const got = await received;
        // at most a TLS alert record (type 0x15), never text or a certificate
        assert.ok(got.length === 0 || (got[0] === 0x15 && got.length <= 7), got.toString('hex'));
        b.destroy();
      }
    });

    it('times out when the peer says nothing, on either side', async () => {
      for (const side of ['client', 'server'] as const) {
        const [a, b] = await pair();
        const started = Date.now();
        const opts = {
          identity: side === 'client' ? client : server,
          expected: expectServer(),
          timeoutMs: 300,
        };
        const attempt = side === 'client' ? secureAsClient(b, opts) : secureAsServer(b, opts);
        await assert.rejects(
          attempt,
          isError('TIMEOUT', /did not complete the secure handshake within 0\.3 s/),
        );
        assert.ok(Date.now() - started < 2000);
        assert.ok(b.destroyed);
        a.destroy();
      }
    });

    it('stops on abort, and at once for an aborted signal', async () => {
      const [a, b] = await pair();
      const controller = new AbortController();
      const attempt = secureAsClient(b, {
        identity: client,
        expected: expectServer(),
        signal: controller.signal,
      });
      setTimeout(() => controller.abort(), 50);
      await assert.rejects(attempt, isError('ABORTED'));
      assert.ok(b.destroyed);
      a.destroy();

      const [c, d] = await pair();
      await assert.rejects(
        secureAsServer(d, {
          identity: server,
          expected: expectClient(),
          signal: AbortSignal.abort(),
        }),
        isError('ABORTED'),
      );
      assert.ok(d.destroyed);
      c.destroy();
    });

    it('reports a peer that hangs up mid-handshake as a lost connection', async () => {
      const [a, b] = await pair();
      const attempt = secureAsClient(b, {
        identity: client,
        expected: expectServer(),
        timeoutMs: 5000,
      });
      setTimeout(() => a.destroy(), 20);
      await assert.rejects(attempt, (err: unknown) => {
        assert.ok(isRcppError(err), String(err));
        assert.ok(
          ['CONNECTION_LOST', 'PROTOCOL_ERROR'].includes(err.code),
          `${err.code}: ${err.message}`,
        );
        return true;
      });
    });
  });
}

describe('certificate from certificate.ts in plain node:tls', () => {
  it('works for a TLS 1.3 server and client with mutual certificates', async () => {
    const srv = tls.createServer({
      key: server.keyPem,
      cert: server.certPem,
      requestCert: true,
      rejectUnauthorized: false,
      minVersion: 'TLSv1.3',
    });
    srv.on('secureConnection', (s) => {
      const peer = s.getPeerX509Certificate();
      s.end(peer?.subject.trim() ?? 'none');
    });
    await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = srv.address() as net.AddressInfo;
      const s = tls.connect({
        port,
        host: '127.0.0.1',
        key: client.keyPem,
        cert: client.certPem,
        minVersion: 'TLSv1.3',
        rejectUnauthorized: false,
      });
      const reply = await collectUntilClose(s);
      assert.equal(s.getProtocol(), 'TLSv1.3');
      assert.equal(s.getPeerX509Certificate()?.subject.trim(), 'CN=rcpp2p ASUS');
      assert.equal(reply.toString(), 'CN=rcpp2p laptop');
      s.destroy();
    } finally {
      await new Promise<void>((resolve) => srv.close(() => resolve()));
    }
  });
});
