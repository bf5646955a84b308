// Racing the ways to reach a peer: each contender (LAN, punch, listener, relay) starts after its
// own stagger and offers connected streams; every offered stream must pass the authentication
// handshake (`secure`), and the first one that does wins. The winner aborts everything else: the
// other contenders stop, their half-done handshakes are destroyed, later offers are dropped.
// One deadline bounds the whole race. (After magic-wormhole's transit and hyperdht's connect.)
//
//   racing {pending, failures} --a stream is secured---------------------> won
//   racing --every contender and handshake has ended without a winner---> lost (NO_PATH, or the
//                                                                          identity mismatch seen)
//   racing --identity mismatch on the relay, or grace after another one---> lost (the mismatch)
//   racing --deadline / caller's abort------------------------------------> lost (NO_PATH / ABORTED)
//
// A stream that fails authentication, even with PEER_IDENTITY_MISMATCH, only loses its own
// candidate: a stranger who reaches a listener or a private address first must not cancel the
// set-up. But a mismatch is usually the answer (the peer made a new identity), so it ends the race
// after a short grace unless another path wins in it, and at once when it came over the relay,
// which only the peer's own signaling socket leads to.
import type { Duplex } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import { abortError, isRcppError, RcppError } from '../errors.js';
import { logger } from '../log.js';
import type { PathKind } from '../peer.js';
import type { OnProgress } from '../progress.js';

const log = logger('race');

export interface Candidate {
  path: PathKind;
  /** Why this path exists, in words for the user ("simultaneous open through both NATs"). */
  reason: string;
  /** The other end, for messages ("192.0.2.2:40000" or "rendezvous relay"). */
  remote: string;
  /** The address family of a direct stream; none for the relay (it rides the rendezvous session). */
  family?: 4 | 6;
  stream: Duplex;
}

export interface Contender {
  path: PathKind;
  remote: string;
  /** Start this long after the race begins (0 = at once). */
  delayMs: number;
  /** Offers zero or more candidates until it gives up (rejects) or the signal aborts. */
  run(signal: AbortSignal, offer: (candidate: Candidate) => void): Promise<void>;
}

export interface RaceWinner<T> {
  candidate: Candidate;
  secured: T;
  ms: number;
}

export interface RaceOptions<T> {
  contenders: Contender[];
  secure: (candidate: Candidate, signal: AbortSignal) => Promise<T>;
  /** Disposes of a secured stream that lost (a later handshake finished after the winner). */
  discard: (secured: T) => void;
  deadlineMs: number;
  signal: AbortSignal;
  onProgress?: OnProgress;
  now?: () => number;
  /** How long after an identity mismatch another path may still win; default 3 s. */
  mismatchGraceMs?: number;
}

const MISMATCH_GRACE_MS = 3000;

type RaceState<T> =
  | {
      s: 'racing';
      /** Contenders still running plus handshakes still in progress. */
      pending: number;
      failures: string[];
      mismatch: RcppError | undefined;
    }
  | { s: 'won'; winner: RaceWinner<T> }
  | { s: 'lost'; error: RcppError };

type RaceEvent<T> =
  | { e: 'started'; count: number }
  | { e: 'ended' }
  | { e: 'failed'; path: PathKind; error: unknown }
  | { e: 'secured'; winner: RaceWinner<T> }
  | { e: 'stopped'; error: RcppError };

