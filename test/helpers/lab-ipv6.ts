// IPv6 for the NAT lab (LabOptions.ipv6): addresses, the routers' stateful IPv6 firewall (no NAT66),
// and the per-namespace hosts file that gives the rendezvous a name with both an A and an AAAA
// address. See docs/nat-lab.md, "IPv6".
//
//   inet bridge br0            2001:db8::/64   rv ::10, stranger ::66, router wan0 ::21 / ::22,
//                                              public hosts ::31 / ::32
//   server LAN (router lan0)   2001:db8:1::/64 router ::1, host ::2 (sameLan client ::3)
//   client LAN (router lan0)   2001:db8:2::/64 router ::1, host ::2
//
// Every LAN /64 is routed through its router (each other namespace on the bridge has a route to it
// via the router's wan0 address). Addresses are added with `nodad`, so they work at once.
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import type { NatKind, Site } from './nat-lab.js';

/** What a site (or the rendezvous) has: both families, IPv4 only, or IPv6 only (no IPv4 at all). */
export type IpStack = 'dual' | 'v4only' | 'v6only';

export interface Ipv6Options {
  /** The server site: its host, and its router's WAN and LAN. Default 'dual'. */
  server?: IpStack;
  /** The client site (with sameLan: the second host on the server's LAN). Default 'dual'. */
  client?: IpStack;
  /** The rendezvous host; RENDEZVOUS_NAME resolves to the addresses it has. Default 'dual'. */
  rendezvous?: IpStack;
}

/** Resolves, inside every namespace of an IPv6 lab, to the rendezvous's IPv4 and/or IPv6 address. */
export const RENDEZVOUS_NAME = 'rv.lab';
export const INET_PREFIX6 = '2001:db8::';
export const RENDEZVOUS_IP6 = '2001:db8::10';
export const STRANGER_IP6 = '2001:db8::66';
export const WAN_IP6: Readonly<Record<Site, string>> = {
  server: '2001:db8::21',
  client: '2001:db8::22',
};
export const PUBLIC_IP6: Readonly<Record<Site, string>> = {
  server: '2001:db8::31',
  client: '2001:db8::32',
};
const LAN_NET6: Readonly<Record<Site, number>> = { server: 1, client: 2 };

/** The /64 of a site's LAN, e.g. '2001:db8:1::/64'. */
export function lanPrefix6(site: Site): string {
  return `2001:db8:${LAN_NET6[site]}::/64`;
}

/** An address on a site's LAN: `lanIp6('server', 1)` is the router, 2 and 3 are hosts. */
export function lanIp6(site: Site, host: number): string {
  return `2001:db8:${LAN_NET6[site]}::${host.toString(16)}`;
}

export function hasIpv4(stack: IpStack): boolean {
  return stack !== 'v6only';
}

export function hasIpv6(stack: IpStack): boolean {
  return stack !== 'v4only';
}

/**
 * The router's IPv6 firewall: stateful, no NAT66. Forward policy drop with established/related,
 * ICMPv6 (neighbour discovery, packet too big) and LAN-to-WAN accepted, so an unsolicited inbound SYN
 * to a LAN host is dropped. Mirrors the IPv4 kinds: 'rst' answers it with a TCP reset instead, and
 * lets the router's own stack answer SYNs to its WAN address with RST; the others drop those.
 * 'symmetric' only changes IPv4 ports, so for IPv6 it is the same firewall as 'drop'.
 */
export function firewall6Ruleset(kind: Exclude<NatKind, 'public'>): string {
  const rejectNew =
    kind === 'rst'
      ? '    iifname "wan0" meta l4proto tcp ct state new reject with tcp reset\n'
      : '';
  const dropInput = kind === 'rst' ? '' : '    iifname "wan0" ct state new drop\n';
  return `table ip6 rcpp2p_fw6 {
  chain forward {
    type filter hook forward priority filter; policy drop;
    ct state established,related accept
    meta l4proto ipv6-icmp accept
    iifname "lan0" oifname "wan0" accept
    iifname "lan0" oifname "lan0" accept
${rejectNew}  }
  chain input {
    type filter hook input priority filter; policy accept;
    meta l4proto ipv6-icmp accept
${dropInput}  }
}
`;
}

/** Where `ip netns exec NS` finds files it bind-mounts over /etc (iproute2). */
export function netnsEtcDir(ns: string): string {
  return join('/etc/netns', ns);
}

/** The hosts file of every namespace in an IPv6 lab: localhost and the rendezvous name. */
export function hostsFileText(rendezvous: { ipv4?: string; ipv6?: string }): string {
  return [
    '127.0.0.1 localhost',
    '::1 localhost ip6-localhost ip6-loopback',
    ...(rendezvous.ipv4 ? [`${rendezvous.ipv4} ${RENDEZVOUS_NAME}`] : []),
    ...(rendezvous.ipv6 ? [`${rendezvous.ipv6} ${RENDEZVOUS_NAME}`] : []),
    '',
  ].join('\n');
}

/**
 * Writes /etc/netns/NS/hosts. `ip netns exec NS` (which every process the lab starts goes through,
 * processes.ts) mounts it over /etc/hosts for that process and its children, sshd sessions included.
 */
export async function writeNetnsHosts(ns: string, text: string): Promise<void> {
  const dir = netnsEtcDir(ns);
  await mkdir(dir, { recursive: true, mode: 0o755 });
  await writeFile(join(dir, 'hosts'), text, { mode: 0o644 });
}

export async function removeNetnsEtc(ns: string): Promise<void> {
  await rm(netnsEtcDir(ns), { recursive: true, force: true });
}

export function removeNetnsEtcSync(ns: string): void {
  rmSync(netnsEtcDir(ns), { recursive: true, force: true });
}
