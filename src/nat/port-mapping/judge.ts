// Can a mapping on this router help? Pure. A router maps ports on its own external address; that
// address is only reachable from the Internet when it is public and is the address the rest of
// the world (the rendezvous) sees this peer at. A private or carrier-grade (100.64.0.0/10)
// external address means another NAT sits above the router, which the mapping does not open.
import { isIPv4 } from 'node:net';
import type { Endpoint } from '../../peer.js';

export type Ipv4Scope =
  'public' | 'private' | 'carrier-grade' | 'loopback' | 'link-local' | 'unspecified' | 'reserved';

/** Ranges that never carry Internet traffic to a home router (RFC 6890). */
const RANGES: [string, number, Ipv4Scope][] = [
  ['0.0.0.0', 8, 'unspecified'],
  ['10.0.0.0', 8, 'private'],
  ['100.64.0.0', 10, 'carrier-grade'],
  ['127.0.0.0', 8, 'loopback'],
  ['169.254.0.0', 16, 'link-local'],
  ['172.16.0.0', 12, 'private'],
  ['192.0.0.0', 24, 'reserved'],
  ['192.168.0.0', 16, 'private'],
  ['198.18.0.0', 15, 'reserved'],
  ['224.0.0.0', 4, 'reserved'],
  ['240.0.0.0', 4, 'reserved'],
];

function toNumber(ip: string): number {
  return ip.split('.').reduce((n, octet) => n * 256 + Number(octet), 0);
}

/**
 * What kind of IPv4 address this is. The documentation ranges (192.0.2.0/24, 198.51.100.0/24,
 * 203.0.113.0/24) count as public, as in the NAT lab, where they stand for the Internet.
 */
export function ipv4Scope(ip: string): Ipv4Scope {
  if (!isIPv4(ip)) return 'reserved';
  const n = toNumber(ip);
  for (const [base, bits, scope] of RANGES) {
    const size = 2 ** (32 - bits);
    const start = toNumber(base);
    if (n >= start && n < start + size) return scope;
  }
  return 'public';
}

export type Verdict = { usable: true } | { usable: false; reason: string };

/** Judges the router's external address on its own (before anything is mapped). */
export function judgeExternalAddress(ip: string): Verdict {
  switch (ipv4Scope(ip)) {
    case 'public':
      return { usable: true };
    case 'carrier-grade':
      return {
        usable: false,
        reason: `the router's external address ${ip} is in 100.64.0.0/10: the Internet provider's carrier-grade NAT sits above it`,
      };
    case 'private':
      return {
        usable: false,
        reason: `the router's external address ${ip} is private: another router sits above it (double NAT)`,
      };
    case 'unspecified':
      return {
        usable: false,
        reason: `the router has no external address (${ip}): is it connected to the Internet?`,
      };
    default:
      return {
        usable: false,
        reason: `the router's external address ${ip} is not an Internet address`,
      };
  }
}

/**
 * Judges a mapping against what the rendezvous saw: the mapped address must be the one the
 * Internet sees this peer at, or a NAT above the router hides it.
 */
export function judgeMapping(external: Endpoint, observed: Endpoint): Verdict {
  const own = judgeExternalAddress(external.ip);
  if (!own.usable) return own;
  if (external.ip !== observed.ip) {
    return {
      usable: false,
      reason: `the router's external address ${external.ip} is not the address the rendezvous sees (${observed.ip}): another NAT sits above the router`,
    };
  }
  return { usable: true };
}
