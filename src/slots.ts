// At most N of something at a time; the rest wait their turn, in order, and can give up (abort).
// Used where a peer would otherwise be refused for asking too much at once: OpenSSH allows 10
// session channels per connection (MaxSessions), and a busy file server runs many commands at once.
import { abortError } from './errors.js';

export class Slots {
  private inUse = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(private readonly size: number) {}

  /** Resolves with a release function once a slot is free; rejects if the signal aborts first. */
  take(signal: AbortSignal): Promise<() => void> {
    if (signal.aborted) return Promise.reject(abortError(signal));
    if (this.inUse < this.size) {
      this.inUse++;
      return Promise.resolve(this.releaser());
    }
    return new Promise((resolve, reject) => {
      const onTurn = (): void => {
        signal.removeEventListener('abort', onAbort);
        resolve(this.releaser());
      };
      const onAbort = (): void => {
        const at = this.waiting.indexOf(onTurn);
        if (at >= 0) this.waiting.splice(at, 1);
        reject(abortError(signal));
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.waiting.push(onTurn);
    });
  }

  private releaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiting.shift();
      if (next)
        next(); // the slot passes straight to the next in line
      else this.inUse--;
    };
  }
}
