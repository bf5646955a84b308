// Which paths to try toward a peer, and why, from what each side knows about itself. Pure: the
// same function runs on the client and on the file server, so both sides punch the same pairs.
//
// Per address family both peers have (IPv6 first, IPv4 a moment later, as Happy Eyeballs does):
//   same site (same external IPv4, or IPv6 in one /64)
//                               -> lan: simultaneous open to the peer's private addresses, and
//                                  the client connects to the server's short-lived LAN listener
//                                  (on a LAN a SYN to a closed port gets an RST at once, so the
//                                  two SYNs of a simultaneous open rarely cross there)
//   different sites             -> direct: simultaneous open to the peer's external address (through
//                                  two IPv4 NATs, or two IPv6 firewalls: no NAT there)
//   peer is public and listens  -> connect to its listener (direct to a server, reversed to a client)
//   we are public and listen    -> the peer connects to us
// Then, client side only        -> relay through the rendezvous after a stagger (sooner when an
//                                  IPv4 NAT changes ports and IPv6 offers no way around it)
import { sameSite, isLoopback } from '../nat/nat-kind.js';
import {
  familyOf,
  sameEndpoint,
  type Endpoint,
  type NatKind,
  type PathKind,
  type Role,
} from '../peer.js';
import type { PeerAddresses } from '../rendezvous/peer-record.js';
import type { SignalAddresses } from '../rendezvous/signaling.js';

export interface SelfView extends SignalAddresses {
  role: Role;
  localPort: number;
}

export type PathStep =
  | { method: 'punch'; path: PathKind; remote: Endpoint; reason: string; delayMs?: number }
  | { method: 'connect'; path: PathKind; remote: Endpoint; reason: string; delayMs?: number }
  | { method: 'accept'; path: PathKind; reason: string; delayMs?: number }
  | { method: 'relay'; path: 'relay'; delayMs: number; reason: string };

export interface PlanTiming {
  /** Relay stagger when both NATs keep ports: a punch normally wins well before this. */
  relayDelayMs: number;
  /** Relay stagger when a NAT changes ports (a punch to the published port is unlikely). */
  relayDelayPortChangingMs: number;
  /** IPv4 attempts start this long after IPv6 ones when both families are there. */
  familyStaggerMs: number;
}

export const DEFAULT_TIMING: PlanTiming = {
  relayDelayMs: 1500,
  relayDelayPortChangingMs: 300,
  familyStaggerMs: 100,
};

/** What one side knows about itself in one address family. */
interface FamilyView {
  family: 4 | 6;
  external: Endpoint;
  nat: NatKind;
  local: Endpoint[];
  listen: Endpoint | undefined;
  lanPort: number | undefined;
}

/** A peer's addresses split by family: its session's family, and the other one when it has it. */
export function familyViews(p: SignalAddresses): Map<4 | 6, FamilyView> {
  const views = new Map<4 | 6, FamilyView>();
  const add = (external: Endpoint, nat: NatKind, listen: Endpoint | undefined): void => {
    const family = familyOf(external.ip);
    views.set(family, {
      family,
      external,
      nat,
      local: p.local.filter((l) => familyOf(l.ip) === family),
      listen,
      lanPort: p.lanPort,
    });
  };
  add(p.external, p.nat, p.listen);
  if (p.other && familyOf(p.other.external.ip) !== familyOf(p.external.ip)) {
    add(p.other.external, p.other.nat, p.other.listen);
  }
  return views;
}

/** True when a listener could help: this peer is reachable without a NAT in some family. */
export function wantsListener(self: PeerAddresses): boolean {
  return self.nat === 'public' || self.other?.nat === 'public';
}

/** Two peers behind the same router in some family they share (see sameSite). */
export function sameSiteAnywhere(a: PeerAddresses, b: PeerAddresses): boolean {
  const mine = familyViews(a);
  return [...familyViews(b).values()].some((v) => {
    const own = mine.get(v.family);
    return own !== undefined && sameSite(own.external, v.external);
  });
}

/**
 * What a peer tells the other in request/accept: its addresses, a listener in each family where it
 * is reachable without a NAT, and a LAN port for a peer behind the same router.
 */
export function addressesToOffer(
  self: PeerAddresses,
  listenerPort: number | undefined,
  lanPort?: number,
): SignalAddresses {
  const listenIn = (reach: { external: Endpoint; nat: NatKind }): Endpoint | undefined =>
    listenerPort !== undefined && reach.nat === 'public'
      ? { ip: reach.external.ip, port: listenerPort }
      : undefined;
  const listen = listenIn(self);
  const otherListen = self.other && listenIn(self.other);
  return {
    external: self.external,
    local: self.local,
    nat: self.nat,
    ...(listen && { listen }),
    ...(self.other && {
      other: {
        external: self.other.external,
        nat: self.other.nat,
        ...(otherListen && { listen: otherListen }),
      },
    }),
    ...(lanPort !== undefined && { lanPort }),
  };
}

