import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { isRcppError } from '../../../src/errors.js';
import {
  encodeControl,
  encodeDataHeader,
  FRAME_CONTROL,
  FRAME_DATA,
  FrameDecoder,
  MAX_SLICES,
  SLICE_MIN,
  type Frame,
} from '../../../src/protocol/frames.js';
import { MAX_FRAME_PAYLOAD } from '../../../src/protocol/limits.js';

function dataFrame(bytes: Buffer): Buffer {
  return Buffer.concat([encodeDataHeader(bytes.length), bytes]);
}

function header(type: number, length: number): Buffer {
  const b = Buffer.alloc(5);
  b[0] = type;
  b.writeUInt32BE(length, 1);
  return b;
}

/** A stream of mixed frames (one data frame large enough to come out as slices) and its frames. */
function sample(): { wire: Buffer; frames: { kind: Frame['kind']; payload: Buffer }[] } {
  const large = Buffer.alloc(SLICE_MIN + 3);
  for (let k = 0; k < large.length; k++) large[k] = k % 251;
  const frames = [
    { kind: 'control' as const, payload: Buffer.from(JSON.stringify({ t: 'hello' })) },
    { kind: 'data' as const, payload: Buffer.from('abc') },
    { kind: 'control' as const, payload: Buffer.from(JSON.stringify({ t: 'done' })) },
    { kind: 'data' as const, payload: large },
    { kind: 'data' as const, payload: Buffer.from([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]) },
  ];
  const wire = Buffer.concat(
    frames.map((f) =>
      Buffer.concat([
        header(f.kind === 'control' ? FRAME_CONTROL : FRAME_DATA, f.payload.length),
        f.payload,
      ]),
    ),
  );
  return { wire, frames };
}

function simplify(frames: (Frame | { kind: string; payload: Buffer })[]): string[] {
  return frames.map((f) => {
    const payload = 'pieces' in f ? Buffer.concat(f.pieces) : f.payload;
    if ('pieces' in f) assert.equal(f.length, payload.length);
    return `${f.kind}:${createHash('sha256').update(payload).digest('hex')}`;
  });
}

