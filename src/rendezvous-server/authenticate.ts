// Checks one SSH login attempt against the embedded rendezvous's accounts. A public key must be one
// the account authorised, and a signed attempt must carry a signature that verifies with that key
// (an unsigned one only asks whether the key would do). A password, given directly or through
// keyboard-interactive, must match the account's scrypt hash. Limits live in login.ts.
import type { AuthContext } from 'ssh2';
import { parseSshKey } from '../rendezvous/ssh-key.js';
import { checkPassword, type Account } from './accounts.js';

export type Verdict =
  /** Log in as this account; for an unsigned public key: "this key would do, sign with it". */
  | { kind: 'accept'; account: Account }
  /** The "none" method clients send first to learn which methods exist: not a failed login. */
  | { kind: 'probe' }
  | { kind: 'reject' };

export function usesPassword(ctx: AuthContext): boolean {
  return ctx.method === 'password' || ctx.method === 'keyboard-interactive';
}

export async function checkLogin(ctx: AuthContext, accounts: Account[]): Promise<Verdict> {
  const account = accounts.find((a) => a.user === ctx.username);
  switch (ctx.method) {
    case 'none':
      return { kind: 'probe' };
    case 'publickey': {
      if (!account) return { kind: 'reject' };
      const key = account.authorizedKeys
        .map((line) => parseSshKey(line))
        .find((k) => k !== undefined && k.getPublicSSH().equals(ctx.key.data));
      if (key === undefined) return { kind: 'reject' };
      if (ctx.signature === undefined) return { kind: 'accept', account };
      const signed = ctx.blob !== undefined && key.verify(ctx.blob, ctx.signature, ctx.hashAlgo);
      return signed === true ? { kind: 'accept', account } : { kind: 'reject' };
    }
    case 'password':
      return passwordVerdict(ctx.password, account);
    case 'keyboard-interactive': {
      const answers = await new Promise<string[] | undefined>((done) => {
        ctx.prompt([{ prompt: 'Password: ', echo: false }], (responses) =>
          done(Array.isArray(responses) ? responses : undefined),
        );
      });
      return passwordVerdict(answers?.[0] ?? '', account);
    }
    default:
      return { kind: 'reject' };
  }
}

async function passwordVerdict(password: string, account: Account | undefined): Promise<Verdict> {
  // checkPassword takes as long for an unknown user or a key-only account as for a wrong password.
  const ok = await checkPassword(password, account?.passwordHash);
  return ok && account ? { kind: 'accept', account } : { kind: 'reject' };
}
