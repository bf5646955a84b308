// Dropbear (Debian `dropbear-bin`) as the lab's rendezvous, with the same fixture shape as the
// OpenSSH one (sshd.ts), so peers log in the same way: user root, a generated ed25519 client key,
// a known_hosts line for the host key. The host key is made by ssh-keygen and converted with
// `dropbearconvert openssh dropbear`, so OpenSSH clients and ssh2 see the key known_hosts names.
//
// Dropbear has no AuthorizedKeysFile option: it reads ~/.ssh/authorized_keys of the account. So it
// runs in its own mount namespace (`ip netns exec` makes one, with / a slave of the host's) in which
// a temp folder is bind-mounted over /root: the real /root is never read or written, the mount
// disappears with the last process of that namespace, and two labs never share a home.
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  descendantPids,
  killPids,
  pidAlive,
  runChecked,
  spawnProcess,
  type ProcessHandle,
} from './processes.js';
import { acceptsTcp, delay, makeEd25519Key, type SshdFixture } from './sshd.js';

export const DROPBEAR = '/usr/sbin/dropbear';
export const DROPBEARCONVERT = '/usr/bin/dropbearconvert';

export interface DropbearOptions {
  /** Network namespace to run in (required: the home bind mount needs `ip netns exec`). */
  netns: string;
  /** Addresses to listen on (port 22); the first is the fixture's `host`. */
  listenAddresses: string[];
  /** Host patterns for the known_hosts line; default: the first listen address. */
  knownHostsNames?: string[];
  signal?: AbortSignal;
}

const STARTUP_MS = 10_000;

function listenArg(address: string): string {
  return address.includes(':') ? `[${address}]:22` : `${address}:22`;
}

export async function startDropbear(opts: DropbearOptions): Promise<SshdFixture> {
  if (process.getuid?.() !== 0) throw new Error('startDropbear: needs root');
  const host = opts.listenAddresses[0];
  if (!host) throw new Error('startDropbear: no listen address');
  const dir = await mkdtemp(join(tmpdir(), 'rcpp2p-dropbear-'));
  try {
    const opensshHostKey = join(dir, 'host_ed25519');
    const hostKey = join(dir, 'host_ed25519.dropbear');
    const clientKey = join(dir, 'client_ed25519');
    await makeEd25519Key(opensshHostKey, 'rcpp2p-test-host');
    await runChecked(DROPBEARCONVERT, ['openssh', 'dropbear', opensshHostKey, hostKey]);
    await makeEd25519Key(clientKey, 'rcpp2p-test-client');
    const hostPublicKey = (await readFile(`${opensshHostKey}.pub`, 'utf8'))
      .split(' ')
      .slice(0, 2)
      .join(' ');
    const clientPublicKey = (await readFile(`${clientKey}.pub`, 'utf8')).trim();
    // the account's home as dropbear sees it (mounted over /root); dropbear checks it is not
    // group- or world-writable, like StrictModes
    const home = join(dir, 'home');
    await mkdir(join(home, '.ssh'), { recursive: true, mode: 0o700 });
    await chmod(home, 0o700);
    await writeFile(join(home, '.ssh', 'authorized_keys'), `${clientPublicKey}\n`, { mode: 0o600 });
    const rendezvousDir = join(home, 'rendezvous');
    await mkdir(rendezvousDir, { mode: 0o700 });
    const knownHostsFile = join(dir, 'known_hosts');
    const names = opts.knownHostsNames ?? [host];
    await writeFile(knownHostsFile, `${names.join(',')} ${hostPublicKey}\n`);

    const args = [
      ...['-c', 'mount --bind "$0" /root && exec "$@"', home, DROPBEAR],
      ...['-F', '-E', '-s', '-m', '-r', hostKey, '-P', join(dir, 'dropbear.pid')],
      ...opts.listenAddresses.flatMap((a) => ['-p', listenArg(a)]),
    ];
    let proc: ProcessHandle | undefined;
    let earlierLog = '';
    const halt = async (): Promise<void> => {
      const p = proc;
      if (!p) return;
      const sessions = p.hasExited() ? [] : descendantPids(p.pid);
      await p.kill(2000);
      await killPids(sessions.filter(pidAlive), 1000);
      earlierLog += p.stdout() + p.stderr();
      if (proc === p) proc = undefined;
    };
    const start = async (): Promise<void> => {
      const p = spawnProcess('/bin/sh', args, { netns: opts.netns });
      proc = p;
      const deadline = Date.now() + STARTUP_MS;
      while (!(await acceptsTcp(opts.netns, host, 22))) {
        if (p.hasExited() || Date.now() > deadline) {
          await halt();
          throw new Error(`dropbear did not start: ${earlierLog}`);
        }
        await delay(50, opts.signal);
      }
    };
    await start();
    let stopping: Promise<void> | undefined;
    return {
      host,
      port: 22,
      user: 'root',
      clientKeyFile: clientKey,
      clientPublicKey,
      hostPublicKey,
      knownHostsFile,
      dir,
      rendezvousDir,
      netns: opts.netns,
      get pid() {
        return proc?.pid ?? 0;
      },
      logText: () => earlierLog + (proc ? proc.stdout() + proc.stderr() : ''),
      halt,
      async restart() {
        if (stopping) throw new Error('dropbear fixture is stopped');
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
    if (existsSync(dir)) await rm(dir, { recursive: true, force: true });
    throw err;
  }
}
