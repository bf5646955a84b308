// Which paths to try toward a peer, and why, from what each side knows about itself. Pure: the
// same function runs on the client and on the file server, so both sides punch the same pairs.
//
//   same external IP            -> lan: simultaneous open to the peer's private addresses, and
//                                  the client connects to the server's short-lived LAN listener
//                                  (on a LAN a SYN to a closed port gets an RST at once, so the
//                                  two SYNs of a simultaneous open rarely cross there)
//   different external IPs      -> direct: simultaneous open to the peer's external address
//   peer is public and listens  -> connect to its listener (direct to a server, reversed to a client)
//   we are public and listen    -> the peer connects to us
//   peer's router maps a port   -> connect to it, like a public peer's listener (a mapped server:
//                                  direct; a mapped client: reversed)
//   our router maps a port      -> accept on the mapped port. A mapped server accepts on its punch
//                                  port, so neither side punches toward it (its SYNs would meet
//                                  the listener, and its own punch cannot bind that port meanwhile)
//   client side only            -> relay through the rendezvous after a stagger (sooner when a NAT
//                                  changes ports and no router maps a port, because then punching
//                                  to the published port fails)
import {
  portMappingName,
  sameEndpoint,
  type Endpoint,
  type MappedEndpoint,
  type NatKind,
  type PathKind,
  type Role,
} from '../peer.js';
import type { SignalAddresses } from '../rendezvous/signaling.js';

export interface SelfView extends SignalAddresses {
  role: Role;
  localPort: number;
}

export type PathStep =
  | { method: 'punch'; path: PathKind; remote: Endpoint; reason: string }
  | { method: 'connect'; path: PathKind; remote: Endpoint; reason: string }
  | { method: 'accept'; path: PathKind; reason: string }
  | { method: 'relay'; path: 'relay'; delayMs: number; reason: string };

export interface PlanTiming {
  /** Relay stagger when both NATs keep ports: a punch normally wins well before this. */
  relayDelayMs: number;
  /** Relay stagger when a NAT changes ports (a punch to the published port is unlikely). */
  relayDelayPortChangingMs: number;
}

export const DEFAULT_TIMING: PlanTiming = { relayDelayMs: 1500, relayDelayPortChangingMs: 300 };

function natWords(who: string, nat: NatKind): string {
  switch (nat) {
    case 'public':
      return `${who} is publicly reachable`;
    case 'port-preserving':
      return `${who} NAT keeps ports`;
    case 'port-changing':
      return `${who} NAT changes ports`;
  }
}

/** "port 40123 opened on your router by UPnP" */
function mappedWords(mapped: MappedEndpoint, where: string): string {
  return `port ${mapped.external.port} opened on ${where} by ${portMappingName(mapped.protocol)}`;
}

export function planPaths(
  self: SelfView,
  peer: SignalAddresses,
  timing = DEFAULT_TIMING,
): PathStep[] {
  const steps: PathStep[] = [];
  const peerRole: Role = self.role === 'client' ? 'server' : 'client';
  const sameRouter = self.external.ip === peer.external.ip;
  // A listener on the server side is dialled by the client: that is the direct path. A listener
  // on the client side is dialled by the server: that is the reversed path.
  const pathToward = (listenerRole: Role): PathKind =>
    listenerRole === 'server' ? 'direct' : 'reversed';

  const lanReason = self.external.ip.startsWith('127.')
    ? 'both peers are on this machine'
    : `both peers are behind the same router (${self.external.ip})`;
  // Behind one router with a LAN listener, the public listener is the same socket: use it once.
  const lanListens = sameRouter && (peer.lanPort !== undefined || self.lanPort !== undefined);

  if (sameRouter) {
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
  const punchedOnLan = sameRouter && peer.local.some((l) => sameEndpoint(l, peer.external));
  // A mapping only helps across routers (these routers do not hairpin).
  const selfMapped = sameRouter ? undefined : self.mapped;
  const peerMapped = sameRouter ? undefined : peer.mapped;
  const serverMapped = self.role === 'server' ? selfMapped : peerMapped;
  if ((!sameRouter || peer.nat === 'public') && !punchedOnLan && !serverMapped) {
    const both = self.nat !== 'public' && peer.nat !== 'public';
    steps.push({
      method: 'punch',
      path: 'direct',
      remote: peer.external,
      reason: both
        ? 'simultaneous open through both NATs'
        : `simultaneous open (${natWords(self.nat === 'public' ? 'this peer' : `the ${peerRole}`, 'public')})`,
    });
  }
  if (peer.listen && !lanListens) {
    steps.push({
      method: 'connect',
      path: pathToward(peerRole),
      remote: peer.listen,
      reason: `the ${peerRole} is publicly reachable`,
    });
  }
  if (self.listen && !lanListens) {
    steps.push({
      method: 'accept',
      path: pathToward(self.role),
      reason: `the ${self.role} is publicly reachable`,
    });
  }
  if (peerMapped) {
    steps.push({
      method: 'connect',
      path: pathToward(peerRole),
      remote: peerMapped.external,
      reason: mappedWords(peerMapped, `the ${peerRole}’s router`),
    });
  }
  if (selfMapped) {
    steps.push({
      method: 'accept',
      path: pathToward(self.role),
      reason: mappedWords(selfMapped, 'your router'),
    });
  }
  if (self.role === 'client') {
    // With a mapped port there is a direct path even through a NAT that changes ports.
    const portChanging =
      selfMapped || peerMapped ? [] : [self, peer].filter((p) => p.nat === 'port-changing');
    const delayMs = portChanging.length > 0 ? timing.relayDelayPortChangingMs : timing.relayDelayMs;
    const why =
      portChanging.length === 2
        ? 'both NATs change ports'
        : portChanging.length === 1
          ? natWords(portChanging[0] === self ? 'this peer’s' : 'the server’s', 'port-changing')
          : '';
    steps.push({
      method: 'relay',
      path: 'relay',
      delayMs,
      reason: `no direct path within ${(delayMs / 1000).toFixed(1)} s${why ? ` (${why})` : ''}`,
    });
  }
  return steps;
}
