// NAT-PMP and PCP packets: the bytes rcpp2p sends (checked against the RFCs' layouts), and what
// the readers make of good, refused, short, long, foreign and garbled answers.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  decodeNatPmpAnswer,
  encodeExternalAddressRequest,
  encodeMapRequest,
} from '../../../../src/nat/port-mapping/natpmp.js';
import {
  decodePcpAnswer,
  encodeAnnounce,
  encodeMap,
  mappedAddress,
  unmappedAddress,
} from '../../../../src/nat/port-mapping/pcp.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

describe('NAT-PMP packets (RFC 6886)', () => {
  it('asks for the external address with two bytes', () => {
    assert.deepEqual(encodeExternalAddressRequest(), hex('0000'));
  });

  it('maps TCP port 40001, suggesting 40001, for an hour', () => {
    assert.deepEqual(
      encodeMapRequest({
        internalPort: 40001,
        suggestedExternalPort: 40001,
        lifetimeSeconds: 3600,
      }),
      hex('00 02 0000 9c41 9c41 00000e10'),
    );
  });

  it('a removal has lifetime 0 and external port 0, whatever was suggested', () => {
    assert.deepEqual(
      encodeMapRequest({ internalPort: 40001, suggestedExternalPort: 40001, lifetimeSeconds: 0 }),
      hex('00 02 0000 9c41 0000 00000000'),
    );
  });

  const cases: { setup: string; bytes: Buffer; expected: ReturnType<typeof decodeNatPmpAnswer> }[] =
    [
      {
        setup: 'miniupnpd tells its external address',
        bytes: hex('00 80 0000 00000010 cb007115'),
        expected: {
          ok: true,
          value: { op: 'external', result: 0, epoch: 16, externalIp: '203.0.113.21' },
        },
      },
      {
        setup: 'a router without a WAN address: network failure, header only',
        bytes: hex('00 80 0003 00000010'),
        expected: { ok: true, value: { op: 'external', result: 3, epoch: 16 } },
      },
      {
        setup: 'a granted mapping, another external port, a shorter lifetime',
        bytes: hex('00 82 0000 00000020 9c41 c350 00000708'),
        expected: {
          ok: true,
          value: {
            op: 'map',
            result: 0,
            epoch: 32,
            internalPort: 40001,
            externalPort: 50000,
            lifetimeSeconds: 1800,
          },
        },
      },
      {
        setup: 'refused (not authorized), header only',
        bytes: hex('00 82 0002 00000020'),
        expected: { ok: true, value: { op: 'map', result: 2, epoch: 32 } },
      },
      {
        setup: 'a success cut short: no mapping in it',
        bytes: hex('00 82 0000 00000020 9c41'),
        expected: { ok: false, problem: 'a mapping answer without the mapping' },
      },
      {
        setup: 'an external-address success without the address',
        bytes: hex('00 80 0000 00000010'),
        expected: { ok: false, problem: 'an external-address answer without the address' },
      },
      {
        setup: 'a PCP answer (version 2) is not NAT-PMP',
        bytes: hex('02 81 0000 00000078 00000010 000000000000000000000000'),
        expected: { ok: false, problem: 'version 2 (NAT-PMP is 0)' },
      },
      {
        setup: 'our own request echoed back (opcode without the answer bit)',
        bytes: hex('00 02 0000 9c41 9c41 00000e10'),
        expected: { ok: false, problem: 'opcode 2' },
      },
      {
        setup: 'four stray bytes',
        bytes: hex('deadbeef'),
        expected: { ok: false, problem: 'an answer of 4 bytes (at least 8 expected)' },
      },
      {
        setup: 'a flood of 1101 bytes',
        bytes: Buffer.alloc(1101),
        expected: { ok: false, problem: 'an answer of 1101 bytes' },
      },
    ];
  for (const c of cases) {
    it(`reads: ${c.setup}`, () => assert.deepEqual(decodeNatPmpAnswer(c.bytes), c.expected));
  }
});

