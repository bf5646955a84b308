// The baselines of the benchmark, each measured over the same lab path as rcpp2p: iperf3 (raw TCP),
// a Node TCP or TLS 1.3 stream written to a file (raw-stream.ts), scp to an sshd on the server host,
// OpenSSH relaying a stream through the rendezvous (ssh -R on the server, ssh -W on the client), and
// the set-up floors (`ssh rendezvous true`, `node -e 0`). Every one throws with the tool's output
// when it fails: a missing figure is an error, never a silent zero. The stream baselines also return
// the CPU (user + system) that every process on both ends spent on the transfer (cpu.ts).
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Lab } from '../test/helpers/nat-lab.js';
import type { ProcessHandle, RunResult } from '../test/helpers/processes.js';
import { SSH, sshLoginOptions, type SshdFixture } from '../test/helpers/sshd.js';
import { minus, plus, reapedChildrenCpu, treeCpu, type Cpu } from './cpu.js';
import { mibPerSecond } from './stats.js';

const RAW_STREAM = fileURLToPath(new URL('./raw-stream.js', import.meta.url));
const IPERF3 = '/usr/bin/iperf3';
const SCP = '/usr/bin/scp';
const SS = '/usr/bin/ss';
const CHUNK = 1024 * 1024;

/** Writes `size` random bytes to `path` in 1 MiB pieces; returns their SHA-256 (hex). */
export async function writeRandomFile(path: string, size: number): Promise<string> {
  const hash = createHash('sha256');
  const fh = await open(path, 'w');
  try {
    for (let done = 0; done < size;) {
      const piece = randomBytes(Math.min(CHUNK, size - done));
      hash.update(piece);
      await fh.write(piece);
      done += piece.length;
    }
  } finally {
    await fh.close();
  }
  return hash.digest('hex');
}

export async function sha256OfFile(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const piece of createReadStream(path, { highWaterMark: CHUNK })) {
    hash.update(piece as Buffer);
  }
  return hash.digest('hex');
}

function failed(what: string, r: RunResult | ProcessHandle): Error {
  const [out, err] = 'pid' in r ? [r.stdout(), r.stderr()] : [r.stdout, r.stderr];
  return new Error(`${what} failed\n--- stdout\n${out}\n--- stderr\n${err}`);
}

/** The "BYTES MS" line a raw-stream receiver prints, as MiB/s; throws unless all bytes arrived. */
async function receiverFigure(recv: ProcessHandle, size: number, what: string): Promise<number> {
  const info = await recv.waitExit(600_000);
  const [bytes, ms] = (recv.stdout().trim().split('\n').pop() ?? '').split(/\s+/).map(Number);
  if (info.code !== 0 || bytes !== size || !ms) throw failed(what, recv);
  return mibPerSecond(size, ms);
}

/** iperf3 client (behind its NAT) to an iperf3 server on the file server's host; MiB/s received. */
export async function iperf(lab: Lab, size: number): Promise<number> {
  const server = lab.spawn('server', IPERF3, ['-s', '-1', '-p', '5201', '--forceflush']);
  try {
    await server.waitForOutput(/Server listening/, 10_000);
    const r = await lab.exec(
      'client',
      IPERF3,
      ['-c', lab.hosts.server.ip, '-p', '5201', '-n', String(size), '-J'],
      { timeoutMs: 600_000 },
    );
    if (r.code !== 0) throw failed('iperf3', r);
    const json = JSON.parse(r.stdout) as { end: { sum_received: { bits_per_second: number } } };
    return json.end.sum_received.bits_per_second / 8 / 1024 / 1024;
  } finally {
    await server.kill(1000);
  }
}

/** A throughput figure and the CPU both ends spent on it. */
export interface Measured {
  mibps: number;
  cpu: Cpu;
}

/**
 * A Node TCP (or TLS 1.3 AES-128-GCM) stream from the client to the file server's host over the
 * path rcpp2p punches: 1 MiB socket writes, received into 1 MiB file writes and fsynced there (the
 * ceiling Node's own sockets, TLS and files allow); MiB/s from first byte to fsync. Each call needs
 * its own port pair: the previous pair may still be in TIME_WAIT.
 */
export async function rawStream(
  lab: Lab,
  opts: { size: number; tls: boolean; ports: [number, number]; dir: string },
): Promise<Measured> {
  const file = join(opts.dir, `raw-stream-${opts.ports[0]}.bin`);
  const [serverPort, clientPort] = opts.ports.map(String) as [string, string];
  const tls = opts.tls ? ['tls'] : [];
  const size = String(opts.size);
  const { server, client } = lab.hosts;
  const cpu0 = reapedChildrenCpu();
  const recv = lab.spawn('server', process.execPath, [
    ...[RAW_STREAM, 'recv', serverPort, `${client.publicIp}:${clientPort}`, size, file],
    ...tls,
  ]);
  const send = lab.spawn('client', process.execPath, [
    ...[RAW_STREAM, 'send', clientPort, `${server.ip}:${serverPort}`, size, '-'],
    ...tls,
  ]);
  try {
    const mibps = await receiverFigure(recv, opts.size, `raw-stream ${opts.tls ? 'TLS' : 'TCP'}`);
    // The sender exits once the receiver closed; both are then reaped, their CPU ours to read.
    const sent = await send.waitExit(10_000);
    if (sent.code !== 0) throw failed('raw-stream send', send);
    return { mibps, cpu: minus(reapedChildrenCpu(), cpu0) };
  } finally {
    await send.kill(1000);
    await recv.kill(1000);
    await rm(file, { force: true });
  }
}

