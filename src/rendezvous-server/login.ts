// The login attempts of one connection to the embedded rendezvous, with sshd's limits: a connection
// is closed after `maxAuthTries` failed attempts (MaxAuthTries), password attempts from a source that
// used up its tries are refused unchecked (see password-backoff.ts), and an account already holding
// `maxConnectionsPerAccount` connections takes no more. The "none" probe every client sends first is
// answered with the methods on offer and is neither a failure nor a console line.
import type { AuthContext, AuthenticationType } from 'ssh2';
import { setTimeout as delay } from 'node:timers/promises';
import { isRcppError } from '../errors.js';
import { quote } from '../protocol/text.js';
import { loadAccounts, type Account } from './accounts.js';
import type { Ticket } from './admission.js';
import { checkLogin, usesPassword } from './authenticate.js';
import type { RendezvousLimits } from './limits.js';
import type { PasswordBackoff } from './password-backoff.js';

const METHODS: AuthenticationType[] = ['publickey', 'password', 'keyboard-interactive'];
/** A wrong password is answered this much later (one connection's guesses come no faster). */
const FAILED_PASSWORD_DELAY_MS = 400;

export interface LoginDeps {
  stateDir: string;
  limits: Pick<RendezvousLimits, 'maxAuthTries' | 'maxConnectionsPerAccount'>;
  backoff: PasswordBackoff;
  /** A console line anyone can cause (rate-limited per source). */
  refusal: (source: string, text: string) => void;
  /** Logged-in connections the account holds now. */
  connectionsOf: (user: string) => number;
}

export class LoginAttempts {
  private failures = 0;
  /** Set just before the accepting answer, so the connection's `ready` handler can read it. */
  account: Account | undefined;

  constructor(
    private readonly deps: LoginDeps,
    private readonly ticket: Ticket,
    /** Closes the connection. */
    private readonly close: () => void,
  ) {}

  handle(ctx: AuthContext): void {
    this.decide(ctx).catch(() => ctx.reject());
  }

  private async decide(ctx: AuthContext): Promise<void> {
    const who = `${quote(ctx.username, 64)} from ${this.ticket.ip}`;
    const { source } = this.ticket;
    if (usesPassword(ctx) && !this.deps.backoff.take(source)) {
      const seconds = Math.ceil(this.deps.backoff.waitMs(source) / 1000);
      this.fail(
        ctx,
        `refused ${ctx.method} login of ${who}: too many wrong passwords from there; ` +
          `the next try is possible in ${seconds} s`,
      );
      return;
    }
    let accounts: Account[];
    try {
      accounts = await loadAccounts(this.deps.stateDir);
    } catch (err) {
      if (usesPassword(ctx)) this.deps.backoff.refund(source);
      const text = isRcppError(err) ? `${err.message} ${err.hint}` : String(err);
      this.deps.refusal('accounts', `cannot check logins: ${text}`);
      ctx.reject(METHODS);
      return;
    }
    const verdict = await checkLogin(ctx, accounts);
    if (verdict.kind === 'probe') {
      ctx.reject(METHODS);
      return;
    }
    if (verdict.kind === 'reject') {
      if (usesPassword(ctx)) await delay(FAILED_PASSWORD_DELAY_MS);
      this.fail(ctx, `refused login of ${who} (${ctx.method})`);
      return;
    }
    if (usesPassword(ctx)) this.deps.backoff.refund(source);
    const final = ctx.method !== 'publickey' || ctx.signature !== undefined;
    const user = verdict.account.user;
    if (final && this.deps.connectionsOf(user) >= this.deps.limits.maxConnectionsPerAccount) {
      this.deps.refusal(
        source,
        `refused login of ${user} from ${this.ticket.ip}: the account already has ` +
          `${this.deps.limits.maxConnectionsPerAccount} connections`,
      );
      ctx.reject(METHODS);
      this.close();
      return;
    }
    if (final) this.account = verdict.account;
    ctx.accept();
  }

  private fail(ctx: AuthContext, line: string): void {
    this.failures++;
    this.deps.refusal(this.ticket.source, line);
    ctx.reject(METHODS);
    if (this.failures >= this.deps.limits.maxAuthTries) {
      this.deps.refusal(
        this.ticket.source,
        `closed the connection from ${this.ticket.ip} after ${this.failures} failed logins`,
      );
      this.close();
    }
  }
}
