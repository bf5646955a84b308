import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { isRcppError, RcppError } from '../../../src/errors.js';
import { racePaths, type Candidate, type Contender } from '../../../src/nat/path-race.js';
import type { PathKind } from '../../../src/peer.js';

/** A contender that offers one in-memory stream after `afterMs`, or fails with `fail`. */
function contender(
  path: PathKind,
  opts: { delayMs?: number; afterMs?: number; fail?: string; never?: boolean },
): Contender & { aborted: Promise<void> } {
  let onAborted: () => void = () => {};
  const aborted = new Promise<void>((resolve) => (onAborted = resolve));
  return {
    path,
    remote: `${path}-peer`,
    delayMs: opts.delayMs ?? 0,
    aborted,
    async run(signal, offer) {
      signal.addEventListener('abort', onAborted, { once: true });
      if (opts.never) {
        await new Promise<void>((resolve) =>
          signal.addEventListener('abort', () => resolve(), { once: true }),
        );
        return;
      }
      await delay(opts.afterMs ?? 0, undefined, { signal });
      if (opts.fail) throw new RcppError('NO_PATH', opts.fail);
      offer({ path, reason: `${path} reason`, remote: `${path}-peer`, stream: new PassThrough() });
    },
  };
}

/** For races these tests never cancel. */
const NEVER = new AbortController().signal;

const secureOk = (c: Candidate): Promise<Candidate> => Promise.resolve(c);

describe('path race', () => {
  it('the first authenticated path wins and the others are aborted', async () => {
    const punch = contender('direct', { afterMs: 10 });
    const relay = contender('relay', { never: true });
    const winner = await racePaths({
      contenders: [punch, relay],
      secure: secureOk,
      discard: () => {},
      deadlineMs: 2000,
      signal: NEVER,
    });
    assert.equal(winner.candidate.path, 'direct');
    await relay.aborted; // the loser is told to stop (the test times out otherwise)
  });

  it('the relay wins when the punch cannot connect in its budget (symmetric NAT)', async () => {
    const punch = contender('direct', { never: true });
    const relay = contender('relay', { delayMs: 50 });
    const winner = await racePaths({
      contenders: [punch, relay],
      secure: secureOk,
      discard: () => {},
      deadlineMs: 2000,
      signal: NEVER,
    });
    assert.equal(winner.candidate.path, 'relay');
    await punch.aborted;
  });

  it('a stream that fails authentication does not win; the next one does', async () => {
    const stranger = contender('direct', { afterMs: 0 });
    const lan = contender('lan', { afterMs: 30 });
    const winner = await racePaths({
      contenders: [stranger, lan],
      secure: (c) =>
        c.path === 'direct'
          ? Promise.reject(new RcppError('PROTOCOL_ERROR', 'not TLS'))
          : Promise.resolve(c),
      discard: () => {},
      deadlineMs: 2000,
      signal: NEVER,
    });
    assert.equal(winner.candidate.path, 'lan');
  });

  it('an identity mismatch loses its own candidate; when nothing else wins, the race ends with that error', async () => {
    await assert.rejects(
      racePaths({
        contenders: [contender('direct', {}), contender('relay', { delayMs: 500 })],
        secure: () =>
          Promise.reject(
            new RcppError('PEER_IDENTITY_MISMATCH', 'ASUS proved a different identity.'),
          ),
        discard: () => {},
        deadlineMs: 2000,
        signal: NEVER,
      }),
      (err: unknown) => isRcppError(err) && err.code === 'PEER_IDENTITY_MISMATCH',
    );
  });

  it('a stranger with a wrong certificate on one path does not stop the peer winning on another', async () => {
    const stranger = contender('reversed', { afterMs: 0 });
    const peer = contender('direct', { afterMs: 30 });
    const winner = await racePaths({
      contenders: [stranger, peer],
      secure: (c) =>
        c.path === 'reversed'
          ? Promise.reject(new RcppError('PEER_IDENTITY_MISMATCH', 'A stranger answered.'))
          : Promise.resolve(c),
      discard: () => {},
      deadlineMs: 2000,
      signal: NEVER,
    });
    assert.equal(winner.candidate.path, 'direct');
  });

  it('the caller’s abort ends the race at once with ABORTED', async () => {
    const stop = new AbortController();
    const racing = racePaths({
      contenders: [contender('direct', { never: true })],
      secure: secureOk,
      discard: () => {},
      deadlineMs: 60_000,
      signal: stop.signal,
    });
    stop.abort();
    await assert.rejects(racing, (err: unknown) => isRcppError(err) && err.code === 'ABORTED');
  });

  it('when every path fails, the error lists each reason', async () => {
    await assert.rejects(
      racePaths({
        contenders: [
          contender('direct', { fail: 'punch timed out' }),
          contender('relay', { fail: 'socket refused' }),
        ],
        secure: secureOk,
        discard: () => {},
        deadlineMs: 2000,
        signal: NEVER,
      }),
      (err: unknown) =>
        isRcppError(err) &&
        err.code === 'NO_PATH' &&
        /direct: punch timed out; relay: socket refused/.test(err.message),
    );
  });

  it('the deadline bounds the whole race', async () => {
    const started = Date.now();
    await assert.rejects(
      racePaths({
        contenders: [contender('direct', { never: true })],
        secure: secureOk,
        discard: () => {},
        deadlineMs: 100,
        signal: NEVER,
      }),
      (err: unknown) =>
        isRcppError(err) && err.code === 'NO_PATH' && /within 0\.1 s/.test(err.message),
    );
    assert.ok(Date.now() - started < 1500);
  });

  it('a late second winner is discarded, not leaked', async () => {
    let onDiscard: (path: string) => void = () => {};
    const discarded = new Promise<string>((resolve) => (onDiscard = resolve));
    const winner = await racePaths({
      contenders: [contender('direct', { afterMs: 0 }), contender('lan', { afterMs: 0 })],
      secure: async (c) => {
        await delay(c.path === 'direct' ? 5 : 40);
        return c;
      },
      discard: (c) => onDiscard(c.path),
      deadlineMs: 2000,
      signal: NEVER,
    });
    assert.equal(winner.candidate.path, 'direct');
    // This fake handshake ignores the abort signal, so it finishes after the winner: the race must
    // hand it to `discard` rather than leave it open (the test times out otherwise).
    assert.equal(await discarded, 'lan');
  });
});
