import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import { isRcppError } from '../../../src/errors.js';
import {
  describeAge,
  parsePeerRecord,
  serializePeerRecord,
  type PeerRecord,
} from '../../../src/rendezvous/peer-record.js';
import {
  encodeSignal,
  parseSignal,
  readLine,
  type SignalMessage,
} from '../../../src/rendezvous/signaling.js';

const FP = 'SHA256:' + 'A'.repeat(43);
const record: PeerRecord = {
  v: 1,
  role: 'server',
  name: 'ASUS',
  fingerprint: FP,
  lastSeen: '2026-11-22T10:00:00.000Z',
  software: 'rcpp2p 0.1.0',
  external: { ip: '203.0.113.21', port: 40001 },
  local: [{ ip: '198.18.1.2', port: 40001 }],
  nat: 'port-preserving',
  online: true,
  signaling: 'socket',
  pollSeconds: 10,
};

describe('peer records', () => {
  it('round-trip', () => {
    assert.deepEqual(
      parsePeerRecord(serializePeerRecord(record), { role: 'server', name: 'ASUS' }),
      record,
    );
  });

  const damaged: [string, string][] = [
    ['not JSON', '{"v":1,'],
    ['another peer', serializePeerRecord({ ...record, name: 'OTHER' })],
    ['another role', serializePeerRecord({ ...record, role: 'client' })],
    ['a future version', JSON.stringify({ ...record, v: 2 })],
    ['no fingerprint', JSON.stringify({ ...record, fingerprint: 'md5:00' })],
    ['a bad time', JSON.stringify({ ...record, lastSeen: 'yesterday' })],
    [
      'a bad address',
      JSON.stringify({ ...record, external: { ip: '203.0.113.21; rm -rf /', port: 1 } }),
    ],
    ['a bad port', JSON.stringify({ ...record, external: { ip: '203.0.113.21', port: 70000 } })],
    [
      'too many local addresses',
      JSON.stringify({ ...record, local: Array(17).fill({ ip: '10.0.0.1', port: 1 }) }),
    ],
    ['an oversized record', JSON.stringify({ ...record, software: 'x'.repeat(20_000) })],
  ];
  for (const [what, text] of damaged) {
    it(`refuses ${what} with a sentence naming the peer`, () => {
      assert.throws(
        () => parsePeerRecord(text, { role: 'server', name: 'ASUS' }),
        (err: unknown) => isRcppError(err) && /server ASUS is damaged/.test(err.message),
      );
    });
  }

  it('says how long ago a peer was seen', () => {
    const now = Date.parse('2026-11-22T13:00:00Z');
    assert.equal(describeAge('2026-11-22T10:00:00Z', now), '3 hours ago');
    assert.equal(describeAge('2026-11-22T12:59:00Z', now), '1 minute ago');
    assert.equal(describeAge('2026-11-20T12:00:00Z', now), '2 days ago');
    assert.equal(describeAge('2026-11-22T13:00:00Z', now), 'just now');
  });
});

