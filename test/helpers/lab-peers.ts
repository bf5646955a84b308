// Two real rcpp2p peers in a NAT lab: configs written by the real `rcpp2p --configure --yes`, the
// file server running as a real process in the server's namespace, client commands run as real
// processes in the client's namespace. Everything lives in one temp folder removed at the end.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Lab } from './nat-lab.js';
import type { ProcessHandle, RunResult } from './processes.js';

/**
 * The CLI entry the lab runs: bin/rcpp2p.js (which loads dist/), or another entry named by the
 * RCPP2P_BIN environment variable (an absolute path), to test a build kept elsewhere.
 */
export const RCPP2P_BIN =
  process.env['RCPP2P_BIN'] || fileURLToPath(new URL('../../../bin/rcpp2p.js', import.meta.url));

export interface LabPeers {
  dir: string;
  serverConfig: string;
  clientConfig: string;
  /** The file server's working directory. */
  workDir: string;
  /** The client's current directory (where --get saves). */
  clientDir: string;
  serverName: string;
  clientName: string;
  /** Starts the file server; resolves when it announced its signaling mode. */
  startServer(extraArgs?: string[]): Promise<ProcessHandle>;
  /** Writes another peer config for this lab's rendezvous (`--configure --yes` plus `args`). */
  configure(configPath: string, args: string[]): Promise<void>;
  /** Runs `rcpp2p ARGS --config CLIENT` in the client's namespace, in clientDir. */
  client(args: string[], opts?: { timeoutMs?: number; input?: string }): Promise<RunResult>;
  cleanup(): Promise<void>;
}

export interface LabPeersOptions {
  serverPort?: number;
  clientPort?: number;
  pollSeconds?: number;
  keepaliveSeconds?: number;
  /** Register the client with --addclient right away (default true). */
  addClient?: boolean;
  /** The rendezvous as peers write it (`user@host:port`); default the lab rendezvous's own host. */
  rendezvous?: string;
}

export async function setupLabPeers(lab: Lab, opts: LabPeersOptions = {}): Promise<LabPeers> {
  const dir = await mkdtemp(join(tmpdir(), 'rcpp2p-peers-'));
  const workDir = join(dir, 'server-files');
  const clientDir = join(dir, 'client-files');
  await mkdir(workDir);
  await mkdir(clientDir);
  const rv = lab.rendezvous;
  const serverName = 'ASUS';
  const clientName = 'LAPTOP';
  const serverConfig = join(dir, 'server.json');
  const clientConfig = join(dir, 'client.json');
  const common = [
    '--configure',
    '--yes',
    '--rendezvous',
    opts.rendezvous ?? `${rv.user}@${rv.host}:${rv.port}`,
    '--identity',
    rv.clientKeyFile,
    '--known-hosts',
    rv.knownHostsFile,
    '--rendezvous-dir',
    rv.rendezvousDir,
    '--poll-seconds',
    String(opts.pollSeconds ?? 2),
    '--keepalive-seconds',
    String(opts.keepaliveSeconds ?? 5),
  ];
  const configure = async (configPath: string, args: string[]): Promise<void> => {
    const r = await lab.exec(
      'server',
      process.execPath,
      [RCPP2P_BIN, ...common, '--config', configPath, ...args],
      {
        timeoutMs: 30_000,
      },
    );
    if (r.code !== 0)
      throw new Error(`configure failed (${String(r.code)}): ${r.stdout}${r.stderr}`);
  };
  await configure(serverConfig, [
    '--server-name',
    serverName,
    '--port',
    String(opts.serverPort ?? 40001),
    '--dir',
    workDir,
  ]);
  await configure(clientConfig, [
    '--client-name',
    clientName,
    '--port',
    String(opts.clientPort ?? 40002),
  ]);

  const peers: LabPeers = {
    dir,
    serverConfig,
    clientConfig,
    workDir,
    clientDir,
    serverName,
    clientName,
    configure,
    async startServer(extraArgs = []) {
      const server = lab.spawn(
        'server',
        process.execPath,
        [RCPP2P_BIN, '--config', serverConfig, ...extraArgs],
        {
          cwd: workDir,
          env: { ...process.env, RCPP2P_DEBUG: process.env['RCPP2P_DEBUG'] ?? '' },
        },
      );
      await server.waitForOutput(/Signaling: /, 20_000);
      return server;
    },
    client(args, runOpts = {}) {
      return lab.exec('client', process.execPath, [RCPP2P_BIN, '--config', clientConfig, ...args], {
        cwd: clientDir,
        timeoutMs: runOpts.timeoutMs ?? 60_000,
        ...(runOpts.input !== undefined && { input: runOpts.input }),
      });
    },
    async cleanup() {
      await rm(dir, { recursive: true, force: true });
    },
  };
  if (opts.addClient ?? true) {
    const r = await peers.client(['--addclient']);
    if (r.code !== 0) throw new Error(`--addclient failed (${r.code}): ${r.stdout}${r.stderr}`);
  }
  return peers;
}

/** Writes `size` random bytes to `path` and returns their SHA-256 (hex). */
export async function writeRandomFile(path: string, size: number): Promise<string> {
  const data = randomBytes(size);
  await writeFile(path, data);
  return createHash('sha256').update(data).digest('hex');
}

export async function sha256File(path: string): Promise<string> {
  return createHash('sha256')
    .update(await readFile(path))
    .digest('hex');
}

/** The JSON lines a --json run printed on stdout. */
export function jsonLines(stdout: string): Record<string, unknown>[] {
  return stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

export function describeRun(r: RunResult): string {
  return `exit ${String(r.code)}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
}
