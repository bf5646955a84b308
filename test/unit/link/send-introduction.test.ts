// The trust rules of a one-shot send, as pure logic: what the sender admits and what the receiver
// accepts (the processes and the real rendezvous are in test/integration/send-receive.test.ts).
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import { isRcppError } from '../../../src/errors.js';
import type { ConnectionRequest } from '../../../src/link/answer-client.js';
import {
  markKeptStream,
  OFFER_LIFETIME_MS,
  receiverTrust,
  senderTrust,
  waitForKeptMark,
} from '../../../src/link/send-introduction.js';
import {
  parsePeerRecord,
  selfRecord,
  serializePeerRecord,
} from '../../../src/rendezvous/peer-record.js';
import { encodeSignal, parseSignal } from '../../../src/rendezvous/signaling.js';
import { deriveSendKey, parseSendCode } from '../../../src/secure/send-code.js';

const SENDER = 'SHA256:' + 'S'.repeat(43);
const RECEIVER = 'SHA256:' + 'R'.repeat(43);
const OTHER = 'SHA256:' + 'O'.repeat(43);
const code = parseSendCode('7-kobaru-tesimo');
const key = await deriveSendKey(code);
const wrongKey = await deriveSendKey(parseSendCode('7-kobaru-tesima'));

function request(session: string, intro?: ConnectionRequest['introduction']): ConnectionRequest {
  return {
    t: 'request',
    session,
    client: 'bob',
    external: { ip: '203.0.113.9', port: 40000 },
    local: [],
    nat: 'port-preserving',
    ...(intro && { introduction: intro }),
  };
}

function code4(err: unknown): string {
  assert.ok(isRcppError(err), String(err));
  return err.code;
}

describe('one-shot send: the sender admits by the code', () => {
  const s1 = 'a'.repeat(32);
  const s2 = 'b'.repeat(32);

  it('admits a receiver whose proof is bound to this set-up, with its fingerprint', () => {
    const wrong: number[] = [];
    const trust = senderTrust(code, key, SENDER, (n) => wrong.push(n));
    const bob = receiverTrust(code, key, RECEIVER);
    const client = trust.introduce(request(s1, bob.introduce(s1)));
    assert.equal(client.fingerprint, RECEIVER);
    assert.equal(client.role, 'client');
    assert.deepEqual(wrong, []);
  });

  it('refuses a proof replayed from another set-up, a wrong key, and a plain client; counts the wrong proofs', () => {
    const wrong: number[] = [];
    const trust = senderTrust(code, key, SENDER, (n) => wrong.push(n));
    const replay = receiverTrust(code, key, RECEIVER).introduce(s1);
    assert.throws(
      () => trust.introduce(request(s2, replay)),
      (e) => code4(e) === 'PEER_REFUSED',
    );
    const guess = receiverTrust(code, wrongKey, OTHER).introduce(s2);
    assert.throws(() => trust.introduce(request(s2, guess)), /does not know this send code/);
    assert.throws(() => trust.introduce(request(s2)), /one-shot send, not a file server/);
    assert.deepEqual(wrong, [1, 2]);
  });

  it('after the first receiver, admits only that receiver again', () => {
    const trust = senderTrust(code, key, SENDER, () => {});
    trust.introduce(request(s1, receiverTrust(code, key, RECEIVER).introduce(s1)));
    trust.introduce(request(s2, receiverTrust(code, key, RECEIVER).introduce(s2)));
    assert.throws(
      () => trust.introduce(request(s2, receiverTrust(code, key, OTHER).introduce(s2))),
      /already being received by another peer/,
    );
  });

  it('refuses everyone once the offer has expired', () => {
    let now = Date.parse('2026-12-02T10:00:00Z');
    const trust = senderTrust(
      code,
      key,
      SENDER,
      () => {},
      () => now,
    );
    assert.equal(trust.offer.expires, new Date(now + OFFER_LIFETIME_MS).toISOString());
    now += OFFER_LIFETIME_MS + 1;
    assert.throws(
      () => trust.introduce(request(s1, receiverTrust(code, key, RECEIVER).introduce(s1))),
      /has expired/,
    );
  });
});

describe('one-shot send: the receiver checks the offer', () => {
  const addresses = {
    external: { ip: '203.0.113.5', port: 4000 },
    local: [],
    nat: 'public' as const,
  };
  const record = (fingerprint: string, offer?: ReturnType<typeof senderTrust>['offer']) =>
    parsePeerRecord(
      serializePeerRecord(
        selfRecord({ role: 'server', name: 'send-7', fingerprint }, addresses, {
          online: true,
          ...(offer && { offer }),
        }),
      ),
      { role: 'server', name: 'send-7' },
    );

  it('accepts the offer the code made, through a record round trip', () => {
    const { offer } = senderTrust(code, key, SENDER, () => {});
    receiverTrust(code, key, RECEIVER).checkSender(record(SENDER, offer));
  });

  it('refuses a swapped fingerprint, a mistyped code, a record without an offer, an expired offer', () => {
    const { offer } = senderTrust(code, key, SENDER, () => {});
    assert.throws(
      () => receiverTrust(code, key, RECEIVER).checkSender(record(OTHER, offer)),
      (e) => code4(e) === 'PEER_IDENTITY_MISMATCH',
    );
    assert.throws(
      () => receiverTrust(code, wrongKey, RECEIVER).checkSender(record(SENDER, offer)),
      /a word is mistyped/,
    );
    assert.throws(
      () => receiverTrust(code, key, RECEIVER).checkSender(record(SENDER)),
      (e) => code4(e) === 'PEER_UNKNOWN',
    );
    const later = Date.parse(offer.expires) + 60_000;
    assert.throws(
      () => receiverTrust(code, key, RECEIVER, () => later).checkSender(record(SENDER, offer)),
      /expired/,
    );
  });

  it('the introduction survives the signaling line, and a malformed one is a protocol error', () => {
    const session = 'c'.repeat(32);
    const message = request(session, receiverTrust(code, key, RECEIVER).introduce(session));
    assert.deepEqual(parseSignal(encodeSignal(message).trim()), message);
    const bad = { ...message, introduction: { fingerprint: RECEIVER, proof: 'zz' } };
    assert.throws(
      () => parseSignal(JSON.stringify(bad)),
      (e) => code4(e) === 'PROTOCOL_ERROR',
    );
  });
});

describe('one-shot send: the stream the receiver kept', () => {
  it('is the one with the mark; a stream closed unmarked is not', async () => {
    const kept = new PassThrough();
    const waiting = waitForKeptMark(kept, new AbortController().signal);
    markKeptStream(kept);
    kept.write('hello');
    assert.equal(await waiting, true);
    assert.equal(
      String(kept.read()),
      'hello',
      'the bytes after the mark are left for the protocol',
    );
    const lost = new PassThrough();
    const gone = waitForKeptMark(lost, new AbortController().signal);
    lost.destroy();
    assert.equal(await gone, false);
  });
});
