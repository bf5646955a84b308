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
//   client side only            -> relay through the rendezvous after a stagger (sooner when a NAT
//                                  changes ports, because then punching to the published port fails)
import { sameEndpoint, type Endpoint, type NatKind, type PathKind, type Role } from '../peer.js';
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
  if ((!sameRouter || peer.nat === 'public') && !punchedOnLan) {
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
  if (self.role === 'client') {
    const portChanging = [self, peer].filter((p) => p.nat === 'port-changing');
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