describe('frames', () => {
  it('encodes a control message as type 1, big-endian length, JSON', () => {
    const buf = encodeControl({ t: 'bye' });
    assert.equal(buf[0], 1);
    assert.equal(buf.readUInt32BE(1), buf.length - 5);
    assert.deepEqual(JSON.parse(buf.subarray(5).toString()), { t: 'bye' });
  });

  it('encodes a data header as type 2 and the length', () => {
    assert.deepEqual([...encodeDataHeader(0x010203)], [2, 0, 1, 2, 3]);
    assert.equal(encodeDataHeader(1000).readUInt32BE(1), 1000);
    assert.throws(() => encodeDataHeader(MAX_FRAME_PAYLOAD + 1));
    assert.throws(() => encodeDataHeader(-1));
    assert.throws(() => encodeDataHeader(0));
  });

  it('refuses to encode a control message over the cap', () => {
    assert.throws(
      () => encodeControl({ t: 'x', pad: 'a'.repeat(MAX_FRAME_PAYLOAD) } as { t: string }),
      (err) => isRcppError(err) && err.code === 'FRAME_TOO_LARGE',
    );
  });

  it('decodes many frames from one chunk', () => {
    const { wire, frames } = sample();
    assert.deepEqual(simplify(new FrameDecoder().push(wire)), simplify(frames));
  });

  it('decodes the same frames whatever the split point (two-way splits)', () => {
    const { wire, frames } = sample();
    for (let cut = 0; cut <= wire.length; cut += cut < 200 || wire.length - cut < 200 ? 1 : 997) {
      const d = new FrameDecoder();
      const got = [...d.push(wire.subarray(0, cut)), ...d.push(wire.subarray(cut))];
      assert.deepEqual(simplify(got), simplify(frames), `split at ${cut}`);
      assert.equal(d.pendingBytes, 0);
    }
  });

  it('decodes the same frames fed one byte at a time', () => {
    const { wire, frames } = sample();
    const d = new FrameDecoder();
    const got: Frame[] = [];
    for (let k = 0; k < wire.length; k++) got.push(...d.push(wire.subarray(k, k + 1)));
    assert.deepEqual(simplify(got), simplify(frames));
  });

  it('returns a control payload inside one chunk as a slice of it (no copy)', () => {
    const chunk = encodeControl({ t: 'bye' });
    const [frame] = new FrameDecoder().push(chunk);
    assert.ok(frame?.kind === 'control');
    assert.equal(frame.payload.buffer, chunk.buffer);
    assert.equal(frame.payload.byteOffset, chunk.byteOffset + 5);
  });

  it('copies a small data payload, so it does not keep the chunk it came in alive', () => {
    const chunk = Buffer.concat([dataFrame(Buffer.from('0123456789')), Buffer.alloc(60_000)]);
    const [frame] = new FrameDecoder().push(chunk.subarray(0, 15));
    assert.ok(frame?.kind === 'data');
    assert.equal(Buffer.concat(frame.pieces).toString(), '0123456789');
    assert.ok(frame.pieces.every((p) => p.buffer !== chunk.buffer));
  });

  it('hands a 1 MiB data frame in 16 KiB chunks over as slices of those chunks (no copy)', () => {
    const payload = Buffer.alloc(MAX_FRAME_PAYLOAD);
    for (let k = 0; k < payload.length; k += 4096) payload[k] = k >> 12;
    const wire = dataFrame(payload);
    const chunks: Buffer[] = [];
    for (let at = 0; at < wire.length; at += 16384)
      chunks.push(Buffer.from(wire.subarray(at, at + 16384)));
    const d = new FrameDecoder();
    const got = chunks.flatMap((c) => d.push(c));
    assert.equal(got.length, 1);
    const frame = got[0]!;
    assert.ok(frame.kind === 'data');
    assert.equal(frame.length, MAX_FRAME_PAYLOAD);
    assert.ok(Buffer.concat(frame.pieces).equals(payload));
    assert.equal(frame.pieces.length, chunks.length);
    frame.pieces.forEach((p, k) => assert.equal(p.buffer, chunks[k]!.buffer, `slice ${k}`));
    assert.equal(d.dataBytes, MAX_FRAME_PAYLOAD);
  });

  it('copies a data payload that arrives in more than MAX_SLICES pieces into one buffer', () => {
    const payload = Buffer.alloc(SLICE_MIN * 2, 9);
    payload[payload.length - 1] = 1;
    const wire = dataFrame(payload);
    const d = new FrameDecoder();
    const got: Frame[] = [];
    for (let at = 0; at < wire.length; at += 100) got.push(...d.push(wire.subarray(at, at + 100)));
    assert.equal(got.length, 1);
    const frame = got[0]!;
    assert.ok(frame.kind === 'data');
    assert.ok(frame.pieces.length <= MAX_SLICES, `${frame.pieces.length} pieces`);
    assert.ok(Buffer.concat(frame.pieces).equals(payload));
  });

  it('refuses an empty data frame', () => {
    const d = new FrameDecoder();
    assert.throws(
      () => d.push(header(FRAME_DATA, 0)),
      (err) =>
        isRcppError(err) && err.code === 'PROTOCOL_ERROR' && /empty data frame/.test(err.message),
    );
    assert.ok(d.failure);
  });

  it('refuses a length over the cap from the header alone, before any payload', () => {
    const d = new FrameDecoder();
    assert.throws(
      () => d.push(header(FRAME_DATA, 0x80000000)),
      (err) => isRcppError(err) && err.code === 'FRAME_TOO_LARGE',
    );
    assert.equal(d.pendingBytes, 0);
    // The decoder stays failed.
    assert.throws(
      () => d.push(Buffer.from([1])),
      (err) => isRcppError(err) && err.code === 'FRAME_TOO_LARGE',
    );
  });

  it('accepts exactly the cap', () => {
    const d = new FrameDecoder();
    assert.deepEqual(d.push(header(FRAME_DATA, MAX_FRAME_PAYLOAD)), []);
    assert.equal(d.pendingBytes, 0);
  });

  it('refuses an unknown frame type', () => {
    for (const type of [0, 3, 255]) {
      assert.throws(
        () => new FrameDecoder().push(header(type, 1)),
        (err) => isRcppError(err) && err.code === 'PROTOCOL_ERROR',
      );
    }
  });

  it('returns the good frames before a bad header, then fails', () => {
    const good = encodeControl({ t: 'bye' });
    const d = new FrameDecoder();
    const frames = d.push(Buffer.concat([good, header(9, 1)]));
    assert.equal(frames.length, 1);
    assert.ok(d.failure);
    assert.throws(() => d.push(Buffer.alloc(1)));
  });

  it('counts the bytes of an incomplete frame', () => {
    const d = new FrameDecoder();
    d.push(Buffer.from([2, 0, 0]));
    assert.equal(d.pendingBytes, 3);
    d.push(Buffer.from([0, 4, 1, 2]));
    assert.equal(d.pendingBytes, 2);
  });

  it('decodes 64 MiB fed in 4 KiB chunks', () => {
    const frame = dataFrame(Buffer.alloc(MAX_FRAME_PAYLOAD, 5));
    const d = new FrameDecoder();
    let n = 0;
    for (let f = 0; f < 64; f++) {
      for (let at = 0; at < frame.length; at += 4096) {
        for (const got of d.push(frame.subarray(at, at + 4096))) {
          assert.ok(got.kind === 'data' && got.length === MAX_FRAME_PAYLOAD);
          n++;
        }
      }
    }
    assert.equal(n, 64);
    assert.equal(d.dataBytes, 64 * MAX_FRAME_PAYLOAD);
  });
});
