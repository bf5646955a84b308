// Who trusts whom in a one-shot send (rcpp2p --send / --receive). Neither peer needs the other's
// record or pin: the code introduces them (secure/send-code.ts has the cryptography).
//
//   sender:   record send-<nameplate> carries offer {expires, proof of the code over its fingerprint}
//   receiver: checks that proof before it trusts the record's fingerprint (a mistyped code fails
//             here, on the receiver, and costs the sender nothing)
//   receiver: its request carries its fingerprint and proof of the code bound to this set-up
//   sender:   admits the first receiver whose proof matches, then only that receiver (it may come
//             back to retry a path); three wrong proofs end the send (someone is guessing)
//   both:     TLS 1.3 then pins the two fingerprints as on every link
//
// Here the peer that opened the link (the receiver) is not the one that speaks first (the sender
// puts), so the receiver marks the stream it kept with one byte before anything else: the sender
// uses that stream and drops the ones the receiver's race discarded.
import type { Duplex } from 'node:stream';
import { deadline } from '../deadline.js';
import { RcppError } from '../errors.js';
import type { PeerRecord, SendOffer } from '../rendezvous/peer-record.js';
import type { Introduction } from '../rendezvous/signaling.js';
import { proofMatches, receiverProof, senderProof, type SendCode } from '../secure/send-code.js';
import type { ConnectionRequest } from './answer-client.js';
import type { SendIntroduction } from './open-link.js';

/** How long a send waits for its receiver. */
export const OFFER_LIFETIME_MS = 10 * 60_000;
/** Wrong proofs a sender takes before it gives up the send: someone is guessing the code. */
export const MAX_WRONG_PROOFS = 3;
/** Clocks differ a little between peers. */
const CLOCK_SKEW_MS = 30_000;
/** The byte the receiver writes first on the stream it kept. */
const KEPT_STREAM_MARK = 0x01;
/** How long a secured stream may wait for that mark before the sender drops it. */
const MARK_TIMEOUT_MS = 20_000;

export interface SenderTrust {
  offer: SendOffer;
  introduce(request: ConnectionRequest): PeerRecord;
}

/** The sender's offer and its admission of receivers; `onWrongProof` hears each bad attempt. */
export function senderTrust(
  code: SendCode,
  key: Buffer,
  fingerprint: string,
  onWrongProof: (count: number) => void,
  now: () => number = Date.now,
): SenderTrust {
  const expires = now() + OFFER_LIFETIME_MS;
  let receiver: string | undefined;
  let wrong = 0;
  const refused = (message: string, hint: string): RcppError =>
    new RcppError('PEER_REFUSED', message, hint);
  return {
    offer: { expires: new Date(expires).toISOString(), proof: senderProof(key, fingerprint) },
    introduce(request) {
      const intro = request.introduction;
      if (intro === undefined) {
        throw refused(
          `${code.nameplate} is a one-shot send, not a file server.`,
          'Receive it with rcpp2p --receive and the whole code.',
        );
      }
      if (now() > expires) {
        throw refused(
          'This send has expired.',
          'Ask the sender to run rcpp2p --send again for a new code.',
        );
      }
      if (!proofMatches(receiverProof(key, intro.fingerprint, request.session), intro.proof)) {
        wrong++;
        onWrongProof(wrong);
        throw refused(
          'The receiver does not know this send code.',
          'Check every word of the code with the sender.',
        );
      }
      if (receiver !== undefined && receiver !== intro.fingerprint) {
        throw refused(
          'This send is already being received by another peer.',
          'Ask the sender to run rcpp2p --send again for a new code.',
        );
      }
      receiver = intro.fingerprint;
      return {
        v: 1,
        role: 'client',
        name: request.client,
        fingerprint: intro.fingerprint,
        lastSeen: new Date(now()).toISOString(),
        software: 'unknown',
      };
    },
  };
}

/** The receiver's check of the sender's record and its own introduction in the request. */
export function receiverTrust(
  code: SendCode,
  key: Buffer,
  fingerprint: string,
  now: () => number = Date.now,
): SendIntroduction {
  return {
    checkSender(record) {
      const offer = record.offer;
      if (offer === undefined) {
        throw new RcppError(
          'PEER_UNKNOWN',
          `Nothing is being sent under code ${code.nameplate}: ${record.name} is not a send.`,
          'Check the number at the start of the code with the sender.',
        );
      }
      if (!proofMatches(senderProof(key, record.fingerprint), offer.proof)) {
        throw new RcppError(
          'PEER_IDENTITY_MISMATCH',
          `The code does not match the send waiting under number ${code.nameplate}: a word is mistyped, or someone else in the rendezvous account made that offer.`,
          'Check every word of the code with the sender; nothing was received.',
        );
      }
      if (Date.parse(offer.expires) + CLOCK_SKEW_MS < now()) {
        throw new RcppError(
          'PEER_OFFLINE',
          `The send under code ${code.nameplate} expired at ${offer.expires.slice(11, 16)} UTC.`,
          'Ask the sender to run rcpp2p --send again for a new code.',
        );
      }
    },
    introduce(session): Introduction {
      return { fingerprint, proof: receiverProof(key, fingerprint, session) };
    },
  };
}

/** Receiver: marks the stream it kept (before the sender says anything on it). */
export function markKeptStream(stream: Duplex): void {
  stream.write(Buffer.of(KEPT_STREAM_MARK));
}

/**
 * Sender: true once the receiver marked this stream as the one it kept, false when the stream
 * closes, errs or stays silent first (a path that lost the receiver's race).
 */
export function waitForKeptMark(stream: Duplex, signal: AbortSignal): Promise<boolean> {
  const wait = deadline(
    signal,
    MARK_TIMEOUT_MS,
    () => new RcppError('TIMEOUT', 'The receiver did not use this stream.'),
  );
  return new Promise<boolean>((resolve) => {
    const finish = (kept: boolean): void => {
      stream.off('readable', onReadable);
      stream.off('close', onGone);
      stream.off('end', onGone);
      stream.off('error', onGone);
      wait.signal.removeEventListener('abort', onGone);
      wait.clear();
      resolve(kept);
    };
    const onGone = (): void => finish(false);
    const onReadable = (): void => {
      const first = stream.read(1) as Buffer | null;
      if (first === null) return;
      finish(first[0] === KEPT_STREAM_MARK);
    };
    if (wait.signal.aborted) {
      finish(false);
      return;
    }
    wait.signal.addEventListener('abort', onGone, { once: true });
    stream.on('readable', onReadable);
    stream.once('close', onGone);
    stream.once('end', onGone);
    stream.once('error', onGone);
    onReadable();
  });
}
