// One SSH connection to the embedded rendezvous, from login to close. Before login: login.ts decides
// each attempt. After login the account may run rcpp2p's commands (exec.ts), offer Unix sockets in
// its home and open channels to sockets its own connections offered (forwardings.ts, splice.ts);
// nothing else: no shell, no terminal, no subsystem, no TCP forwarding. Channels are limited per
// connection and per account, and a connection's sockets and channels go when it goes.
import type { Socket } from 'node:net';
import { relative, resolve } from 'node:path';
import type { Connection } from 'ssh2';
import { logger } from '../log.js';
import type { Account } from './accounts.js';
import type { AccountLocks } from './account-quota.js';
import type { Ticket } from './admission.js';
import { consoleSafe } from './console-lines.js';
import { runExec } from './exec.js';
import type { Forwardings } from './forwardings.js';
import type { RendezvousLimits } from './limits.js';
import { LoginAttempts } from './login.js';
import type { PasswordBackoff } from './password-backoff.js';
import { splice } from './splice.js';

const log = logger('rendezvous-server');

export interface Peer {
  connection: Connection;
  socket: Socket;
}

/** What every connection of one rendezvous shares. */
export interface Shared {
  stateDir: string;
  limits: RendezvousLimits;
  backoff: PasswordBackoff;
  forwardings: Forwardings<Peer>;
  locks: AccountLocks;
  /** Logged-in connections, open channels and open socket channels per account. */
  connections: Tally;
  channels: Tally;
  socketChannels: Tally;
  /** Console lines: anyone can cause refusals, so they are rate-limited per source. */
  refusal(source: string, text: string): void;
  login(source: string, text: string): void;
  localPort(): number;
}

/** Counts per account. */
export class Tally {
  private readonly counts = new Map<string, number>();
  get(key: string): number {
    return this.counts.get(key) ?? 0;
  }
  add(key: string, n: number): void {
    const next = this.get(key) + n;
    if (next > 0) this.counts.set(key, next);
    else this.counts.delete(key);
  }
}

export function serveConnection(peer: Peer, ticket: Ticket, shared: Shared): void {
  const { connection } = peer;
  const attempts = new LoginAttempts(
    {
      stateDir: shared.stateDir,
      limits: shared.limits,
      backoff: shared.backoff,
      refusal: (source, text) => shared.refusal(source, text),
      connectionsOf: (user) => shared.connections.get(user),
    },
    ticket,
    () => connection.end(),
  );
  connection.on('error', (err) => log(consoleSafe(`connection ${ticket.ip}: ${err.message}`)));
  connection.on('authentication', (ctx) => attempts.handle(ctx));
  connection.once('ready', () => {
    const account = attempts.account;
    if (!account) {
      connection.end();
      return;
    }
    ticket.loggedIn();
    shared.connections.add(account.user, 1);
    connection.once('close', () => shared.connections.add(account.user, -1));
    shared.login(
      ticket.source,
      `${account.user} logged in from ${ticket.ip}:${peer.socket.remotePort ?? '?'}`,
    );
    serveAccount(peer, account, shared, ticket);
  });
  connection.once('close', () => shared.forwardings.dropOwner(peer));
}

