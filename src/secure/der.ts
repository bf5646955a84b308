// The few DER (ASN.1 Distinguished Encoding Rules) building blocks an X.509 certificate needs.
// Each function returns one complete TLV (tag, length, value); nesting is done by passing TLVs in.
// Only encoding: Node's crypto.X509Certificate does the parsing.

function encodeLength(length: number): Buffer {
  if (length < 0x80) return Buffer.from([length]);
  const bytes: number[] = [];
  for (let n = length; n > 0; n = Math.floor(n / 256)) bytes.unshift(n & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

export function tlv(tag: number, value: Buffer): Buffer {
  return Buffer.concat([Buffer.from([tag]), encodeLength(value.length), value]);
}

export function sequence(...items: Buffer[]): Buffer {
  return tlv(0x30, Buffer.concat(items));
}

export function set(...items: Buffer[]): Buffer {
  return tlv(0x31, Buffer.concat(items));
}

/** An INTEGER from a non-negative number or unsigned big-endian bytes, in minimal two's complement. */
export function integer(value: number | Buffer): Buffer {
  let bytes: Buffer;
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`bad DER integer ${value}`);
    const digits: number[] = [];
    for (let n = value; n > 0; n = Math.floor(n / 256)) digits.unshift(n & 0xff);
    bytes = Buffer.from(digits);
  } else {
    bytes = value;
  }
  let start = 0;
  while (start < bytes.length - 1 && bytes[start] === 0) start++;
  bytes = bytes.subarray(start);
  if (bytes.length === 0) bytes = Buffer.from([0]);
  if ((bytes[0] ?? 0) & 0x80) bytes = Buffer.concat([Buffer.from([0]), bytes]);
  return tlv(0x02, bytes);
}

export function boolean(value: boolean): Buffer {
  return tlv(0x01, Buffer.from([value ? 0xff : 0x00]));
}

/** An OBJECT IDENTIFIER from its dotted form, e.g. "1.3.101.112". */
export function oid(dotted: string): Buffer {
  const arcs = dotted.split('.').map((s) => Number(s));
  const [first, second, ...rest] = arcs;
  if (
    first === undefined ||
    second === undefined ||
    arcs.some((n) => !Number.isSafeInteger(n) || n < 0)
  ) {
    throw new RangeError(`bad OID ${dotted}`);
  }
  const out: number[] = [];
  for (const arc of [first * 40 + second, ...rest]) {
    const groups: number[] = [arc & 0x7f];
    for (let n = Math.floor(arc / 128); n > 0; n = Math.floor(n / 128))
      groups.unshift(0x80 | (n & 0x7f));
    out.push(...groups);
  }
  return tlv(0x06, Buffer.from(out));
}

export function utf8String(text: string): Buffer {
  return tlv(0x0c, Buffer.from(text, 'utf8'));
}

export function octetString(bytes: Buffer): Buffer {
  return tlv(0x04, bytes);
}

/** A BIT STRING holding whole bytes (no unused bits). */
export function bitString(bytes: Buffer): Buffer {
  return tlv(0x03, Buffer.concat([Buffer.from([0]), bytes]));
}

/** An EXPLICIT context-specific tag [n] around one value. */
export function explicit(n: number, value: Buffer): Buffer {
  return tlv(0xa0 | n, value);
}

/**
 * An X.509 Time (RFC 5280 4.1.2.5): UTCTime (YYMMDDHHMMSSZ) through 2049, GeneralizedTime
 * (YYYYMMDDHHMMSSZ) from 2050 on. Seconds precision; milliseconds are dropped.
 */
export function time(date: Date): Buffer {
  const iso = date.toISOString(); // 2025-01-31T12:34:56.789Z
  const digits = iso.slice(0, 19).replace(/[-T:]/g, ''); // 20250131123456
  const year = date.getUTCFullYear();
  if (year < 1950 || year > 9999) throw new RangeError(`year ${year} cannot be encoded in X.509`);
  return year < 2050
    ? tlv(0x17, Buffer.from(`${digits.slice(2)}Z`))
    : tlv(0x18, Buffer.from(`${digits}Z`));
}
