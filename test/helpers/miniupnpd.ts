// miniupnpd on a lab router (LabOptions.portMapping): UPnP IGD v1 or v2, NAT-PMP and PCP, with the
// nftables backend. The binaries come from scripts/build-miniupnpd.sh (Debian's source, with the
// RFC 5737 ranges no longer "reserved", so the lab's 203.0.113.0/24 WAN counts as public).
//
// Each router gets its own config file, pid file and nft table (`table inet rcpp2p_upnp`, made here
// before miniupnpd starts, since miniupnpd only fills chains). miniupnpd runs in the foreground
// (-d, log on stderr), tracked by PID; nothing it writes is shared between routers or labs.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Capability } from './capability.js';

export const MINIUPNPD_CACHE = join(
  process.env['RCPP2P_LAB_CACHE'] || '/var/cache/rcpp2p-lab',
  'miniupnpd',
);
export const UPNPC = '/usr/bin/upnpc';
/** miniupnpd's HTTP port on the router's LAN address (description URL and SOAP control). */
export const UPNP_HTTP_PORT = 5000;
/** NAT-PMP (RFC 6886) and PCP (RFC 6887) share this UDP port on the router's LAN address. */
export const NATPMP_PORT = 5351;

export interface PortMappingOptions {
  /** UPnP IGD: SSDP discovery and SOAP control on the LAN. Default true. */
  upnp?: boolean;
  /**
   * NAT-PMP and PCP on UDP 5351 of the router's LAN address. miniupnpd has one switch for both
   * (`enable_natpmp`): a request's version byte (0 or 2) picks the protocol. Default true.
   */
  natpmp?: boolean;
  /** The IGD version UPnP advertises: 1 (WANIPConnection:1) or 2 (WANIPConnection:2). Default 1. */
  igd?: 1 | 2;
}

/** One redirect miniupnpd has installed on the router (from its nft chain). */
export interface PortMappingEntry {
  protocol: 'tcp' | 'udp';
  externalPort: number;
  internalIp: string;
  internalPort: number;
}

export function miniupnpdBinary(igd: 1 | 2): string {
  return join(MINIUPNPD_CACHE, `miniupnpd-igd${igd}`);
}

export function hasMiniupnpd(): Capability {
  const ok = [1, 2].every((v) => existsSync(miniupnpdBinary(v as 1 | 2)));
  return {
    ok,
    reason: ok
      ? ''
      : `needs the lab's miniupnpd in ${MINIUPNPD_CACHE} (run scripts/build-miniupnpd.sh as root)`,
  };
}

/** The nft table and chains miniupnpd fills on a lab router (names set in its config). */
export const UPNP_TABLE = 'rcpp2p_upnp';
const FORWARD_CHAIN = 'upnp_forward';
const NAT_CHAIN = 'upnp_prerouting';
const NAT_POSTROUTING_CHAIN = 'upnp_postrouting';

/** The table miniupnpd's rules live in: base chains that only jump to the chains it manages. */
export function upnpRuleset(): string {
  return `table inet ${UPNP_TABLE} {
  chain forward {
    type filter hook forward priority filter; policy accept;
    jump ${FORWARD_CHAIN}
  }
  chain ${FORWARD_CHAIN} {
  }
  chain prerouting {
    type nat hook prerouting priority dstnat; policy accept;
    jump ${NAT_CHAIN}
  }
  chain ${NAT_CHAIN} {
  }
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    jump ${NAT_POSTROUTING_CHAIN}
  }
  chain ${NAT_POSTROUTING_CHAIN} {
  }
}
`;
}

export interface MiniupnpdConfigInput {
  options: Required<PortMappingOptions>;
  /** The router's LAN network, e.g. 198.18.1.0/24: the only clients allowed to map. */
  lanNetwork: string;
  /** Distinct per router, so an SSDP listener can tell two gateways apart. */
  uuid: string;
  /**
   * A path no minissdpd listens on: miniupnpd registers its services with a minissdpd daemon
   * through this Unix socket (default /var/run/minissdpd.sock, shared by every namespace).
   */
  minissdpdSocket: string;
}

