// rcpp2p --rendezvous-server: run the embedded rendezvous (for people without an OpenSSH account
// to share), and --add-account to let a user log in to it with a public key and/or a password.
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { RcppError } from '../../errors.js';
import { checkPeerName } from '../../peer.js';
import {
  hashPassword,
  loadAccounts,
  MAX_PASSWORD_CHARS,
  MIN_PASSWORD_CHARS,
  normalizePublicKey,
  saveAccounts,
} from '../../rendezvous-server/accounts.js';
import { startRendezvousServer } from '../../rendezvous-server/server.js';
import type { CommandContext } from '../context.js';

export interface RendezvousServerFlags {
  listen: string | undefined;
  state: string | undefined;
  addAccount: string | undefined;
  authorizedKey: string | undefined;
  password: boolean;
}

export function defaultStateDir(env: NodeJS.ProcessEnv): string {
  const xdg = env['XDG_STATE_HOME'];
  return join(
    xdg && xdg.startsWith('/') ? xdg : join(homedir(), '.local', 'state'),
    'rcpp2p-rendezvous',
  );
}

export async function rendezvousServerCommand(
  ctx: CommandContext,
  flags: RendezvousServerFlags,
): Promise<number> {
  const stateDir = resolve(ctx.io.cwd, flags.state ?? defaultStateDir(ctx.io.env));
  if (flags.addAccount !== undefined) return addAccount(ctx, stateDir, flags);
  const { host, port } = parseListen(flags.listen ?? '0.0.0.0:2222');
  const accounts = await loadAccounts(stateDir);
  const running = await startRendezvousServer({
    stateDir,
    host,
    port,
    onEvent: (text) => ctx.view.onProgress({ type: 'note', text }),
  });
  try {
    if (accounts.length === 0) {
      ctx.view.onProgress({
        type: 'note',
        text: `No accounts yet: add one with rcpp2p --rendezvous-server --state ${stateDir} --add-account NAME --authorized-key ~/.ssh/id_ed25519.pub`,
      });
    }
    ctx.view.onProgress({
      type: 'note',
      text: `Set up a peer that trusts it with: rcpp2p --configure --trust-host-key ${running.hostKey.fingerprint}`,
    });
    ctx.view.onProgress({
      type: 'note',
      text: `Peers should trust this host key: ${running.hostKey.publicLine} (${running.hostKey.fingerprint}). Press Ctrl-C to stop.`,
    });
    await new Promise<void>((done) => {
      if (ctx.signal.aborted) done();
      else ctx.signal.addEventListener('abort', () => done(), { once: true });
    });
  } finally {
    await running.close();
  }
  return 0;
}

async function addAccount(
  ctx: CommandContext,
  stateDir: string,
  flags: RendezvousServerFlags,
): Promise<number> {
  const user = checkPeerName(flags.addAccount ?? '', 'account name');
  if (flags.authorizedKey === undefined && !flags.password) {
    throw new RcppError(
      'USAGE',
      '--add-account needs --authorized-key FILE, --account-password, or both.',
    );
  }
  const accounts = await loadAccounts(stateDir);
  const existing = accounts.find((a) => a.user === user) ?? { user, authorizedKeys: [] };
  if (flags.authorizedKey !== undefined) {
    const text = await readFile(resolve(ctx.io.cwd, flags.authorizedKey), 'utf8').catch(() => {
      throw new RcppError('FILE_NOT_FOUND', `Cannot read the public key ${flags.authorizedKey}.`);
    });
    for (const line of text.split('\n').filter((l) => l.trim() && !l.startsWith('#'))) {
      const key = normalizePublicKey(line);
      if (!existing.authorizedKeys.includes(key)) existing.authorizedKeys.push(key);
    }
  }
  if (flags.password) existing.passwordHash = await hashPassword(await askNewPassword(ctx, user));
  await saveAccounts(stateDir, [...accounts.filter((a) => a.user !== user), existing]);
  ctx.view.print(
    `Account ${user} saved in ${stateDir} (${existing.authorizedKeys.length} key(s)${existing.passwordHash ? ', password' : ''}).`,
  );
  return 0;
}

/** Asks for a new password twice; refuses a short one and two that differ. */
async function askNewPassword(ctx: CommandContext, user: string): Promise<string> {
  const password = await ctx.ask(`New password for ${user}:`, { secret: true });
  const length = [...password].length;
  if (length < MIN_PASSWORD_CHARS || password.length > MAX_PASSWORD_CHARS) {
    throw new RcppError(
      'USAGE',
      `That password has ${length} characters; a rendezvous password needs ${MIN_PASSWORD_CHARS} to ${MAX_PASSWORD_CHARS}.`,
      'Anyone who can reach the rendezvous can guess at it: a few unrelated words make a good one.',
    );
  }
  const again = await ctx.ask(`The same password again:`, { secret: true });
  if (again !== password) {
    throw new RcppError(
      'USAGE',
      'The two passwords differ, so nothing was changed.',
      'Run the command again and type the same password twice.',
    );
  }
  return password;
}

function parseListen(text: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(text);
  const port = Number(m?.[3]);
  if (!m || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new RcppError(
      'USAGE',
      `--listen takes HOST:PORT (for example 0.0.0.0:2222), not "${text}".`,
    );
  }
  return { host: m[1] ?? m[2] ?? '0.0.0.0', port };
}
