// The embedded rendezvous: an SSH server (ssh2's Server) that speaks exactly what rcpp2p needs from
// an OpenSSH account, for the demo and for people who would rather not use sshd:
//   - public-key and password login for the accounts in <state>/accounts.json
//   - rcpp2p's rendezvous commands (and nothing else: no shell, no other commands)
//   - Unix-socket forwarding by name (streamlocal-forward / direct-streamlocal), kept in memory and
//     scoped to the account: the signaling and relay channels between peers
// Records persist under <state>/home/<user>/; a client that vanishes loses its forwardings.
// It listens itself and hands ssh2 only the TCP connections admission.ts lets in; every limit
// (logins, connections, channels, sockets, records) is in limits.ts.
import { mkdir } from 'node:fs/promises';
import net, { type Socket } from 'node:net';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import { RcppError } from '../errors.js';
import { logger } from '../log.js';
import { SOFTWARE, VERSION } from '../version.js';
import { AccountLocks } from './account-quota.js';
import { loadAccounts } from './accounts.js';
import { Admission, type Ticket } from './admission.js';
import { serveConnection, Tally, type Peer, type Shared } from './connection.js';
import { consoleSafe, LimitedLines } from './console-lines.js';
import { Forwardings } from './forwardings.js';
import { loadOrCreateHostKey, type HostKey } from './host-key.js';
import { DEFAULT_LIMITS, type RendezvousLimits } from './limits.js';
import { PasswordBackoff } from './password-backoff.js';

const log = logger('rendezvous-server');

export interface RendezvousServerOptions {
  stateDir: string;
  host: string;
  /** 0 = any free port. */
  port: number;
  /** One line per notable event (logins, refusals), for the server's console; display-safe. */
  onEvent?: (text: string) => void;
  /** Overrides of DEFAULT_LIMITS (tests use small ones). */
  limits?: Partial<RendezvousLimits>;
  /** Console lines anyone can cause are limited per this window (default 60 s). */
  consoleWindowMs?: number;
  /** The clock for back-off and console windows (tests). */
  now?: () => number;
}

export interface RunningRendezvous {
  host: string;
  port: number;
  hostKey: HostKey;
  close(): Promise<void>;
}

export async function startRendezvousServer(
  opts: RendezvousServerOptions,
): Promise<RunningRendezvous> {
  const limits: RendezvousLimits = { ...DEFAULT_LIMITS, ...opts.limits };
  const hostKey = await loadOrCreateHostKey(opts.stateDir);
  await loadAccounts(opts.stateDir); // refuses an accounts file others could change, at once
  const say = (text: string): void => {
    const safe = consoleSafe(text);
    log(safe);
    opts.onEvent?.(safe);
  };
  const window = { windowMs: opts.consoleWindowMs, now: opts.now };
  const refusals = new LimitedLines(say, { ...window, what: 'refused logins and connections' });
  const logins = new LimitedLines(say, { ...window, what: 'logins', perSource: 20, total: 60 });
  const sockets = new Map<string, { socket: Socket; ticket: Ticket }>();
  let port = opts.port;
  const peers = new Set<Peer>();
  const addressKey = (ip: string | undefined, port: number | undefined): string =>
    `${ip ?? ''}|${port ?? ''}`;

  const shared: Shared = {
    stateDir: opts.stateDir,
    limits,
    backoff: new PasswordBackoff({
      burst: limits.passwordBurstPerSource,
      refillMs: limits.passwordRefillMs,
      now: opts.now,
    }),
    forwardings: new Forwardings<Peer>(limits),
    locks: new AccountLocks(),
    connections: new Tally(),
    channels: new Tally(),
    socketChannels: new Tally(),
    refusal: (source, text) => refusals.line(source, text),
    login: (source, text) => logins.line(source, text),
    localPort: () => port,
  };

  const ssh = new ssh2.Server(
    { hostKeys: [hostKey.privateKey], ident: `rcpp2p_${VERSION}` },
    (connection, info) => {
      const entry = sockets.get(addressKey(info.ip, info.port));
      if (!entry) {
        connection.end();
        return;
      }
      const peer: Peer = { connection, socket: entry.socket };
      peers.add(peer);
      connection.once('close', () => peers.delete(peer));
      serveConnection(peer, entry.ticket, shared);
    },
  );
  ssh.on('error', (err: Error) => log(`server error: ${err.message}`));

  const admission = new Admission(limits, (ticket) =>
    refusals.line(
      ticket.source,
      `closed the connection from ${ticket.ip}: no login within ${limits.loginGraceMs / 1000} s`,
    ),
  );
  const tcp = net.createServer((socket) => {
    socket.on('error', () => {});
    const admitted = admission.admit(socket);
    if (!admitted.ok) {
      refusals.line(admitted.ip, `refused a connection from ${admitted.ip}: ${admitted.why}`);
      socket.destroy();
      return;
    }
    const key = addressKey(socket.remoteAddress, socket.remotePort);
    sockets.set(key, { socket, ticket: admitted.ticket });
    socket.once('close', () => sockets.delete(key));
    ssh.injectSocket(socket);
  });

  await listen(tcp, opts.host, opts.port);
  port = (tcp.address() as net.AddressInfo).port;
  await mkdir(join(opts.stateDir, 'home'), { recursive: true, mode: 0o700 });
  say(`${SOFTWARE} rendezvous listening on ${opts.host}:${port}, host key ${hostKey.fingerprint}`);
  let closing: Promise<void> | undefined;
  return {
    host: opts.host,
    port,
    hostKey,
    close() {
      closing ??= new Promise<void>((done) => {
        tcp.close(() => done());
        for (const { socket } of sockets.values()) socket.destroy();
        for (const peer of peers) peer.connection.end();
        refusals.close();
        logins.close();
      });
      return closing;
    },
  };
}

function listen(server: net.Server, host: string, port: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => reject(listenError(err, host, port));
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

function listenError(err: NodeJS.ErrnoException, host: string, port: number): Error {
  const where = `Port ${port} on ${host}`;
  switch (err.code) {
    case 'EADDRINUSE':
      return new RcppError(
        'USAGE',
        `${where} is already in use; is another rendezvous running?`,
        'Pick another with --listen HOST:PORT.',
        { cause: err },
      );
    case 'EACCES':
    case 'EPERM':
      return new RcppError(
        'USAGE',
        `${where} needs more privileges than rcpp2p has (ports below 1024 need root).`,
        'Pick a port above 1023 with --listen HOST:PORT.',
        { cause: err },
      );
    case 'EADDRNOTAVAIL':
      return new RcppError(
        'USAGE',
        `${host} is not an address of this machine, so rcpp2p cannot listen on it.`,
        'Pick one of its addresses (or 0.0.0.0 for all) with --listen HOST:PORT.',
        { cause: err },
      );
    default:
      return err;
  }
}
