// Deadlines as AbortSignals, with a referenced timer. AbortSignal.timeout() would do, but its timer
// is unref'd and, combined with AbortSignal.any(), it can be garbage-collected before it fires on
// Node 20: a wait bounded that way may never end. Cleared in the caller's `finally`.
import type { RcppError } from './errors.js';

export interface Deadline {
  /** Aborts when the parent does, or with `reason()` when `ms` have passed. */
  readonly signal: AbortSignal;
  /** True when this deadline (not the parent) ended the wait. */
  readonly expired: boolean;
  clear(): void;
}

export function deadline(parent: AbortSignal, ms: number, reason: () => RcppError): Deadline {
  const own = new AbortController();
  const timer = setTimeout(() => own.abort(reason()), ms);
  const signal = AbortSignal.any([parent, own.signal]);
  return {
    signal,
    get expired() {
      return own.signal.aborted;
    },
    clear() {
      clearTimeout(timer);
    },
  };
}
