// The NAT lab: network namespaces wired into a small Internet with a real OpenSSH rendezvous, two
// sites behind nftables NAT routers (or public), and a stranger for attack tests. See docs/nat-lab.md.
//
//   inet (bridge br0, 203.0.113.0/24)
//   ├── rv        203.0.113.10   sshd on port 22 (root login, the lab's keys), or with
//   │                             `rendezvous: 'embedded'` rcpp2p --rendezvous-server (account peer)
//   ├── stranger  203.0.113.66
//   ├── router S  wan0 203.0.113.21 ── lan0 198.18.1.1/24 ── host server 198.18.1.2 (+ client .3 if sameLan)
//   ├── router C  wan0 203.0.113.22 ── lan0 198.18.2.1/24 ── host client 198.18.2.2
//   └── public hosts instead of a router: server 203.0.113.31, client 203.0.113.32
//
// Interface names are fixed inside each namespace (eth0, wan0, lan0, p-*), so only namespace names
// need to be unique: `nl<pid>x<counter>-<role>`.
//
// Options add IPv6 (lab-ipv6.ts: a 2001:db8::/64 Internet, a routed /64 per LAN behind a stateful
// firewall, the name rv.lab), miniupnpd on a router (miniupnpd.ts: UPnP IGD v1/v2, NAT-PMP, PCP),
// and other rendezvous kinds (lab-rendezvous.ts: OpenSSH at its defaults or without forwarding,
// Dropbear, the embedded server).
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  RENDEZVOUS_IP6,
  RENDEZVOUS_NAME,
  STRANGER_IP6,
  WAN_IP6,
  PUBLIC_IP6,
  firewall6Ruleset,
  hasIpv4,
  hasIpv6,
  hostsFileText,
  lanIp6,
  lanPrefix6,
  removeNetnsEtc,
  removeNetnsEtcSync,
  writeNetnsHosts,
  type IpStack,
  type Ipv6Options,
} from './lab-ipv6.js';
import { startLabRendezvous, type LabRendezvous, type RendezvousKind } from './lab-rendezvous.js';
import {
  LIST_MAPPINGS_ARGS,
  UPNP_HTTP_PORT,
  flushMappingsRuleset,
  miniupnpdBinary,
  miniupnpdConfig,
  parseUpnpMappings,
  routerUuid,
  upnpRuleset,
  type PortMappingEntry,
  type PortMappingOptions,
} from './miniupnpd.js';
import {
  IP,
  ProcessTracker,
  killPids,
  runChecked,
  runCommand,
  type ProcessHandle,
  type RunResult,
  type SpawnOptions,
} from './processes.js';

export {
  ALL_RENDEZVOUS_KINDS,
  RENDEZVOUS_KINDS,
  type LabRendezvous,
  type RendezvousKind,
} from './lab-rendezvous.js';
export {
  RENDEZVOUS_IP6,
  RENDEZVOUS_NAME,
  STRANGER_IP6,
  WAN_IP6,
  PUBLIC_IP6,
  lanIp6,
  type IpStack,
  type Ipv6Options,
} from './lab-ipv6.js';
export { type PortMappingEntry, type PortMappingOptions } from './miniupnpd.js';

export type NatKind = 'drop' | 'rst' | 'symmetric' | 'public';
export type Site = 'server' | 'client';
export type HostName = Site | 'stranger';
/**
 * Where a command can run: a lab host, the rendezvous namespace, or a LabHost (only `ns` is read,
 * so `{ ns: lab.natRouterNs('client') }` runs in a router).
 */
export type Place = HostName | 'rendezvous' | (Pick<LabHost, 'ns'> & Partial<LabHost>);

export const RENDEZVOUS_IP = '203.0.113.10';
export const STRANGER_IP = '203.0.113.66';
export const WAN_IP: Readonly<Record<Site, string>> = {
  server: '203.0.113.21',
  client: '203.0.113.22',
};
export const PUBLIC_IP: Readonly<Record<Site, string>> = {
  server: '203.0.113.31',
  client: '203.0.113.32',
};
const LAN_NET: Readonly<Record<Site, number>> = { server: 1, client: 2 };

const NFT = '/usr/sbin/nft';
const CONNTRACK = '/usr/sbin/conntrack';
const TC = '/usr/sbin/tc';
const SYSCTL = '/usr/sbin/sysctl';

/** The compiled punch probe (dist/test/helpers/punch-probe.js), for `lab.spawn(host, node, [..])`. */
export const PUNCH_PROBE = fileURLToPath(new URL('./punch-probe.js', import.meta.url));
/** The compiled SSH capability probe (ssh-probe.ts): what a rendezvous lets an ssh2 client do. */
export const SSH_PROBE = fileURLToPath(new URL('./ssh-probe.js', import.meta.url));
/** The compiled NAT-PMP/PCP client (port-mapping-probe.ts), run in a LAN host. */
export const PORT_MAPPING_PROBE = fileURLToPath(
  new URL('./port-mapping-probe.js', import.meta.url),
);