function serveAccount(peer: Peer, account: Account, shared: Shared, ticket: Ticket): void {
  const { connection, socket } = peer;
  const { limits } = shared;
  const user = account.user;
  const home = resolve(shared.stateDir, 'home', user);
  const slots = channelSlots(user, shared, (why) =>
    shared.refusal(ticket.source, `refused a channel of ${user} from ${ticket.ip}: ${why}`),
  );
  connection.once('close', () => slots.releaseAll());
  /** The absolute path of a socket in the account's home; undefined for anything else. */
  const socketIn = (path: unknown): string | undefined => {
    if (typeof path !== 'string' || Buffer.byteLength(path) > limits.maxSocketPathBytes) return;
    const absolute = resolve(home, path);
    return relative(home, absolute).startsWith('..') ? undefined : absolute;
  };

  connection.on('session', (accept, reject) => {
    const release = slots.take('command');
    if (!release) {
      reject();
      return;
    }
    const session = accept();
    session.once('close', release);
    session.on('exec', (acceptExec, _reject, { command }) => {
      const channel = acceptExec() as ReturnType<typeof acceptExec> | undefined;
      if (!channel) return; // a second exec on one session
      void runExec(channel, command, {
        home,
        remote: { ip: ticket.ip, port: socket.remotePort ?? 0 },
        localPort: shared.localPort(),
        limits,
        socket,
        socketHighWaterBytes: limits.socketHighWaterBytes,
        unlinkSocket: (path) => shared.forwardings.unlink(user, resolve(home, path)),
        exclusive: (work) => shared.locks.run(user, work),
      });
    });
    session.on('shell', (_accept, rejectShell) => rejectShell());
    session.on('pty', (_accept, rejectPty) => rejectPty?.());
  });

  connection.on('request', (accept, reject, requestName, info) => {
    // ssh2's types list only tcpip-forward, but OpenSSH's streamlocal requests arrive here too.
    const name = requestName as string;
    const asOffered = (info as { socketPath?: unknown }).socketPath;
    const path = socketIn(asOffered);
    if (name === 'streamlocal-forward@openssh.com' && path !== undefined) {
      const offered = shared.forwardings.offer(user, path, peer, asOffered as string);
      if (offered.ok) accept?.();
      else {
        if (offered.why !== 'taken') {
          shared.refusal(
            ticket.source,
            `refused a socket of ${user} from ${ticket.ip}: ${offered.why === 'connection-quota' ? `${limits.maxForwardingsPerConnection} on this connection` : `${limits.maxForwardingsPerAccount} for the account`} already`,
          );
        }
        reject?.();
      }
      return;
    }
    if (name === 'cancel-streamlocal-forward@openssh.com' && path !== undefined) {
      if (shared.forwardings.cancel(user, path, peer)) accept?.();
      else reject?.();
      return;
    }
    reject?.();
  });

  connection.on('openssh.streamlocal', (accept, reject, info) => {
    const path = socketIn(info.socketPath);
    const target = path === undefined ? undefined : shared.forwardings.find(user, path);
    const release = target ? slots.take('socket') : undefined;
    if (!target || !release) {
      reject();
      return;
    }
    target.owner.connection.openssh_forwardOutStreamLocal(target.asOffered, (err, upstream) => {
      if (err) {
        release();
        reject();
        return;
      }
      const channel = accept();
      channel.once('close', release);
      splice(
        { channel, socket },
        { channel: upstream, socket: target.owner.socket },
        limits.socketHighWaterBytes,
      );
    });
  });
  connection.on('tcpip', (_accept, reject) => reject());
}

/** Channel places of one connection, within the per-connection and per-account limits. */
function channelSlots(
  user: string,
  shared: Shared,
  refused: (why: string) => void,
): { take(kind: 'command' | 'socket'): (() => void) | undefined; releaseAll(): void } {
  const held = new Set<() => void>();
  const { maxChannelsPerConnection, maxChannelsPerAccount, maxSocketChannelsPerAccount } =
    shared.limits;
  return {
    take(kind) {
      if (held.size >= maxChannelsPerConnection) {
        refused(`${maxChannelsPerConnection} channels are open on this connection`);
        return undefined;
      }
      if (shared.channels.get(user) >= maxChannelsPerAccount) {
        refused(`${maxChannelsPerAccount} channels are open for the account`);
        return undefined;
      }
      const socket = kind === 'socket';
      if (socket && shared.socketChannels.get(user) >= maxSocketChannelsPerAccount) {
        refused(`${maxSocketChannelsPerAccount} socket channels are open for the account`);
        return undefined;
      }
      shared.channels.add(user, 1);
      if (socket) shared.socketChannels.add(user, 1);
      const release = (): void => {
        if (!held.delete(release)) return;
        shared.channels.add(user, -1);
        if (socket) shared.socketChannels.add(user, -1);
      };
      held.add(release);
      return release;
    },
    releaseAll() {
      for (const release of [...held]) release();
    },
  };
}
