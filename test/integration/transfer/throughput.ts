// Loopback throughput, not a test: node dist/test/integration/transfer/throughput.js [MiB] [runs]
// Two processes (this one as the client, a child as the server) over plain TCP on 127.0.0.1:
//   raw get  - the server streams the file with createReadStream (1 MiB chunks) into the socket, the
//              client writes the socket into a file with 1 MiB writes and fsyncs it;
//   raw put  - the same the other way;
//   rcpp2p get / put - FileClient against FileServer: frames, SHA-256 both sides, partial + fsync + rename.
// Prints MiB/s per run and the median, and the ratio of rcpp2p to raw of the same run.
import { spawn } from 'node:child_process';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, rm, stat } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import { FileServer } from '../../../src/transfer/file-server.js';
import { openClient, randomFile, tempDir } from './helpers.js';

const MiB = 1024 * 1024;

async function serveChild(workDir: string): Promise<void> {
  const fileServer = new FileServer({ workDir, serverName: 'bench' });
  const rcpp = net.createServer(
    (s) => void fileServer.serve(s, { name: 'bench' }).finally(() => s.destroy()),
  );
  const raw = net.createServer((s) => {
    s.once('data', (first: Buffer<ArrayBuffer>) => {
      const cmd = first.toString();
      if (cmd.startsWith('GET')) {
        createReadStream(join(workDir, 'src.bin'), { highWaterMark: MiB }).pipe(s);
      } else {
        void receiveInto(s, join(workDir, 'raw-put.bin'), first.subarray(3));
      }
    });
  });
  await new Promise<void>((r) => rcpp.listen(0, '127.0.0.1', r));
  await new Promise<void>((r) => raw.listen(0, '127.0.0.1', r));
  process.stdout.write(
    `${(rcpp.address() as net.AddressInfo).port} ${(raw.address() as net.AddressInfo).port}\n`,
  );
}

/** Socket to file with ~1 MiB writes and an fsync at the end, as in PERF-FACTS' baseline. */
async function receiveInto(
  socket: net.Socket,
  path: string,
  first = Buffer.alloc(0),
): Promise<void> {
  const out = createWriteStream(path, { highWaterMark: MiB });
  if (first.length) out.write(first);
  await new Promise<void>((resolve, reject) => {
    socket.pipe(out);
    out.on('finish', resolve);
    out.on('error', reject);
  });
  const fh = await open(path, 'r+');
  await fh.sync();
  await fh.close();
  socket.end();
}

async function main(): Promise<void> {
  const sizeMiB = Number(process.argv[2] ?? 1024);
  const runs = Number(process.argv[3] ?? 3);
  const size = sizeMiB * MiB;
  const server = await tempDir('bench-server');
  const client = await tempDir('bench-client');
  await randomFile(join(server.path, 'src.bin'), size);
  await randomFile(join(client.path, 'up.bin'), size);
  const child = spawn(process.execPath, [process.argv[1]!, '--serve', server.path], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const ports = await new Promise<number[]>((resolve) => {
    child.stdout.once('data', (d: Buffer) => resolve(d.toString().trim().split(' ').map(Number)));
  });
  const [rcppPort, rawPort] = ports as [number, number];
  const rows: Record<string, number[]> = {
    'raw get': [],
    'rcpp2p get': [],
    'raw put': [],
    'rcpp2p put': [],
  };
  const rate = (ms: number): number => sizeMiB / (ms / 1000);
  try {
    for (let run = 0; run < runs; run++) {
      // raw get
      let t0 = Date.now();
      const s1 = net.connect(rawPort, '127.0.0.1');
      s1.write('GET');
      await receiveInto(s1, join(client.path, 'raw-get.bin'));
      rows['raw get']!.push(rate(Date.now() - t0));
      await rm(join(client.path, 'raw-get.bin'));
      // rcpp2p get
      const into = join(client.path, `get-${run}`);
      await mkdir(into);
      const c1 = await openClient(rcppPort);
      t0 = Date.now();
      const [g] = await c1.get(['src.bin'], into);
      rows['rcpp2p get']!.push(rate(Date.now() - t0));
      await c1.close();
      if (!g?.ok) throw new Error(JSON.stringify(g));
      await rm(into, { recursive: true });
      // raw put
      t0 = Date.now();
      const s2 = net.connect(rawPort, '127.0.0.1');
      s2.write('PUT');
      createReadStream(join(client.path, 'up.bin'), { highWaterMark: MiB }).pipe(s2);
      await new Promise((r) => s2.on('close', r));
      rows['raw put']!.push(rate(Date.now() - t0));
      if ((await stat(join(server.path, 'raw-put.bin'))).size !== size)
        throw new Error('raw put lost bytes');
      await rm(join(server.path, 'raw-put.bin'));
      // rcpp2p put
      const c2 = await openClient(rcppPort);
      t0 = Date.now();
      const [p] = await c2.put([join(client.path, 'up.bin')], '', { force: true });
      rows['rcpp2p put']!.push(rate(Date.now() - t0));
      await c2.close();
      if (!p?.ok) throw new Error(JSON.stringify(p));
    }
  } finally {
    child.kill();
    await server.cleanup();
    await client.cleanup();
  }
  const median = (xs: number[]): number =>
    [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  console.log(`${sizeMiB} MiB over TCP on 127.0.0.1, ${runs} runs (MiB/s):`);
  for (const [name, xs] of Object.entries(rows)) {
    console.log(
      `  ${name.padEnd(11)} ${xs.map((x) => x.toFixed(0).padStart(5)).join(' ')}   median ${median(xs).toFixed(0)}`,
    );
  }
  console.log(
    `  get ratio ${(median(rows['rcpp2p get']!) / median(rows['raw get']!)).toFixed(2)}, put ratio ${(median(rows['rcpp2p put']!) / median(rows['raw put']!)).toFixed(2)}`,
  );
}

if (process.argv[2] === '--serve') void serveChild(process.argv[3]!);
else void main();