describe('PCP packets (RFC 6887)', () => {
  const nonce = hex('0102030405060708090a0b0c');

  it('IPv4 addresses travel IPv4-mapped, and only those come back as IPv4', () => {
    assert.deepEqual(mappedAddress('198.18.1.2'), hex('00000000000000000000ffff c6120102'));
    assert.equal(unmappedAddress(hex('00000000000000000000ffff cb007115')), '203.0.113.21');
    assert.equal(unmappedAddress(hex('20010db8000000000000000000000001')), undefined);
    assert.throws(() => mappedAddress('2001:db8::1'));
  });

  it('ANNOUNCE is a bare 24-byte header with our address', () => {
    assert.deepEqual(
      encodeAnnounce('198.18.1.2'),
      hex('02 00 0000 00000000 00000000000000000000ffff c6120102'),
    );
  });

  it('MAP for TCP 40001 with a nonce, no preferred external address', () => {
    const b = encodeMap({
      nonce,
      clientIp: '198.18.1.2',
      internalPort: 40001,
      suggestedExternalPort: 40001,
      lifetimeSeconds: 3600,
    });
    assert.equal(b.length, 60);
    assert.deepEqual(
      b,
      hex(
        '02 01 0000 00000e10 00000000000000000000ffff c6120102' +
          '0102030405060708090a0b0c 06 000000 9c41 9c41 00000000000000000000ffff 00000000',
      ),
    );
  });

  it('a removal is the same MAP with lifetime 0 and no external port', () => {
    const b = encodeMap({
      nonce,
      clientIp: '198.18.1.2',
      internalPort: 40001,
      suggestedExternalPort: 40001,
      lifetimeSeconds: 0,
    });
    assert.equal(b.readUInt32BE(4), 0);
    assert.equal(b.readUInt16BE(42), 0);
    assert.deepEqual(b.subarray(24, 36), nonce);
  });

  const mapAnswer = (result: string, tail = ''): Buffer =>
    hex(
      `02 81 00 ${result} 00000078 00000005 000000000000000000000000` +
        '0102030405060708090a0b0c 06 000000 9c41 9c42 00000000000000000000ffff cb007115' +
        tail,
    );
  const cases: { setup: string; bytes: Buffer; expected: ReturnType<typeof decodePcpAnswer> }[] = [
    {
      setup: 'miniupnpd grants TCP 40001 as 203.0.113.21:40002 for its minimum 120 s',
      bytes: mapAnswer('00'),
      expected: {
        ok: true,
        value: {
          kind: 'map',
          result: 0,
          lifetimeSeconds: 120,
          epoch: 5,
          nonce,
          protocol: 6,
          internalPort: 40001,
          externalPort: 40002,
          externalIp: '203.0.113.21',
        },
      },
    },
    {
      setup: 'a granted mapping followed by an option we do not read',
      bytes: mapAnswer('00', '12 00 0004 00000000'),
      expected: decodePcpAnswer(mapAnswer('00')),
    },
    {
      setup: 'a refusal cut short after the header (allowed for errors)',
      bytes: hex('02 81 00 02 00000000 00000005 000000000000000000000000'),
      expected: { ok: true, value: { kind: 'map-refused', result: 2, epoch: 5 } },
    },
    {
      setup: 'a success cut short after the header',
      bytes: hex('02 81 00 00 00000078 00000005 000000000000000000000000'),
      expected: { ok: false, problem: 'a MAP answer without its body' },
    },
    {
      setup: 'ANNOUNCE answered',
      bytes: hex('02 80 00 00 00000000 00000005 000000000000000000000000'),
      expected: { ok: true, value: { kind: 'announce', result: 0, epoch: 5 } },
    },
    {
      setup: 'a NAT-PMP-only router: "unsupported version" in NAT-PMP',
      bytes: hex('00 81 0001 00000005'),
      expected: { ok: true, value: { kind: 'natpmp-only', result: 1 } },
    },
    {
      setup: 'a request (no answer bit), e.g. our own MAP reflected',
      bytes: hex('02 01 0000 00000e10 00000000000000000000ffff c6120102'),
      expected: { ok: false, problem: 'a request, not an answer' },
    },
    {
      setup: 'a length that is no multiple of 4',
      bytes: Buffer.concat([mapAnswer('00'), hex('00')]),
      expected: {
        ok: false,
        problem: 'an answer of 61 bytes (a multiple of 4, at least 24, expected)',
      },
    },
    {
      setup: 'version 1 (an early PCP draft)',
      bytes: hex('01 81 00 00 00000000 00000005 000000000000000000000000'),
      expected: { ok: false, problem: 'version 1 (PCP is 2)' },
    },
    {
      setup: 'a PEER answer (opcode 2), not asked for',
      bytes: hex('02 82 00 00 00000000 00000005 000000000000000000000000'),
      expected: { ok: false, problem: 'opcode 2' },
    },
    {
      setup: 'a flood of 1104 bytes',
      bytes: Buffer.alloc(1104, 2),
      expected: { ok: false, problem: 'an answer of 1104 bytes' },
    },
  ];
  for (const c of cases) {
    it(`reads: ${c.setup}`, () => assert.deepEqual(decodePcpAnswer(c.bytes), c.expected));
  }

  it('an IPv6 external address is kept out of the IPv4 field', () => {
    const b = mapAnswer('00');
    hex('20010db8000000000000000000000021').copy(b, 44);
    const d = decodePcpAnswer(b);
    assert.ok(d.ok && d.value.kind === 'map');
    assert.equal(d.value.externalIp, undefined);
  });
});
