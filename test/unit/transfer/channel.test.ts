import assert from 'node:assert/strict';
import { Duplex, PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import { isRcppError } from '../../../src/errors.js';
import { encodeControl, encodeDataHeader } from '../../../src/protocol/frames.js';
import { FrameChannel } from '../../../src/transfer/channel.js';

/** Two in-memory Duplex ends: what one writes, the other reads. */
function pair(): [Duplex, Duplex, PassThrough] {
  const aToB = new PassThrough();
  const bToA = new PassThrough();
  // Duplex.from destroys its parts with an AbortError when the channel destroys it; that is the
  // expected end of the pipe here, not a failure.
  const a = Duplex.from({ readable: bToA, writable: aToB });
  const b = Duplex.from({ readable: aToB, writable: bToA });
  for (const end of [aToB, bToA, a, b]) end.on('error', () => {});
  return [a, b, aToB];
}

function code(err: unknown): string {
  assert.ok(isRcppError(err), String(err));
  return err.code;
}

describe('FrameChannel', () => {
  it('delivers messages and data in order and drops keepalives', async () => {
    const [a, b] = pair();
    const ch = new FrameChannel(b, { peer: 'the peer', idleTimeoutMs: 1000 });
    a.write(encodeControl({ t: 'keepalive' }));
    a.write(encodeControl({ t: 'file', i: 0, offset: 0 } as never));
    a.write(Buffer.concat([encodeDataHeader(3), Buffer.from('abc')]));
    a.write(encodeControl({ t: 'done' }));
    assert.deepEqual(await ch.readMessage(), { t: 'file', i: 0, offset: 0 });
    const data = await ch.read();
    assert.ok(data.kind === 'data' && data.payload.toString() === 'abc');
    assert.deepEqual(await ch.readMessage(), { t: 'done' });
    ch.destroy();
  });

  it('fails a wait with TIMEOUT when the peer is silent', async () => {
    const [, b] = pair();
    const ch = new FrameChannel(b, { peer: 'the peer', idleTimeoutMs: 50 });
    await assert.rejects(ch.read(), (err) => code(err) === 'TIMEOUT');
    ch.destroy();
  });

  it('fails a wait with ABORTED (or the signal reason) when the signal fires', async () => {
    const [, b] = pair();
    const ch = new FrameChannel(b, { peer: 'the peer', idleTimeoutMs: 0 });
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 20);
    await assert.rejects(ch.read(ac.signal), (err) => code(err) === 'ABORTED');
    // AbortSignal.timeout's timer does not keep the event loop alive, so abort by hand with its reason.
    const timed = new AbortController();
    setTimeout(() => timed.abort(new DOMException('timed out', 'TimeoutError')), 10);
    await assert.rejects(ch.read(timed.signal), (err) => code(err) === 'TIMEOUT');
    ch.destroy();
  });

  it('delivers what was queued, then CONNECTION_LOST once the peer ended', async () => {
    const [a, b] = pair();
    const ch = new FrameChannel(b, { peer: 'the peer', idleTimeoutMs: 1000 });
    a.end(encodeControl({ t: 'bye' }));
    assert.deepEqual(await ch.readMessage(), { t: 'bye' });
    await assert.rejects(ch.read(), (err) => code(err) === 'CONNECTION_LOST');
  });

  it('says when the peer stopped in the middle of a frame', async () => {
    const [a, b] = pair();
    const ch = new FrameChannel(b, { peer: 'the peer', idleTimeoutMs: 1000 });
    a.end(Buffer.from([1, 0, 0, 0, 10, 123]));
    await assert.rejects(
      ch.read(),
      (err) => code(err) === 'CONNECTION_LOST' && /middle of a frame/.test((err as Error).message),
    );
  });

  it('reports a decoding failure after the frames before it', async () => {
    const [a, b] = pair();
    const ch = new FrameChannel(b, { peer: 'the peer', idleTimeoutMs: 1000 });
    a.write(Buffer.concat([encodeControl({ t: 'done' }), Buffer.from([7, 0, 0, 0, 0])]));
    assert.deepEqual(await ch.readMessage(), { t: 'done' });
    await assert.rejects(ch.read(), (err) => code(err) === 'PROTOCOL_ERROR');
    ch.destroy();
  });

  it('stops reading above its high-water mark and resumes when drained', async () => {
    const [a, b, wire] = pair();
    const ch = new FrameChannel(b, {
      peer: 'the peer',
      idleTimeoutMs: 1000,
      highWaterBytes: 2 * 1024 * 1024,
    });
    const frame = Buffer.concat([encodeDataHeader(1024 * 1024), Buffer.alloc(1024 * 1024)]);
    for (let n = 0; n < 12; n++) a.write(frame);
    await new Promise((r) => setTimeout(r, 50));
    assert.ok(b.isPaused(), 'the stream is paused');
    assert.ok(
      wire.readableLength + b.readableLength > 0,
      'the rest waits in the stream, not in the channel',
    );
    let got = 0;
    while (got < 12) {
      const item = await ch.read();
      assert.equal(item.kind, 'data');
      got++;
    }
    ch.destroy();
  });

  it('sends a keepalive when nothing else was sent for a while', async () => {
    const [a, b] = pair();
    const ch = new FrameChannel(b, { peer: 'the peer', idleTimeoutMs: 1000 });
    const peer = new FrameChannel(a, { peer: 'us', idleTimeoutMs: 300 });
    ch.startHeartbeat(40);
    // The peer's reads would time out at 300 ms without the keepalives; send a message after 500 ms.
    setTimeout(() => ch.send({ t: 'done' }), 500);
    assert.deepEqual(await peer.readMessage(), { t: 'done' });
    ch.stopHeartbeat();
    ch.destroy();
    peer.destroy();
  });
});
