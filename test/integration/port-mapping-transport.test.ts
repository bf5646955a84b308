// The transports to a router, on real loopback sockets with a misbehaving "router": UDP requests
// retransmitted on RFC 6886's schedule and cut short by "port unreachable", strays and floods
// ignored; HTTP answers cut at their size limit; everything cancellable.
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { httpExchange, udpExchange } from '../../src/nat/port-mapping/transport.js';

async function udpRouter(
  onMessage: (socket: dgram.Socket, msg: Buffer, from: dgram.RemoteInfo) => void,
): Promise<{ port: number; received: number[]; close(): void }> {
  const socket = dgram.createSocket('udp4');
  const received: number[] = [];
  const started = Date.now();
  socket.on('message', (msg, from) => {
    received.push(Date.now() - started);
    onMessage(socket, msg, from);
  });
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  return { port: socket.address().port, received, close: () => socket.close() };
}

const accept = (b: Buffer): string | undefined =>
  b.toString() === 'answer' ? 'answer' : undefined;

describe('UDP exchange with a router', () => {
  it('a silent router gets the request again after 250, 500 ms... then a clear failure', async () => {
    const router = await udpRouter(() => {});
    try {
      const started = Date.now();
      await assert.rejects(
        udpExchange({
          gateway: '127.0.0.1',
          port: router.port,
          request: Buffer.from('ask'),
          accept,
          signal: new AbortController().signal,
          maxAnswerBytes: 100,
          retransmitMs: [50, 100, 200],
        }),
        /127\.0\.0\.1 did not answer on UDP port \d+/,
      );
      assert.equal(router.received.length, 3);
      assert.ok(Date.now() - started >= 350 - 20);
    } finally {
      router.close();
    }
  });

  it('strays, floods and unknown answers are ignored; the right answer is taken', async () => {
    const router = await udpRouter((socket, _msg, from) => {
      socket.send(Buffer.alloc(2000, 1), from.port, from.address);
      socket.send(Buffer.from('hello?'), from.port, from.address);
      socket.send(Buffer.from('answer'), from.port, from.address);
    });
    try {
      const got = await udpExchange({
        gateway: '127.0.0.1',
        port: router.port,
        request: Buffer.from('ask'),
        accept,
        signal: new AbortController().signal,
        maxAnswerBytes: 1100,
      });
      assert.equal(got, 'answer');
    } finally {
      router.close();
    }
  });

  it('nothing listening there: fails at once on "port unreachable", not after the schedule', async () => {
    const router = await udpRouter(() => {});
    const port = router.port;
    router.close();
    const started = Date.now();
    await assert.rejects(
      udpExchange({
        gateway: '127.0.0.1',
        port,
        request: Buffer.from('ask'),
        accept,
        signal: new AbortController().signal,
        maxAnswerBytes: 100,
        retransmitMs: [5000],
      }),
      /nothing answers on 127\.0\.0\.1 UDP port/,
    );
    assert.ok(Date.now() - started < 4000);
  });

  it('the caller’s signal stops it', async () => {
    const router = await udpRouter(() => {});
    try {
      const stop = new AbortController();
      setTimeout(() => stop.abort(), 30);
      await assert.rejects(
        udpExchange({
          gateway: '127.0.0.1',
          port: router.port,
          request: Buffer.from('ask'),
          accept,
          signal: stop.signal,
          maxAnswerBytes: 100,
        }),
        (err: Error & { code?: string }) => err.code === 'ABORTED',
      );
    } finally {
      router.close();
    }
  });
});

describe('HTTP exchange with a router', () => {
  async function httpRouter(
    handler: http.RequestListener,
  ): Promise<{ url: string; close(): Promise<void> }> {
    const server = http.createServer(handler);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    return {
      url: `http://127.0.0.1:${port}/rootDesc.xml`,
      close: () =>
        new Promise((resolve) => {
          server.closeAllConnections();
          server.close(() => resolve());
        }),
    };
  }

  it('reads an answer and our local address on the connection', async () => {
    const router = await httpRouter((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => res.end(`${req.method} ${String(req.headers['soapaction'])} ${body}`));
    });
    try {
      const r = await httpExchange(router.url, {
        method: 'POST',
        headers: { SOAPAction: '"x#y"' },
        body: 'hi',
        maxAnswerBytes: 1000,
        signal: new AbortController().signal,
      });
      assert.deepEqual(r, { status: 200, body: 'POST "x#y" hi', localAddress: '127.0.0.1' });
    } finally {
      await router.close();
    }
  });

  it('an answer declared larger than the limit is refused before it is read', async () => {
    const router = await httpRouter((_req, res) => {
      res.writeHead(200, { 'Content-Length': '100000' });
      res.write('x'.repeat(10));
    });
    try {
      await assert.rejects(
        httpExchange(router.url, {
          method: 'GET',
          maxAnswerBytes: 1024,
          signal: new AbortController().signal,
        }),
        /sent more than 1 KB/,
      );
    } finally {
      await router.close();
    }
  });

  it('an endless chunked answer is cut at the limit', async () => {
    const router = await httpRouter((_req, res) => {
      res.writeHead(200);
      const timer = setInterval(() => res.write('y'.repeat(4096)), 1);
      res.on('close', () => clearInterval(timer));
    });
    try {
      await assert.rejects(
        httpExchange(router.url, {
          method: 'GET',
          maxAnswerBytes: 64 * 1024,
          signal: new AbortController().signal,
        }),
        /sent more than 64 KB/,
      );
    } finally {
      await router.close();
    }
  });

  it('a router that never answers is stopped by the signal', async () => {
    const router = await httpRouter(() => {});
    try {
      const stop = new AbortController();
      setTimeout(() => stop.abort(), 50);
      await assert.rejects(
        httpExchange(router.url, { method: 'GET', maxAnswerBytes: 1024, signal: stop.signal }),
        (err: Error & { code?: string }) => err.code === 'ABORTED',
      );
    } finally {
      await router.close();
    }
  });
});
