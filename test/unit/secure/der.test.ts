// The DER building blocks, checked byte by byte against encodings from X.690 and RFC 5280.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as der from '../../../src/secure/der.js';

const hex = (b: Buffer): string => b.toString('hex');

describe('DER encoder', () => {
  it("encodes INTEGERs in minimal two's complement", () => {
    const table: [number | Buffer, string][] = [
      [0, '020100'],
      [2, '020102'],
      [127, '02017f'],
      [128, '02020080'],
      [256, '02020100'],
      [65535, '020300ffff'],
      [Buffer.from([0, 0, 5]), '020105'],
      [Buffer.from([0xff]), '020200ff'],
      [Buffer.alloc(0), '020100'],
    ];
    for (const [value, want] of table) assert.equal(hex(der.integer(value)), want, String(value));
    assert.throws(() => der.integer(-1), RangeError);
  });

  it('encodes OBJECT IDENTIFIERs', () => {
    assert.equal(hex(der.oid('1.3.101.112')), '06032b6570'); // Ed25519
    assert.equal(hex(der.oid('2.5.4.3')), '0603550403'); // commonName
    assert.equal(hex(der.oid('1.2.840.113549')), '06062a864886f70d'); // rsadsi, multi-byte arcs
    assert.equal(hex(der.oid('2.5.29.19')), '0603551d13'); // basicConstraints
    assert.throws(() => der.oid('1'), RangeError);
  });

  it('uses long-form lengths from 128 bytes on', () => {
    assert.equal(hex(der.octetString(Buffer.alloc(127))).slice(0, 4), '047f');
    assert.equal(hex(der.octetString(Buffer.alloc(128))).slice(0, 6), '048180');
    assert.equal(hex(der.octetString(Buffer.alloc(300))).slice(0, 8), '0482012c');
    assert.equal(der.octetString(Buffer.alloc(70_000)).length, 70_000 + 5);
  });

  it('encodes times as UTCTime through 2049 and GeneralizedTime from 2050', () => {
    assert.equal(
      der.time(new Date('2049-12-31T23:59:59.999Z')).toString('latin1'),
      '\x17\x0d491231235959Z',
    );
    assert.equal(
      der.time(new Date('2050-01-01T00:00:00Z')).toString('latin1'),
      '\x18\x0f20500101000000Z',
    );
    assert.equal(
      der.time(new Date('1999-06-01T12:00:00Z')).toString('latin1'),
      '\x17\x0d990601120000Z',
    );
    assert.throws(() => der.time(new Date('1949-12-31T00:00:00Z')), RangeError);
  });

  it('encodes the other blocks', () => {
    assert.equal(hex(der.boolean(true)), '0101ff');
    assert.equal(hex(der.boolean(false)), '010100');
    assert.equal(hex(der.bitString(Buffer.from([1, 2]))), '0303000102');
    assert.equal(hex(der.utf8String('rcpp2p é')), `0c09${Buffer.from('rcpp2p é').toString('hex')}`);
    assert.equal(hex(der.explicit(0, der.integer(2))), 'a003020102');
    assert.equal(hex(der.sequence()), '3000');
    assert.equal(hex(der.set(der.integer(1))), '3103020101');
  });
});