export interface LabOptions {
  server: NatKind;
  client: NatKind;
  /** Both hosts behind the server's router on one LAN (198.18.1.2 and .3); `client` is ignored. */
  sameLan?: boolean;
  /**
   * For the 'openssh' kind: AllowStreamLocalForwarding; default true. (The other kinds fix their
   * forwarding themselves: see RendezvousKind; `false` with them is an error.)
   */
  forwarding?: boolean;
  /** Which rendezvous runs at 203.0.113.10:22; default 'openssh'. */
  rendezvous?: RendezvousKind;
  /** More sshd_config lines for the OpenSSH kinds; a keyword given here replaces the kind's own. */
  sshdConfig?: string[];
  /** tbf rate limit on every WAN link, both directions. */
  rateLimitMbit?: number;
  /**
   * Adds IPv6: each site, and the rendezvous, gets the stack named here (default 'dual'), routers a
   * stateful IPv6 firewall (no NAT66), and every namespace the name RENDEZVOUS_NAME ('rv.lab').
   * Without this option the lab is IPv4-only, as before.
   */
  ipv6?: Ipv6Options;
  /** Runs miniupnpd on the site's router (not for a public site). See miniupnpd.ts. */
  portMapping?: Partial<Record<Site, PortMappingOptions>>;
  signal?: AbortSignal;
}

export interface LabHost {
  name: HostName;
  ns: string;
  /** The host's own address: its IPv4 address, or for an IPv6-only host its IPv6 address. */
  ip: string;
  /** The address the Internet sees for it (its router's WAN address when behind a NAT). */
  publicIp: string;
  nat: NatKind;
  /** The NAT router namespace in front of it, if any. */
  routerNs: string | undefined;
  /** 'v4only' in a lab without the ipv6 option. */
  stack: IpStack;
  /** Its IPv4 address (undefined for an IPv6-only host). */
  ipv4: string | undefined;
  /** Its global IPv6 address (no NAT66: also what the Internet sees); undefined without IPv6. */
  ipv6: string | undefined;
  /** Its router's IPv6 WAN address, if it has a router with IPv6. */
  routerWanIpv6: string | undefined;
}

export interface TcpProbeTarget {
  /** An address (IPv4 or IPv6) or a name such as RENDEZVOUS_NAME. */
  host: string;
  port: number;
  localPort?: number;
  /** Resolve a name to this family only (net.connect's `family`). */
  family?: 4 | 6;
  timeoutMs?: number;
}

export interface TcpProbeResult {
  outcome: 'connected' | 'refused' | 'reset' | 'timeout' | 'error';
  /** The error code: ECONNREFUSED, ENETUNREACH, ... */
  code?: string;
  /** First line the peer sent (an SSH banner, an address echo). */
  firstLine?: string;
  localPort?: number;
  /** The local and remote address of the connected socket. */
  localAddress?: string;
  remoteAddress?: string;
}

export interface CtTuple {
  src: string;
  dst: string;
  sport: number;
  dport: number;
}

export interface CtEntry {
  state: string;
  orig: CtTuple;
  reply: CtTuple;
}

export interface Lab {
  readonly id: string;
  readonly options: Readonly<LabOptions>;
  readonly rendezvous: LabRendezvous;
  /** RENDEZVOUS_NAME ('rv.lab') in a lab with the ipv6 option: resolves to the rendezvous's addresses. */
  readonly rendezvousName: string | undefined;
  readonly hosts: Readonly<Record<HostName, LabHost>>;
  /** Every namespace this lab created, in creation order. */
  readonly namespaces: readonly string[];
  /** Milliseconds createLab took. */
  readonly buildMs: number;
  spawn(place: Place, cmd: string, args: string[], opts?: SpawnOptions): ProcessHandle;
  exec(
    place: Place,
    cmd: string,
    args: string[],
    opts?: SpawnOptions & { timeoutMs?: number },
  ): Promise<RunResult>;
  /** One TCP connect from `place` (a short node child in its namespace); reads one line. */
  tcpConnect(place: Place, target: TcpProbeTarget): Promise<TcpProbeResult>;
  /** A TCP server on `port` in `place` that answers each connection with "ip:port\n" of the peer. */
  startAddressEcho(place: Place, port: number): Promise<ProcessHandle>;
  natRouterNs(site: Site): string | undefined;
  /** conntrack -F in the site's router (no-op for a public site). */
  flushConntrack(site: Site): Promise<void>;
  /** The TCP entries of the site's router conntrack table ([] for a public site). */
  conntrack(site: Site): Promise<CtEntry[]>;
  /** The miniupnpd running on the site's router (LabOptions.portMapping), if any. */
  portMapper(site: Site): LabPortMapper | undefined;
  /** Kills every tracked process by PID, stops sshd, deletes every namespace. Idempotent. */
  close(): Promise<void>;
}

