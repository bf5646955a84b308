// A mapped endpoint in records and signals: carried with its protocol, checked field by field, and
// optional, so records and signals of peers without port mapping stay readable.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isRcppError } from '../../../src/errors.js';
import {
  parsePeerRecord,
  selfRecord,
  serializePeerRecord,
} from '../../../src/rendezvous/peer-record.js';
import { encodeSignal, parseSignal } from '../../../src/rendezvous/signaling.js';

const FP = 'SHA256:' + 'A'.repeat(43);
const who = { role: 'server' as const, name: 'ASUS', fingerprint: FP };
const addresses = {
  external: { ip: '203.0.113.21', port: 52011 },
  local: [{ ip: '198.18.1.2', port: 40001 }],
  nat: 'port-changing' as const,
};
const mapped = { protocol: 'upnp' as const, external: { ip: '203.0.113.21', port: 40001 } };

describe('mapped endpoints in records and signals', () => {
  it('a symmetric-NAT server with UPnP publishes its mapped punch port; it reads back', () => {
    const record = selfRecord(who, { ...addresses, mapped }, { online: true });
    assert.deepEqual(record.mapped, mapped);
    assert.deepEqual(parsePeerRecord(serializePeerRecord(record), who).mapped, mapped);
  });

  it('without a mapping the record has no field (as older peers wrote it), and reads back', () => {
    const record = selfRecord(who, addresses, { online: true });
    assert.equal('mapped' in record, false);
    assert.equal(parsePeerRecord(serializePeerRecord(record), who).mapped, undefined);
  });

  const damaged: [string, unknown][] = [
    ['an unknown protocol', { protocol: 'igd-magic', external: mapped.external }],
    ['no address', { protocol: 'pcp' }],
    ['a bad port', { protocol: 'pcp', external: { ip: '203.0.113.21', port: 0 } }],
    ['a shell string', { protocol: 'pcp', external: { ip: '$(reboot)', port: 1 } }],
    ['not an object', 'upnp 203.0.113.21:40001'],
  ];
  for (const [what, value] of damaged) {
    it(`a record whose mapped endpoint has ${what} is refused with a sentence`, () => {
      const text = JSON.stringify({ ...selfRecord(who, addresses), mapped: value });
      assert.throws(
        () => parsePeerRecord(text, who),
        (err) =>
          isRcppError(err) &&
          err.code === 'RENDEZVOUS_REFUSED' &&
          /record of server ASUS is damaged \(mapped/.test(err.message),
      );
    });
    it(`a signal whose mapped endpoint has ${what} is refused`, () => {
      const line = JSON.stringify({
        t: 'accept',
        session: 'a'.repeat(32),
        server: 'ASUS',
        ...addresses,
        mapped: value,
      });
      assert.throws(
        () => parseSignal(line),
        (err) => isRcppError(err) && err.code === 'PROTOCOL_ERROR' && /mapped/.test(err.message),
      );
    });
  }

  it('request and accept carry it; an old peer’s accept without it still parses', () => {
    const request = {
      t: 'request' as const,
      session: 'b'.repeat(32),
      client: 'LAPTOP',
      ...addresses,
      mapped: { protocol: 'natpmp' as const, external: { ip: '203.0.113.22', port: 45001 } },
    };
    assert.deepEqual(parseSignal(encodeSignal(request).trim()), request);
    const old = { t: 'accept' as const, session: 'c'.repeat(32), server: 'ASUS', ...addresses };
    assert.deepEqual(parseSignal(encodeSignal(old).trim()), old);
  });
});