/**
 * scp of `src` from the client to `sshd` (on the file server's host); MiB/s, command start to exit.
 * scp rides an SSH connection opened beforehand (ControlMaster), so the figure is the transfer and
 * not the login, like rcpp2p's transferMs; the cipher is the master's. CPU: scp and its ssh (reaped
 * here), the master ssh, and sshd with its session processes.
 */
export async function scp(
  lab: Lab,
  opts: { sshd: SshdFixture; src: string; size: number; cipher: string | undefined; dir: string },
): Promise<Measured> {
  const { sshd } = opts;
  const dest = `${sshd.dir}/scp-copy.bin`;
  const control = join(opts.dir, `scp-${opts.cipher ?? 'default'}.ctl`);
  const login = [...sshLoginOptions(sshd), '-o', `ControlPath=${control}`];
  const target = `${sshd.user}@${sshd.host}`;
  const master = lab.spawn('client', SSH, [
    ...['-M', '-N', '-o', 'ControlPersist=no', ...(opts.cipher ? ['-c', opts.cipher] : [])],
    ...[...login, '-p', String(sshd.port), target],
  ]);
  try {
    await waitForMaster(lab, master, [...login, '-p', String(sshd.port), target]);
    const args = [...login, '-o', 'ControlMaster=no', '-P', String(sshd.port)];
    const cpuNow = (): Cpu =>
      plus(reapedChildrenCpu(), plus(treeCpu(master.pid), treeCpu(sshd.pid)));
    const cpu0 = cpuNow();
    const started = performance.now();
    const r = await lab.exec('client', SCP, [...args, opts.src, `${target}:${dest}`], {
      timeoutMs: 600_000,
    });
    const ms = performance.now() - started;
    if (r.code !== 0) throw failed('scp', r);
    return { mibps: mibPerSecond(opts.size, ms), cpu: minus(cpuNow(), cpu0) };
  } finally {
    await master.kill(1000);
    await rm(dest, { force: true });
    await rm(control, { force: true });
  }
}

async function waitForMaster(lab: Lab, master: ProcessHandle, login: string[]): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (master.hasExited()) throw failed('ssh -M', master);
    const r = await lab.exec('client', SSH, ['-O', 'check', ...login]);
    if (r.code === 0) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw failed('ssh -M (no control socket after 10 s)', master);
}

/**
 * OpenSSH relaying `src` through the rendezvous, the way rcpp2p's relay does: the server side holds
 * `ssh -R` (sshd on the rendezvous listens on its loopback and forwards to a receiver on the server
 * host), the client sends with `ssh -W` to that loopback port, so sshd decrypts and re-encrypts
 * every byte. MiB/s from first byte to fsync at the receiver.
 */
export async function sshRelay(
  lab: Lab,
  opts: { src: string; size: number; dir: string },
): Promise<number> {
  const rv = lab.rendezvous;
  const file = join(opts.dir, 'ssh-relay.bin');
  const login = [...sshLoginOptions(rv), '-p', String(rv.port), `${rv.user}@${rv.host}`];
  const recv = lab.spawn('server', process.execPath, [
    ...[RAW_STREAM, 'listen', '5000', '-', String(opts.size), file],
  ]);
  const tunnel = lab.spawn('server', SSH, [
    ...['-N', '-o', 'ExitOnForwardFailure=yes', '-R', '127.0.0.1:6000:127.0.0.1:5000'],
    ...login,
  ]);
  let send: ProcessHandle | undefined;
  try {
    await recv.waitForOutput(/listening/, 10_000);
    await waitForListener(lab, tunnel, 6000);
    // ssh reads the file on stdin; a shell opens it (every word is quoted)
    const cmd = [SSH, ...['-W', '127.0.0.1:6000'], ...login].map(quote).join(' ');
    send = lab.spawn('client', '/bin/sh', ['-c', `exec ${cmd} < ${quote(opts.src)}`]);
    return await receiverFigure(recv, opts.size, 'OpenSSH relay');
  } finally {
    await send?.kill(1000);
    await tunnel.kill(1000);
    await recv.kill(1000);
    await rm(file, { force: true });
  }
}

/** Waits until something listens on 127.0.0.1:port in the rendezvous (asked of the kernel, not by connecting). */
async function waitForListener(lab: Lab, tunnel: ProcessHandle, port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (tunnel.hasExited()) throw failed('ssh -R', tunnel);
    const r = await lab.exec('rendezvous', SS, ['-Hltn', `sport = :${port}`]);
    if (r.stdout.includes(`127.0.0.1:${port}`)) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw failed(`ssh -R (no listener on the rendezvous port ${port})`, tunnel);
}

function quote(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/** Seconds for `ssh rendezvous true` from the client with the lab's key: an SSH login's floor. */
export async function sshTrue(lab: Lab): Promise<number> {
  const rv = lab.rendezvous;
  const args = [...sshLoginOptions(rv), '-p', String(rv.port), `${rv.user}@${rv.host}`, 'true'];
  const started = performance.now();
  const r = await lab.exec('client', SSH, args);
  const s = (performance.now() - started) / 1000;
  if (r.code !== 0) throw failed('ssh rendezvous true', r);
  return s;
}

/** Seconds for `node -e 0` in the client's namespace: the start-up floor of any Node CLI. */
export async function nodeStart(lab: Lab): Promise<number> {
  const started = performance.now();
  const r = await lab.exec('client', process.execPath, ['-e', '0']);
  const s = (performance.now() - started) / 1000;
  if (r.code !== 0) throw failed('node -e 0', r);
  return s;
}
