// File servers with a published index on a rendezvous on loopback (no root): the embedded
// rendezvous or a real OpenSSH sshd, peers configured by the real `rcpp2p --configure --yes`, file
// servers and client commands as real processes. Everything is removed by stop().
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatKnownHostsLine } from '../../src/rendezvous/known-hosts.js';
import { saveAccounts } from '../../src/rendezvous-server/accounts.js';
import { startRendezvousServer } from '../../src/rendezvous-server/server.js';
import { RCPP2P_BIN } from './lab-peers.js';
import { ProcessTracker, type ExitInfo, type ProcessHandle, type RunResult } from './processes.js';
import { sshLoginOptions, startSshd } from './sshd.js';
import { generateSshKeyPair } from '../../src/rendezvous/ssh-key.js';

export type LoopbackKind = 'embedded' | 'openssh';

export interface LoopbackRendezvous {
  kind: LoopbackKind;
  /** `user@127.0.0.1:port`. */
  target: string;
  keyFile: string;
  knownHostsFile: string;
  /** rendezvousDir as the peers configure it. */
  dir: string;
  /** Where the index files are on disk (to plant hostile ones). */
  indexesDir: string;
  /** `ssh` arguments up to the command, for baselines (OpenSSH kind only). */
  sshArgs: string[] | undefined;
  stop(): Promise<void>;
}

export async function startLoopbackRendezvous(
  kind: LoopbackKind,
  root: string,
  /** More sshd_config lines (OpenSSH kind only). */
  sshdConfig: string[] = [],
): Promise<LoopbackRendezvous> {
  if (kind === 'openssh') {
    const fx = await startSshd({ listenAddress: '127.0.0.1', extraConfig: sshdConfig });
    return {
      kind,
      target: `${fx.user}@${fx.host}:${fx.port}`,
      keyFile: fx.clientKeyFile,
      knownHostsFile: fx.knownHostsFile,
      dir: fx.rendezvousDir,
      indexesDir: join(fx.rendezvousDir, 'indexes'),
      sshArgs: [...sshLoginOptions(fx), '-p', String(fx.port), `${fx.user}@${fx.host}`],
      stop: () => fx.stop(),
    };
  }
  const state = join(root, 'rendezvous-state');
  const pair = generateSshKeyPair();
  const keyFile = join(root, 'peer_key');
  await writeFile(keyFile, pair.private, { mode: 0o600 });
  await saveAccounts(state, [{ user: 'peer', authorizedKeys: [pair.public] }]);
  const rv = await startRendezvousServer({ stateDir: state, host: '127.0.0.1', port: 0 });
  const knownHostsFile = join(root, 'known_hosts');
  await writeFile(
    knownHostsFile,
    formatKnownHostsLine('127.0.0.1', rv.port, rv.hostKey.type, rv.hostKey.blob) + '\n',
  );
  return {
    kind,
    target: `peer@127.0.0.1:${rv.port}`,
    keyFile,
    knownHostsFile,
    dir: '.rcpp2p',
    indexesDir: join(state, 'home', 'peer', '.rcpp2p', 'indexes'),
    sshArgs: undefined,
    stop: () => rv.close(),
  };
}

export interface IndexPeers {
  rv: LoopbackRendezvous;
  root: string;
  /** Shared folder of each file server, by name. */
  folders: Map<string, string>;
  /** Starts file server NAME; resolves once its first index is published (or `ready` shows). */
  startServer(name: string, ready?: RegExp): Promise<ProcessHandle>;
  /** Configures file server NAME again, with these options changed (`--publish-index no`). */
  reconfigure(name: string, args: string[]): Promise<void>;
  /** Stops file server NAME as Ctrl-C would (SIGTERM); resolves with how it exited. */
  stopServer(name: string): Promise<ExitInfo>;
  /** Runs a client command (`--servers`, `--search ...`) as a real process. */
  client(args: string[]): Promise<RunResult>;
  stop(): Promise<void>;
}

/** Configures file servers (publishIndex yes) and one client on a fresh loopback rendezvous. */
export async function setupIndexPeers(
  kind: LoopbackKind,
  servers: string[],
  opts: { timeoutMs?: number } = {},
): Promise<IndexPeers> {
  const root = await mkdtemp(join(tmpdir(), 'rcpp2p-index-'));
  const processes = new ProcessTracker();
  const env = { ...process.env, RCPP2P_DEBUG: process.env['RCPP2P_DEBUG'] ?? '' };
  let rv: LoopbackRendezvous | undefined;
  try {
    rv = await startLoopbackRendezvous(kind, root);
    const rendezvous = rv;
    const configure = async (config: string, args: string[]): Promise<void> => {
      const r = await processes.run(
        process.execPath,
        [
          RCPP2P_BIN,
          '--configure',
          '--yes',
          '--config',
          config,
          '--rendezvous',
          rendezvous.target,
          '--identity',
          rendezvous.keyFile,
          '--known-hosts',
          rendezvous.knownHostsFile,
          '--rendezvous-dir',
          rendezvous.dir,
          ...args,
        ],
        { env, timeoutMs: 30_000 },
      );
      if (r.code !== 0) throw new Error(`configure failed: ${r.stdout}${r.stderr}`);
    };
    const folders = new Map<string, string>();
    let port = 20_000 + Math.floor(Math.random() * 20_000);
    for (const name of servers) {
      const folder = join(root, `${name}-files`);
      await mkdir(folder);
      folders.set(name, folder);
      await configure(join(root, `${name}.json`), [
        '--server-name',
        name,
        '--dir',
        folder,
        '--port',
        String(port++),
        '--publish-index',
        'yes',
      ]);
    }
    const running = new Map<string, ProcessHandle>();
    const clientConfig = join(root, 'client.json');
    await configure(clientConfig, ['--client-name', 'LAPTOP', '--port', String(port++)]);
    return {
      rv,
      root,
      folders,
      async startServer(name, ready = /Index published: /) {
        const server = processes.spawn(
          process.execPath,
          [RCPP2P_BIN, '--config', join(root, `${name}.json`)],
          { env },
        );
        running.set(name, server);
        await server.waitForOutput(ready, opts.timeoutMs ?? 30_000);
        return server;
      },
      reconfigure: (name, args) => configure(join(root, `${name}.json`), args),
      async stopServer(name) {
        const server = running.get(name);
        if (!server) throw new Error(`file server ${name} is not running`);
        running.delete(name);
        return server.kill(10_000);
      },
      client: (args) =>
        processes.run(process.execPath, [RCPP2P_BIN, '--config', clientConfig, ...args], {
          env,
          timeoutMs: opts.timeoutMs ?? 60_000,
        }),
      async stop() {
        await processes.killAll();
        await rendezvous.stop();
        await rm(root, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await processes.killAll();
    await rv?.stop();
    await rm(root, { recursive: true, force: true });
    throw err;
  }
}

/** The JSON objects a --json run printed on stdout. */
export function jsonObjects(stdout: string): Record<string, unknown>[] {
  return stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}