function natWords(who: string, nat: NatKind, family: 4 | 6): string {
  switch (nat) {
    case 'public':
      return family === 6 ? `${who} has no NAT` : `${who} is publicly reachable`;
    case 'port-preserving':
      return `${who} NAT keeps ports`;
    case 'port-changing':
      return `${who} NAT changes ports`;
  }
}

export function planPaths(
  self: SelfView,
  peer: SignalAddresses,
  timing = DEFAULT_TIMING,
): PathStep[] {
  const mine = familyViews(self);
  const theirs = familyViews(peer);
  const shared = ([6, 4] as const).filter((f) => mine.has(f) && theirs.has(f));
  const steps: PathStep[] = [];
  for (const family of shared) {
    const delayMs = family === 4 && shared.includes(6) ? timing.familyStaggerMs : 0;
    const familySteps = planFamily(
      self.role,
      mine.get(family) as FamilyView,
      theirs.get(family) as FamilyView,
      shared.length > 1,
    );
    steps.push(...familySteps.map((step) => (delayMs > 0 ? { ...step, delayMs } : step)));
  }
  if (self.role === 'client') steps.push(relayStep(mine, theirs, shared, timing));
  return steps;
}

function planFamily(
  role: Role,
  self: FamilyView,
  peer: FamilyView,
  dualStack: boolean,
): Exclude<PathStep, { method: 'relay' }>[] {
  const steps: Exclude<PathStep, { method: 'relay' }>[] = [];
  const peerRole: Role = role === 'client' ? 'server' : 'client';
  const family = self.family;
  const over = dualStack || family === 6 ? ` over IPv${family}` : '';
  const same = sameSite(self.external, peer.external);
  // A listener on the server side is dialled by the client: that is the direct path. A listener
  // on the client side is dialled by the server: that is the reversed path.
  const pathToward = (listenerRole: Role): PathKind =>
    listenerRole === 'server' ? 'direct' : 'reversed';

  const lanReason = isLoopback(self.external.ip)
    ? `both peers are on this machine${over}`
    : family === 6
      ? `both peers are on the same LAN${over}`
      : `both peers are behind the same router (${self.external.ip})${over}`;
  // Behind one router with a LAN listener, the public listener is the same socket: use it once.
  const lanListens = same && (peer.lanPort !== undefined || self.lanPort !== undefined);

  if (same) {
    for (const remote of peer.local) {
      steps.push({ method: 'punch', path: 'lan', remote, reason: lanReason });
    }
    if (peer.lanPort !== undefined) {
      for (const local of peer.local) {
        steps.push({
          method: 'connect',
          path: 'lan',
          remote: { ip: local.ip, port: peer.lanPort },
          reason: lanReason,
        });
      }
    }
    if (self.lanPort !== undefined) {
      steps.push({ method: 'accept', path: 'lan', reason: lanReason });
    }
  }
  const punchedOnLan = same && peer.local.some((l) => sameEndpoint(l, peer.external));
  if ((!same || peer.nat === 'public') && !punchedOnLan) {
    const neither = self.nat !== 'public' && peer.nat !== 'public';
    const both = self.nat === 'public' && peer.nat === 'public';
    steps.push({
      method: 'punch',
      path: 'direct',
      remote: peer.external,
      reason:
        family === 6 && both
          ? `simultaneous open${over}, no NAT on either side`
          : neither
            ? `simultaneous open through both NATs${over}`
            : `simultaneous open${over} (${natWords(self.nat === 'public' ? 'this peer' : `the ${peerRole}`, 'public', family)})`,
    });
  }
  if (peer.listen && !lanListens) {
    steps.push({
      method: 'connect',
      path: pathToward(peerRole),
      remote: peer.listen,
      reason: `${natWords(`the ${peerRole}`, 'public', family)}${over}`,
    });
  }
  if (self.listen && !lanListens) {
    steps.push({
      method: 'accept',
      path: pathToward(role),
      reason: `${natWords(`the ${role}`, 'public', family)}${over}`,
    });
  }
  return steps;
}

/**
 * The relay, after a stagger: short when an IPv4 NAT changes ports (a punch to the published port
 * is unlikely) and no IPv6 path offers a way around it.
 */
function relayStep(
  mine: Map<4 | 6, FamilyView>,
  theirs: Map<4 | 6, FamilyView>,
  shared: readonly (4 | 6)[],
  timing: PlanTiming,
): PathStep {
  const self4 = mine.get(4);
  const peer4 = theirs.get(4);
  const portChanging = [self4, peer4].filter((p) => p?.nat === 'port-changing');
  const soon = portChanging.length > 0 && !shared.includes(6);
  const delayMs = soon ? timing.relayDelayPortChangingMs : timing.relayDelayMs;
  const why =
    portChanging.length === 2
      ? 'both NATs change ports'
      : portChanging.length === 1
        ? natWords(portChanging[0] === self4 ? 'this peer’s' : 'the server’s', 'port-changing', 4)
        : shared.length === 0
          ? 'the peers have no address family in common'
          : '';
  return {
    method: 'relay',
    path: 'relay',
    delayMs,
    reason: `no direct path within ${(delayMs / 1000).toFixed(1)} s${why ? ` (${why})` : ''}`,
  };
}
