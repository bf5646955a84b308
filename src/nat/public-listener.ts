// Connection reversal (RFC 5128 section 3.2, as Napster did it): a peer that is publicly reachable
// listens on a fresh port for the length of one connection set-up and tells the other side, which
// then simply connects. Whoever connects must still pass the TLS identity check before anything
// is read; the listener closes as soon as the race is over.
import net from 'node:net';
import { abortError } from '../errors.js';
import { logger } from '../log.js';

const log = logger('listener');

export interface PublicListener {
  port: number;
  /** Hands every accepted socket to `onSocket` until the signal aborts, then closes. */
  serve(signal: AbortSignal, onSocket: (socket: net.Socket) => void): Promise<void>;
  close(): void;
}

const MAX_PENDING_ACCEPTS = 8;

export async function openPublicListener(signal: AbortSignal): Promise<PublicListener> {
  if (signal.aborted) throw abortError(signal);
  const server = net.createServer();
  server.maxConnections = MAX_PENDING_ACCEPTS;
  const listen = (host: string): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ port: 0, host }, () => {
        server.off('error', reject);
        resolve();
      });
    });
  // One dual-stack socket (IPv4 peers arrive as ::ffff:a.b.c.d), or IPv4 alone where the kernel
  // has no IPv6 at all.
  await listen('::').catch(() => listen('0.0.0.0'));
  const port = (server.address() as net.AddressInfo).port;
  log(`listening on port ${port}`);
  let closed = false;
  const close = (): void => {
    if (closed) return;
    closed = true;
    server.close();
  };
  return {
    port,
    close,
    serve(serveSignal, onSocket) {
      return new Promise<void>((resolve) => {
        const stop = (): void => {
          server.off('connection', onConnection);
          close();
          resolve();
        };
        const onConnection = (socket: net.Socket): void => {
          log(`accepted ${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`);
          onSocket(socket);
        };
        server.on('connection', onConnection);
        if (serveSignal.aborted) stop();
        else serveSignal.addEventListener('abort', stop, { once: true });
      });
    },
  };
}
