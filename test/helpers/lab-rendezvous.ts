// The lab's rendezvous host, in each of the kinds LabOptions.rendezvous names: OpenSSH with the
// lab's tuned config or at its defaults (optionally with forwarding turned off), Dropbear, or
// rcpp2p's own embedded server. All of them give the same fixture (SshdFixture): host, port, user,
// client key, known_hosts, rendezvousDir, halt()/restart()/stop(). See docs/nat-lab.md, "Rendezvous
// kinds", for what each one allows (measured by test/e2e/nat-lab-rendezvous.test.ts).
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDropbear } from './dropbear.js';
import { RCPP2P_BIN } from './lab-peers.js';
import type { ProcessHandle, RunResult, SpawnOptions } from './processes.js';
import { makeEd25519Key, startSshd, type SshdFixture } from './sshd.js';

/**
 * - 'openssh': OpenSSH sshd with the lab's tuned config (StreamLocalBindUnlink yes, MaxStartups
 *   100, MaxSessions 100; LabOptions.forwarding: false sets AllowStreamLocalForwarding no).
 * - 'openssh-defaults': OpenSSH with only what the key login needs; the rest at OpenSSH's defaults
 *   (StreamLocalBindUnlink no, MaxStartups 10:30:100, MaxSessions 10, all forwarding allowed).
 * - 'openssh-no-streamlocal': the defaults plus AllowStreamLocalForwarding no.
 * - 'openssh-no-forwarding': the defaults plus DisableForwarding yes.
 * - 'dropbear': Dropbear (no Unix-socket forwarding at all).
 * - 'embedded': rcpp2p's own `--rendezvous-server` (account `peer`).
 */
export type RendezvousKind =
  | 'openssh'
  | 'openssh-defaults'
  | 'openssh-no-streamlocal'
  | 'openssh-no-forwarding'
  | 'dropbear'
  | 'embedded';

/** The kinds rcpp2p fully supports today; suites that run everything once per kind loop over these. */
export const RENDEZVOUS_KINDS: readonly RendezvousKind[] = ['openssh', 'embedded'];
/** Every kind the lab can run. */
export const ALL_RENDEZVOUS_KINDS: readonly RendezvousKind[] = [
  'openssh',
  'openssh-defaults',
  'openssh-no-streamlocal',
  'openssh-no-forwarding',
  'dropbear',
  'embedded',
];

/**
 * The lab's rendezvous, any kind, with the fields peers need to log in (user, host, port,
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

/** What the rendezvous starters need from the lab: tracked processes in its namespaces. */
export interface LabSpawner {
  spawn(place: 'rendezvous', cmd: string, args: string[], opts?: SpawnOptions): ProcessHandle;
  exec(
    place: 'rendezvous',
    cmd: string,
    args: string[],
    opts?: SpawnOptions & { timeoutMs?: number },
  ): Promise<RunResult>;
}

export interface RendezvousStartOptions {
  kind: RendezvousKind;
  netns: string;
  /** The host's addresses; at least one. The first present is the fixture's `host`. */
  ipv4: string | undefined;
  ipv6: string | undefined;
  /** Host patterns for known_hosts (a name, both addresses); default: the fixture's host. */
  knownHostsNames?: string[];
  /** For 'openssh' only: AllowStreamLocalForwarding (default true); ignored by the other kinds. */
  forwarding?: boolean;
  /** More sshd_config lines for the OpenSSH kinds; a keyword set here wins. */
  sshdConfig?: string[];
  signal?: AbortSignal;
}

const OPENSSH_VARIANT_CONFIG: Partial<Record<RendezvousKind, string[]>> = {
  'openssh-defaults': [],
  'openssh-no-streamlocal': ['AllowStreamLocalForwarding no'],
  'openssh-no-forwarding': ['DisableForwarding yes'],
};

