// Two rcpp2p peers and the embedded rendezvous on loopback, set up the way the README tells a user
// to: an account with the peer's public key, `rcpp2p --configure --yes ... --trust-host-key FP`
// for each peer, and the file server as a real `rcpp2p` process. No root and no sshd needed. Every
// process is tracked by PID and stopped by close().
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { saveAccounts } from '../../src/rendezvous-server/accounts.js';
import {
  startRendezvousServer,
  type RunningRendezvous,
} from '../../src/rendezvous-server/server.js';
import { ProcessTracker, type ProcessHandle, type RunResult } from './processes.js';
import { generateSshKeyPair } from '../../src/rendezvous/ssh-key.js';

/** The repository's bin/rcpp2p.js, which runs the build this file belongs to. */
export const RCPP2P = fileURLToPath(new URL('../../../bin/rcpp2p.js', import.meta.url));

export const ACCOUNT = 'peers';

export interface PeerSetup {
  name: string;
  config: string;
  /** The file server's shared folder, or the client's working folder. */
  dir: string;
}

export class CliLab {
  readonly procs = new ProcessTracker();

  private constructor(
    readonly root: string,
    readonly rendezvous: RunningRendezvous,
    readonly keyFile: string,
    /** HOME of every rcpp2p process: known_hosts and nothing else of the user's. */
    readonly home: string,
  ) {}

  static async start(name: string): Promise<CliLab> {
    const root = await mkdtemp(join(tmpdir(), `rcpp2p-${name}-`));
    const home = join(root, 'home');
    await mkdir(join(home, '.ssh'), { recursive: true, mode: 0o700 });
    const keys = generateSshKeyPair();
    const keyFile = join(home, '.ssh', 'id_ed25519');
    await writeFile(keyFile, keys.private, { mode: 0o600 });
    await writeFile(`${keyFile}.pub`, `${keys.public}\n`);
    await saveAccounts(join(root, 'rendezvous'), [
      { user: ACCOUNT, authorizedKeys: [keys.public] },
    ]);
    const rendezvous = await startRendezvousServer({
      stateDir: join(root, 'rendezvous'),
      host: '127.0.0.1',
      port: 0,
    });
    return new CliLab(root, rendezvous, keyFile, home);
  }

  get env(): NodeJS.ProcessEnv {
    return { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: this.home, LANG: 'C.UTF-8' };
  }

  /** rcpp2p with args, to completion. */
  run(
    args: string[],
    opts: { cwd?: string; input?: string; timeoutMs?: number } = {},
  ): Promise<RunResult> {
    return this.procs.run(process.execPath, [RCPP2P, ...args], {
      env: this.env,
      cwd: opts.cwd ?? this.root,
      ...(opts.input !== undefined && { input: opts.input }),
      timeoutMs: opts.timeoutMs ?? 60_000,
    });
  }

  /**
   * --configure --yes for a file server or a client, trusting the rendezvous by fingerprint.
   * `machine` names its folder and config (two machines may take the same peer name).
   */
  async configure(
    role: 'server' | 'client',
    name: string,
    opts: { machine?: string; extra?: string[] } = {},
  ): Promise<PeerSetup> {
    const machine = opts.machine ?? name;
    const dir = join(this.root, machine);
    await mkdir(dir, { recursive: true });
    const config = join(this.root, 'configs', `${machine}.json`);
    const r = await this.run([
      '--configure',
      '--yes',
      '--config',
      config,
      '--rendezvous',
      `${ACCOUNT}@127.0.0.1:${this.rendezvous.port}`,
      '--identity',
      this.keyFile,
      '--trust-host-key',
      this.rendezvous.hostKey.fingerprint,
      ...(role === 'server'
        ? ['--server-name', name, '--dir', dir, '--port', String(await freeishPort())]
        : ['--client-name', name]),
      ...(opts.extra ?? []),
    ]);
    assert.equal(r.code, 0, `configure ${name}: ${r.stderr}`);
    return { name, config, dir };
  }

  /** Starts `rcpp2p --config CONFIG` (the file server) and waits until it takes clients. */
  async serve(server: PeerSetup): Promise<ProcessHandle> {
    const p = this.procs.spawn(process.execPath, [RCPP2P, '--config', server.config], {
      env: this.env,
      cwd: server.dir,
    });
    await p.waitForOutput(/Signaling: live channel through the rendezvous\./, 30_000);
    return p;
  }

  async close(): Promise<void> {
    await this.procs.killAll();
    await this.rendezvous.close();
    if (process.env['RCPP2P_KEEP_TEST_DIRS'] !== '1')
      await rm(this.root, { recursive: true, force: true });
  }
}

/** A port in the file servers' range that is unlikely to be taken (the server falls back if it is). */
async function freeishPort(): Promise<number> {
  const { createServer } = await import('node:net');
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => resolve(typeof addr === 'object' && addr ? addr.port : 0));
    });
  });
}
