// A real OpenSSH sshd as the rendezvous for tests: generated host and client keys in a temp dir, a
// config that allows exactly the login we need (public key, no PAM), and a known_hosts file for it.
// Works as root (login user root, optionally inside a network namespace) and unprivileged on a
// loopback high port (login user = the account running the tests).
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import {
  descendantPids,
  killPids,
  pidAlive,
  runChecked,
  runCommand,
  spawnProcess,
  type ProcessHandle,
} from './processes.js';

export const SSHD = '/usr/sbin/sshd';
export const SSH = '/usr/bin/ssh';
export const SSH_KEYGEN = '/usr/bin/ssh-keygen';

/** Writes a new unencrypted ed25519 key pair to `file` and `file.pub` with ssh-keygen. */
export async function makeEd25519Key(file: string, comment: string): Promise<void> {
  await runChecked(SSH_KEYGEN, ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', file]);
}

/**
 * 'lab': the test-friendly config the suites were written against (StreamLocalBindUnlink yes,
 * MaxStartups 100, MaxSessions 100, AllowStreamLocalForwarding per option). 'stock': only what a
 * key login to this fixture needs; everything else at OpenSSH's defaults (StreamLocalBindUnlink no,
 * MaxStartups 10:30:100, MaxSessions 10, every kind of forwarding allowed), as on a host whose
 * administrator never touched sshd_config.
 */
export type SshdProfile = 'lab' | 'stock';

export interface SshdOptions {
  /** Run sshd inside this network namespace (needs root). */
  netns?: string;
  listenAddress: string;
  /** More addresses to listen on, same port (for example the IPv6 address of a dual-stack host). */
  moreListenAddresses?: string[];
  /** Defaults to 22 inside a namespace, otherwise a free high port on listenAddress. */
  port?: number;
  /** Default 'lab'. */
  profile?: SshdProfile;
  /** AllowStreamLocalForwarding; default true. Only for the 'lab' profile (use extraConfig otherwise). */
  allowStreamLocalForwarding?: boolean;
  /**
   * More sshd_config lines, appended last; a keyword set here replaces the profile's line for it
   * (for example 'MaxStartups 10:30:100' on the lab profile).
   */
  extraConfig?: string[];
  /**
   * Host patterns of the known_hosts line (joined with ','), for a name or more addresses the
   * clients may use; default: listenAddress ('[host]:port' when port != 22).
   */
  knownHostsNames?: string[];
  signal?: AbortSignal;
}

export interface SshdFixture {
  host: string;
  port: number;
  /** The account clients log in as: root when running as root, otherwise the current user. */
  user: string;
  /** ed25519 private key (no passphrase) authorised for `user`. */
  clientKeyFile: string;
  clientPublicKey: string;
  /** 'ssh-ed25519 AAAA...' */
  hostPublicKey: string;
  /** known_hosts with one plain line for host:port ('[host]:port' when port != 22). */
  knownHostsFile: string;
  /** Temp dir holding config, keys and log. */
  dir: string;
  /** Empty absolute dir owned by `user`, for rcpp2p's rendezvousDir. */
  rendezvousDir: string;
  netns: string | undefined;
  /** The running listener's PID (changes on restart). */
  readonly pid: number;
  logText(): string;
  /**
   * Kills sshd and its session processes by PID, as a crash or reboot of the rendezvous host would,
   * but keeps keys, config and the rendezvous dir for restart(). Idempotent.
   */
  halt(): Promise<void>;
  /** Starts sshd again (halting it first if running): same host key, config, address and port. */
  restart(): Promise<void>;
  /** Kills sshd and its session processes by PID and removes the temp dir. Idempotent. */
  stop(): Promise<void>;
}

const STARTUP_MS = 10_000;

export function knownHostsName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

/** Picks a port that was free a moment ago (sshd cannot take port 0). */
async function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen({ host, port: 0, exclusive: true }, () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** One TCP connect to host:port (inside netns via a short node child); true when it got a banner. */
export async function acceptsTcp(
  netns: string | undefined,
  host: string,
  port: number,
): Promise<boolean> {
  const script =
    `const s=require('net').connect(${port},${JSON.stringify(host)});` +
    `s.setTimeout(1000,()=>process.exit(2));s.on('error',()=>process.exit(1));` +
    `s.on('data',d=>{process.exit(String(d).startsWith('SSH-')?0:3)});`;
  const r = await runCommand(process.execPath, ['-e', script], { netns, timeoutMs: 5000 });
  return r.code === 0;
}

export function delay(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason as Error);
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(t);
      reject(signal.reason as Error);
    });
  });
}

