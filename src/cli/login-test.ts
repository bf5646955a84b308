// The login test of --configure (the wizard's last step, and --yes with --test-login or
// --trust-host-key): log in to the rendezvous once from the configured port, as ssh would, and
// decide about an unknown host key on the way. Pure checks of answers (a key file) live here too.
import { readFile, stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import ssh2 from 'ssh2';
import type { Config } from '../config/config.js';
import { expandHome } from '../config/paths.js';
import { isRcppError, RcppError } from '../errors.js';
import { joinRendezvous } from '../link/join-rendezvous.js';
import { appendKnownHost } from '../rendezvous/known-hosts-file.js';
import { resolveSshAuth } from '../rendezvous/ssh-auth.js';
import type { UnknownHostKey } from '../rendezvous/ssh-session.js';
import { rendezvousSettings, type CommandContext } from './context.js';

/** What to do with a host key that is not in known_hosts: ask, or compare with a fingerprint. */
export type HostKeyDecision = (info: UnknownHostKey) => Promise<boolean>;

/** Logs in once; returns the failure instead of throwing it (Ctrl-C still throws). */
export async function testLogin(
  ctx: CommandContext,
  config: Config,
  onUnknownHostKey: HostKeyDecision,
): Promise<RcppError | undefined> {
  try {
    const auth = await resolveSshAuth(config.auth, ctx.ask, ctx.io.env);
    const joined = await joinRendezvous(
      {
        rendezvous: rendezvousSettings(config),
        auth,
        localPort: config.port,
        portFallback: 'any',
        signal: ctx.signal,
        onProgress: ctx.view.onProgress,
        onUnknownHostKey,
      },
      config.serverName !== undefined
        ? { role: 'server', name: config.serverName }
        : { role: 'client', name: config.clientName ?? 'none' },
    );
    await joined.session.close();
    return undefined;
  } catch (err) {
    if (!isRcppError(err) || err.code === 'ABORTED') throw err;
    return err;
  }
}

/** "[host]:port" for a non-22 port, like known_hosts and ssh's messages. */
export function hostLabel(info: { host: string; port: number }): string {
  return info.port === 22 ? info.host : `[${info.host}]:${info.port}`;
}

const FINGERPRINT = /^SHA256:[A-Za-z0-9+/]{43}$/;

/** Checks a --trust-host-key value: the SHA256 form ssh-keygen -lf and the embedded rendezvous print. */
export function parseFingerprint(text: string): string {
  const fp = text.trim().replace(/=+$/, '');
  if (!FINGERPRINT.test(fp)) {
    throw new RcppError(
      'USAGE',
      `--trust-host-key takes a key fingerprint like SHA256:AbC... (43 characters after "SHA256:"), not "${text}".`,
      'The embedded rendezvous prints it when it starts; for OpenSSH run on any machine: ssh-keyscan -p PORT HOST | ssh-keygen -lf -',
    );
  }
  return fp;
}

/**
 * For --trust-host-key: trusts (appends to known_hosts) the key with exactly this fingerprint and
 * refuses any other with a sentence naming both.
 */
export function trustFingerprint(
  ctx: CommandContext,
  fingerprint: string,
  knownHostsFile: string,
): HostKeyDecision {
  return async (info) => {
    if (info.fingerprint !== fingerprint) {
      throw new RcppError(
        'HOST_KEY_MISMATCH',
        `The rendezvous ${hostLabel(info)} offered the host key ${info.keyType} ${info.fingerprint}, not ${fingerprint} as --trust-host-key says; it was not trusted.`,
        'Check the fingerprint with the rendezvous owner (ssh-keyscan HOST | ssh-keygen -lf - lists every key type); someone could be intercepting the connection.',
      );
    }
    await appendKnownHost(knownHostsFile, info.host, info.port, info.keyType, info.keyBlob);
    ctx.view.onProgress({
      type: 'note',
      text: `Added ${hostLabel(info)} (${info.keyType} ${info.fingerprint}) to ${knownHostsFile}.`,
    });
    return true;
  };
}

/** Why a private key file cannot be used, or undefined when it can (an encrypted key can). */
export async function keyProblem(input: string, cwd: string): Promise<string | undefined> {
  const text = input.trim();
  if (text === '') return 'Give the path of an SSH private key, such as ~/.ssh/id_ed25519.';
  const path = resolve(cwd, expandHome(text));
  const st = await stat(path).catch(() => undefined);
  if (st === undefined) return `${text} does not exist.`;
  if (!st.isFile()) return `${text} is not a file.`;
  const key = await readFile(path).catch(() => undefined);
  if (key === undefined) return `${text} cannot be read by this user.`;
  const parsed = ssh2.utils.parseKey(key);
  if (parsed instanceof Error && !/encrypted/i.test(parsed.message)) {
    return `${text} is not an SSH private key (give the private key, not the .pub file).`;
  }
  if (!(parsed instanceof Error) && !parsed.isPrivateKey()) {
    return `${text} is a public key; give the private key beside it.`;
  }
  return undefined;
}
