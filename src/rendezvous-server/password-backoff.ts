// Per-source back-off for password guessing. Each source address (an IPv6 /64 counts as one) has a
// bucket of password tries: `burst` to start with, one more every `refillMs`. A password or
// keyboard-interactive attempt takes a try before the password is checked, and a right password gives
// it back, so only wrong guesses use the bucket up. With the bucket empty, the source's password
// attempts are refused without being checked until it earns a try again; public-key logins from the
// same address are not affected, so key users behind the same NAT as a guesser still get in.

export interface BackoffOptions {
  burst: number;
  refillMs: number;
  now?: () => number;
}

interface Bucket {
  tries: number;
  /** When `tries` was last brought up to date. */
  at: number;
}

/** Sources remembered at once; the fullest buckets are forgotten first (they would refill anyway). */
const MAX_SOURCES = 8192;

export class PasswordBackoff {
  private readonly buckets = new Map<string, Bucket>();
  private readonly now: () => number;

  constructor(private readonly opts: BackoffOptions) {
    this.now = opts.now ?? Date.now;
  }

  /** Takes one try for `source`; false when its bucket is empty (the attempt must be refused). */
  take(source: string): boolean {
    const bucket = this.current(source);
    if (bucket.tries < 1) return false;
    bucket.tries -= 1;
    this.remember(source, bucket);
    return true;
  }

  /** Gives back the try a right password took. */
  refund(source: string): void {
    const bucket = this.buckets.get(source);
    if (bucket) bucket.tries = Math.min(this.opts.burst, bucket.tries + 1);
  }

  /** Milliseconds until `source` may try a password again (0 when it may now). */
  waitMs(source: string): number {
    const bucket = this.current(source);
    return bucket.tries >= 1 ? 0 : Math.ceil((1 - bucket.tries) * this.opts.refillMs);
  }

  private current(source: string): Bucket {
    const now = this.now();
    const bucket = this.buckets.get(source);
    if (!bucket) return { tries: this.opts.burst, at: now };
    const earned = (now - bucket.at) / this.opts.refillMs;
    bucket.tries = Math.min(this.opts.burst, bucket.tries + Math.max(0, earned));
    bucket.at = now;
    return bucket;
  }

  private remember(source: string, bucket: Bucket): void {
    this.buckets.delete(source);
    this.buckets.set(source, bucket);
    if (this.buckets.size <= MAX_SOURCES) return;
    // Forget full buckets first, then the least recently used ones (Map keeps insertion order).
    for (const key of this.buckets.keys()) {
      if (this.buckets.size <= MAX_SOURCES) return;
      if (this.current(key).tries >= this.opts.burst) this.buckets.delete(key);
    }
    for (const key of this.buckets.keys()) {
      if (this.buckets.size <= MAX_SOURCES) return;
      this.buckets.delete(key);
    }
  }
}
