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
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RCPP2P_BIN } from './lab-peers.js';
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
import { makeEd25519Key, startSshd, type SshdFixture } from './sshd.js';

export type NatKind = 'drop' | 'rst' | 'symmetric' | 'public';
/** OpenSSH's sshd, or rcpp2p's own embedded rendezvous server (`rcpp2p --rendezvous-server`). */
export type RendezvousKind = 'openssh' | 'embedded';
export const RENDEZVOUS_KINDS: readonly RendezvousKind[] = ['openssh', 'embedded'];
export type Site = 'server' | 'client';
export type HostName = Site | 'stranger';
/** Where a command can run: a lab host, the rendezvous namespace, or a LabHost. */
export type Place = HostName | 'rendezvous' | LabHost;

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

export interface LabOptions {
  server: NatKind;
  client: NatKind;
  /** Both hosts behind the server's router on one LAN (198.18.1.2 and .3); `client` is ignored. */
  sameLan?: boolean;
  /** sshd AllowStreamLocalForwarding; default true (the embedded rendezvous always forwards). */
  forwarding?: boolean;
  /** Which rendezvous runs at 203.0.113.10:22; default 'openssh'. */
  rendezvous?: RendezvousKind;
  /** tbf rate limit on every WAN link, both directions. */
  rateLimitMbit?: number;
  signal?: AbortSignal;
}

export interface LabHost {
  name: HostName;
  ns: string;
  /** The host's own address. */
  ip: string;
  /** The address the Internet sees for it (its router's WAN address when behind a NAT). */
  publicIp: string;
  nat: NatKind;
  /** The NAT router namespace in front of it, if any. */
  routerNs: string | undefined;
}

export interface TcpProbeTarget {
  host: string;
  port: number;
  localPort?: number;
  timeoutMs?: number;
}

