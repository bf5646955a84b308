// The short code of a one-shot send (rcpp2p --send / --receive), and what it proves.
//
//   code = <nameplate>-<word>-<word>, e.g. "7-kobaru-tesimo"
//     nameplate: which offer on the rendezvous (the sender's record is named send-<nameplate>)
//     words: the secret, 2 x 3 syllables of 65 (about 36 bits), never written anywhere
//   key = scrypt(words, "rcpp2p send" + nameplate)
//
// Everyone in the rendezvous account can read and rewrite records, so the code, not the account,
// introduces the two peers: the sender's record carries HMAC(key, sender's fingerprint), which the
// receiver checks before it trusts that fingerprint; the receiver's request carries HMAC(key, its
// own fingerprint and the set-up's session id), which the sender checks before it lets it in. TLS
// then pins both fingerprints as for every other link. An account member who reads the record can
// try to guess the words offline (scrypt makes each guess cost ~0.1 s), but the offer works once and
// expires in minutes, so the guess must also land before the real receiver does.
import { createHmac, randomInt, scrypt, timingSafeEqual } from 'node:crypto';
import { RcppError } from '../errors.js';

const CONSONANTS = 'bdfgkmnprstvz';
const VOWELS = 'aeiou';
const SYLLABLES_PER_WORD = 3;
const WORDS = 2;
const MAX_NAMEPLATE = 999;
const CODE = /^([1-9][0-9]{0,2})-([a-z]{6})-([a-z]{6})$/;
const SYLLABLE = new RegExp(`^(?:[${CONSONANTS}][${VOWELS}]){${SYLLABLES_PER_WORD}}$`);

export interface SendCode {
  nameplate: number;
  words: string[];
  /** As the user types it: "7-kobaru-tesimo". */
  text: string;
}

function word(): string {
  let w = '';
  for (let s = 0; s < SYLLABLES_PER_WORD; s++) {
    w += CONSONANTS[randomInt(CONSONANTS.length)]! + VOWELS[randomInt(VOWELS.length)]!;
  }
  return w;
}

/** A fresh code; `taken` nameplates (live offers on the rendezvous) are avoided. */
export function makeSendCode(taken: ReadonlySet<number> = new Set()): SendCode {
  for (let tries = 0; tries < 1000; tries++) {
    const nameplate = 1 + randomInt(tries < 100 ? 99 : MAX_NAMEPLATE);
    if (taken.has(nameplate)) continue;
    const words = Array.from({ length: WORDS }, word);
    return { nameplate, words, text: [nameplate, ...words].join('-') };
  }
  throw new RcppError('BUSY', 'Every send code is in use on this rendezvous; try again later.');
}

/** Reads a code the user typed; spaces and case are forgiven, anything else is a usage error. */
export function parseSendCode(input: string): SendCode {
  const text = input.trim().toLowerCase().replace(/\s+/g, '-');
  const m = CODE.exec(text);
  const words = m ? [m[2]!, m[3]!] : [];
  if (!m || !words.every((w) => SYLLABLE.test(w))) {
    throw new RcppError(
      'USAGE',
      `"${input.slice(0, 60)}" is not a send code.`,
      'A code looks like 7-kobaru-tesimo: the number and words rcpp2p --send printed.',
    );
  }
  return { nameplate: Number(m[1]), words, text };
}

/** The offer's record name on the rendezvous. */
export function offerName(code: Pick<SendCode, 'nameplate'>): string {
  return `send-${code.nameplate}`;
}

/** The key both sides derive from the code (scrypt: guessing it costs time). */
export function deriveSendKey(code: SendCode): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(
      code.words.join('-'),
      `rcpp2p send ${code.nameplate}`,
      32,
      { N: 2 ** 15, r: 8, p: 1, maxmem: 64 * 1024 * 1024 },
      (err, key) => (err ? reject(err) : resolve(key)),
    );
  });
}

function mac(key: Buffer, ...parts: string[]): string {
  return createHmac('sha256', key).update(parts.join('\n')).digest('hex');
}

/** What the sender's record carries: proof that whoever holds the code vouches for this sender. */
export function senderProof(key: Buffer, fingerprint: string): string {
  return mac(key, 'rcpp2p send: sender', fingerprint);
}

/** What the receiver's request carries, bound to this one set-up. */
export function receiverProof(key: Buffer, fingerprint: string, session: string): string {
  return mac(key, 'rcpp2p send: receiver', fingerprint, session);
}

export function proofMatches(expected: string, given: string): boolean {
  const a = Buffer.from(expected, 'hex');
  const b = Buffer.from(given, 'hex');
  return a.length === b.length && a.length > 0 && timingSafeEqual(a, b);
}
