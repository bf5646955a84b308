// Capability gates for suites that need root, OpenSSH's sshd or network namespaces.
// Locally a missing capability skips the suite and prints why; under CI=true it fails instead,
// because CI must run every suite.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

export const underCI = process.env['CI'] === 'true' || process.env['CI'] === '1';

export interface Capability {
  ok: boolean;
  reason: string;
}

export function isRoot(): Capability {
  const ok = typeof process.getuid === 'function' && process.getuid() === 0;
  return { ok, reason: ok ? '' : 'needs root (network namespaces and nftables)' };
}

export function hasCommand(path: string, why: string): Capability {
  const ok = existsSync(path);
  return { ok, reason: ok ? '' : `needs ${path} (${why})` };
}

export function canMakeNetns(): Capability {
  const root = isRoot();
  if (!root.ok) return root;
  for (const [cmd, pkg] of [
    ['/usr/sbin/ip', 'iproute2'],
    ['/usr/sbin/nft', 'nftables'],
  ] as const) {
    if (!existsSync(cmd)) return { ok: false, reason: `needs ${cmd} (Debian package ${pkg})` };
  }
  try {
    execFileSync('/usr/sbin/ip', ['netns', 'list'], { stdio: 'ignore' });
  } catch (err) {
    return { ok: false, reason: `ip netns does not work here: ${(err as Error).message}` };
  }
  return { ok: true, reason: '' };
}

export function hasSshd(): Capability {
  return hasCommand('/usr/sbin/sshd', 'Debian package openssh-server');
}

/**
 * Returns the `skip` option for a node:test suite: false when every capability is present, the
 * reason string when one is missing (node:test prints it). Under CI a missing capability throws.
 */
export function skipUnless(...caps: Capability[]): false | string {
  const missing = caps.filter((c) => !c.ok).map((c) => c.reason);
  if (missing.length === 0) return false;
  const reason = `skipped: ${missing.join('; ')}`;
  if (underCI) throw new Error(`CI must run this suite, but it would be ${reason}`);
  console.error(`# ${reason}`);
  return reason;
}