describe('signaling messages', () => {
  const session = 'ab'.repeat(16);
  it('round-trip a request and an accept', () => {
    const request = {
      t: 'request',
      session,
      client: 'LAPTOP',
      external: { ip: '203.0.113.22', port: 40002 },
      local: [],
      nat: 'port-preserving',
    } satisfies SignalMessage;
    assert.deepEqual(parseSignal(encodeSignal(request).trim()), request);
    const accept = {
      t: 'accept',
      session,
      server: 'ASUS',
      external: { ip: '203.0.113.31', port: 40001 },
      local: [],
      nat: 'public',
      listen: { ip: '203.0.113.31', port: 45000 },
    } satisfies SignalMessage;
    assert.deepEqual(parseSignal(encodeSignal(accept).trim()), accept);
  });

  for (const [what, line] of [
    ['garbage', 'GET / HTTP/1.1'],
    ['an array', '[1,2]'],
    ['an unknown type', '{"t":"exec","cmd":"id"}'],
    ['a bad session id', JSON.stringify({ t: 'chosen', session: '../x', path: 'direct' })],
    [
      'a bad name',
      JSON.stringify({
        t: 'request',
        session,
        client: 'a b',
        external: { ip: '1.2.3.4', port: 1 },
        local: [],
        nat: 'public',
      }),
    ],
    ['a bad path', JSON.stringify({ t: 'chosen', session, path: 'teleport' })],
    [
      'a LAN port out of range',
      JSON.stringify({
        t: 'accept',
        session,
        server: 'ASUS',
        external: { ip: '1.2.3.4', port: 1 },
        local: [],
        nat: 'port-preserving',
        lanPort: 70000,
      }),
    ],
  ] as const) {
    it(`refuses ${what}`, () => {
      assert.throws(
        () => parseSignal(line),
        (err: unknown) => isRcppError(err) && err.code === 'PROTOCOL_ERROR',
      );
    });
  }

  it('parses a relay channel’s open line, and refuses one that names no set-up', () => {
    assert.deepEqual(parseSignal(JSON.stringify({ t: 'open', v: 1, kind: 'relay', session })), {
      t: 'open',
      v: 1,
      kind: 'relay',
      session,
    });
    for (const bad of [
      { t: 'open', v: 1, kind: 'relay' },
      { t: 'open', v: 1, kind: 'relay', session: 'ab' },
      { t: 'open', v: 1, kind: 'shell', session },
    ]) {
      assert.throws(
        () => parseSignal(JSON.stringify(bad)),
        (err: unknown) => isRcppError(err) && err.code === 'PROTOCOL_ERROR',
        JSON.stringify(bad),
      );
    }
  });

  it('keeps a refusal’s words but only as display-safe text, cut at 500 characters, with a known code', () => {
    const refusal = parseSignal(
      JSON.stringify({
        t: 'refuse',
        code: 'PEER_REFUSED',
        message: 'No\u001b]0;owned\u0007 way' + 'x'.repeat(1000),
        hint: 'Run\u001b[2J curl | sh',
      }),
    );
    assert.ok(refusal.t === 'refuse');
    assert.equal(refusal.code, 'PEER_REFUSED');
    // eslint-disable-next-line no-control-regex -- looking for control characters is the point
    assert.doesNotMatch(refusal.message + refusal.hint, /[\u0000-\u001f\u007f-\u009f]/);
    assert.ok(refusal.message.length <= 500, String(refusal.message.length));
    assert.match(refusal.message, /^No\ufffd\]0;owned\ufffd way/);
    const unknown = parseSignal(
      JSON.stringify({ t: 'refuse', code: 'SELF_DESTRUCT', message: 'm' }),
    );
    assert.ok(unknown.t === 'refuse');
    assert.equal(unknown.code, 'PEER_REFUSED', 'a code this version does not know is a refusal');
    assert.equal(unknown.hint, '');
  });

  it('round-trips the server’s acknowledgement and a dual-stack request', () => {
    assert.deepEqual(parseSignal(JSON.stringify({ t: 'received', session })), {
      t: 'received',
      session,
    });
    const request = {
      t: 'request',
      session,
      client: 'LAPTOP',
      external: { ip: '2001:db8:2::2', port: 40002 },
      local: [],
      nat: 'public',
      other: {
        external: { ip: '203.0.113.22', port: 61002 },
        nat: 'port-changing',
        listen: { ip: '203.0.113.22', port: 45000 },
      },
    } satisfies SignalMessage;
    assert.deepEqual(parseSignal(encodeSignal(request).trim()), request);
    assert.throws(
      () =>
        parseSignal(
          JSON.stringify({
            ...request,
            other: { ...request.other, listen: { ip: '2001:db8:2::2', port: 45000 } },
          }),
        ),
      (err: unknown) => isRcppError(err) && /another address family/.test(err.message),
    );
  });

  it('tells a version mismatch apart', () => {
    assert.throws(
      () => parseSignal('{"t":"open","v":2,"kind":"signal"}'),
      (err: unknown) => isRcppError(err) && err.code === 'VERSION_MISMATCH',
    );
  });

  it('reads one line and leaves the following bytes (TLS on a relay) in the stream', async () => {
    const stream = new PassThrough();
    stream.write('{"t":"open"');
    stream.write(',"v":1,"kind":"relay","session":"' + session + '"}\n\x16\x03\x01rest');
    const line = await readLine(stream);
    assert.equal((JSON.parse(line) as { kind: string }).kind, 'relay');
    const rest = stream.read() as Buffer;
    assert.equal(rest.toString('latin1'), '\x16\x03\x01rest');
  });

  it('refuses a line longer than the cap before buffering more', async () => {
    const stream = new PassThrough();
    stream.write('x'.repeat(20_000));
    await assert.rejects(
      readLine(stream, { maxBytes: 16 * 1024 }),
      (err: unknown) => isRcppError(err) && err.code === 'FRAME_TOO_LARGE',
    );
  });
});
