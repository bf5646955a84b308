// The rendezvous kinds of the NAT lab (lab-rendezvous.ts), on this host's loopback instead of in a
// namespace, for integration tests of the signaling transports: OpenSSH at its defaults, without
// Unix-socket forwarding, without any forwarding, and Dropbear. OpenSSH runs unprivileged on a high
// port; Dropbear needs root (it reads /root/.ssh/authorized_keys, so it runs in a mount namespace
// of its own with a temp home bound over /root; see dropbear.ts).
import { existsSync } from 'node:fs';
import { isRoot, type Capability } from './capability.js';
import { DROPBEAR, UNSHARE, startDropbear } from './dropbear.js';
import { startSshd, type SshdFixture } from './sshd.js';

export type LoopbackKind =
  'openssh-defaults' | 'openssh-no-streamlocal' | 'openssh-no-forwarding' | 'dropbear';

export const LOOPBACK_KINDS: readonly LoopbackKind[] = [
  'openssh-defaults',
  'openssh-no-streamlocal',
  'openssh-no-forwarding',
  'dropbear',
];

const OPENSSH_CONFIG: Record<Exclude<LoopbackKind, 'dropbear'>, string[]> = {
  'openssh-defaults': [],
  'openssh-no-streamlocal': ['AllowStreamLocalForwarding no'],
  'openssh-no-forwarding': ['DisableForwarding yes'],
};

export interface LoopbackRendezvousOptions {
  /** More sshd_config lines (OpenSSH kinds; a keyword given here wins). */
  sshdConfig?: string[];
  /** More dropbear options (Dropbear). */
  dropbearArgs?: string[];
}

export function canRunLoopbackDropbear(): Capability {
  const root = isRoot();
  if (!root.ok) return { ok: false, reason: 'needs root (Dropbear reads /root/.ssh)' };
  for (const [path, pkg] of [
    [DROPBEAR, 'dropbear-bin'],
    [UNSHARE, 'util-linux'],
  ] as const) {
    if (!existsSync(path)) return { ok: false, reason: `needs ${path} (Debian package ${pkg})` };
  }
  return { ok: true, reason: '' };
}

/** A free high port on 127.0.0.1 for Dropbear (which, like sshd, cannot be given port 0). */
async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen({ host: '127.0.0.1', port: 0, exclusive: true }, () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export async function startLoopbackRendezvous(
  kind: LoopbackKind,
  opts: LoopbackRendezvousOptions = {},
): Promise<SshdFixture> {
  if (kind === 'dropbear') {
    return startDropbear({
      listenAddresses: ['127.0.0.1'],
      port: await freePort(),
      ...(opts.dropbearArgs && { extraArgs: opts.dropbearArgs }),
    });
  }
  return startSshd({
    listenAddress: '127.0.0.1',
    profile: 'stock',
    // the caller's lines first: sshd keeps the first value of a keyword
    extraConfig: [...(opts.sshdConfig ?? []), ...OPENSSH_CONFIG[kind]],
  });
}