/** miniupnpd on one lab router. */
export interface LabPortMapper {
  readonly site: Site;
  readonly options: Readonly<Required<PortMappingOptions>>;
  readonly routerNs: string;
  /** The router's LAN address: NAT-PMP/PCP on UDP NATPMP_PORT, UPnP HTTP on UPNP_HTTP_PORT. */
  readonly lanAddress: string;
  /**
   * The IGD description URL (http://198.18.N.1:5000/rootDesc.xml), undefined without UPnP. Give it
   * to `upnpc -u URL`: libminiupnpc's own discovery calls this IGD "not connected" because it
   * checks the WAN address against the documentation ranges too.
   */
  readonly descriptionUrl: string | undefined;
  readonly pid: number;
  logText(): string;
  /** The redirects miniupnpd has installed now (read from its nft chain on the router). */
  mappings(): Promise<PortMappingEntry[]>;
  /** Kills miniupnpd; its nft rules stay, as when the daemon crashes. Idempotent. */
  halt(): Promise<void>;
  /**
   * A router reboot: kills miniupnpd, empties its nft chains (every mapping is gone) and starts it
   * again with the same config; its NAT-PMP/PCP epoch starts again from 0.
   */
  restart(): Promise<void>;
}

let labCounter = 0;
const liveLabs = new Set<NatLab>();
let exitHooksInstalled = false;

function installExitHooks(): void {
  if (exitHooksInstalled) return;
  exitHooksInstalled = true;
  process.on('exit', () => {
    for (const lab of liveLabs) lab.closeSync();
  });
  for (const [sig, code] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const) {
    process.once(sig, () => {
      for (const lab of liveLabs) lab.closeSync();
      process.exit(code);
    });
  }
}

export async function createLab(opts: LabOptions): Promise<Lab> {
  if (opts.sameLan && opts.server === 'public') {
    throw new Error('createLab: sameLan needs a NAT router (server kind must not be public)');
  }
  if (opts.rendezvous === 'embedded' && opts.forwarding === false) {
    throw new Error('createLab: the embedded rendezvous always allows socket forwarding');
  }
  for (const [site, pm] of Object.entries(opts.portMapping ?? {}) as [Site, PortMappingOptions][]) {
    const kind = opts.sameLan ? opts.server : opts[site];
    if (opts.sameLan && site === 'client') {
      throw new Error('createLab: with sameLan, put portMapping on the server (the one router)');
    }
    if (kind === 'public')
      throw new Error(`createLab: portMapping needs a router, ${site} is public`);
    if (pm.upnp === false && pm.natpmp === false) {
      throw new Error(`createLab: portMapping.${site} enables neither UPnP nor NAT-PMP/PCP`);
    }
  }
  const started = Date.now();
  labCounter += 1;
  const lab = new NatLab(`nl${process.pid}x${labCounter}`, opts);
  installExitHooks();
  liveLabs.add(lab);
  try {
    await lab.build();
  } catch (err) {
    await lab.close().catch(() => undefined);
    throw err;
  }
  lab.buildMs = Date.now() - started;
  return lab;
}

function nodeScript(body: string): string {
  return `'use strict';const net=require('net');${body}`;
}

const TCP_PROBE = nodeScript(`
const o=JSON.parse(process.argv[1]);
const s=net.connect({host:o.host,port:o.port,localPort:o.localPort,family:o.family});
let buf='',connected=false,finished=false,addr={};
const done=(r)=>{if(finished)return;finished=true;process.stdout.write(JSON.stringify(r)+'\\n');s.destroy();process.exit(0)};
const ok=(line)=>({outcome:'connected',firstLine:line,localPort:s.localPort,...addr});
const t=setTimeout(()=>done(connected?ok(buf.trim()):{outcome:'timeout'}),o.timeoutMs);
s.on('connect',()=>{connected=true;addr={localAddress:s.localAddress,remoteAddress:s.remoteAddress}});
s.on('data',(d)=>{buf+=d;const i=buf.indexOf('\\n');if(i>=0){clearTimeout(t);done(ok(buf.slice(0,i).trim()))}});
s.on('end',()=>{clearTimeout(t);done(ok(buf.trim()))});
s.on('error',(e)=>{clearTimeout(t);done({outcome:e.code==='ECONNREFUSED'?'refused':e.code==='ECONNRESET'?'reset':'error',code:e.code})});
`);

