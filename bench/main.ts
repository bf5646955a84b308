// npm run bench [-- --quick] [-- --runs N] [-- --size-mib N] [-- --only throughput|small-files|relay|setup|rendezvous|index|load] [-- --out DIR]: rcpp2p against baselines measured in the
// same run, in the NAT lab (root). Prints a table of min / median / max with ratios to the
// baselines, and writes the raw figures (JSON) and a chart (SVG) under DIR (default bench-results/).
//
//   throughput lab   file server public (203.0.113.31), client behind a NAT that keeps ports: the
//                    data path crosses one NAT, the same for rcpp2p, iperf3, a Node TCP and TLS
//                    stream, and scp to an sshd on the server host. Unlimited, then 200 Mbit/s.
//   relay lab        client behind a NAT that changes ports: rcpp2p relays through the rendezvous;
//                    baseline: OpenSSH relaying the same bytes through the same rendezvous
//                    (ssh -R on the server side, ssh -W on the client side).
//   set-up           command start to exit for a 1-byte get (direct and relayed), next to
//                    `ssh rendezvous true` with the same key and `node -e 0`; and per kind of
//                    rendezvous host (rendezvous-kinds.ts: Unix socket, TCP port, remote command).
//   small files      a folder of 10,000 files of 4 KiB, get and put, next to tar piped through ssh.
//   CPU              user + system seconds of both ends per GiB (and per 1,000 small files).
//   memory           peak RSS of both rcpp2p processes for the big file and for the folder.
//   load             (--only load) 16 clients behind one NAT at once against one file server.
//   index            publishing and searching an index of 100,000 files (bench/index-bench.ts).
//
// Runs of rcpp2p and of its baselines alternate, so a slow spell of the machine hits both. Every
// received file is checked against the SHA-256 of what was sent.
//
// It measures the CLI that test/helpers/lab-peers.ts spawns: bin/rcpp2p.js two folders above the
// compiled helpers, which loads ../dist/src. `npm run bench` builds into dist/, so that is this
// build. To measure another build without touching dist/: `npx tsc -p . --outDir X/dist`, copy
// bin/rcpp2p.js to X/bin/, run `node X/dist/bench/main.js`. The bench warns when the CLI it spawns
// is not the build it was compiled with.
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchCapabilities } from './capabilities.js';
import { createLab, type Lab, type LabOptions } from '../test/helpers/nat-lab.js';
import {
  describeRun,
  jsonLines,
  RCPP2P_BIN,
  setupLabPeers,
  type LabPeers,
} from '../test/helpers/lab-peers.js';
import type { ProcessHandle } from '../test/helpers/processes.js';
import { startSshd } from '../test/helpers/sshd.js';
import {
  iperf,
  nodeStart,
  rawStream,
  scp,
  sha256OfFile,
  sshRelay,
  sshTrue,
  writeRandomFile,
} from './baselines.js';
import { renderChart } from './chart.js';
import { indexBench, INDEX_FILES, INDEX_ROWS, QUICK_INDEX_FILES } from './index-bench.js';
import { portMappingSetup, PORT_MAPPING_FIGURES } from './port-mapping.js';
import { measureRendezvousKinds, rendezvousKindRows } from './rendezvous-kinds.js';
import { makeTree, sshMaster, tarCopy, treeDigest } from './small-files.js';
import { minus, NO_CPU, plus, reapedChildrenCpu, treeCpu, type Cpu } from './cpu.js';
import { mibPerSecond, NAME_WIDTH, row, type Series, type Unit } from './stats.js';

