import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isRcppError } from '../../../src/errors.js';
import {
  deriveSendKey,
  makeSendCode,
  offerName,
  parseSendCode,
  proofMatches,
  receiverProof,
  senderProof,
} from '../../../src/secure/send-code.js';

const FP = 'SHA256:' + 'A'.repeat(43);
const OTHER = 'SHA256:' + 'B'.repeat(43);

describe('send codes', () => {
  it('look like 7-kobaru-tesimo and read back as typed, spaces and case forgiven', () => {
    const code = makeSendCode();
    assert.match(code.text, /^[1-9]\d{0,2}-[a-z]{6}-[a-z]{6}$/);
    assert.deepEqual(parseSendCode(code.text), code);
    assert.deepEqual(parseSendCode(`  ${code.text.toUpperCase().replaceAll('-', ' ')} `), code);
    assert.equal(offerName(code), `send-${code.nameplate}`);
  });

  it('avoid nameplates in use', () => {
    const taken = new Set(Array.from({ length: 98 }, (_, n) => n + 1));
    for (let n = 0; n < 20; n++) assert.ok(!taken.has(makeSendCode(taken).nameplate));
  });

  it('refuse what is not a code, with a sentence', () => {
    for (const bad of [
      '',
      'kobaru',
      '0-kobaru-tesimo',
      '7-kobaru',
      '7-kobaru-tesim0',
      '7-aaaaaa-tesimo',
      '7-kobaru-tesimo-x',
    ]) {
      assert.throws(
        () => parseSendCode(bad),
        (err: unknown) =>
          isRcppError(err) && err.code === 'USAGE' && /not a send code/.test(err.message),
        bad,
      );
    }
  });

  it('derive one key per code; proofs bind the fingerprint (and the set-up) to it', async () => {
    const code = parseSendCode('7-kobaru-tesimo');
    const key = await deriveSendKey(code);
    assert.deepEqual(await deriveSendKey(parseSendCode('7 KOBARU TESIMO')), key);
    const wrong = await deriveSendKey(parseSendCode('7-kobaru-tesima'));
    assert.notDeepEqual(wrong, key);
    const session = 'ab'.repeat(16);
    assert.ok(proofMatches(senderProof(key, FP), senderProof(key, FP)));
    assert.ok(!proofMatches(senderProof(key, FP), senderProof(wrong, FP)), 'another code');
    assert.ok(!proofMatches(senderProof(key, FP), senderProof(key, OTHER)), 'another sender');
    assert.ok(!proofMatches(receiverProof(key, FP, session), senderProof(key, FP)), 'roles differ');
    assert.ok(
      !proofMatches(receiverProof(key, FP, session), receiverProof(key, FP, 'cd'.repeat(16))),
      'another set-up',
    );
    assert.ok(!proofMatches(senderProof(key, FP), ''), 'empty');
    assert.ok(!proofMatches(senderProof(key, FP), 'zz'), 'not hex');
  });
});