// listens on '::' (both families; IPv4 peers arrive IPv4-mapped and are printed plain), or on
// 0.0.0.0 where the namespace has IPv6 turned off
const ADDRESS_ECHO = nodeScript(`
const srv=net.createServer((s)=>{s.on('error',()=>{});s.end(String(s.remoteAddress).replace(/^::ffff:/,'')+':'+s.remotePort+'\\n')});
const port=Number(process.argv[1]);
srv.once('error',()=>srv.listen(port,'0.0.0.0',()=>console.log('listening')));
srv.listen(port,'::',()=>console.log('listening'));
`);

function natRuleset(kind: 'drop' | 'rst' | 'symmetric', portMapping: boolean): string {
  const masquerade = kind === 'symmetric' ? 'masquerade random,fully-random' : 'masquerade';
  // inbound connections to a port miniupnpd mapped arrive DNATed: let them through
  const dnat = portMapping ? '    ct status dnat accept\n' : '';
  // 'rst' lets unsolicited SYNs reach the router's own stack, which answers them with RST
  const input = kind === 'rst' ? '' : '    iifname "wan0" ct state new drop\n';
  return `table ip rcpp2p_nat {
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    oifname "wan0" ${masquerade}
  }
  chain forward {
    type filter hook forward priority filter; policy drop;
    ct state established,related accept
${dnat}    iifname "lan0" oifname "wan0" accept
    iifname "lan0" oifname "lan0" accept
  }
  chain input {
    type filter hook input priority filter; policy accept;
${input}  }
}
`;
}

export function parseConntrack(text: string): CtEntry[] {
  const entries: CtEntry[] = [];
  for (const line of text.split('\n')) {
    const tokens = line.trim().split(/\s+/);
    if (tokens[0] !== 'tcp') continue;
    const kv = tokens.filter((t) => t.includes('=')).map((t) => t.split('=') as [string, string]);
    const tuple = (from: number): CtTuple | undefined => {
      const part = new Map(kv.slice(from, from + 4));
      const src = part.get('src');
      const dst = part.get('dst');
      const sport = part.get('sport');
      const dport = part.get('dport');
      if (!src || !dst || !sport || !dport) return undefined;
      return { src, dst, sport: Number(sport), dport: Number(dport) };
    };
    const orig = tuple(0);
    const reply = tuple(4);
    if (orig && reply) entries.push({ state: tokens[3] ?? '', orig, reply });
  }
  return entries;
}

/** The stacks of an IPv6 lab, every field filled; undefined for an IPv4-only lab. */
interface Stacks {
  server: IpStack;
  client: IpStack;
  rendezvous: IpStack;
}

/** A namespace on the "Internet" bridge with an IPv6 address (needs routes to the routed LANs). */
interface Inet6Member {
  ns: string;
  dev: string;
}

interface RunningPortMapper extends LabPortMapper {
  stop(): Promise<void>;
}

class NatLab implements Lab {
  readonly id: string;
  readonly options: Readonly<LabOptions>;
  buildMs = 0;
  #rendezvous: LabRendezvous | undefined;
  readonly #namespaces: string[] = [];
  readonly #hosts: Partial<Record<HostName, LabHost>> = {};
  readonly #routers: Partial<Record<Site, string>> = {};
  readonly #tracker = new ProcessTracker();
  readonly #stacks: Stacks | undefined;
  readonly #inet6: Inet6Member[] = [];
  readonly #routed6: Site[] = [];
  readonly #portMappers: Partial<Record<Site, RunningPortMapper>> = {};
  readonly #tempDirs: string[] = [];
  #closing: Promise<void> | undefined;

