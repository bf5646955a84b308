// A listener on the file server's punch port while its router maps that port: the mapping forwards
// a client's plain connect() there, where otherwise nothing listens (the kernel would answer RST).
// It is open only while some set-up expects such a connect, and shared by concurrent set-ups: each
// claims the connections from its client's address (a lone set-up takes any). While it listens,
// nothing else can bind the punch port, so a mapped server does not punch (see link/path-plan.ts).
// Linux lets a port listen while the rendezvous session's connected socket holds it (both have
// SO_REUSEADDR, and neither listened before). Whoever connects must pass TLS before anything is read.
import net from 'node:net';
import { abortError } from '../errors.js';
import { logger } from '../log.js';
import type { PublicListener } from './public-listener.js';

const log = logger('listener');
const MAX_PENDING_ACCEPTS = 8;

interface Claim {
  ip: string;
  onSocket: ((socket: net.Socket) => void) | undefined;
  /** Connections that came before serve() was called. */
  early: net.Socket[];
}

export class SharedListener {
  private server: net.Server | undefined;
  private opening: Promise<net.Server> | undefined;
  private readonly claims: Claim[] = [];

  constructor(readonly port: number) {}

  /** A listener view for one set-up expecting a connection from `remoteIp`. */
  async acquire(remoteIp: string, signal: AbortSignal): Promise<PublicListener> {
    if (signal.aborted) throw abortError(signal);
    const claim: Claim = { ip: unmapped(remoteIp), onSocket: undefined, early: [] };
    this.claims.push(claim);
    try {
      await this.open();
    } catch (err) {
      this.release(claim);
      throw err;
    }
    let released = false;
    const close = (): void => {
      if (released) return;
      released = true;
      this.release(claim);
    };
    return {
      port: this.port,
      close,
      serve: (serveSignal, onSocket) =>
        new Promise<void>((resolve) => {
          claim.onSocket = onSocket;
          for (const socket of claim.early.splice(0)) onSocket(socket);
          const stop = (): void => {
            close();
            resolve();
          };
          if (serveSignal.aborted) stop();
          else serveSignal.addEventListener('abort', stop, { once: true });
        }),
    };
  }

  private open(): Promise<net.Server> {
    if (this.opening) return this.opening;
    const opening = new Promise<net.Server>((resolve, reject) => {
      const server = net.createServer((socket) => this.dispatch(socket));
      server.maxConnections = MAX_PENDING_ACCEPTS;
      server.once('error', (err) => {
        if (this.opening === opening) this.opening = undefined;
        reject(err);
      });
      server.listen({ port: this.port, host: '0.0.0.0' }, () => {
        if (this.opening !== opening) {
          // every claim was released while it opened
          server.close();
          reject(new Error('the listener was no longer needed'));
          return;
        }
        this.server = server;
        log(`listening on the mapped port ${this.port}`);
        resolve(server);
      });
    });
    this.opening = opening;
    return opening;
  }

  private dispatch(socket: net.Socket): void {
    const from = unmapped(socket.remoteAddress ?? '');
    const claims = this.claims;
    const claim =
      claims.findLast((c) => c.ip === from) ?? (claims.length === 1 ? claims[0] : undefined);
    if (!claim || (!claim.onSocket && claim.early.length >= MAX_PENDING_ACCEPTS)) {
      log(`dropped a connection from ${from}:${socket.remotePort ?? '?'} (no set-up expects it)`);
      socket.destroy();
      return;
    }
    log(`accepted ${from}:${socket.remotePort ?? '?'} on the mapped port`);
    if (claim.onSocket) claim.onSocket(socket);
    else claim.early.push(socket);
  }

  private release(claim: Claim): void {
    for (const socket of claim.early.splice(0)) socket.destroy();
    const i = this.claims.indexOf(claim);
    if (i >= 0) this.claims.splice(i, 1);
    if (this.claims.length > 0) return;
    const server = this.server;
    this.server = undefined;
    this.opening = undefined;
    if (server) {
      server.close();
      log(`closed the listener on port ${this.port}`);
    }
  }
}

function unmapped(ip: string): string {
  return ip.startsWith('::ffff:') ? ip.slice(7) : ip;
}
