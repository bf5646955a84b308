// What one observation says about the NAT in front of this peer: the rendezvous saw our connection
// from `observed`, we sent it from `local`. Pure, so it is table-tested. IPv6 usually has no NAT at
// all (the observed address is our own), only a stateful firewall that a simultaneous open passes
// like a NAT that keeps ports; the words for it say "no NAT", never "publicly reachable".
import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import { familyOf, type Endpoint, type NatKind } from '../peer.js';

export function classifyNat(
  localPort: number,
  observed: Endpoint,
  interfaceIps: string[],
): NatKind {
  if (interfaceIps.includes(observed.ip)) return 'public';
  return observed.port === localPort ? 'port-preserving' : 'port-changing';
}

/**
 * This machine's own addresses, both families (loopback included: two peers on one machine meet on
 * it). Link-local IPv6 addresses are left out: they need a zone (interface) to be dialled.
 */
export function interfaceAddresses(): string[] {
  return Object.values(networkInterfaces())
    .flat()
    .flatMap((i) => (i !== undefined && !isLinkLocal(i.address) ? [i.address] : []));
}

function isLinkLocal(ip: string): boolean {
  return isIP(ip) === 6 && /^fe[89ab]/i.test(ip);
}

export function isLoopback(ip: string): boolean {
  return ip.startsWith('127.') || ip === '::1';
}

/**
 * Where a peer behind the same router can reach us: our non-loopback addresses, our port. When the
 * rendezvous itself saw us on loopback, every peer is on this machine: loopback only.
 */
export function lanEndpoints(port: number, interfaceIps: string[], observed: Endpoint): Endpoint[] {
  if (isLoopback(observed.ip)) return [{ ip: observed.ip, port }];
  const lan = interfaceIps.filter((ip) => !isLoopback(ip));
  return (lan.length > 0 ? lan : interfaceIps).slice(0, 8).map((ip) => ({ ip, port }));
}

/**
 * Two peers behind the same router: the same external IPv4 address, or IPv6 addresses in the same
 * /64 (one LAN). Traffic between them never crosses the router's NAT or firewall.
 */
export function sameSite(a: Endpoint, b: Endpoint): boolean {
  if (familyOf(a.ip) !== familyOf(b.ip)) return false;
  if (familyOf(a.ip) === 4) return a.ip === b.ip;
  return prefix64(a.ip) === prefix64(b.ip);
}

/** The first 64 bits of an IPv6 address, normalised ("2001:db8:1:0"). */
function prefix64(ip: string): string {
  const [head = '', tail = ''] = ip.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === '' ? [] : tail.split(':');
  const groups = ip.includes('::')
    ? [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right]
    : left;
  return groups
    .slice(0, 4)
    .map((g) => parseInt(g, 16).toString(16))
    .join(':');
}

/** Human words for a NAT kind in one family, used in the reason a path was chosen. */
export function describeNat(kind: NatKind, family: 4 | 6 = 4): string {
  switch (kind) {
    case 'public':
      return family === 6 ? 'no NAT' : 'publicly reachable, no NAT';
    case 'port-preserving':
      return 'NAT keeps ports';
    case 'port-changing':
      return 'NAT changes ports';
  }
}
