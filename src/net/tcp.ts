// Opening a TCP connection from a chosen local port, with an AbortSignal and a deadline, and
// closing one without leaving a TIME_WAIT entry that would block the next run from that port.
import net from 'node:net';
import { abortError, RcppError } from '../errors.js';
import type { Duplex } from 'node:stream';
import type { Endpoint } from '../peer.js';

export interface ConnectFromOptions {
  remote: Endpoint;
  /** 0 = any port. */
  localPort: number;
  localAddress?: string;
  /** Only addresses of this family when `remote.ip` is a name (default: Happy Eyeballs over both). */
  family?: 4 | 6;
  signal?: AbortSignal;
  timeoutMs?: number;
}

/** Resolves with a connected socket, or rejects with the socket error (err.code kept). */
export function connectFrom(opts: ConnectFromOptions): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const signal = opts.signal;
    if (signal?.aborted) {
      reject(abortError(signal));
      return;
    }
    const socket = net.connect({
      host: opts.remote.ip,
      port: opts.remote.port,
      ...(opts.localPort > 0 && { localPort: opts.localPort }),
      ...(opts.localAddress !== undefined && { localAddress: opts.localAddress }),
      ...(opts.family !== undefined && { family: opts.family }),
    });
    const timer =
      opts.timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            const err = new Error(`connect to ${opts.remote.ip}:${opts.remote.port} timed out`);
            Object.assign(err, { code: 'ETIMEDOUT' });
            done(err);
          }, opts.timeoutMs);
    const onAbort = (): void => done(abortError(signal as AbortSignal));
    const onError = (err: Error): void => done(err);
    const onConnect = (): void => done();
    function done(err?: Error): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      socket.off('error', onError);
      socket.off('connect', onConnect);
      if (err) {
        socket.destroy();
        reject(err);
      } else {
        resolve(socket);
      }
    }
    signal?.addEventListener('abort', onAbort, { once: true });
    socket.once('error', onError);
    socket.once('connect', onConnect);
  });
}

/** 4 or 6 for a connected socket (an IPv4-mapped IPv6 address counts as IPv4). */
export function socketFamily(socket: net.Socket): 4 | 6 {
  const address = socket.remoteAddress ?? '';
  return socket.remoteFamily === 'IPv6' && !address.startsWith('::ffff:') ? 6 : 4;
}

/** True for errors that mean "that local port is taken for this destination". */
export function isPortBusy(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === 'EADDRINUSE' || code === 'EADDRNOTAVAIL';
}

/**
 * Ends a socket with RST instead of FIN once our side is done. The side that sends the first FIN
 * keeps the port pair in TIME_WAIT for a minute, which would make the next rcpp2p run from the same
 * configured port fail; callers use this only after the application protocol said goodbye.
 */
export function resetSocket(socket: net.Socket): void {
  if (socket.destroyed) return;
  try {
    socket.resetAndDestroy();
  } catch {
    socket.destroy();
  }
}

/**
 * Closes the raw stream under a link: a TCP socket with a reset (no TIME_WAIT left on the punching
 * port pair for the next request), anything else (an SSH relay channel) by destroying it.
 */
export function closeLinkStream(raw: Duplex): void {
  if (raw instanceof net.Socket) resetSocket(raw);
  else raw.destroy();
}

/** Makes an ssh2-managed socket close passively: wait for the peer's FIN, else reset. */
export function closeWithoutTimeWait(socket: net.Socket, graceMs = 1000): void {
  const originalEnd = socket.end.bind(socket);
  let ending = false;
  socket.end = (..._args: unknown[]) => {
    if (!ending) {
      ending = true;
      const timer = setTimeout(() => resetSocket(socket), graceMs);
      timer.unref();
      socket.once('end', () => {
        clearTimeout(timer);
        originalEnd();
      });
      socket.once('close', () => clearTimeout(timer));
    }
    return socket;
  };
}

export function describeConnectError(err: unknown, what: string): RcppError | undefined {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  switch (code) {
    case 'ECONNREFUSED':
      return new RcppError('RENDEZVOUS_UNREACHABLE', `${what} refused the connection.`, '', {
        cause: err,
      });
    case 'ETIMEDOUT':
      return new RcppError('RENDEZVOUS_TIMEOUT', `${what} did not answer in time.`, '', {
        cause: err,
      });
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return new RcppError('RENDEZVOUS_UNREACHABLE', `${what} cannot be reached (${code}).`, '', {
        cause: err,
      });
    default:
      return undefined;
  }
}

/** A TCP port that nothing on this machine listens on right now (the kernel's choice). */
export function freeLocalPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}