const MIB = 1024 * 1024;
const args = process.argv.slice(2);
const quick = args.includes('--quick');
const RUNS = optionNumber('--runs', quick ? 1 : 3);
/** The unlimited links and the relay: big enough that set-up is noise next to the transfer. */
const SIZE = optionNumber('--size-mib', quick ? 32 : 1024) * MIB;
/** The 200 Mbit/s link runs at ~23 MiB/s whatever the tool: 256 MiB is 11 s per transfer. */
const LIMITED_SIZE = Math.min(SIZE, 256 * MIB);
const INDEX_FILES_RUN = quick ? QUICK_INDEX_FILES : INDEX_FILES;
const OUT = resolve(optionText('--out') ?? join(process.cwd(), 'bench-results'));
const RSS = /rcpp2p-max-rss-kib (\d+)/;
const UNLIMITED = 'unlimited link';
/** CPU series are named `CPU, <what>`; their unit says per GiB or per 1,000 files. */
const CPU = 'CPU';
const NODE_TCP = 'Node TCP socket -> file (1 MiB writes)';
const NODE_TLS = 'Node TLS 1.3 socket -> file (1 MiB writes)';
/** The many-small-files case: a folder of this many files of 4 KiB. */
const SMALL_FILES = quick ? 1000 : 10_000;
const SMALL = `folder of ${SMALL_FILES} x 4 KiB`;
const TAR_GET = `ssh host tar c | tar x, ${SMALL}`;
const TAR_PUT = `tar c | ssh host tar x, ${SMALL}`;
/** The load case: this many clients at once against one file server. */
const LOAD_CLIENTS = quick ? 4 : 16;
const LOAD_SERVER_RSS = `file server peak RSS (${LOAD_CLIENTS} clients at once)`;
const RSS_SERIES = [
  'client peak RSS (direct get, 1 file)',
  'client peak RSS (direct put, 1 file)',
  'file server peak RSS (direct gets and puts, 1 file)',
  `client peak RSS (get, ${SMALL})`,
  `client peak RSS (put, ${SMALL})`,
  `file server peak RSS (gets and puts, ${SMALL})`,
  'client peak RSS (relayed get)',
  'file server peak RSS (relayed gets)',
  LOAD_SERVER_RSS,
];
const LIMITED = '200 Mbit/s link';