export interface TcpProbeResult {
  outcome: 'connected' | 'refused' | 'reset' | 'timeout' | 'error';
  code?: string;
  /** First line the peer sent (an SSH banner, an address echo). */
  firstLine?: string;
  localPort?: number;
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

/**
 * The lab's rendezvous, either kind, with the fields peers need to log in (user, host, port,
 * clientKeyFile, knownHostsFile, rendezvousDir as written into their config) and halt()/restart()
 * for outage tests. For the embedded kind: user `peer`, rendezvousDir `.rcpp2p` (relative to the
 * account's home under its state folder), logText() is the server's console output, and restart()
 * keeps the state folder and so the host key.
 */
export interface LabRendezvous extends SshdFixture {
  readonly kind: RendezvousKind;
  /** Where rendezvousDir is on this machine's disk (records live in servers/ and clients/). */
  readonly rendezvousDirOnDisk: string;
}

export interface Lab {
  readonly id: string;
  readonly options: Readonly<LabOptions>;
  readonly rendezvous: LabRendezvous;
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
  /** Kills every tracked process by PID, stops sshd, deletes every namespace. Idempotent. */
  close(): Promise<void>;
}

const EMBEDDED_USER = 'peer';
const EMBEDDED_STARTUP_MS = 20_000;

/**
 * Runs the embedded rendezvous (the real CLI, `--rendezvous-server`) in the rendezvous namespace on
 * RENDEZVOUS_IP:22, with one account `peer` whose key is generated here. Its processes are spawned
 * through the lab, so the lab's tracker kills them by PID at close.
 */
async function startEmbeddedRendezvous(
  lab: Pick<Lab, 'spawn' | 'exec'>,
  netns: string,
): Promise<LabRendezvous> {
  const dir = await mkdtemp(join(tmpdir(), 'rcpp2p-embedded-'));
  try {
    const clientKeyFile = join(dir, 'client_ed25519');
    await makeEd25519Key(clientKeyFile, 'rcpp2p-test-client');
    const clientPublicKey = (await readFile(`${clientKeyFile}.pub`, 'utf8')).trim();
    const stateDir = join(dir, 'state');
    const add = await lab.exec('rendezvous', process.execPath, [
      ...[RCPP2P_BIN, '--rendezvous-server', '--state', stateDir],
      ...['--add-account', EMBEDDED_USER, '--authorized-key', `${clientKeyFile}.pub`],
    ]);
    if (add.code !== 0) {
      throw new Error(`--add-account failed (${String(add.code)}): ${add.stdout}${add.stderr}`);
    }

    let proc: ProcessHandle | undefined;
    let earlierLog = '';
    let hostPublicKey = '';
    const halt = async (): Promise<void> => {
      if (!proc) return;
      const p = proc;
      await p.kill(2000);
      earlierLog += p.stdout() + p.stderr();
      if (proc === p) proc = undefined;
    };
    const start = async (): Promise<void> => {
      const p = lab.spawn('rendezvous', process.execPath, [
        ...[RCPP2P_BIN, '--rendezvous-server', '--state', stateDir],
        ...['--listen', `${RENDEZVOUS_IP}:22`],
      ]);
      proc = p;
      // printed once it listens
      const m = await p.waitForOutput(
        /host key: (ssh-ed25519 [A-Za-z0-9+/=]+)/,
        EMBEDDED_STARTUP_MS,
      );
      const key = m[1] ?? '';
      if (hostPublicKey && key !== hostPublicKey) {
        throw new Error(`the embedded rendezvous changed its host key: ${hostPublicKey} -> ${key}`);
      }
      hostPublicKey = key;
    };
    try {
      await start();
    } catch (err) {
      await halt();
      throw err;
    }
    const knownHostsFile = join(dir, 'known_hosts');
    await writeFile(knownHostsFile, `${RENDEZVOUS_IP} ${hostPublicKey}\n`);
    let stopping: Promise<void> | undefined;
    return {
      kind: 'embedded',
      host: RENDEZVOUS_IP,
      port: 22,
      user: EMBEDDED_USER,
      clientKeyFile,
      clientPublicKey,
      hostPublicKey,
      knownHostsFile,
      dir,
      rendezvousDir: '.rcpp2p',
      rendezvousDirOnDisk: join(stateDir, 'home', EMBEDDED_USER, '.rcpp2p'),
      netns,
      get pid() {
        return proc?.pid ?? 0;
      },
      logText: () => earlierLog + (proc ? proc.stdout() + proc.stderr() : ''),
      halt,
      async restart() {
        if (stopping) throw new Error('the embedded rendezvous is stopped');
        await halt();
        await start();
      },
      stop() {
        stopping ??= (async () => {
          await halt();
          if (process.env['RCPP2P_KEEP_TEST_DIRS'] !== '1') {
            await rm(dir, { recursive: true, force: true });
          }
        })();
        return stopping;
      },
    };
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
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
const s=net.connect({host:o.host,port:o.port,localPort:o.localPort});
let buf='',connected=false,finished=false;
const done=(r)=>{if(finished)return;finished=true;process.stdout.write(JSON.stringify(r)+'\\n');s.destroy();process.exit(0)};
const t=setTimeout(()=>done(connected?{outcome:'connected',firstLine:buf.trim(),localPort:s.localPort}:{outcome:'timeout'}),o.timeoutMs);
s.on('connect',()=>{connected=true});
s.on('data',(d)=>{buf+=d;const i=buf.indexOf('\\n');if(i>=0){clearTimeout(t);done({outcome:'connected',firstLine:buf.slice(0,i).trim(),localPort:s.localPort})}});
s.on('end',()=>{clearTimeout(t);done({outcome:'connected',firstLine:buf.trim(),localPort:s.localPort})});
s.on('error',(e)=>{clearTimeout(t);done({outcome:e.code==='ECONNREFUSED'?'refused':e.code==='ECONNRESET'?'reset':'error',code:e.code})});
`);

const ADDRESS_ECHO = nodeScript(`
const srv=net.createServer((s)=>{s.on('error',()=>{});s.end(String(s.remoteAddress).replace(/^::ffff:/,'')+':'+s.remotePort+'\\n')});
srv.listen(Number(process.argv[1]),'0.0.0.0',()=>console.log('listening'));
`);

function natRuleset(kind: 'drop' | 'rst' | 'symmetric'): string {
  const masquerade = kind === 'symmetric' ? 'masquerade random,fully-random' : 'masquerade';
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
    iifname "lan0" oifname "wan0" accept
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

class NatLab implements Lab {
  readonly id: string;
  readonly options: Readonly<LabOptions>;
  buildMs = 0;
  #rendezvous: LabRendezvous | undefined;
  readonly #namespaces: string[] = [];
  readonly #hosts: Partial<Record<HostName, LabHost>> = {};
  readonly #routers: Partial<Record<Site, string>> = {};
  readonly #tracker = new ProcessTracker();
  #closing: Promise<void> | undefined;

  constructor(id: string, opts: LabOptions) {
    this.id = id;
    this.options = { ...opts };
  }

  get rendezvous(): LabRendezvous {
    if (!this.#rendezvous) throw new Error('lab is not built');
    return this.#rendezvous;
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
    await this.#ip(ns, 'link', 'set', 'lo', 'up');
    return ns;
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
    await this.#ip(rv, 'addr', 'add', `${RENDEZVOUS_IP}/24`, 'dev', 'eth0');

    const stranger = await this.#addNs('st');
    await this.#plug(stranger, 'eth0', inet, 'br0', 'p-st');
    await this.#ip(stranger, 'addr', 'add', `${STRANGER_IP}/24`, 'dev', 'eth0');
    this.#hosts.stranger = {
      name: 'stranger',
      ns: stranger,
      ip: STRANGER_IP,
      publicIp: STRANGER_IP,
      nat: 'public',
      routerNs: undefined,
    };

    const sites: Site[] = o.sameLan ? ['server'] : ['server', 'client'];
    for (const site of sites) await this.#buildSite(inet, site, o[site]);
    if (o.sameLan) await this.#addLanHost('client', 'server', 3, o.server);

    if (o.rendezvous === 'embedded') {
      this.#rendezvous = await startEmbeddedRendezvous(this, rv);
      return;
    }
    const sshd = await startSshd({
      netns: rv,
      listenAddress: RENDEZVOUS_IP,
      port: 22,
      allowStreamLocalForwarding: o.forwarding ?? true,
      signal: o.signal,
    });
    // keep the getters (pid) and methods of the fixture: extend it in place rather than copying
    this.#rendezvous = Object.assign(sshd, {
      kind: 'openssh' as const,
      rendezvousDirOnDisk: sshd.rendezvousDir,
    });
  }

  async #buildSite(inet: string, site: Site, kind: NatKind): Promise<void> {
    const s = site[0] as string;
    if (kind === 'public') {
      const ns = await this.#addNs(`h${s}`);
      await this.#plug(ns, 'eth0', inet, 'br0', `p-h${s}`);
      await this.#ip(ns, 'addr', 'add', `${PUBLIC_IP[site]}/24`, 'dev', 'eth0');
      await this.#rateLimit(ns, 'eth0');
      await this.#rateLimit(inet, `p-h${s}`);
      this.#hosts[site] = {
        name: site,
        ns,
        ip: PUBLIC_IP[site],
        publicIp: PUBLIC_IP[site],
        nat: 'public',
        routerNs: undefined,
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
    await this.#in(router, NFT, ['-f', '-'], natRuleset(kind));
    await this.#rateLimit(router, 'wan0');
    await this.#rateLimit(inet, `p-r${s}`);
    await this.#addLanHost(site, site, 2, kind);
  }

  /** A host on `lanSite`'s LAN at 198.18.N.`octet`, default route via the router. */
  async #addLanHost(site: Site, lanSite: Site, octet: number, kind: NatKind): Promise<void> {
    const router = this.#routers[lanSite];
    if (!router) throw new Error(`no router for ${lanSite}`);
    const ns = await this.#addNs(`h${site[0] as string}`);
    const net = LAN_NET[lanSite];
    await this.#plug(ns, 'eth0', router, 'lan0', `h${octet}`);
    await this.#ip(ns, 'addr', 'add', `198.18.${net}.${octet}/24`, 'dev', 'eth0');
    await this.#ip(ns, 'route', 'add', 'default', 'via', `198.18.${net}.1`);
    this.#hosts[site] = {
      name: site,
      ns,
      ip: `198.18.${net}.${octet}`,
      publicIp: WAN_IP[lanSite],
      nat: kind,
      routerNs: router,
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
    liveLabs.delete(this);
    const problems: string[] = [];
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
    }
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
    }
    if (sshd) rmSync(sshd.dir, { recursive: true, force: true });
  }
}