export async function startLabRendezvous(
  lab: LabSpawner,
  o: RendezvousStartOptions,
): Promise<LabRendezvous> {
  const addresses = [o.ipv4, o.ipv6].filter((a): a is string => a !== undefined);
  const host = addresses[0];
  if (!host) throw new Error('startLabRendezvous: the rendezvous has no address');
  if (o.forwarding === false && o.kind !== 'openssh') {
    // the other kinds have their forwarding fixed by what they are
    throw new Error(`createLab: forwarding: false is for the 'openssh' kind, not '${o.kind}'`);
  }
  if (o.sshdConfig && !o.kind.startsWith('openssh')) {
    throw new Error(`createLab: sshdConfig is for the OpenSSH kinds, not '${o.kind}'`);
  }
  switch (o.kind) {
    case 'embedded':
      return startEmbeddedRendezvous(lab, o);
    case 'dropbear': {
      const fx = await startDropbear({
        netns: o.netns,
        listenAddresses: addresses,
        knownHostsNames: o.knownHostsNames,
        signal: o.signal,
      });
      return Object.assign(fx, {
        kind: 'dropbear' as const,
        rendezvousDirOnDisk: fx.rendezvousDir,
      });
    }
    case 'openssh':
    case 'openssh-defaults':
    case 'openssh-no-streamlocal':
    case 'openssh-no-forwarding': {
      const variant = OPENSSH_VARIANT_CONFIG[o.kind];
      const sshd = await startSshd({
        netns: o.netns,
        listenAddress: host,
        moreListenAddresses: addresses.slice(1),
        port: 22,
        profile: variant ? 'stock' : 'lab',
        ...(variant ? {} : { allowStreamLocalForwarding: o.forwarding ?? true }),
        // the caller's lines first: sshd keeps the first value of a keyword
        extraConfig: [...(o.sshdConfig ?? []), ...(variant ?? [])],
        knownHostsNames: o.knownHostsNames,
        signal: o.signal,
      });
      // keep the getters (pid) and methods of the fixture: extend it in place rather than copying
      return Object.assign(sshd, { kind: o.kind, rendezvousDirOnDisk: sshd.rendezvousDir });
    }
  }
}

const EMBEDDED_USER = 'peer';
const EMBEDDED_STARTUP_MS = 20_000;

/** `--listen` for the embedded server: one socket; '[::]' takes both families on a dual host. */
function embeddedListen(o: RendezvousStartOptions): string {
  if (o.ipv4 && o.ipv6) return '[::]:22';
  return o.ipv4 ? `${o.ipv4}:22` : `[${o.ipv6 as string}]:22`;
}

/**
 * Runs the embedded rendezvous (the real CLI, `--rendezvous-server`) in the rendezvous namespace on
 * port 22, with one account `peer` whose key is generated here. Its processes are spawned through
 * the lab, so the lab's tracker kills them by PID at close. On a dual-stack host it listens on
 * [::]:22 (one socket for both families); it still reports IPv4 clients as plain IPv4 addresses.
 */
async function startEmbeddedRendezvous(
  lab: LabSpawner,
  o: RendezvousStartOptions,
): Promise<LabRendezvous> {
  const host = o.ipv4 ?? o.ipv6;
  if (!host) throw new Error('startEmbeddedRendezvous: the rendezvous has no address');
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
        ...['--listen', embeddedListen(o)],
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
    const names = o.knownHostsNames ?? [host];
    await writeFile(knownHostsFile, `${names.join(',')} ${hostPublicKey}\n`);
    let stopping: Promise<void> | undefined;
    return {
      kind: 'embedded',
      host,
      port: 22,
      user: EMBEDDED_USER,
      clientKeyFile,
      clientPublicKey,
      hostPublicKey,
      knownHostsFile,
      dir,
      rendezvousDir: '.rcpp2p',
      rendezvousDirOnDisk: join(stateDir, 'home', EMBEDDED_USER, '.rcpp2p'),
      netns: o.netns,
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
