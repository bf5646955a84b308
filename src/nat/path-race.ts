// Racing the ways to reach a peer: each contender (LAN, punch, listener, relay) starts after its
// own stagger and offers connected streams; every offered stream must pass the authentication
// handshake (`secure`), and the first one that does wins. The winner aborts everything else: the
// other contenders stop, their half-done handshakes are destroyed, later offers are dropped.
// One deadline bounds the whole race. (After magic-wormhole's transit and hyperdht's connect.)
import type { Duplex } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import { abortError, isRcppError, RcppError } from '../errors.js';
import { logger } from '../log.js';
import type { OnProgress, PathKind } from '../progress.js';

const log = logger('race');

export interface Candidate {
  path: PathKind;
  /** Why this path exists, in words for the user ("simultaneous open through both NATs"). */
  reason: string;
  /** The other end, for messages ("192.0.2.2:40000" or "rendezvous relay"). */
  remote: string;
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
  signal?: AbortSignal;
  onProgress?: OnProgress;
  now?: () => number;
}

export function racePaths<T>(opts: RaceOptions<T>): Promise<RaceWinner<T>> {
  const now = opts.now ?? Date.now;
  const started = now();
  const race = new AbortController();
  // A referenced timer (not AbortSignal.timeout, whose timer is unref'd) so the deadline fires even
  // when nothing else keeps the event loop alive.
  const deadline = new AbortController();
  const deadlineTimer = setTimeout(() => deadline.abort(), opts.deadlineMs);
  race.signal.addEventListener('abort', () => clearTimeout(deadlineTimer), { once: true });
  const signals = [race.signal, deadline.signal];
  if (opts.signal) signals.push(opts.signal);
  const signal = AbortSignal.any(signals);
  const failures: string[] = [];
  let running = 0;
  let settled = false;

  return new Promise<RaceWinner<T>>((resolve, reject) => {
    const finishIfHopeless = (): void => {
      if (settled || running > 0) return;
      settled = true;
      race.abort();
      reject(
        new RcppError(
          'NO_PATH',
          `No connection to the peer could be made: ${failures.join('; ') || 'no path was possible'}.`,
        ),
      );
    };
    const onAbort = (): void => {
      clearTimeout(deadlineTimer);
      if (settled) return;
      settled = true;
      if (opts.signal?.aborted) {
        reject(abortError(opts.signal));
        return;
      }
      reject(
        new RcppError(
          'NO_PATH',
          `No connection to the peer within ${(opts.deadlineMs / 1000).toFixed(opts.deadlineMs < 10_000 ? 1 : 0)} s` +
            (failures.length > 0 ? ` (${failures.join('; ')})` : '') +
            '.',
        ),
      );
    };
    signal.addEventListener('abort', onAbort, { once: true });

    const offer = (candidate: Candidate): void => {
      if (signal.aborted) {
        candidate.stream.destroy();
        return;
      }
      running++;
      log(`securing ${candidate.path} candidate from ${candidate.remote}`);
      opts
        .secure(candidate, signal)
        .then((secured) => {
          if (settled) {
            opts.discard(secured);
            return;
          }
          settled = true;
          signal.removeEventListener('abort', onAbort);
          race.abort();
          resolve({ candidate, secured, ms: now() - started });
        })
        .catch((err: unknown) => {
          candidate.stream.destroy();
          // Once a winner is chosen, the others failing (we stopped them) is not news.
          if (!settled && (!signal.aborted || isRcppError(err))) noteFailure(candidate.path, err);
          // An identity mismatch is an answer, not a reason to keep trying: stop at once.
          if (isRcppError(err) && err.code === 'PEER_IDENTITY_MISMATCH' && !settled) {
            settled = true;
            race.abort();
            reject(err);
          }
        })
        .finally(() => {
          running--;
          finishIfHopeless();
        });
    };

    const noteFailure = (path: PathKind, err: unknown): void => {
      const message = isRcppError(err) ? err.message : String((err as Error)?.message ?? err);
      failures.push(`${path}: ${message.replace(/\.$/, '')}`);
      opts.onProgress?.({ type: 'link:attempt-failed', path, message });
    };

    running += opts.contenders.length;
    for (const contender of opts.contenders) {
      (async () => {
        if (contender.delayMs > 0) await delay(contender.delayMs, undefined, { signal });
        if (signal.aborted) return;
        opts.onProgress?.({ type: 'link:trying', path: contender.path, remote: contender.remote });
        await contender.run(signal, offer);
      })()
        .catch((err: unknown) => {
          if (!signal.aborted) noteFailure(contender.path, err);
        })
        .finally(() => {
          running--;
          finishIfHopeless();
        });
    }
    if (opts.contenders.length === 0) finishIfHopeless();
  });
}
