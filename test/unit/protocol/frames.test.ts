import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isRcppError } from '../../../src/errors.js';
import {
  encodeControl,
  encodeDataHeader,
  FRAME_CONTROL,
  FRAME_DATA,
  FrameDecoder,
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

/** A stream of mixed frames and the frames it should decode to. */
function sample(): { wire: Buffer; frames: Frame[] } {
  const payloads: Frame[] = [
    { kind: 'control', payload: Buffer.from(JSON.stringify({ t: 'hello' })) },
    { kind: 'data', payload: Buffer.from('abc') },
    { kind: 'control', payload: Buffer.from(JSON.stringify({ t: 'done' })) },
    { kind: 'data', payload: Buffer.from([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]) },
  ];
  const wire = Buffer.concat(
    payloads.map((f) =>
      Buffer.concat([
        header(f.kind === 'control' ? FRAME_CONTROL : FRAME_DATA, f.payload.length),
        f.payload,
      ]),
    ),
  );
  return { wire, frames: payloads };
}

function simplify(frames: Frame[]): { kind: string; hex: string }[] {
  return frames.map((f) => ({ kind: f.kind, hex: f.payload.toString('hex') }));
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

  it('decodes the same frames whatever the split point (every two-way split)', () => {
    const { wire, frames } = sample();
    for (let cut = 0; cut <= wire.length; cut++) {
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

  it('returns a frame inside one chunk as a slice of it (no copy)', () => {
    const payload = Buffer.from('0123456789');
    const chunk = dataFrame(payload);
    const [frame] = new FrameDecoder().push(chunk);
    assert.equal(frame!.payload.buffer, chunk.buffer);
    assert.equal(frame!.payload.byteOffset, chunk.byteOffset + 5);
  });

  it('assembles a 1 MiB frame split in 64 KiB chunks into one buffer', () => {
    const payload = Buffer.alloc(MAX_FRAME_PAYLOAD, 7);
    const wire = dataFrame(payload);
    const d = new FrameDecoder();
    const got: Frame[] = [];
    for (let at = 0; at < wire.length; at += 65536)
      got.push(...d.push(wire.subarray(at, at + 65536)));
    assert.equal(got.length, 1);
    assert.ok(got[0]!.payload.equals(payload));
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

  it('refuses an empty data frame', () => {
    const d = new FrameDecoder();
    assert.throws(
      () => d.push(header(FRAME_DATA, 0)),
      (err) =>
        isRcppError(err) && err.code === 'PROTOCOL_ERROR' && /empty data frame/.test(err.message),
    );
    assert.ok(d.failure);
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

  it('is linear in the input: 64 MiB in 4 KiB chunks decodes quickly', () => {
    const frame = dataFrame(Buffer.alloc(MAX_FRAME_PAYLOAD));
    const d = new FrameDecoder();
    const t0 = Date.now();
    let n = 0;
    for (let f = 0; f < 64; f++) {
      for (let at = 0; at < frame.length; at += 4096)
        n += d.push(frame.subarray(at, at + 4096)).length;
    }
    assert.equal(n, 64);
    assert.ok(Date.now() - t0 < 5000, `took ${Date.now() - t0} ms`);
  });
});
