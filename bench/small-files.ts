// The many-small-files case of the benchmark: a folder of N files of 4 KiB (100 to a subfolder),
// its digest to check a copy, and the baselines: tar piped through ssh over the same path rcpp2p
// takes (`ssh host tar c | tar x` for a get, `tar c | ssh host tar x` for a put). ssh rides a
// connection opened beforehand (ControlMaster), so the figure is the transfer, not the login.
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import type { Lab } from '../test/helpers/nat-lab.js';
import type { ProcessHandle, RunResult } from '../test/helpers/processes.js';
import { SSH, sshLoginOptions, type SshdFixture } from '../test/helpers/sshd.js';
import { minus, plus, reapedChildrenCpu, treeCpu, type Cpu } from './cpu.js';

export const SMALL_FILE_BYTES = 4096;
const PER_FOLDER = 100;

/** Writes `files` files of 4 KiB of random bytes under `root`, 100 to a subfolder. */
export async function makeTree(root: string, files: number): Promise<void> {
  for (let n = 0; n < files; n++) {
    const dir = join(root, `d${String(Math.floor(n / PER_FOLDER)).padStart(3, '0')}`);
    if (n % PER_FOLDER === 0) await mkdir(dir, { recursive: true });
    await writeFile(join(dir, `f${n}.bin`), randomBytes(SMALL_FILE_BYTES));
  }
}

/** SHA-256 over the sorted relative paths and contents of every file under `root`, and the count. */
export async function treeDigest(root: string): Promise<{ files: number; sha256: string }> {
  const paths: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    for (const e of await readdir(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) await walk(p);
      else paths.push(p);
    }
  };
  await walk(root);
  paths.sort();
  const hash = createHash('sha256');
  for (const p of paths) {
    hash.update(`${relative(root, p)}\n`);
    hash.update(await readFile(p));
  }
  return { files: paths.length, sha256: hash.digest('hex') };
}

/** A ControlMaster connection from the client to `sshd`, for commands that should not log in. */
export async function sshMaster(
  lab: Lab,
  sshd: SshdFixture,
  control: string,
): Promise<{ ssh: string[]; master: ProcessHandle; stop: () => Promise<void> }> {
  const login = [...sshLoginOptions(sshd), '-o', `ControlPath=${control}`, '-p', String(sshd.port)];
  const target = `${sshd.user}@${sshd.host}`;
  const master = lab.spawn('client', SSH, [
    '-M',
    '-N',
    '-o',
    'ControlPersist=no',
    ...login,
    target,
  ]);
  for (let i = 0; ; i++) {
    if (master.hasExited()) throw new Error(`ssh -M exited: ${master.stderr()}`);
    const r = await lab.exec('client', SSH, ['-O', 'check', ...login, target]);
    if (r.code === 0) break;
    if (i >= 100) throw new Error(`ssh -M: no control socket after 10 s: ${master.stderr()}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return {
    ssh: [SSH, ...login, '-o', 'ControlMaster=no', target],
    master,
    stop: async () => {
      await master.kill(1000);
    },
  };
}

/**
 * Runs a tar pipeline in the client's namespace: `get` copies `remoteParent/name` from the server
 * host into `localDir`, `put` copies `localParent/name` into `remoteDir`. Returns seconds from
 * start to exit and the CPU of every process on both ends (the shell's pipeline, reaped here; the
 * master ssh; sshd with its sessions).
 */
export async function tarCopy(
  lab: Lab,
  opts: {
    op: 'get' | 'put';
    ssh: string[];
    master: ProcessHandle;
    sshd: SshdFixture;
    name: string;
    from: string;
    to: string;
  },
): Promise<{ seconds: number; cpu: Cpu }> {
  const ssh = opts.ssh.map(quote).join(' ');
  const script =
    opts.op === 'get'
      ? `${ssh} ${quote(`tar c -C ${quote(opts.from)} ${quote(opts.name)}`)} | tar x -C ${quote(opts.to)}`
      : `tar c -C ${quote(opts.from)} ${quote(opts.name)} | ${ssh} ${quote(`tar x -C ${quote(opts.to)}`)}`;
  const cpuNow = (): Cpu =>
    plus(reapedChildrenCpu(), plus(treeCpu(opts.master.pid), treeCpu(opts.sshd.pid)));
  const cpu0 = cpuNow();
  const started = performance.now();
  const r: RunResult = await lab.exec('client', '/bin/sh', ['-c', `set -e; ${script}`], {
    timeoutMs: 600_000,
  });
  const seconds = (performance.now() - started) / 1000;
  if (r.code !== 0) throw new Error(`tar ${opts.op} failed (${String(r.code)}): ${r.stderr}`);
  return { seconds, cpu: minus(cpuNow(), cpu0) };
}

function quote(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}
