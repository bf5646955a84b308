// The Unix sockets offered on the embedded rendezvous (streamlocal-forward), kept in memory. A socket
// is named by its account and its absolute path, so accounts never see each other's; it belongs to
// the connection that offered it until that connection cancels it, goes away, or the account runs
// `unlink-socket` (what `rm -f` of the socket file does on an OpenSSH host). Another connection
// cannot take a name that is in use. Offers are limited per connection and per account.
// Callers pass the absolute path (so `sockets/x.sock` and `/home/…/sockets/x.sock` are one socket)
// and the path as the owner spelled it, which channels to the owner must carry.

export interface ForwardingLimits {
  maxForwardingsPerConnection: number;
  maxForwardingsPerAccount: number;
}

export type OfferResult =
  { ok: true } | { ok: false; why: 'taken' | 'connection-quota' | 'account-quota' };

export interface Offered<Owner> {
  owner: Owner;
  /** The path as the owner wrote it in its streamlocal-forward request. */
  asOffered: string;
}

export class Forwardings<Owner extends object> {
  private readonly owners = new Map<string, Offered<Owner> & { account: string }>();
  private readonly byOwner = new Map<Owner, Set<string>>();
  private readonly perAccount = new Map<string, number>();

  constructor(private readonly limits: ForwardingLimits) {}

  offer(account: string, path: string, owner: Owner, asOffered = path): OfferResult {
    const key = keyOf(account, path);
    const current = this.owners.get(key);
    if (current) return current.owner === owner ? { ok: true } : { ok: false, why: 'taken' };
    const mine = this.byOwner.get(owner) ?? new Set<string>();
    if (mine.size >= this.limits.maxForwardingsPerConnection) {
      return { ok: false, why: 'connection-quota' };
    }
    const accountCount = this.perAccount.get(account) ?? 0;
    if (accountCount >= this.limits.maxForwardingsPerAccount) {
      return { ok: false, why: 'account-quota' };
    }
    this.owners.set(key, { account, owner, asOffered });
    mine.add(key);
    this.byOwner.set(owner, mine);
    this.perAccount.set(account, accountCount + 1);
    return { ok: true };
  }

  /** The owner's cancel; another connection's cancel changes nothing. True if it was removed. */
  cancel(account: string, path: string, owner: Owner): boolean {
    const key = keyOf(account, path);
    if (this.owners.get(key)?.owner !== owner) return false;
    this.remove(key);
    return true;
  }

  /** Who answers channels to this socket, if anyone. */
  find(account: string, path: string): Offered<Owner> | undefined {
    return this.owners.get(keyOf(account, path));
  }

  /** Forgets a socket whoever offered it (the account's `unlink-socket` command). */
  unlink(account: string, path: string): void {
    this.remove(keyOf(account, path));
  }

  /** Forgets every socket a connection offered (it went away). */
  dropOwner(owner: Owner): void {
    for (const key of [...(this.byOwner.get(owner) ?? [])]) this.remove(key);
  }

  /** Every connection that offers a socket. */
  allOwners(): Owner[] {
    return [...this.byOwner.keys()];
  }

  private remove(key: string): void {
    const entry = this.owners.get(key);
    if (!entry) return;
    this.owners.delete(key);
    const mine = this.byOwner.get(entry.owner);
    mine?.delete(key);
    if (mine?.size === 0) this.byOwner.delete(entry.owner);
    const left = (this.perAccount.get(entry.account) ?? 1) - 1;
    if (left > 0) this.perAccount.set(entry.account, left);
    else this.perAccount.delete(entry.account);
  }
}

function keyOf(account: string, path: string): string {
  return `${account}\0${path}`;
}
