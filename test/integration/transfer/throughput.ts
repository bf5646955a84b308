// Loopback throughput, not a test: node dist/test/integration/transfer/throughput.js [MiB] [runs] [tls]
// (ONLY=rcpp2p-get,raw-get,rcpp2p-get-tree,... runs only those rows; TREE=N adds a get and a put of a folder of N
// files of 4 KiB, reported in files/s.)
// Two processes (this one as the client, a child as the server) over TCP on 127.0.0.1, plain or,
// with `tls`, wrapped in TLS 1.3 as in production (src/secure/tls-channel.ts) for every connection:
//   raw get  - the server streams the file with createReadStream (1 MiB chunks) into the socket, the
//              client writes the socket into a file with 1 MiB writes and fsyncs it;
//   raw put  - the same the other way (the receiver stops at the known size, then acknowledges);
//   rcpp2p get / put - FileClient against FileServer: frames, SHA-256 both sides, partial + fsync + rename.
// Prints MiB/s per run and the median, the ratio of rcpp2p to raw of the same run, and the CPU both
// processes spent per GiB (user + system, from /proc), which the machine's load disturbs far less.
import { spawn } from 'node:child_process';
import { createReadStream, createWriteStream } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { mkdir, open, rm, stat, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { generateIdentity, type Identity } from '../../../src/secure/identity.js';
import { secureAsClient, secureAsServer } from '../../../src/secure/tls-channel.js';
import { FileClient } from '../../../src/transfer/file-client.js';
import { FileServer } from '../../../src/transfer/file-server.js';
import { minus, ownCpu, plus, treeCpu } from '../../../bench/cpu.js';
import { randomFile, tempDir } from './helpers.js';

const MiB = 1024 * 1024;

/** A folder of `files` files of 4 KiB of random bytes, 100 to a subfolder. */
async function makeTree(root: string, files: number): Promise<void> {
  for (let n = 0; n < files; n++) {
    const dir = join(root, `d${Math.floor(n / 100)}`);
    if (n % 100 === 0) await mkdir(dir, { recursive: true });
    await writeFile(join(dir, `f${n}.bin`), randomBytes(4096));
  }
}

interface Ids {
  server: Identity;
  client: Identity;
}

/** The server side of a connection: the socket itself, or TLS over it. */
async function accepted(s: net.Socket, ids: Ids | undefined): Promise<Duplex> {
  if (!ids) return s;
  const expected = { name: 'client', fingerprint: ids.client.fingerprint };
  return (await secureAsServer(s, { identity: ids.server, expected })).socket;
}

async function dial(port: number, ids: Ids | undefined): Promise<Duplex> {
  const s = net.connect(port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => {
    s.once('connect', resolve);
    s.once('error', reject);
  });
  if (!ids) return s;
  const expected = { name: 'server', fingerprint: ids.server.fingerprint };
  return (await secureAsClient(s, { identity: ids.client, expected })).socket;
}

async function serveChild(workDir: string, size: number, ids: Ids | undefined): Promise<void> {
  const fileServer = new FileServer({ workDir, serverName: 'bench' });
  const rcpp = net.createServer((s) => {
    void accepted(s, ids)
      .then((d) => fileServer.serve(d, { name: 'bench' }))
      .finally(() => s.destroy());
  });
  const raw = net.createServer((s) => {
    void accepted(s, ids).then((d) =>
      d.once('data', (first: Buffer) => {
        if (first.toString().startsWith('GET')) {
          createReadStream(join(workDir, 'src.bin'), { highWaterMark: MiB }).pipe(d);
        } else {
          void receiveInto(d, join(workDir, 'raw-put.bin'), size, first.subarray(3)).then(() =>
            d.end('K'),
          );
        }
      }),
    );
  });
  await new Promise<void>((r) => rcpp.listen(0, '127.0.0.1', r));
  await new Promise<void>((r) => raw.listen(0, '127.0.0.1', r));
  process.stdout.write(
    `${(rcpp.address() as net.AddressInfo).port} ${(raw.address() as net.AddressInfo).port}\n`,
  );
}

/**
 * Socket to file with ~1 MiB writes and an fsync at the end, as in PERF-FACTS' baseline; stops at
 * `size` bytes, so no side depends on half-closed sockets.
 */
async function receiveInto(
  socket: Duplex,
  path: string,
  size: number,
  first: Buffer = Buffer.alloc(0),
): Promise<void> {
  const out = createWriteStream(path, { highWaterMark: MiB });
  let got = 0;
  const take = (chunk: Buffer): void => {
    got += chunk.length;
    if (!out.write(chunk)) {
      socket.pause();
      out.once('drain', () => socket.resume());
    }
    if (got >= size) {
      socket.off('data', take);
      out.end();
    }
  };
  await new Promise<void>((resolve, reject) => {
    out.on('finish', resolve);
    out.on('error', reject);
    if (first.length) take(first);
    if (got < size) socket.on('data', take);
  });
  const fh = await open(path, 'r+');
  await fh.sync();
  await fh.close();
}

async function main(): Promise<void> {
  const sizeMiB = Number(process.argv[2] ?? 1024);
  const runs = Number(process.argv[3] ?? 3);
  const useTls = process.argv[4] === 'tls';
  const size = sizeMiB * MiB;
  const ids = useTls
    ? { server: generateIdentity('server'), client: generateIdentity('client') }
    : undefined;
  const server = await tempDir('bench-server');
  const client = await tempDir('bench-client');
  await randomFile(join(server.path, 'src.bin'), size);
  await randomFile(join(client.path, 'up.bin'), size);
  // execArgv passes flags such as --cpu-prof on to the server process.
  const args = [...process.execArgv, process.argv[1]!, '--serve', server.path, String(size)];
  const child = spawn(process.execPath, args, {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, BENCH_IDS: ids ? JSON.stringify(ids) : '' },
  });
  const ports = await new Promise<number[]>((resolve) => {
    child.stdout.once('data', (d: Buffer) => resolve(d.toString().trim().split(' ').map(Number)));
  });
  const [rcppPort, rawPort] = ports as [number, number];
  const names = [
    'raw get',
    'rcpp2p get',
    'raw put',
    'rcpp2p put',
    'rcpp2p get tree',
    'rcpp2p put tree',
  ] as const;
  const treeFiles = Number(process.env['TREE'] ?? 0);
  if (treeFiles > 0) {
    await makeTree(join(server.path, 'tree'), treeFiles);
    await makeTree(join(client.path, 'tree'), treeFiles);
  }
  const rows = new Map(
    names.map((n) => [n, { rate: [] as number[], user: [] as number[], sys: [] as number[] }]),
  );
  const childPid = child.pid!;
  /** Runs one transfer; records MiB/s from `t0` (set by the step) and CPU s/GiB of both processes. */
  const only = process.env['ONLY']?.split(',');
  const measure = async (
    name: (typeof names)[number],
    step: () => Promise<number>,
  ): Promise<void> => {
    const picked = only === undefined || only.includes(name.replaceAll(' ', '-'));
    const skip = name.endsWith('tree')
      ? treeFiles === 0 || (only !== undefined && !picked)
      : !picked;
    if (skip) return;
    process.stderr.write(`${name}...\n`); // a cue for profilers attaching now
    const cpu0 = plus(ownCpu(), treeCpu(childPid));
    const ms = await step();
    const cpu = minus(plus(ownCpu(), treeCpu(childPid)), cpu0);
    const row = rows.get(name)!;
    // A tree's rate is in files/s and its CPU in seconds per 1,000 files.
    const [amount, per] = name.endsWith('tree')
      ? [treeFiles, treeFiles / 1000]
      : [sizeMiB, sizeMiB / 1024];
    row.rate.push(amount / (ms / 1000));
    row.user.push(cpu.user / per);
    row.sys.push(cpu.sys / per);
  };
  try {
    for (let run = 0; run < runs; run++) {
      await measure('raw get', async () => {
        const t0 = Date.now();
        const s1 = await dial(rawPort, ids);
        s1.write('GET');
        await receiveInto(s1, join(client.path, 'raw-get.bin'), size);
        const ms = Date.now() - t0;
        s1.destroy();
        await rm(join(client.path, 'raw-get.bin'));
        return ms;
      });
      const into = join(client.path, `get-${run}`);
      await mkdir(into);
      await measure('rcpp2p get', async () => {
        const c1 = await FileClient.open(await dial(rcppPort, ids), { clientName: 'tester' });
        const t0 = Date.now();
        const [g] = await c1.get(['src.bin'], into);
        const ms = Date.now() - t0;
        await c1.close();
        if (!g?.ok) throw new Error(JSON.stringify(g));
        return ms;
      });
      await rm(into, { recursive: true });
      await measure('raw put', async () => {
        const t0 = Date.now();
        const s2 = await dial(rawPort, ids);
        s2.write('PUT');
        createReadStream(join(client.path, 'up.bin'), { highWaterMark: MiB }).pipe(s2, {
          end: false,
        });
        await new Promise((r) => s2.once('data', r)); // the server's acknowledgement after fsync
        const ms = Date.now() - t0;
        s2.destroy();
        return ms;
      });
      const rawPut = join(server.path, 'raw-put.bin');
      if (!only || only.includes('raw-put')) {
        if ((await stat(rawPut)).size !== size) throw new Error('raw put lost bytes');
        await rm(rawPut);
      }
      await measure('rcpp2p put', async () => {
        const c2 = await FileClient.open(await dial(rcppPort, ids), { clientName: 'tester' });
        const t0 = Date.now();
        const [p] = await c2.put([join(client.path, 'up.bin')], '', { force: true });
        const ms = Date.now() - t0;
        await c2.close();
        if (!p?.ok) throw new Error(JSON.stringify(p));
        return ms;
      });
      const treeInto = join(client.path, `tree-get-${run}`);
      await mkdir(treeInto);
      await measure('rcpp2p get tree', async () => {
        const c = await FileClient.open(await dial(rcppPort, ids), { clientName: 'tester' });
        const t0 = Date.now();
        const got = await c.get(['tree'], treeInto);
        const ms = Date.now() - t0;
        await c.close();
        if (got.length !== treeFiles || !got.every((r) => r.ok)) throw new Error('tree get failed');
        return ms;
      });
      await rm(treeInto, { recursive: true, force: true });
      await measure('rcpp2p put tree', async () => {
        const c = await FileClient.open(await dial(rcppPort, ids), { clientName: 'tester' });
        const t0 = Date.now();
        const put = await c.put([join(client.path, 'tree')], `tree-put-${run}`);
        const ms = Date.now() - t0;
        await c.close();
        if (put.length !== treeFiles || !put.every((r) => r.ok)) throw new Error('tree put failed');
        return ms;
      });
    }
  } finally {
    child.kill();
    process.stderr.write(
      `client peak RSS ${Math.round(process.resourceUsage().maxRSS / 1024)} MB\n`,
    );
    await server.cleanup();
    await client.cleanup();
  }
  const median = (xs: number[]): number =>
    [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const show = (xs: number[], digits: number): string =>
    xs.map((x) => x.toFixed(digits).padStart(6)).join(' ');
  console.log(
    `${sizeMiB} MiB over ${useTls ? 'TLS 1.3 over ' : ''}TCP on 127.0.0.1, ${runs} runs` +
      (treeFiles
        ? ` (trees: ${treeFiles} files of 4 KiB, files/s and CPU s per 1,000 files):`
        : ':'),
  );
  for (const [name, r] of rows) {
    if (r.rate.length === 0) continue;
    const cpu = r.user.map((u, k) => u + r.sys[k]!);
    console.log(
      `  ${name.padEnd(15)} ${name.endsWith('tree') ? 'files/s' : 'MiB/s'} ${show(r.rate, 0)}  median ${median(r.rate).toFixed(0).padStart(4)}` +
        `   CPU s/${name.endsWith('tree') ? '1000' : 'GiB'} ${show(cpu, 2)}  median ${median(cpu).toFixed(2)}` +
        ` (user ${median(r.user).toFixed(2)}, sys ${median(r.sys).toFixed(2)})`,
    );
  }
  if (only) return;
  const m = (name: (typeof names)[number], k: 'rate' | 'user'): number =>
    median(rows.get(name)![k]);
  console.log(
    `  get: ${(m('rcpp2p get', 'rate') / m('raw get', 'rate')).toFixed(2)}x raw throughput, ` +
      `${(m('rcpp2p get', 'user') / m('raw get', 'user')).toFixed(2)}x raw user CPU; ` +
      `put: ${(m('rcpp2p put', 'rate') / m('raw put', 'rate')).toFixed(2)}x, ` +
      `${(m('rcpp2p put', 'user') / m('raw put', 'user')).toFixed(2)}x`,
  );
}

if (process.argv[2] === '--serve') {
  const ids = process.env.BENCH_IDS ? (JSON.parse(process.env.BENCH_IDS) as Ids) : undefined;
  process.on('SIGTERM', () => {
    process.stderr.write(
      `server peak RSS ${Math.round(process.resourceUsage().maxRSS / 1024)} MB\n`,
    );
    process.exit(0); // a normal exit, so --cpu-prof writes its profile
  });
  void serveChild(process.argv[3]!, Number(process.argv[4]), ids);
} else void main();
