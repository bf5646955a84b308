// How this peer logs in to the rendezvous: a key file (maybe encrypted), ssh-agent, or a password
// asked at each run. Secrets stay in memory; asking is the CLI's job, through the `ask` callback.
import { readFile } from 'node:fs/promises';
import ssh2 from 'ssh2';
import { RcppError } from '../errors.js';

export type SshAuth =
  | { method: 'key'; path: string; privateKey: Buffer; passphrase?: string }
  | { method: 'agent'; agentSocket: string }
  | { method: 'password'; password: string };

export type AuthSetting =
  { method: 'key'; identityFile: string } | { method: 'agent' } | { method: 'password' };

/**
 * Asks the user something; `secret` answers are never echoed. `retry` marks a question asked again
 * because the last answer was wrong: a terminal shows `notice` and asks; an asker that cannot ask
 * again (one line of --password-stdin) rejects with `failure` instead.
 */
export type Ask = (
  question: string,
  options: { secret: boolean; retry?: { notice: string; failure: Error } },
) => Promise<string>;

const MAX_PASSPHRASE_TRIES = 3;

export async function resolveSshAuth(
  setting: AuthSetting,
  ask: Ask,
  env: NodeJS.ProcessEnv = process.env,
): Promise<SshAuth> {
  switch (setting.method) {
    case 'agent': {
      const agentSocket = env['SSH_AUTH_SOCK'];
      if (!agentSocket) {
        throw new RcppError(
          'AUTH_FAILED',
          'rcpp2p is set to log in with ssh-agent, but SSH_AUTH_SOCK is not set.',
          'Start ssh-agent and add your key (ssh-add), or choose a key file with rcpp2p --configure.',
        );
      }
      return { method: 'agent', agentSocket };
    }
    case 'password':
      return { method: 'password', password: await ask('Password:', { secret: true }) };
    case 'key':
      return loadKey(setting.identityFile, ask);
  }
}

async function loadKey(path: string, ask: Ask): Promise<SshAuth> {
  let privateKey: Buffer;
  try {
    privateKey = await readFile(path);
  } catch (err) {
    throw new RcppError(
      'AUTH_FAILED',
      `The SSH key ${path} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'}).`,
      'Check the path, or choose another key with rcpp2p --configure.',
      { cause: err },
    );
  }
  const parsed = ssh2.utils.parseKey(privateKey);
  if (!(parsed instanceof Error)) return { method: 'key', path, privateKey };
  if (!/encrypted/i.test(parsed.message)) {
    throw new RcppError(
      'AUTH_FAILED',
      `${path} is not an SSH private key rcpp2p can use (${parsed.message}).`,
      'Use an OpenSSH, PEM or PuTTY private key file.',
    );
  }
  for (let attempt = 1; attempt <= MAX_PASSPHRASE_TRIES; attempt++) {
    const passphrase = await ask(`Passphrase for ${path}:`, {
      secret: true,
      ...(attempt > 1 && {
        retry: { notice: 'Wrong passphrase, try again.', failure: wrongPassphrase(path, 1) },
      }),
    });
    if (!(ssh2.utils.parseKey(privateKey, passphrase) instanceof Error)) {
      return { method: 'key', path, privateKey, passphrase };
    }
  }
  throw wrongPassphrase(path, MAX_PASSPHRASE_TRIES);
}

function wrongPassphrase(path: string, tries: number): RcppError {
  return new RcppError(
    'AUTH_FAILED',
    tries === 1
      ? `Wrong passphrase for ${path}.`
      : `Wrong passphrase for ${path} (${tries} tries).`,
    `Check the passphrase with: ssh-keygen -y -f ${path}`,
  );
}
