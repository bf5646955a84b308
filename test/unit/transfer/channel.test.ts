import assert from 'node:assert/strict';
import { Duplex, PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import { isRcppError } from '../../../src/errors.js';
import { encodeControl, encodeDataHeader } from '../../../src/protocol/frames.js';
import { FrameChannel, ITEM_OVERHEAD } from '../../../src/transfer/channel.js';

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

/** Resolves once `cond()` holds; fails the test after 5 s (polls every 5 ms). */
async function until(cond: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!cond()) {
    if (Date.now() > deadline) assert.fail(`still waiting for ${what} after 5 s`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** The settled outcome of `p`, or 'pending' if it has not settled within `ms`. */
async function within<T>(p: Promise<T>, ms: number): Promise<T | 'pending'> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<'pending'>((r) => (timer = setTimeout(() => r('pending'), ms))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

const KEEPALIVE = encodeControl({ t: 'keepalive' });

describe('FrameChannel', () => {
  it('delivers messages and data in order and drops keepalives', async () => {
    const [a, b] = pair();
    const ch = new FrameChannel(b, { peer: 'the peer', idleTimeoutMs: 1000 });
    a.write(KEEPALIVE);
    a.write(encodeControl({ t: 'file', i: 0, offset: 0 } as never));
    a.write(Buffer.concat([encodeDataHeader(3), Buffer.from('abc')]));
    a.write(encodeControl({ t: 'done' }));
    assert.deepEqual(await ch.readMessage(), { t: 'file', i: 0, offset: 0 });
    const data = await ch.read();
    assert.ok(data.kind === 'data' && Buffer.concat(data.pieces).toString() === 'abc');
    assert.equal(data.length, 3);
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
    const pending = ch.read(ac.signal);
    ac.abort();
    await assert.rejects(pending, (err) => code(err) === 'ABORTED');
    const timed = new AbortController();
    const waiting = ch.read(timed.signal);
    timed.abort(new DOMException('timed out', 'TimeoutError'));
    await assert.rejects(waiting, (err) => code(err) === 'TIMEOUT');
    ch.destroy();
  });

  it('sees an abort on every read, even with frames queued (Ctrl-C while behind the sender)', async () => {
    const [a, b] = pair();
    const ch = new FrameChannel(b, { peer: 'the peer', idleTimeoutMs: 1000 });
    for (let n = 0; n < 3; n++) a.write(Buffer.concat([encodeDataHeader(4), Buffer.from('data')]));
    await until(() => ch.queued.items === 3, 'three queued frames');
    const ac = new AbortController();
    assert.equal((await ch.read(ac.signal)).kind, 'data');
    ac.abort();
    await assert.rejects(ch.read(ac.signal), (err) => code(err) === 'ABORTED');
    assert.equal(ch.queued.items, 2, 'the aborted read took nothing');
    ch.destroy();
  });

  it('sees an abort in flush even when no drain is needed', async () => {
    const [, b] = pair();
    const ch = new FrameChannel(b, { peer: 'the peer', idleTimeoutMs: 1000 });
    const ac = new AbortController();
    ac.abort();
    await assert.rejects(ch.flush(ac.signal), (err) => code(err) === 'ABORTED');
    ch.destroy();
  });

  it('delivers what was queued, then CONNECTION_LOST once the peer ended', async () => {
    const [a, b] = pair();
    const ch = new FrameChannel(b, { peer: 'the peer', idleTimeoutMs: 1000 });
    a.end(encodeControl({ t: 'bye' }));
    assert.deepEqual(await ch.readMessage(), { t: 'bye' });
    await assert.rejects(ch.read(), (err) => code(err) === 'CONNECTION_LOST');
    assert.equal(ch.readState, 'ended');
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

  it('reports a decoding failure after the frames before it, and stops reading', async () => {
    const [a, b] = pair();
    const ch = new FrameChannel(b, { peer: 'the peer', idleTimeoutMs: 1000 });
    a.write(Buffer.concat([encodeControl({ t: 'done' }), Buffer.from([7, 0, 0, 0, 0])]));
    assert.deepEqual(await ch.readMessage(), { t: 'done' });
    await assert.rejects(ch.read(), (err) => code(err) === 'PROTOCOL_ERROR');
    assert.equal(ch.readState, 'failed');
    assert.ok(b.isPaused(), 'a failed channel reads nothing more');
    ch.destroy();
    assert.equal(ch.readState, 'closing');
  });

  it('refuses an empty data frame', async () => {
    const [a, b] = pair();
    const ch = new FrameChannel(b, { peer: 'the peer', idleTimeoutMs: 1000 });
    a.write(Buffer.from([2, 0, 0, 0, 0]));
    await assert.rejects(
      ch.read(),
      (err) => code(err) === 'PROTOCOL_ERROR' && /empty data frame/.test((err as Error).message),
    );
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
    await until(() => ch.readState === 'paused', 'the channel to pause');
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
    assert.equal(ch.readState, 'reading');
    ch.destroy();
  });

  it('charges each queued item a fixed overhead and caps the count: tiny frames cannot pile up', async () => {
    const [a, b, wire] = pair();
    const ch = new FrameChannel(b, { peer: 'the peer', idleTimeoutMs: 1000, maxItems: 1000 });
    const tiny = Buffer.concat([encodeDataHeader(1), Buffer.from('x')]);
    let largestChunk = 0;
    b.on('data', (c: Buffer) => (largestChunk = Math.max(largestChunk, c.length)));
    const batch = Buffer.concat(Array.from({ length: 10_000 }, () => tiny));
    for (let n = 0; n < 10; n++) a.write(batch); // 100,000 frames of 1 byte, 600 kB on the wire
    await until(() => ch.readState === 'paused', 'the channel to pause');
    const { items, bytes } = ch.queued;
    // At most one chunk past the cap: the stream hands over whole chunks.
    assert.ok(items <= 1000 + largestChunk / tiny.length, `${items} items queued`);
    assert.ok(items < 100_000, 'not everything was queued');
    assert.equal(bytes, items * (1 + ITEM_OVERHEAD));
    assert.ok(wire.readableLength + b.readableLength > 0, 'the rest waits in the stream');
    ch.destroy();
  });

  it(
    'times out a read whose peer sends only keepalives, after the busy limit',
    { timeout: 10_000 },
    async () => {
      const [a, b] = pair();
      const ch = new FrameChannel(b, { peer: 'the peer', idleTimeoutMs: 100, busyLimitMs: 400 });
      const beat = setInterval(() => a.write(KEEPALIVE), 20);
      try {
        const started = Date.now();
        const outcome = await within(
          ch.read().then(
            () => 'read something',
            (err: unknown) => code(err),
          ),
          3000,
        );
        assert.equal(outcome, 'TIMEOUT', 'keepalives alone held the read');
        assert.ok(Date.now() - started >= 400, 'keepalives kept it past the idle timeout');
      } finally {
        clearInterval(beat);
        ch.destroy();
      }
    },
  );

  it(
    'times out a flush whose peer never reads but sends keepalives',
    { timeout: 10_000 },
    async () => {
      const [a, b] = pair();
      const ch = new FrameChannel(b, { peer: 'the peer', idleTimeoutMs: 100, busyLimitMs: 400 });
      ch.sendData(Buffer.alloc(1024 * 1024)); // the peer reads none of it
      const beat = setInterval(() => a.write(KEEPALIVE), 20);
      try {
        const outcome = await within(
          ch.flush().then(
            () => 'drained',
            (err: unknown) => code(err),
          ),
          3000,
        );
        assert.equal(outcome, 'TIMEOUT', 'keepalives alone held the flush');
      } finally {
        clearInterval(beat);
        ch.destroy();
      }
    },
  );

  it('hold() keeps what is sent until release() or flush(), which send it in order', async () => {
    const [a, b] = pair();
    const sender = new FrameChannel(a, { peer: 'the receiver', idleTimeoutMs: 1000 });
    const receiver = new FrameChannel(b, { peer: 'the sender', idleTimeoutMs: 1000 });
    const frame = (text: string): Buffer => Buffer.concat([Buffer.alloc(5), Buffer.from(text)]);
    sender.hold();
    const room = sender.batch(() => {
      sender.send({ t: 'file', i: 0, offset: 0 } as never);
      sender.sendFrame(frame('abc'));
      sender.send({ t: 'file-end', i: 0, sha256: 'ab'.repeat(32) } as never);
    });
    assert.equal(room, true, 'a held channel always has room; its caller decides when to release');
    assert.ok(sender.pendingBytes > 0);
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(receiver.poll(), undefined, 'nothing left while held');
    sender.release();
    assert.deepEqual(await receiver.readMessage(), { t: 'file', i: 0, offset: 0 });
    const data = await receiver.read();
    assert.ok(data.kind === 'data' && Buffer.concat(data.pieces).toString() === 'abc');
    assert.deepEqual(await receiver.readMessage(), {
      t: 'file-end',
      i: 0,
      sha256: 'ab'.repeat(32),
    });
    // flush() ends a hold before it waits, so a held channel never waits for a drain that cannot come.
    sender.hold();
    sender.send({ t: 'done' });
    assert.equal(await within(sender.flush(), 1000), undefined);
    assert.deepEqual(await receiver.readMessage(), { t: 'done' });
  });

  it('fails a flush at once when the peer breaks the protocol meanwhile', async () => {
    const [a, b] = pair();
    const ch = new FrameChannel(b, { peer: 'the peer', idleTimeoutMs: 0 });
    ch.sendData(Buffer.alloc(1024 * 1024)); // the peer reads none of it
    const flushing = ch.flush();
    a.write(Buffer.from([2, 0, 0, 0, 0]));
    const outcome = await within(
      flushing.then(
        () => 'drained',
        (err: unknown) => code(err),
      ),
      3000,
    );
    assert.equal(outcome, 'PROTOCOL_ERROR');
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