export function racePaths<T>(opts: RaceOptions<T>): Promise<RaceWinner<T>> {
  const now = opts.now ?? Date.now;
  const started = now();
  const race = new AbortController();
  // A referenced timer (not AbortSignal.timeout, whose timer is unref'd) so the deadline fires even
  // when nothing else keeps the event loop alive.
  const deadline = new AbortController();
  const deadlineTimer = setTimeout(() => deadline.abort(), opts.deadlineMs);
  const signal = AbortSignal.any([race.signal, deadline.signal, opts.signal]);
  let state: RaceState<T> = { s: 'racing', pending: 0, failures: [], mismatch: undefined };
  let graceTimer: NodeJS.Timeout | undefined;

  return new Promise<RaceWinner<T>>((resolve, reject) => {
    /** The race's transitions, all in one place. */
    const on = (event: RaceEvent<T>): void => {
      if (state.s !== 'racing') {
        if (event.e === 'secured') opts.discard(event.winner.secured);
        return;
      }
      switch (event.e) {
        case 'started':
          state.pending += event.count;
          return;
        case 'failed': {
          const first = state.mismatch === undefined;
          noteFailure(state, event.path, event.error);
          const mismatch = state.mismatch;
          if (mismatch === undefined) return;
          if (event.path === 'relay') {
            end({ s: 'lost', error: mismatch });
          } else if (first) {
            graceTimer = setTimeout(
              () => on({ e: 'stopped', error: mismatch }),
              opts.mismatchGraceMs ?? MISMATCH_GRACE_MS,
            );
          }
          return;
        }
        case 'ended':
          state.pending--;
          if (state.pending === 0) {
            end({
              s: 'lost',
              error:
                state.mismatch ??
                new RcppError(
                  'NO_PATH',
                  `No connection to the peer could be made: ${state.failures.join('; ') || 'no path was possible'}.`,
                ),
            });
          }
          return;
        case 'secured':
          end({ s: 'won', winner: event.winner });
          return;
        case 'stopped':
          end({ s: 'lost', error: state.mismatch ?? event.error });
          return;
      }
    };

    const end = (final: RaceState<T> & { s: 'won' | 'lost' }): void => {
      state = final;
      clearTimeout(deadlineTimer);
      clearTimeout(graceTimer);
      signal.removeEventListener('abort', onAbort);
      race.abort();
      if (final.s === 'won') resolve(final.winner);
      else reject(final.error);
    };

    const noteFailure = (
      racing: RaceState<T> & { s: 'racing' },
      path: PathKind,
      err: unknown,
    ): void => {
      const message = isRcppError(err) ? err.message : String((err as Error)?.message ?? err);
      racing.failures.push(`${path}: ${message.replace(/\.$/, '')}`);
      if (isRcppError(err) && err.code === 'PEER_IDENTITY_MISMATCH') racing.mismatch ??= err;
      opts.onProgress?.({ type: 'link:attempt-failed', path, message });
    };

    const onAbort = (): void => {
      if (opts.signal.aborted) {
        on({ e: 'stopped', error: abortError(opts.signal) });
        return;
      }
      const failures = state.s === 'racing' ? state.failures : [];
      on({
        e: 'stopped',
        error: new RcppError(
          'NO_PATH',
          `No connection to the peer within ${(opts.deadlineMs / 1000).toFixed(opts.deadlineMs < 10_000 ? 1 : 0)} s` +
            (failures.length > 0 ? ` (${failures.join('; ')})` : '') +
            '.',
        ),
      });
    };
    signal.addEventListener('abort', onAbort, { once: true });

    const offer = (candidate: Candidate): void => {
      if (state.s !== 'racing') {
        candidate.stream.destroy();
        return;
      }
      on({ e: 'started', count: 1 });
      log(`securing ${candidate.path} candidate from ${candidate.remote}`);
      opts
        .secure(candidate, signal)
        .then(
          (secured) => on({ e: 'secured', winner: { candidate, secured, ms: now() - started } }),
          (err: unknown) => {
            candidate.stream.destroy();
            // Once the race is over, the others failing (we stopped them) is not news.
            if (!signal.aborted || isRcppError(err))
              on({ e: 'failed', path: candidate.path, error: err });
          },
        )
        .finally(() => on({ e: 'ended' }));
    };

    on({ e: 'started', count: opts.contenders.length });
    for (const contender of opts.contenders) {
      (async () => {
        if (contender.delayMs > 0) await delay(contender.delayMs, undefined, { signal });
        if (signal.aborted) return;
        opts.onProgress?.({ type: 'link:trying', path: contender.path, remote: contender.remote });
        await contender.run(signal, offer);
      })()
        .catch((err: unknown) => {
          if (!signal.aborted) on({ e: 'failed', path: contender.path, error: err });
        })
        .finally(() => on({ e: 'ended' }));
    }
    if (opts.contenders.length === 0) {
      on({ e: 'started', count: 1 });
      on({ e: 'ended' });
    }
  });
}