  constructor(id: string, opts: LabOptions) {
    this.id = id;
    this.options = { ...opts };
    const v6 = opts.ipv6;
    this.#stacks = v6 && {
      server: v6.server ?? 'dual',
      client: v6.client ?? 'dual',
      rendezvous: v6.rendezvous ?? 'dual',
    };
  }

  get rendezvous(): LabRendezvous {
    if (!this.#rendezvous) throw new Error('lab is not built');
    return this.#rendezvous;
  }

  get rendezvousName(): string | undefined {
    return this.#stacks ? RENDEZVOUS_NAME : undefined;
  }

  get hosts(): Readonly<Record<HostName, LabHost>> {
    const { server, client, stranger } = this.#hosts;
    if (!server || !client || !stranger) throw new Error('lab is not built');
    return { server, client, stranger };
  }

  get namespaces(): readonly string[] {
    return [...this.#namespaces];
  }

  #nsName(role: string): string {
    return `${this.id}-${role}`;
  }

  #signal(): AbortSignal | undefined {
    return this.options.signal;
  }

  /** The stack of a site or the rendezvous: 'v4only' in an IPv4-only lab. */
  #stack(of: keyof Stacks): IpStack {
    return this.#stacks?.[of] ?? 'v4only';
  }

  /** The rendezvous's addresses (IPv4 as before; IPv6 too in an IPv6 lab unless v4only). */
  #rendezvousAddresses(): { ipv4: string | undefined; ipv6: string | undefined } {
    const stack = this.#stack('rendezvous');
    return {
      ipv4: hasIpv4(stack) ? RENDEZVOUS_IP : undefined,
      ipv6: hasIpv6(stack) ? RENDEZVOUS_IP6 : undefined,
    };
  }

  async #ip(ns: string, ...args: string[]): Promise<void> {
    this.#signal()?.throwIfAborted();
    await runChecked(IP, ['-n', ns, ...args]);
  }

  async #in(ns: string, cmd: string, args: string[], input?: string): Promise<void> {
    this.#signal()?.throwIfAborted();
    await runChecked(cmd, args, { netns: ns, input });
  }

  async #addNs(role: string): Promise<string> {
    const ns = this.#nsName(role);
    await runChecked(IP, ['netns', 'add', ns]);
    this.#namespaces.push(ns);
    if (this.#stacks) await writeNetnsHosts(ns, hostsFileText(this.#rendezvousAddresses()));
    await this.#ip(ns, 'link', 'set', 'lo', 'up');
    return ns;
  }

  /** Adds an IPv6 address at once usable (no duplicate address detection). */
  async #addr6(ns: string, dev: string, cidr: string): Promise<void> {
    await this.#ip(ns, '-6', 'addr', 'add', cidr, 'dev', dev, 'nodad');
  }

  /** A veth pair: `ifA` in nsA, `ifB` in nsB, both up. */
  async #veth(nsA: string, ifA: string, nsB: string, ifB: string): Promise<void> {
    await this.#ip(nsA, 'link', 'add', ifA, 'type', 'veth', 'peer', 'name', ifB, 'netns', nsB);
    await this.#ip(nsA, 'link', 'set', ifA, 'up');
    await this.#ip(nsB, 'link', 'set', ifB, 'up');
  }

  /** Plugs `ifName` of `ns` into a bridge in `bridgeNs` through a port named `port`. */
  async #plug(ns: string, ifName: string, bridgeNs: string, bridge: string, port: string) {
    await this.#veth(ns, ifName, bridgeNs, port);
    await this.#ip(bridgeNs, 'link', 'set', port, 'master', bridge);
  }

  async #rateLimit(ns: string, dev: string): Promise<void> {
    const mbit = this.options.rateLimitMbit;
    if (!mbit) return;
    const args = ['qdisc', 'add', 'dev', dev, 'root', 'tbf', 'rate', `${mbit}mbit`];
    await this.#in(ns, TC, [...args, 'burst', '256kb', 'latency', '100ms']);
  }

  async build(): Promise<void> {
    const o = this.options;
    const inet = await this.#addNs('inet');
    await this.#ip(inet, 'link', 'add', 'br0', 'type', 'bridge');
    await this.#ip(inet, 'link', 'set', 'br0', 'up');

    const rv = await this.#addNs('rv');
    await this.#plug(rv, 'eth0', inet, 'br0', 'p-rv');
    const rvAddr = this.#rendezvousAddresses();
    if (rvAddr.ipv4) await this.#ip(rv, 'addr', 'add', `${rvAddr.ipv4}/24`, 'dev', 'eth0');
    if (rvAddr.ipv6) {
      await this.#addr6(rv, 'eth0', `${rvAddr.ipv6}/64`);
      this.#inet6.push({ ns: rv, dev: 'eth0' });
    }

    const stranger = await this.#addNs('st');
    await this.#plug(stranger, 'eth0', inet, 'br0', 'p-st');
    await this.#ip(stranger, 'addr', 'add', `${STRANGER_IP}/24`, 'dev', 'eth0');
    if (this.#stacks) {
      await this.#addr6(stranger, 'eth0', `${STRANGER_IP6}/64`);
      this.#inet6.push({ ns: stranger, dev: 'eth0' });
    }
    this.#hosts.stranger = {
      name: 'stranger',
      ns: stranger,
      ip: STRANGER_IP,
      publicIp: STRANGER_IP,
      nat: 'public',
      routerNs: undefined,
      stack: this.#stacks ? 'dual' : 'v4only',
      ipv4: STRANGER_IP,
      ipv6: this.#stacks ? STRANGER_IP6 : undefined,
      routerWanIpv6: undefined,
    };

    const sites: Site[] = o.sameLan ? ['server'] : ['server', 'client'];
    for (const site of sites) await this.#buildSite(inet, site, o[site]);
    if (o.sameLan) await this.#addLanHost('client', 'server', 3, o.server);
    await this.#route6();

    this.#rendezvous = await startLabRendezvous(this, {
      kind: o.rendezvous ?? 'openssh',
      netns: rv,
      ...rvAddr,
      // an IPv6 lab's known_hosts names the rendezvous by name and by each address
      knownHostsNames: this.#stacks
        ? [RENDEZVOUS_NAME, ...[rvAddr.ipv4, rvAddr.ipv6].filter((a): a is string => !!a)]
        : undefined,
      forwarding: o.forwarding,
      sshdConfig: o.sshdConfig,
      signal: o.signal,
    });

    for (const [site, pm] of Object.entries(o.portMapping ?? {}) as [Site, PortMappingOptions][]) {
      this.#portMappers[site] = await this.#startPortMapper(site, pm);
    }
  }

  async #buildSite(inet: string, site: Site, kind: NatKind): Promise<void> {
    const s = site[0] as string;
    const stack = this.#stack(site);
    if (kind === 'public') {
      const ns = await this.#addNs(`h${s}`);
      await this.#plug(ns, 'eth0', inet, 'br0', `p-h${s}`);
      if (hasIpv4(stack)) await this.#ip(ns, 'addr', 'add', `${PUBLIC_IP[site]}/24`, 'dev', 'eth0');
      if (hasIpv6(stack)) {
        await this.#addr6(ns, 'eth0', `${PUBLIC_IP6[site]}/64`);
        this.#inet6.push({ ns, dev: 'eth0' });
      }
      await this.#rateLimit(ns, 'eth0');
      await this.#rateLimit(inet, `p-h${s}`);
      const ipv4 = hasIpv4(stack) ? PUBLIC_IP[site] : undefined;
      const ipv6 = hasIpv6(stack) ? PUBLIC_IP6[site] : undefined;
      this.#hosts[site] = {
        name: site,
        ns,
        ip: ipv4 ?? (ipv6 as string),
        publicIp: ipv4 ?? (ipv6 as string),
        nat: 'public',
        routerNs: undefined,
        stack,
        ipv4,
        ipv6,
        routerWanIpv6: undefined,
      };
      return;
    }
    const router = await this.#addNs(`r${s}`);
    this.#routers[site] = router;
    await this.#plug(router, 'wan0', inet, 'br0', `p-r${s}`);
    await this.#ip(router, 'addr', 'add', `${WAN_IP[site]}/24`, 'dev', 'wan0');
    await this.#ip(router, 'link', 'add', 'lan0', 'type', 'bridge');
    await this.#ip(router, 'link', 'set', 'lan0', 'up');
    await this.#ip(router, 'addr', 'add', `198.18.${LAN_NET[site]}.1/24`, 'dev', 'lan0');
    await this.#in(router, SYSCTL, ['-qw', 'net.ipv4.ip_forward=1']);
    const portMapping = this.options.portMapping?.[site] !== undefined;
    await this.#in(router, NFT, ['-f', '-'], natRuleset(kind, portMapping));
    if (hasIpv6(stack)) {
      // the ISP routes the site a /64; the router forwards it behind a stateful firewall
      await this.#addr6(router, 'wan0', `${WAN_IP6[site]}/64`);
      await this.#addr6(router, 'lan0', `${lanIp6(site, 1)}/64`);
      await this.#in(router, SYSCTL, ['-qw', 'net.ipv6.conf.all.forwarding=1']);
      await this.#in(router, NFT, ['-f', '-'], firewall6Ruleset(kind));
      this.#inet6.push({ ns: router, dev: 'wan0' });
      this.#routed6.push(site);
    }
    await this.#rateLimit(router, 'wan0');
    await this.#rateLimit(inet, `p-r${s}`);
    await this.#addLanHost(site, site, 2, kind);
  }

  /**
   * A host on `lanSite`'s LAN at 198.18.N.`octet` (and 2001:db8:N::`octet` with IPv6), default
   * routes via the router. Its stack is its own site's (with sameLan the client's may differ from
   * the server's; the LAN then simply carries both families).
   */
  async #addLanHost(site: Site, lanSite: Site, octet: number, kind: NatKind): Promise<void> {
    const router = this.#routers[lanSite];
    if (!router) throw new Error(`no router for ${lanSite}`);
    const ns = await this.#addNs(`h${site[0] as string}`);
    const net = LAN_NET[lanSite];
    const stack = this.#stack(site);
    const lanHas6 = hasIpv6(this.#stack(lanSite));
    if (hasIpv6(stack) && !lanHas6) {
      throw new Error(`createLab: ${site} wants IPv6 on the ${lanSite} LAN, which has none`);
    }
    await this.#plug(ns, 'eth0', router, 'lan0', `h${octet}`);
    const ipv4 = hasIpv4(stack) ? `198.18.${net}.${octet}` : undefined;
    const ipv6 = hasIpv6(stack) ? lanIp6(lanSite, octet) : undefined;
    if (ipv4) {
      await this.#ip(ns, 'addr', 'add', `${ipv4}/24`, 'dev', 'eth0');
      await this.#ip(ns, 'route', 'add', 'default', 'via', `198.18.${net}.1`);
    }
    if (ipv6) {
      await this.#addr6(ns, 'eth0', `${ipv6}/64`);
      await this.#ip(ns, '-6', 'route', 'add', 'default', 'via', lanIp6(lanSite, 1));
    }
    this.#hosts[site] = {
      name: site,
      ns,
      ip: ipv4 ?? (ipv6 as string),
      publicIp: ipv4 ? WAN_IP[lanSite] : (ipv6 as string),
      nat: kind,
      routerNs: router,
      stack,
      ipv4,
      ipv6,
      routerWanIpv6: lanHas6 ? WAN_IP6[lanSite] : undefined,
    };
  }

  /** Routes each routed LAN /64 via its router's wan0, in every other IPv6 namespace on the bridge. */
  async #route6(): Promise<void> {
    for (const site of this.#routed6) {
      const router = this.#routers[site];
      for (const m of this.#inet6.filter((x) => x.ns !== router)) {
        await this.#ip(m.ns, '-6', 'route', 'add', lanPrefix6(site), 'via', WAN_IP6[site]);
      }
    }
  }

  async #startPortMapper(site: Site, pm: PortMappingOptions): Promise<RunningPortMapper> {
    const routerNs = this.#routers[site];
    if (!routerNs) throw new Error(`createLab: portMapping on ${site}, which has no router`);
    const options = { upnp: pm.upnp ?? true, natpmp: pm.natpmp ?? true, igd: pm.igd ?? 1 };
    const net = LAN_NET[site];
    const lanAddress = `198.18.${net}.1`;
    await this.#in(routerNs, NFT, ['-f', '-'], upnpRuleset());
    const dir = await mkdtemp(join(tmpdir(), 'rcpp2p-miniupnpd-'));
    this.#tempDirs.push(dir);
    const config = join(dir, 'miniupnpd.conf');
    await writeFile(
      config,
      miniupnpdConfig({
        options,
        lanNetwork: `198.18.${net}.0/24`,
        uuid: routerUuid(this.id, net),
        minissdpdSocket: join(dir, 'minissdpd.sock'),
      }),
    );
    const args = ['-d', '-f', config, '-P', join(dir, 'miniupnpd.pid')];
    // the lines it logs once each service listens (-d: to stderr)
    const ready = [
      ...(options.upnp ? [/HTTP listening on port \d+/] : []),
      ...(options.natpmp ? [/Listening for NAT-PMP\/PCP traffic on port \d+/] : []),
    ];
    let proc: ProcessHandle | undefined;
    let earlierLog = '';
    const halt = async (): Promise<void> => {
      const p = proc;
      if (!p) return;
      await p.kill(2000);
      earlierLog += p.stdout() + p.stderr();
      if (proc === p) proc = undefined;
    };
    const start = async (): Promise<void> => {
      const p = this.#tracker.spawn(miniupnpdBinary(options.igd), args, { netns: routerNs });
      proc = p;
      try {
        for (const line of ready) await p.waitForOutput(line, 10_000);
      } catch (err) {
        await halt();
        throw err;
      }
    };
    await start();
    const logText = (): string => earlierLog + (proc ? proc.stdout() + proc.stderr() : '');
    return {
      site,
      options,
      routerNs,
      lanAddress,
      descriptionUrl: options.upnp
        ? `http://${lanAddress}:${UPNP_HTTP_PORT}/rootDesc.xml`
        : undefined,
      get pid() {
        return proc?.pid ?? 0;
      },
      logText,
      async mappings() {
        return parseUpnpMappings(await runChecked(NFT, LIST_MAPPINGS_ARGS, { netns: routerNs }));
      },
      halt,
      restart: async () => {
        await halt();
        await this.#in(routerNs, NFT, ['-f', '-'], flushMappingsRuleset());
        await start();
      },
      stop: halt,
    };
  }

  #nsOf(place: Place): string {
    if (typeof place === 'object') return place.ns;
    if (place === 'rendezvous') return this.#nsName('rv');
    return this.hosts[place].ns;
  }

  spawn(place: Place, cmd: string, args: string[], opts: SpawnOptions = {}): ProcessHandle {
    if (this.#closing) throw new Error('lab is closed');
    return this.#tracker.spawn(cmd, args, { ...opts, netns: this.#nsOf(place) });
  }

  exec(
    place: Place,
    cmd: string,
    args: string[],
    opts: SpawnOptions & { timeoutMs?: number } = {},
  ): Promise<RunResult> {
    if (this.#closing) throw new Error('lab is closed');
    return this.#tracker.run(cmd, args, { ...opts, netns: this.#nsOf(place) });
  }

  async tcpConnect(place: Place, target: TcpProbeTarget): Promise<TcpProbeResult> {
    const timeoutMs = target.timeoutMs ?? 3000;
    const arg = JSON.stringify({ ...target, timeoutMs });
    const r = await this.exec(place, process.execPath, ['-e', TCP_PROBE, arg], {
      timeoutMs: timeoutMs + 5000,
    });
    const line = r.stdout.trim().split('\n').pop() ?? '';
    try {
      return JSON.parse(line) as TcpProbeResult;
    } catch {
      throw new Error(`tcp probe printed no result (exit ${r.code}): ${r.stdout}${r.stderr}`);
    }
  }

  async startAddressEcho(place: Place, port: number): Promise<ProcessHandle> {
    const p = this.spawn(place, process.execPath, ['-e', ADDRESS_ECHO, String(port)]);
    try {
      await p.waitForOutput(/listening/, 10_000);
    } catch (err) {
      await p.kill(500);
      throw err;
    }
    return p;
  }

  natRouterNs(site: Site): string | undefined {
    return this.hosts[site].routerNs;
  }

  portMapper(site: Site): LabPortMapper | undefined {
    return this.#portMappers[site];
  }

  async flushConntrack(site: Site): Promise<void> {
    const router = this.natRouterNs(site);
    if (router) await runChecked(CONNTRACK, ['-F'], { netns: router });
  }

  async conntrack(site: Site): Promise<CtEntry[]> {
    const router = this.natRouterNs(site);
    if (!router) return [];
    // conntrack -L prints its summary on stderr and exits 0 also when the table is empty
    return parseConntrack(await runChecked(CONNTRACK, ['-L', '-p', 'tcp'], { netns: router }));
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    // stays in liveLabs until done: if the process dies half-way, the exit hook finishes the job
    try {
      await this.#teardown();
    } finally {
      liveLabs.delete(this);
    }
  }

  async #teardown(): Promise<void> {
    const problems: string[] = [];
    for (const pm of Object.values(this.#portMappers)) {
      await pm.stop().catch((e: Error) => problems.push(e.message));
    }
    await this.#tracker.killAll(1000);
    await this.#rendezvous?.stop().catch((e: Error) => problems.push(e.message));
    // whatever still lives inside our namespaces (sshd sessions, reparented children) is ours
    for (const ns of this.#namespaces) {
      const r = await runCommand(IP, ['netns', 'pids', ns], { timeoutMs: 5000 }).catch(
        () => undefined,
      );
      const pids = (r?.stdout ?? '').split(/\s+/).filter(Boolean).map(Number);
      await killPids(pids, 1000);
    }
    for (const ns of [...this.#namespaces].reverse()) {
      const r = await runCommand(IP, ['netns', 'del', ns], { timeoutMs: 10_000 });
      if (r.code !== 0) problems.push(`ip netns del ${ns}: ${r.stderr.trim()}`);
      await removeNetnsEtc(ns).catch((e: Error) => problems.push(e.message));
    }
    for (const dir of this.#tempDirs) await rm(dir, { recursive: true, force: true });
    if (problems.length > 0) throw new Error(`lab ${this.id} teardown: ${problems.join('; ')}`);
  }

  /** Last resort from process 'exit' / signals: synchronous, SIGKILL, best effort. */
  closeSync(): void {
    liveLabs.delete(this);
    this.#tracker.killAllSync();
    const sshd = this.#rendezvous;
    if (sshd && sshd.pid > 0) {
      try {
        process.kill(sshd.pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    for (const ns of this.#namespaces) {
      try {
        const out = execFileSync(IP, ['netns', 'pids', ns], { encoding: 'utf8', timeout: 5000 });
        for (const pid of out.split(/\s+/).filter(Boolean).map(Number)) {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            // gone
          }
        }
      } catch {
        // best effort
      }
    }
    for (const ns of [...this.#namespaces].reverse()) {
      try {
        execFileSync(IP, ['netns', 'del', ns], { stdio: 'ignore', timeout: 10_000 });
      } catch {
        // best effort
      }
      removeNetnsEtcSync(ns);
    }
    if (sshd) rmSync(sshd.dir, { recursive: true, force: true });
    for (const dir of this.#tempDirs) rmSync(dir, { recursive: true, force: true });
  }
}