export function miniupnpdConfig(c: MiniupnpdConfigInput): string {
  return [
    'ext_ifname=wan0',
    'listening_ip=lan0',
    `http_port=${UPNP_HTTP_PORT}`,
    `enable_upnp=${c.options.upnp ? 'yes' : 'no'}`,
    `enable_natpmp=${c.options.natpmp ? 'yes' : 'no'}`,
    // a LAN host may only map ports to itself, as on home routers
    'secure_mode=yes',
    // the NAT-PMP/PCP epoch counts from the daemon's start, so a restart looks like a reboot
    'system_uptime=no',
    'notify_interval=60',
    'clean_ruleset_interval=600',
    `uuid=${c.uuid}`,
    `minissdpdsocket=${c.minissdpdSocket}`,
    `upnp_table_name=${UPNP_TABLE}`,
    `upnp_nat_table_name=${UPNP_TABLE}`,
    `upnp_forward_chain=${FORWARD_CHAIN}`,
    `upnp_nat_chain=${NAT_CHAIN}`,
    `upnp_nat_postrouting_chain=${NAT_POSTROUTING_CHAIN}`,
    `allow 1024-65535 ${c.lanNetwork} 1024-65535`,
    'deny 0-65535 0.0.0.0/0 0-65535',
    '',
  ].join('\n');
}

/** The args to list miniupnpd's redirects: `nft list chain inet rcpp2p_upnp upnp_prerouting`. */
export const LIST_MAPPINGS_ARGS = ['list', 'chain', 'inet', UPNP_TABLE, NAT_CHAIN];

/** `nft -f` input that empties the chains miniupnpd fills (what a router reboot does). */
export function flushMappingsRuleset(): string {
  return [FORWARD_CHAIN, NAT_CHAIN, NAT_POSTROUTING_CHAIN]
    .map((chain) => `flush chain inet ${UPNP_TABLE} ${chain}\n`)
    .join('');
}

/**
 * Parses miniupnpd's dnat rules from `nft list chain`, e.g.
 *   iif "wan0" @nh,72,8 0x6 th dport 4444 dnat ip to 198.18.1.2:4444
 * (miniupnpd matches the IPv4 protocol byte with a raw payload expression: 0x6 TCP, 0x11 UDP).
 */
export function parseUpnpMappings(nftText: string): PortMappingEntry[] {
  const entries: PortMappingEntry[] = [];
  for (const line of nftText.split('\n')) {
    const dnat = /dnat ip to ([\d.]+):(\d+)/.exec(line);
    const dport = /\b(?:th|tcp|udp) dport (\d+)/.exec(line);
    if (!dnat || !dport) continue;
    const proto = /@nh,72,8 (0x[0-9a-f]+|\d+)/.exec(line)?.[1];
    const protoNumber = proto === undefined ? undefined : Number(proto);
    const protocol =
      protoNumber === 6 || /\btcp dport/.test(line)
        ? 'tcp'
        : protoNumber === 17 || /\budp dport/.test(line)
          ? 'udp'
          : undefined;
    if (!protocol) continue;
    entries.push({
      protocol,
      externalPort: Number(dport[1]),
      internalIp: dnat[1] as string,
      internalPort: Number(dnat[2]),
    });
  }
  return entries;
}

/** A per-router UUID, stable for one lab (the last 12 hex digits carry the lab and the site). */
export function routerUuid(labId: string, siteIndex: number): string {
  const digits = Array.from(`${labId}:${siteIndex}`)
    .reduce((h, ch) => (h * 31 + ch.charCodeAt(0)) % 0xffffffffffff, 7)
    .toString(16)
    .padStart(12, '0');
  return `3ba3b0f5-7c1a-4d2e-9a61-${digits}`;
}
