// The listeners a mapped port leads to, on real loopback sockets: the file server's punch port
// listening while its rendezvous session's socket holds that port, shared by set-ups by client
// address, closed with the last one; and connections that arrive before a set-up serves are kept.
import assert from 'node:assert/strict';
import net from 'node:net';
import { describe, it } from 'node:test';
import { openPublicListener } from '../../src/nat/public-listener.js';
import { SharedListener } from '../../src/nat/shared-listener.js';
import { connectFrom } from '../../src/net/tcp.js';

/** A stand-in for the rendezvous: accepts and holds connections. */
async function holdingServer(): Promise<{ port: number; close(): void }> {
  const held: net.Socket[] = [];
  const server = net.createServer((s) => held.push(s));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () => {
      for (const s of held) s.destroy();
      server.close();
    },
  };
}

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

function dial(port: number, from: string): Promise<net.Socket> {
  return connectFrom({
    remote: { ip: '127.0.0.1', port },
    localPort: 0,
    localAddress: from,
    timeoutMs: 2000,
  });
}

describe('the mapped punch port’s listener', () => {
  it('listens while the session socket holds the port; sockets go to the set-up of their address', async () => {
    const rendezvous = await holdingServer();
    const punchPort = await freePort();
    // the file server's rendezvous session, connected from its punch port
    const session = await connectFrom({
      remote: { ip: '127.0.0.1', port: rendezvous.port },
      localPort: punchPort,
      timeoutMs: 2000,
    });
    const shared = new SharedListener(punchPort);
    const stopA = new AbortController();
    const stopB = new AbortController();
    try {
      const a = await shared.acquire('127.0.0.2', stopA.signal);
      const b = await shared.acquire('::ffff:127.0.0.3', stopB.signal);
      const gotA: string[] = [];
      const gotB: string[] = [];
      const servingA = a.serve(stopA.signal, (s) => gotA.push(s.remoteAddress ?? ''));
      const servingB = b.serve(stopB.signal, (s) => gotB.push(s.remoteAddress ?? ''));
      const c1 = await dial(punchPort, '127.0.0.3');
      const c2 = await dial(punchPort, '127.0.0.2');
      const stranger = await dial(punchPort, '127.0.0.9');
      await waitFor(() => gotA.length + gotB.length === 2);
      assert.deepEqual(gotA.map(unmapped), ['127.0.0.2']);
      assert.deepEqual(gotB.map(unmapped), ['127.0.0.3']);
      await waitFor(() => stranger.destroyed || stranger.readableEnded, 'a stranger is dropped');
      for (const s of [c1, c2, stranger]) s.destroy();

      stopA.abort();
      await servingA;
      // one set-up left: it takes a connection from any address
      const c3 = await dial(punchPort, '127.0.0.9');
      await waitFor(() => gotB.length === 2);
      c3.destroy();
      stopB.abort();
      await servingB;
      await assert.rejects(dial(punchPort, '127.0.0.2'), /ECONNREFUSED/);
      assert.equal(session.destroyed, false, 'the session socket was not disturbed');
      // and the punch port can be bound for a punch again
      const punchAgain = await connectFrom({
        remote: { ip: '127.0.0.1', port: rendezvous.port },
        localPort: punchPort,
        localAddress: '127.0.0.1',
        timeoutMs: 2000,
      }).catch((err: NodeJS.ErrnoException) => err);
      assert.ok(!(punchAgain instanceof Error) || punchAgain.code !== 'EADDRINUSE');
      if (punchAgain instanceof net.Socket) punchAgain.destroy();
    } finally {
      stopA.abort();
      stopB.abort();
      session.destroy();
      rendezvous.close();
    }
  });

  it('a connection that arrives before the set-up serves is kept for it', async () => {
    const shared = new SharedListener(await freePort());
    const stop = new AbortController();
    const view = await shared.acquire('127.0.0.2', stop.signal);
    const early = await dial(view.port, '127.0.0.2');
    await new Promise((r) => setTimeout(r, 50));
    const got: net.Socket[] = [];
    const serving = view.serve(stop.signal, (s) => got.push(s));
    assert.equal(got.length, 1);
    early.destroy();
    for (const s of got) s.destroy();
    stop.abort();
    await serving;
  });

  it('a client’s listener keeps a connection made before serve() too', async () => {
    const stop = new AbortController();
    const listener = await openPublicListener(stop.signal);
    const early = await dial(listener.port, '127.0.0.1');
    await new Promise((r) => setTimeout(r, 50));
    const got: net.Socket[] = [];
    const serving = listener.serve(stop.signal, (s) => got.push(s));
    assert.equal(got.length, 1, 'the early connection is handed over');
    early.destroy();
    for (const s of got) s.destroy();
    stop.abort();
    await serving;
  });
});

function unmapped(ip: string): string {
  return ip.replace(/^::ffff:/, '');
}

async function waitFor(check: () => boolean, what = 'condition'): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.fail(`timed out waiting: ${what}`);
}