function sshdConfig(
  dir: string,
  hosts: string[],
  port: number,
  profile: SshdProfile,
  forwarding: boolean,
  extra: string[],
): string {
  const lab = [
    `AllowStreamLocalForwarding ${forwarding ? 'yes' : 'no'}`,
    'StreamLocalBindUnlink yes',
    'PrintLastLog no',
    'MaxStartups 100',
    'MaxSessions 100',
  ];
  const base = [
    `Port ${port}`,
    ...hosts.map((h) => `ListenAddress ${h}`),
    `HostKey ${join(dir, 'host_ed25519')}`,
    `PidFile ${join(dir, 'sshd.pid')}`,
    `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
    // what a key login as root from a temp dir needs (StrictModes would refuse a key under /tmp)
    'UsePAM no',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'PubkeyAuthentication yes',
    'PermitRootLogin prohibit-password',
    'StrictModes no',
    'LogLevel VERBOSE',
    'PrintMotd no',
    'Subsystem sftp internal-sftp',
    ...(profile === 'lab' ? lab : []),
  ];
  // sshd keeps the first value of a keyword, so an extra line replaces the base line it names
  const keyword = (line: string): string => line.trim().split(/\s+/)[0]?.toLowerCase() ?? '';
  const firstMatch = extra.findIndex((l) => keyword(l) === 'match');
  const overridden = new Set(extra.slice(0, firstMatch < 0 ? undefined : firstMatch).map(keyword));
  return [...base.filter((l) => !overridden.has(keyword(l))), ...extra, ''].join('\n');
}

export async function startSshd(opts: SshdOptions): Promise<SshdFixture> {
  const signal = AbortSignal.any([
    AbortSignal.timeout(STARTUP_MS * 3),
    ...(opts.signal ? [opts.signal] : []),
  ]);
  const root = process.getuid?.() === 0;
  if (opts.netns && !root) throw new Error('startSshd: a netns needs root');
  if (root) await mkdir('/run/sshd', { recursive: true, mode: 0o755 });
  const dir = await mkdtemp(join(tmpdir(), 'rcpp2p-sshd-'));
  try {
    const hostKey = join(dir, 'host_ed25519');
    const clientKey = join(dir, 'client_ed25519');
    await makeEd25519Key(hostKey, 'rcpp2p-test-host');
    await makeEd25519Key(clientKey, 'rcpp2p-test-client');
    const hostPublicKey = (await readFile(`${hostKey}.pub`, 'utf8'))
      .split(' ')
      .slice(0, 2)
      .join(' ');
    const clientPublicKey = (await readFile(`${clientKey}.pub`, 'utf8')).trim();
    await writeFile(join(dir, 'authorized_keys'), `${clientPublicKey}\n`, { mode: 0o600 });
    const rendezvousDir = join(dir, 'rendezvous');
    await mkdir(rendezvousDir, { mode: 0o700 });

    const forwarding = opts.allowStreamLocalForwarding ?? true;
    const profile = opts.profile ?? 'lab';
    if (profile !== 'lab' && opts.allowStreamLocalForwarding !== undefined) {
      throw new Error(
        'startSshd: allowStreamLocalForwarding is for the lab profile; use extraConfig',
      );
    }
    const hosts = [opts.listenAddress, ...(opts.moreListenAddresses ?? [])];
    const log = join(dir, 'sshd.log');
    const config = join(dir, 'sshd_config');
    let lastError = '';
    for (let attempt = 0; attempt < 5; attempt++) {
      signal.throwIfAborted();
      const port = opts.port ?? (opts.netns ? 22 : await freePort(opts.listenAddress));
      await writeFile(
        config,
        sshdConfig(dir, hosts, port, profile, forwarding, opts.extraConfig ?? []),
      );
      await rm(log, { force: true });
      // -t first: a config error is reported clearly instead of as a startup timeout
      await runChecked(SSHD, ['-t', '-f', config]);
      const proc = spawnProcess(SSHD, ['-D', '-f', config, '-E', log], { netns: opts.netns });
      const listening = await waitListening(proc, log, hosts, port, signal);
      if (listening === 'ok' && (await acceptsTcp(opts.netns, opts.listenAddress, port))) {
        return await fixture({
          proc,
          config,
          dir,
          host: opts.listenAddress,
          hosts,
          knownHostsNames: opts.knownHostsNames ?? [knownHostsName(opts.listenAddress, port)],
          port,
          user: root ? 'root' : userInfo().username,
          clientKey,
          clientPublicKey,
          hostPublicKey,
          rendezvousDir,
          netns: opts.netns,
          log,
        });
      }
      lastError = `${listening}: ${readLog(log)}${proc.stderr()}`;
      await proc.kill(1000);
      if (opts.port !== undefined || !/Address already in use|Cannot bind/.test(lastError)) break;
    }
    throw new Error(`sshd did not start: ${lastError}`);
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

function readLog(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

/**
 * Waits for sshd's "listening" line for every address in the log, looking only past `fromOffset`
 * (sshd -E appends).
 */
async function waitListening(
  proc: ProcessHandle,
  log: string,
  hosts: string[],
  port: number,
  signal: AbortSignal,
  fromOffset = 0,
): Promise<'ok' | 'exited' | 'timeout'> {
  const deadline = Date.now() + STARTUP_MS;
  const lines = hosts.map((host) => `Server listening on ${host} port ${port}.`);
  while (Date.now() < deadline) {
    if (proc.hasExited()) return 'exited';
    const text = existsSync(log) ? readLog(log).slice(fromOffset) : '';
    if (lines.every((line) => text.includes(line))) return 'ok';
    await delay(20, signal);
  }
  return 'timeout';
}

interface FixtureParts {
  proc: ProcessHandle;
  config: string;
  dir: string;
  host: string;
  hosts: string[];
  knownHostsNames: string[];
  port: number;
  user: string;
  clientKey: string;
  clientPublicKey: string;
  hostPublicKey: string;
  rendezvousDir: string;
  netns: string | undefined;
  log: string;
}

async function fixture(p: FixtureParts): Promise<SshdFixture> {
  const knownHostsFile = join(p.dir, 'known_hosts');
  await writeFile(knownHostsFile, `${p.knownHostsNames.join(',')} ${p.hostPublicKey}\n`);
  let finalLog: string | undefined;
  let stopping: Promise<void> | undefined;
  let proc = p.proc;
  let halting: Promise<void> | undefined;
  const halt = (): Promise<void> => {
    halting ??= (async () => {
      // session processes are children of the listener; collect them before it goes
      const sessions = proc.hasExited() ? [] : descendantPids(proc.pid);
      await proc.kill(2000);
      await killPids(sessions.filter(pidAlive), 1000);
    })();
    return halting;
  };
  return {
    host: p.host,
    port: p.port,
    user: p.user,
    clientKeyFile: p.clientKey,
    clientPublicKey: p.clientPublicKey,
    hostPublicKey: p.hostPublicKey,
    knownHostsFile,
    dir: p.dir,
    rendezvousDir: p.rendezvousDir,
    netns: p.netns,
    get pid() {
      return proc.pid;
    },
    logText: () => finalLog ?? readLog(p.log),
    halt,
    async restart() {
      if (stopping) throw new Error('sshd fixture is stopped');
      await halt();
      const from = readLog(p.log).length;
      const next = spawnProcess(SSHD, ['-D', '-f', p.config, '-E', p.log], { netns: p.netns });
      proc = next;
      halting = undefined;
      const signal = AbortSignal.timeout(STARTUP_MS * 2);
      const listening = await waitListening(next, p.log, p.hosts, p.port, signal, from);
      if (listening !== 'ok' || !(await acceptsTcp(p.netns, p.host, p.port))) {
        await halt();
        throw new Error(`sshd did not restart (${listening}): ${readLog(p.log).slice(from)}`);
      }
    },
    stop() {
      stopping ??= (async () => {
        await halt();
        finalLog = readLog(p.log);
        if (process.env['RCPP2P_KEEP_TEST_DIRS'] !== '1') {
          await rm(p.dir, { recursive: true, force: true });
        }
      })();
      return stopping;
    },
  };
}

/**
 * Arguments for the system `ssh` client that log in to the fixture with its key and known_hosts
 * only (no user config, no agent, strict host key checking). Append the remote command.
 */
export function sshClientArgs(
  fx: Pick<SshdFixture, 'host' | 'port' | 'user' | 'clientKeyFile' | 'knownHostsFile'>,
): string[] {
  return [...sshLoginOptions(fx), '-p', String(fx.port), '-l', fx.user, fx.host];
}

/**
 * The login options of sshClientArgs without port, user and host, for any OpenSSH client: scp and
 * sftp spell the port -P (and scp reads -l as a bandwidth limit), so they add their own.
 */
export function sshLoginOptions(
  fx: Pick<SshdFixture, 'clientKeyFile' | 'knownHostsFile'>,
): string[] {
  return [
    '-F',
    '/dev/null',
    '-o',
    'BatchMode=yes',
    '-o',
    'IdentitiesOnly=yes',
    '-o',
    'IdentityAgent=none',
    '-o',
    `UserKnownHostsFile=${fx.knownHostsFile}`,
    '-o',
    'GlobalKnownHostsFile=/dev/null',
    '-o',
    'StrictHostKeyChecking=yes',
    '-o',
    'ConnectTimeout=10',
    '-i',
    fx.clientKeyFile,
  ];
}
