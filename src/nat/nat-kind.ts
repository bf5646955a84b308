// What one observation says about the NAT in front of this peer: the rendezvous saw our connection
// from `observed`, we sent it from `local`. Pure, so it is table-tested.
import { networkInterfaces } from 'node:os';
import type { Endpoint, NatKind } from '../peer.js';

export function classifyNat(
  localPort: number,
  observed: Endpoint,
  interfaceIps: string[],
): NatKind {
  if (interfaceIps.includes(observed.ip)) return 'public';
  return observed.port === localPort ? 'port-preserving' : 'port-changing';
}

/** This machine's own IPv4 addresses (loopback included: two peers on one machine meet on it). */
export function interfaceAddresses(): string[] {
  return Object.values(networkInterfaces())
    .flat()
    .flatMap((i) => (i !== undefined && i.family === 'IPv4' ? [i.address] : []));
}

/**
 * Where a peer behind the same router can reach us: our non-loopback IPv4 addresses, our port.
 * When the rendezvous itself saw us on loopback, every peer is on this machine: loopback only.
 */
export function lanEndpoints(port: number, interfaceIps: string[], observed: Endpoint): Endpoint[] {
  if (observed.ip.startsWith('127.')) return [{ ip: observed.ip, port }];
  const lan = interfaceIps.filter((ip) => !ip.startsWith('127.'));
  return (lan.length > 0 ? lan : interfaceIps).slice(0, 8).map((ip) => ({ ip, port }));
}

/** Human words for a NAT kind, used in the reason a path was chosen. */
export function describeNat(kind: NatKind): string {
  switch (kind) {
    case 'public':
      return 'publicly reachable, no NAT';
    case 'port-preserving':
      return 'NAT keeps ports';
    case 'port-changing':
      return 'NAT changes ports';
  }
}