function optionText(name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

function optionNumber(name: string, fallback: number): number {
  const text = optionText(name);
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} needs a whole number above 0`);
  return n;
}

const series = new Map<string, Series>();
function record(name: string, unit: Unit, value: number): void {
  if (!Number.isFinite(value)) throw new Error(`${name}: not a figure (${value})`);
  const s = series.get(name) ?? { name, unit, values: [] };
  s.values.push(value);
  series.set(name, s);
}

async function main(): Promise<number> {
  for (const cap of benchCapabilities()) {
    if (!cap.ok) {
      console.error(`The benchmark builds a NAT lab: it ${cap.reason}.`);
      return 1;
    }
  }
  const cli = checkCli();
  process.env['RCPP2P_REPORT_RSS'] = '1';
  const started = new Date();
  const load = loadavg();
  console.error(
    `rcpp2p benchmark: ${RUNS} run(s) per figure, ${SIZE / MIB} MiB file (${LIMITED_SIZE / MIB} MiB on the ` +
      `200 Mbit/s link)${quick ? ' (--quick)' : ''}; load average ${load.map((l) => l.toFixed(2)).join(' ')}`,
  );
  const only = optionText('--only');
  if (!only || only === 'throughput') {
    await timed(`direct throughput, ${UNLIMITED}`, () => throughput(undefined));
    await timed(`direct throughput, ${LIMITED}`, () => throughput(200));
  }
  if (!only || only === 'small-files') await timed('many small files', smallFiles);
  if (!only || only === 'relay') await timed('relay throughput', relay);
  if (!only || only === 'setup') await timed('set-up time', setupTimes);
  if (!only || only === 'setup' || only === 'rendezvous') {
    await timed('set-up time per rendezvous kind', () =>
      measureRendezvousKinds(record, quick ? 1 : Math.max(RUNS, 3)),
    );
  }
  if (!only || only === 'index') {
    await timed(`index of ${INDEX_FILES_RUN.toLocaleString('en-US')} files`, () =>
      indexBench({ runs: RUNS, record, files: INDEX_FILES_RUN }),
    );
  }
  if (only === 'load') await timed(`load: ${LOAD_CLIENTS} clients at once`, manyClients);
  const seconds = (Date.now() - started.getTime()) / 1000;
  const text = table();
  console.log(`\n${text}`);
  await writeResults(text, { started, seconds, cli, loadBefore: load, loadAfter: loadavg() });
  return 0;
}

async function timed(what: string, run: () => Promise<void>): Promise<void> {
  console.error(`== ${what}`);
  const started = performance.now();
  await run();
  console.error(`   ${Math.round((performance.now() - started) / 1000)} s`);
}

/** The CLI the lab spawns, and a warning when it is not the build this file was compiled in. */
function checkCli(): string {
  const ours = fileURLToPath(new URL('..', import.meta.url));
  const theirs = join(dirname(RCPP2P_BIN), '..', 'dist');
  if (resolve(ours) !== resolve(theirs)) {
    console.error(
      `Warning: the lab runs ${RCPP2P_BIN}, which loads ${resolve(theirs)}, not this build ` +
        `(${resolve(ours)}): the figures are for that build.`,
    );
  }
  return RCPP2P_BIN;
}

/** A lab with two configured peers and a running file server; RSS of the server recorded at the end. */
async function withPeers(
  labOptions: LabOptions,
  serverRss: string | undefined,
  run: (lab: Lab, peers: LabPeers, server: ProcessHandle) => Promise<void>,
): Promise<void> {
  const lab = await createLab(labOptions);
  try {
    const peers = await setupLabPeers(lab);
    try {
      const server = await peers.startServer();
      try {
        await run(lab, peers, server);
      } finally {
        await server.kill(5000);
      }
      const rss = RSS.exec(server.stderr());
      if (serverRss) {
        if (!rss) throw new Error(`the file server reported no peak RSS:\n${server.stderr()}`);
        record(serverRss, 'MB', Number(rss[1]) / 1024);
      }
    } finally {
      await peers.cleanup();
    }
  } finally {
    await lab.close();
  }
}

interface Outcome {
  result: Record<string, unknown>;
  ms: number;
  rssMb: number;
}

/** One rcpp2p client command with --json; throws unless it succeeded with `results` results. */
async function rcpp2p(peers: LabPeers, cmd: string[], results = 1): Promise<Outcome> {
  const started = performance.now();
  const r = await peers.client([...cmd, '--json'], { timeoutMs: 600_000 });
  const ms = performance.now() - started;
  const lines = jsonLines(r.stdout);
  const result = lines[0];
  const rss = RSS.exec(r.stderr);
  const allOk = lines.length === results && lines.every((l) => l['ok'] === true);
  if (r.code !== 0 || !result || !allOk || !rss) {
    const shown =
      lines.length > 20
        ? { ...r, stdout: `${lines.length} results; ${r.stdout.slice(0, 2000)}` }
        : r;
    throw new Error(`rcpp2p ${cmd.join(' ')} failed: ${describeRun(shown)}`);
  }
  return { result, ms, rssMb: Number(rss[1]) / 1024 };
}

/** CPU seconds per GiB moved, user + system. */
function perGiB(cpu: Cpu, bytes: number): number {
  return (cpu.user + cpu.sys) / (bytes / 1024 / MIB);
}

/**
 * A get or put of a file of `size` bytes; checks the copy and records the throughput, and the CPU
 * of both peers (the client command, reaped here, and the file server's process) per GiB, less
 * `setupCpu`: what a 1-byte get of the same lab cost (process start, login, punch, TLS).
 */
async function transfer(
  peers: LabPeers,
  server: ProcessHandle,
  op: 'get' | 'put',
  size: number,
  sha256: string,
  name: string,
  cpu?: { name: string; setup: Cpu },
): Promise<Outcome> {
  const [from, to] =
    op === 'get' ? [peers.workDir, peers.clientDir] : [peers.clientDir, peers.workDir];
  const file = op === 'get' ? 'big.bin' : 'up.bin';
  await rm(join(to, file), { force: true });
  const cpuNow = (): Cpu => plus(reapedChildrenCpu(), treeCpu(server.pid));
  const cpu0 = cpuNow();
  const out = await rcpp2p(peers, [`--${op}`, peers.serverName, file]);
  const used = minus(cpuNow(), cpu0);
  const copy = await sha256OfFile(join(to, file));
  if (copy !== sha256) throw new Error(`rcpp2p ${op}: the copy in ${to} differs from ${from}`);
  record(name, 'MiB/s', mibPerSecond(size, Number(out.result['transferMs'])));
  if (cpu) record(cpu.name, 'CPU s/GiB', perGiB(minus(used, cpu.setup), size));
  return out;
}

/** CPU of both peers for a 1-byte get: what every command costs before its first byte. */
async function setupCpu(peers: LabPeers, server: ProcessHandle): Promise<Cpu> {
  await writeFile(join(peers.workDir, 'one.txt'), 'x');
  await rm(join(peers.clientDir, 'one.txt'), { force: true });
  const cpuNow = (): Cpu => plus(reapedChildrenCpu(), treeCpu(server.pid));
  const cpu0 = cpuNow();
  await rcpp2p(peers, ['--get', peers.serverName, 'one.txt']);
  const cpu = minus(cpuNow(), cpu0);
  record(`${CPU}, rcpp2p 1-byte get (s, both peers)`, 's', cpu.user + cpu.sys);
  return cpu;
}

async function throughput(rateLimitMbit: number | undefined): Promise<void> {
  const label = rateLimitMbit ? LIMITED : UNLIMITED;
  const size = rateLimitMbit ? LIMITED_SIZE : SIZE;
  const unlimited = rateLimitMbit === undefined;
  const labOptions: LabOptions = { server: 'public', client: 'drop' };
  if (rateLimitMbit) labOptions.rateLimitMbit = rateLimitMbit;
  const serverRss = unlimited ? 'file server peak RSS (direct gets and puts, 1 file)' : undefined;
  await withPeers(labOptions, serverRss, async (lab, peers, server) => {
    const getSha = await writeRandomFile(join(peers.workDir, 'big.bin'), size);
    const upload = join(peers.clientDir, 'up.bin');
    const putSha = await writeRandomFile(upload, size);
    const sshd = unlimited
      ? await startSshd({
          netns: lab.hosts.server.ns,
          listenAddress: lab.hosts.server.ip,
          port: 2222,
        })
      : undefined;
    try {
      for (let i = 0; i < RUNS; i++) {
        // With --quick the set-up costs about as much as the 32 MiB, and subtracting one noisy figure
        // from another could even go below zero: there the CPU figures include the set-up.
        const measured = unlimited ? await setupCpu(peers, server) : NO_CPU;
        const setup = quick ? NO_CPU : measured;
        const cpu = (what: string): { name: string; setup: Cpu } | undefined =>
          unlimited ? { name: `${CPU}, ${what}`, setup } : undefined;
        const got = await transfer(
          peers,
          server,
          'get',
          size,
          getSha,
          `rcpp2p get, direct, ${label}`,
          cpu('rcpp2p get, direct'),
        );
        const put = await transfer(
          peers,
          server,
          'put',
          size,
          putSha,
          `rcpp2p put, direct, ${label}`,
          cpu('rcpp2p put, direct'),
        );
        if (got.result['path'] === 'relay' || put.result['path'] === 'relay') {
          throw new Error('expected a direct path in the throughput lab, got the relay');
        }
        if (unlimited) {
          record('client peak RSS (direct get, 1 file)', 'MB', got.rssMb);
          record('client peak RSS (direct put, 1 file)', 'MB', put.rssMb);
        }
        record(`iperf3 (raw TCP), ${label}`, 'MiB/s', await iperf(lab, size));
        const ports = (k: number): [number, number] => [41001 + 10 * i + k, 41002 + 10 * i + k];
        const stream = { size, dir: peers.dir };
        const tcp = await rawStream(lab, { ...stream, tls: false, ports: ports(0) });
        record(`${NODE_TCP}, ${label}`, 'MiB/s', tcp.mibps);
        if (!sshd) continue;
        const tls = await rawStream(lab, { ...stream, tls: true, ports: ports(2) });
        record(`${NODE_TLS}, ${label}`, 'MiB/s', tls.mibps);
        record(`${CPU}, ${NODE_TLS}`, 'CPU s/GiB', perGiB(tls.cpu, size));
        const copy = { sshd, src: upload, size, dir: peers.dir };
        const aes = 'aes128-gcm@openssh.com';
        for (const [what, cipher] of [
          ['scp (default cipher)', undefined],
          ['scp (aes128-gcm)', aes],
        ] as const) {
          const m = await scp(lab, { ...copy, cipher });
          record(`${what}, ${label}`, 'MiB/s', m.mibps);
          record(`${CPU}, ${what}`, 'CPU s/GiB', perGiB(m.cpu, size));
        }
      }
    } finally {
      await sshd?.stop();
    }
  });
}

/**
 * A get and a put of a folder of SMALL_FILES files of 4 KiB, next to tar through ssh over the same
 * path; files/s over the transfer (rcpp2p: command time less the link set-up it reports; tar: over
 * an open ssh connection), CPU of both ends, and peak RSS of both rcpp2p processes.
 */
async function smallFiles(): Promise<void> {
  const labOptions: LabOptions = { server: 'public', client: 'drop' };
  await withPeers(
    labOptions,
    `file server peak RSS (gets and puts, ${SMALL})`,
    async (lab, peers, server) => {
      await makeTree(join(peers.workDir, 'tree'), SMALL_FILES);
      await makeTree(join(peers.clientDir, 'up-tree'), SMALL_FILES);
      const getDigest = await treeDigest(join(peers.workDir, 'tree'));
      const putDigest = await treeDigest(join(peers.clientDir, 'up-tree'));
      const sshd = await startSshd({
        netns: lab.hosts.server.ns,
        listenAddress: lab.hosts.server.ip,
        port: 2222,
      });
      const conn = await sshMaster(lab, sshd, join(peers.dir, 'tar.ctl'));
      const check = async (
        dir: string,
        want: { files: number; sha256: string },
        what: string,
      ): Promise<void> => {
        const got = await treeDigest(dir);
        if (got.files !== want.files || got.sha256 !== want.sha256) {
          throw new Error(
            `${what}: the copy in ${dir} differs (${got.files} of ${want.files} files)`,
          );
        }
      };
      const filesPerSecond = (seconds: number): number => SMALL_FILES / seconds;
      try {
        for (let i = 0; i < RUNS; i++) {
          for (const op of ['get', 'put'] as const) {
            const [to, name, want] =
              op === 'get'
                ? [join(peers.clientDir, 'tree'), 'tree', getDigest]
                : [join(peers.workDir, 'up-tree'), 'up-tree', putDigest];
            await rm(to, { recursive: true, force: true });
            const cpuNow = (): Cpu => plus(reapedChildrenCpu(), treeCpu(server.pid));
            const cpu0 = cpuNow();
            const out = await rcpp2p(peers, [`--${op}`, peers.serverName, name], SMALL_FILES);
            const cpu = minus(cpuNow(), cpu0);
            await check(to, want, `rcpp2p ${op}`);
            const seconds = (out.ms - Number(out.result['setupMs'])) / 1000;
            record(`rcpp2p ${op}, ${SMALL}`, 'files/s', filesPerSecond(seconds));
            record(`${CPU}, rcpp2p ${op}, ${SMALL}`, 'CPU s/1,000 files', perThousand(cpu));
            record(`client peak RSS (${op}, ${SMALL})`, 'MB', out.rssMb);
            await rm(to, { recursive: true, force: true });
            const tarDir = op === 'get' ? peers.clientDir : join(peers.workDir, 'tar-put');
            await mkdir(tarDir, { recursive: true });
            const tar = await tarCopy(lab, {
              op,
              ...conn,
              sshd,
              name,
              from: op === 'get' ? peers.workDir : peers.clientDir,
              to: tarDir,
            });
            await check(join(tarDir, name), want, `tar ${op}`);
            const tarName = op === 'get' ? TAR_GET : TAR_PUT;
            record(tarName, 'files/s', filesPerSecond(tar.seconds));
            record(`${CPU}, ${tarName}`, 'CPU s/1,000 files', perThousand(tar.cpu));
            await rm(join(tarDir, name), { recursive: true, force: true });
          }
        }
      } finally {
        await conn.stop();
        await sshd.stop();
      }
    },
  );
}

/** CPU seconds per 1,000 files, user + system. */
function perThousand(cpu: Cpu): number {
  return ((cpu.user + cpu.sys) * 1000) / SMALL_FILES;
}

async function relay(): Promise<void> {
  const labOptions: LabOptions = { server: 'drop', client: 'symmetric' };
  await withPeers(labOptions, 'file server peak RSS (relayed gets)', async (lab, peers, server) => {
    const sha = await writeRandomFile(join(peers.workDir, 'big.bin'), SIZE);
    const src = join(peers.clientDir, 'up.bin');
    await writeRandomFile(src, SIZE);
    for (let i = 0; i < RUNS; i++) {
      const got = await transfer(peers, server, 'get', SIZE, sha, 'rcpp2p get, relayed');
      if (got.result['path'] !== 'relay') {
        throw new Error(`expected a relayed get, got ${String(got.result['path'])}`);
      }
      record('client peak RSS (relayed get)', 'MB', got.rssMb);
      record(
        'OpenSSH relay through the rendezvous (ssh -R / -W)',
        'MiB/s',
        await sshRelay(lab, { src, size: SIZE, dir: peers.dir }),
      );
    }
  });
}

/**
 * LOAD_CLIENTS clients behind one NAT, each with its own name, config and port, run a 1-byte get
 * from one file server at the same moment: how many succeed, their link set-up (p50 / p95), and
 * the file server's peak RSS.
 */
async function manyClients(): Promise<void> {
  await withPeers({ server: 'drop', client: 'drop' }, LOAD_SERVER_RSS, async (lab, peers) => {
    await writeFile(join(peers.workDir, 'one.txt'), 'x');
    const clients = Array.from({ length: LOAD_CLIENTS }, (_, k) => ({
      name: `LOAD${k}`,
      config: join(peers.dir, `load-${k}.json`),
      dir: join(peers.dir, `load-${k}`),
    }));
    for (const [k, c] of clients.entries()) {
      await mkdir(c.dir);
      await peers.configure(c.config, ['--client-name', c.name, '--port', String(42001 + k)]);
      const r = await lab.exec('client', process.execPath, [
        RCPP2P_BIN,
        '--config',
        c.config,
        '--addclient',
      ]);
      if (r.code !== 0) throw new Error(`--addclient for ${c.name} failed: ${describeRun(r)}`);
    }
    for (let i = 0; i < RUNS; i++) {
      const runs = await Promise.all(
        clients.map(async (c) => {
          await rm(join(c.dir, 'one.txt'), { force: true });
          const r = await lab.exec(
            'client',
            process.execPath,
            [RCPP2P_BIN, '--config', c.config, '--get', peers.serverName, 'one.txt', '--json'],
            { cwd: c.dir, timeoutMs: 120_000 },
          );
          const result = jsonLines(r.stdout)[0];
          return r.code === 0 && result?.['ok'] === true
            ? Number(result['setupMs']) / 1000
            : undefined;
        }),
      );
      const ok = runs.filter((t): t is number => t !== undefined).sort((a, b) => a - b);
      record(
        `load: ${LOAD_CLIENTS} clients at once, 1-byte gets that succeeded`,
        'count',
        ok.length,
      );
      if (ok.length === 0) continue;
      const at = (q: number): number => ok[Math.min(ok.length - 1, Math.floor(q * ok.length))]!;
      record(`load: link set-up, p50 of ${LOAD_CLIENTS} clients at once`, 's', at(0.5));
      record(`load: link set-up, p95 of ${LOAD_CLIENTS} clients at once`, 's', at(0.95));
    }
  });
}

/** Seconds for `rcpp2p --version` in the client's namespace: Node plus loading the CLI's modules. */
async function cliStart(lab: Lab): Promise<number> {
  const started = performance.now();
  const r = await lab.exec('client', process.execPath, [RCPP2P_BIN, '--version']);
  const s = (performance.now() - started) / 1000;
  if (r.code !== 0) throw new Error(`rcpp2p --version failed: ${describeRun(r)}`);
  return s;
}

async function setupTimes(): Promise<void> {
  const runs = Math.max(RUNS, 3);
  for (const [kind, client] of [
    ['direct', 'drop'],
    ['relayed', 'symmetric'],
  ] as const) {
    await withPeers({ server: 'drop', client }, undefined, async (lab, peers) => {
      await writeFile(join(peers.workDir, 'one.txt'), 'x');
      for (let i = 0; i < runs; i++) {
        if (kind === 'direct') await waitForRoutersToForget(lab);
        await rm(join(peers.clientDir, 'one.txt'), { force: true });
        const got = await rcpp2p(peers, ['--get', peers.serverName, 'one.txt']);
        const path = String(got.result['path']);
        if ((path === 'relay') !== (kind === 'relayed')) {
          throw new Error(
            `expected a ${kind} get in the set-up lab (run ${i + 1}), got ${path}: ${String(got.result['reason'])}`,
          );
        }
        record(`rcpp2p 1-byte get, ${kind}: command start to exit`, 's', got.ms / 1000);
        record(
          `rcpp2p ${kind}: link set-up inside the process`,
          's',
          Number(got.result['setupMs']) / 1000,
        );
        if (kind === 'direct') {
          record('floor: ssh rendezvous true (same key)', 's', await sshTrue(lab));
          record('floor: node -e 0', 's', await nodeStart(lab));
          record('rcpp2p --version: command start to exit', 's', await cliStart(lab));
        }
      }
      if (kind === 'direct') {
        await portMappingSetup(
          {
            get: async (extra) => {
              await rm(join(peers.clientDir, 'one.txt'), { force: true });
              const got = await rcpp2p(peers, ['--get', peers.serverName, 'one.txt', ...extra]);
              const setupMs = Number(got.result['setupMs']);
              return { ms: got.ms, setupMs, path: String(got.result['path']) };
            },
            between: () => waitForRoutersToForget(lab),
            record,
          },
          runs,
        );
      }
    });
  }
}

/**
 * Waits until neither NAT router holds a conntrack entry between the two peers. A finished link
 * leaves one in CLOSE state for 10 s (nf_conntrack_tcp_timeout_close); while it is there, a new
 * punch between the same ports fails and the get falls back to the relay. Users who run two
 * commands within 10 s meet that too; this figure is the set-up of a fresh direct link.
 */
async function waitForRoutersToForget(lab: Lab): Promise<void> {
  const rv = lab.rendezvous.host;
  for (let i = 0; i < 100; i++) {
    const entries = [...(await lab.conntrack('client')), ...(await lab.conntrack('server'))];
    if (!entries.some((e) => e.orig.src !== rv && e.orig.dst !== rv)) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error('the NAT routers still track a connection between the peers after 25 s');
}

/** The table of medians and ratios (also saved next to the JSON). */
function table(): string {
  const lines: string[] = [`${'figure'.padEnd(NAME_WIDTH)} min / median / max`];
  let heading: string | undefined;
  const section = (title: string): void => {
    heading = title;
  };
  const add = (name: string, ...baselines: string[]): void => {
    const s = series.get(name);
    if (!s) return;
    if (heading) lines.push('', heading);
    heading = undefined;
    const bs = baselines.map((b) => series.get(b)).filter((b): b is Series => b !== undefined);
    lines.push(row(s, bs));
  };
  for (const label of [UNLIMITED, LIMITED]) {
    section(`-- direct, ${label}`);
    const baselines = [
      `iperf3 (raw TCP), ${label}`,
      `${NODE_TCP}, ${label}`,
      `${NODE_TLS}, ${label}`,
      `scp (default cipher), ${label}`,
      `scp (aes128-gcm), ${label}`,
    ];
    for (const b of baselines) add(b);
    for (const op of ['get', 'put']) {
      add(`rcpp2p ${op}, direct, ${label}`, ...baselines.filter((b) => !b.startsWith('scp (aes')));
    }
  }
  section(
    `-- CPU per GiB moved, ${UNLIMITED}: user + system of every process on both ends; ` +
      `rcpp2p less a 1-byte get (set-up)${quick ? ' (not with --quick)' : ''}, scp over an open ` +
      'connection, Node TLS with process starts',
  );
  const cpuBaselines = [
    `${CPU}, ${NODE_TLS}`,
    `${CPU}, scp (default cipher)`,
    `${CPU}, scp (aes128-gcm)`,
  ];
  for (const b of cpuBaselines) add(b);
  for (const op of ['get', 'put']) add(`${CPU}, rcpp2p ${op}, direct`, ...cpuBaselines);
  add(`${CPU}, rcpp2p 1-byte get (s, both peers)`);
  section(
    '-- many small files, direct: files/s over the transfer (rcpp2p less its link set-up, tar ' +
      'over an open ssh connection); CPU per 1,000 files, both ends',
  );
  add(TAR_GET);
  add(TAR_PUT);
  add(`rcpp2p get, ${SMALL}`, TAR_GET);
  add(`rcpp2p put, ${SMALL}`, TAR_PUT);
  add(`${CPU}, ${TAR_GET}`);
  add(`${CPU}, ${TAR_PUT}`);
  add(`${CPU}, rcpp2p get, ${SMALL}`, `${CPU}, ${TAR_GET}`);
  add(`${CPU}, rcpp2p put, ${SMALL}`, `${CPU}, ${TAR_PUT}`);
  section('-- relayed through the rendezvous');
  add('OpenSSH relay through the rendezvous (ssh -R / -W)');
  add('rcpp2p get, relayed', 'OpenSSH relay through the rendezvous (ssh -R / -W)');
  section('-- set-up (1-byte get, command start to exit)');
  add('floor: node -e 0');
  add('floor: ssh rendezvous true (same key)');
  add('rcpp2p --version: command start to exit', 'floor: node -e 0');
  add('rcpp2p 1-byte get, direct: command start to exit', 'floor: ssh rendezvous true (same key)');
  add('rcpp2p direct: link set-up inside the process');
  add('rcpp2p 1-byte get, relayed: command start to exit', 'floor: ssh rendezvous true (same key)');
  add('rcpp2p relayed: link set-up inside the process');
  for (const [name, baseline] of PORT_MAPPING_FIGURES) add(name, ...(baseline ? [baseline] : []));
  section('-- set-up per rendezvous kind (1-byte get, direct; against the Unix-socket kind)');
  rendezvousKindRows(add);
  section(`-- index of ${INDEX_FILES_RUN.toLocaleString('en-US')} files (publish, search)`);
  for (const [name, ...baselines] of INDEX_ROWS) add(name, ...baselines);
  section(`-- load (--only load): ${LOAD_CLIENTS} clients behind one NAT at once, one file server`);
  add(`load: ${LOAD_CLIENTS} clients at once, 1-byte gets that succeeded`);
  add(`load: link set-up, p50 of ${LOAD_CLIENTS} clients at once`);
  add(`load: link set-up, p95 of ${LOAD_CLIENTS} clients at once`);
  section('-- peak RSS');
  for (const name of RSS_SERIES) add(name);
  return lines.join('\n') + '\n';
}

async function writeResults(
  text: string,
  meta: {
    started: Date;
    seconds: number;
    cli: string;
    loadBefore: number[];
    loadAfter: number[];
  },
): Promise<void> {
  await mkdir(OUT, { recursive: true });
  const stamp = meta.started.toISOString().replace(/[:.]/g, '-');
  const all = [...series.values()];
  const base = join(OUT, `bench-${stamp}`);
  const json = {
    quick,
    runs: RUNS,
    sizeBytes: SIZE,
    limitedSizeBytes: LIMITED_SIZE,
    started: meta.started.toISOString(),
    seconds: Math.round(meta.seconds),
    node: process.version,
    cli: meta.cli,
    loadAverage: { before: meta.loadBefore, after: meta.loadAfter },
    series: all,
  };
  await writeFile(`${base}.json`, JSON.stringify(json, null, 2) + '\n');
  await writeFile(`${base}.txt`, text);
  const byUnit = (unit: Unit): Series[] => all.filter((s) => s.unit === unit);
  await writeFile(
    `${base}.svg`,
    renderChart(`rcpp2p benchmark ${stamp}${quick ? ' (quick)' : ''}`, [
      { heading: 'Throughput (MiB/s)', series: byUnit('MiB/s') },
      { heading: 'CPU per GiB, both peers (user + system s)', series: byUnit('CPU s/GiB') },
      { heading: 'Many small files (files/s)', series: byUnit('files/s') },
      { heading: 'CPU per 1,000 files (s)', series: byUnit('CPU s/1,000 files') },
      { heading: 'Set-up time (s)', series: byUnit('s') },
      { heading: 'Peak RSS (MB)', series: byUnit('MB') },
    ]),
  );
  console.error(
    `Took ${Math.round(meta.seconds)} s. Raw figures, table and chart: ${base}.{json,txt,svg}`,
  );
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(`bench failed: ${(err as Error).stack ?? String(err)}`);
    process.exit(1);
  },
);
