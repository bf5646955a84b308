// Which TCP connections may start an SSH login on the embedded rendezvous. At most
// `maxUnauthenticated` connections that have not logged in yet, and `maxUnauthenticatedPerSource`
// from one source address, are open at once; past that a new connection is closed at once, before
// any SSH byte (sshd's MaxStartups, without its random early drop: the per-source cap keeps one
// address from taking every slot). A connection that has not logged in within the grace time is
// closed (LoginGraceTime). Logged-in connections are never counted or closed here.
import { isIPv4, isIPv6, type Socket } from 'node:net';
import type { RendezvousLimits } from './limits.js';

type AdmissionLimits = Pick<
  RendezvousLimits,
  'maxUnauthenticated' | 'maxUnauthenticatedPerSource' | 'loginGraceMs'
>;

export interface Ticket {
  /** The peer's address as printed (IPv4-mapped addresses without their ::ffff: prefix). */
  ip: string;
  /** What limits count per: the address, or its /64 for IPv6. */
  source: string;
  /** The connection logged in: it no longer counts, and its grace timer stops. */
  loggedIn(): void;
}

export type Admitted = { ok: true; ticket: Ticket } | { ok: false; ip: string; why: string };

/** The address a client connected from, as people write it. */
export function printableIp(address: string | undefined): string {
  const ip = address ?? '?';
  return ip.startsWith('::ffff:') && isIPv4(ip.slice(7)) ? ip.slice(7) : ip;
}

/** What per-source limits count by: an IPv4 address, or the /64 an IPv6 address is in. */
export function sourceOf(ip: string): string {
  if (!isIPv6(ip)) return ip;
  const groups = ipv6Groups(ip);
  return groups ? `${groups.slice(0, 4).join(':')}::/64` : ip;
}

function ipv6Groups(ip: string): string[] | undefined {
  const halves = (ip.split('%')[0] ?? '').split('::');
  if (halves.length > 2) return undefined;
  const groups = (text: string | undefined): string[] =>
    !text
      ? []
      : text.split(':').flatMap((g) => {
          if (!g.includes('.')) return [g];
          const [a = 0, b = 0, c = 0, d = 0] = g.split('.').map(Number);
          return [((a << 8) | b).toString(16), ((c << 8) | d).toString(16)];
        });
  const head = groups(halves[0]);
  const tail = groups(halves[1]);
  const missing = 8 - head.length - tail.length;
  if (missing < 0 || (halves.length === 1 && missing !== 0)) return undefined;
  const zeros = Array.from({ length: halves.length === 2 ? missing : 0 }, () => '0');
  return [...head, ...zeros, ...tail].map((g) => parseInt(g, 16).toString(16));
}

export class Admission {
  private unauthenticated = 0;
  private readonly perSource = new Map<string, number>();

  constructor(
    private readonly limits: AdmissionLimits,
    /** Called when a connection is closed because it did not log in within the grace time. */
    private readonly onGraceTimeout: (ticket: Ticket) => void,
  ) {}

  /** Admits a new TCP connection, or says why not (the caller closes it). */
  admit(socket: Socket): Admitted {
    const ip = printableIp(socket.remoteAddress);
    const source = sourceOf(ip);
    const fromSource = this.perSource.get(source) ?? 0;
    if (this.unauthenticated >= this.limits.maxUnauthenticated) {
      return { ok: false, ip, why: `${this.unauthenticated} connections are waiting to log in` };
    }
    if (fromSource >= this.limits.maxUnauthenticatedPerSource) {
      return { ok: false, ip, why: `${fromSource} connections from there are waiting to log in` };
    }
    this.unauthenticated++;
    this.perSource.set(source, fromSource + 1);
    let counted = true;
    const release = (): void => {
      if (!counted) return;
      counted = false;
      clearTimeout(timer);
      this.unauthenticated--;
      const left = (this.perSource.get(source) ?? 1) - 1;
      if (left > 0) this.perSource.set(source, left);
      else this.perSource.delete(source);
    };
    const ticket: Ticket = { ip, source, loggedIn: release };
    const timer = setTimeout(() => {
      release();
      this.onGraceTimeout(ticket);
      socket.destroy();
    }, this.limits.loginGraceMs);
    timer.unref();
    socket.once('close', release);
    return { ok: true, ticket };
  }

  /** Connections not logged in yet (for tests and diagnosis). */
  get waiting(): number {
    return this.unauthenticated;
  }
}
