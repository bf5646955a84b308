// Fuzzing the frame decoder and the message parser with a seeded PRNG, so a failure can be replayed:
// random bytes, and mutations of valid encodings (bit flips, truncations, oversized lengths, wrong
// field types, huge numbers, deep or odd JSON), fed in random chunkings. The only acceptable failure
// is an RcppError; every case must finish quickly (no hang, no quadratic blow-up).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isRcppError } from '../../../src/errors.js';
import { encodeControl, FrameDecoder } from '../../../src/protocol/frames.js';
import { decodeMessage, parseMessage } from '../../../src/protocol/messages.js';
import { VALID } from './samples.js';

const SEED = Number(process.env['RCPP2P_FUZZ_SEED'] ?? 0x5eed);
const CASES = Number(process.env['RCPP2P_FUZZ_CASES'] ?? 12000);

/** mulberry32: small, fast, good enough to drive mutations reproducibly. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const ODD_VALUES: unknown[] = [
  null,
  true,
  false,
  0,
  -0,
  -1,
  1.5,
  2 ** 53,
  2 ** 64,
  -(2 ** 63),
  1e308,
  -1e308,
  Number.MIN_VALUE,
  '',
  'x'.repeat(5000),
  '\u0000',
  '\ud800',
  '../../etc/passwd',
  '/abs',
  'a\\b',
  '\u202e',
  [],
  [[]],
  {},
  { t: 'bye' },
  Array(5000).fill(0),
  { __proto__: null },
  'A'.repeat(64),
  '0'.repeat(64),
];

function pick<T>(r: () => number, items: readonly T[]): T {
  return items[Math.floor(r() * items.length)]!;
}

/** Replaces, deletes or adds one field somewhere in a JSON value (depth-first, random path). */
function mutateJson(r: () => number, value: unknown, depth = 0): unknown {
  if (Array.isArray(value)) {
    if (value.length === 0 || r() < 0.2) return [...(value as unknown[]), pick(r, ODD_VALUES)];
    const k = Math.floor(r() * value.length);
    const copy = [...(value as unknown[])];
    copy[k] = r() < 0.5 && depth < 6 ? mutateJson(r, copy[k], depth + 1) : pick(r, ODD_VALUES);
    return copy;
  }
  if (value && typeof value === 'object') {
    const obj = { ...(value as Record<string, unknown>) };
    const keys = Object.keys(obj);
    const roll = r();
    if (keys.length === 0 || roll < 0.1)
      obj[pick(r, ['t', 'i', 'path', 'x', '__proto__', 'constructor'])] = pick(r, ODD_VALUES);
    else if (roll < 0.2) delete obj[pick(r, keys)];
    else {
      const k = pick(r, keys);
      obj[k] = r() < 0.5 && depth < 6 ? mutateJson(r, obj[k], depth + 1) : pick(r, ODD_VALUES);
    }
    return obj;
  }
  return pick(r, ODD_VALUES);
}

function deepJson(r: () => number): string {
  const n = 1 + Math.floor(r() * 200000);
  return r() < 0.5
    ? `${'['.repeat(n)}${']'.repeat(n)}`
    : `{"t":"get","paths":${'['.repeat(n)}${']'.repeat(n)}}`;
}

function frameOf(type: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(5);
  h[0] = type;
  h.writeUInt32BE(payload.length, 1);
  return Buffer.concat([h, payload]);
}

/** One fuzz input: bytes for the decoder. */
function makeInput(r: () => number): Buffer {
  const valid = encodeControl(pick(r, VALID));
  switch (Math.floor(r() * 9)) {
    case 0: {
      // random bytes
      const b = Buffer.alloc(Math.floor(r() * 64));
      for (let k = 0; k < b.length; k++) b[k] = Math.floor(r() * 256);
      return b;
    }
    case 1: {
      // bit flips
      const b = Buffer.from(valid);
      for (let n = 1 + Math.floor(r() * 4); n > 0; n--) {
        const k = Math.floor(r() * b.length);
        b[k] = b[k]! ^ (1 << Math.floor(r() * 8));
      }
      return b;
    }
    case 2:
      // truncation
      return valid.subarray(0, Math.floor(r() * valid.length));
    case 3: {
      // oversized or wrong length in the header
      const b = Buffer.from(valid);
      b.writeUInt32BE(
        pick(r, [0xffffffff, 0x80000000, 1024 * 1024 + 1, Math.floor(r() * 2 ** 32), 0]),
        1,
      );
      return b;
    }
    case 4:
      // wrong field types, odd values, deep changes
      return frameOf(1, Buffer.from(JSON.stringify(mutateJson(r, pick(r, VALID))) ?? 'null'));
    case 5:
      // deep JSON
      return frameOf(1, Buffer.from(deepJson(r)));
    case 6:
      // several frames, valid and not, back to back
      return Buffer.concat([valid, makeInput(r), encodeControl(pick(r, VALID))]);
    case 7:
      // data frames and unknown types
      return frameOf(pick(r, [0, 2, 3, 255]), Buffer.alloc(Math.floor(r() * 100)));
    default:
      // JSON that is valid but not an object, or huge numbers
      return frameOf(
        1,
        Buffer.from(
          pick(r, [
            '1e999',
            '-0',
            '"str"',
            'null',
            '[1,2]',
            '{"t":"file","i":1e400,"offset":0}',
            '{"t":"hello","v":1e20}',
          ]),
        ),
      );
  }
}

function feed(r: () => number, input: Buffer): void {
  const d = new FrameDecoder();
  let at = 0;
  while (at < input.length) {
    const n = 1 + Math.floor(r() * Math.max(1, input.length / 2));
    for (const frame of d.push(input.subarray(at, at + n))) {
      if (frame.kind === 'control') decodeMessage(frame.payload);
    }
    at += n;
  }
}

describe('fuzz', () => {
  it(`${CASES} random and mutated inputs: only RcppErrors, no hang (seed ${SEED})`, () => {
    const r = prng(SEED);
    const started = Date.now();
    let errors = 0;
    let slowest = 0;
    for (let n = 0; n < CASES; n++) {
      const input = makeInput(r);
      const t0 = Date.now();
      try {
        feed(r, input);
      } catch (err) {
        if (!isRcppError(err)) {
          assert.fail(
            `case ${n} (seed ${SEED}) threw a non-RcppError: ${String(err)}\ninput: ${input.subarray(0, 200).toString('hex')}`,
          );
        }
        errors++;
      }
      slowest = Math.max(slowest, Date.now() - t0);
    }
    const elapsed = Date.now() - started;
    assert.ok(errors > CASES / 4, `only ${errors} inputs were refused; the mutations are too mild`);
    assert.ok(slowest < 2000, `one case took ${slowest} ms`);
    assert.ok(elapsed < 60_000, `the fuzz run took ${elapsed} ms`);
  });

  it('parseMessage alone: 5000 mutated objects, only RcppErrors', () => {
    const r = prng(SEED + 1);
    for (let n = 0; n < 5000; n++) {
      let value = pick(r, VALID) as unknown;
      for (let m = 1 + Math.floor(r() * 3); m > 0; m--) value = mutateJson(r, value);
      try {
        parseMessage(value);
      } catch (err) {
        assert.ok(
          isRcppError(err),
          `case ${n}: ${String(err)} for ${JSON.stringify(value)?.slice(0, 200)}`,
        );
      }
    }
  });
});
