// PCP (RFC 6887) packets, sans-IO: ANNOUNCE (is a PCP server there?) and MAP for one TCP port
// (lifetime 0 removes it), and a strict reader for the answers. Addresses travel as 16 bytes,
// IPv4 as IPv4-mapped IPv6 (::ffff:a.b.c.d).
//
//   request header  [2, R=0|opcode, 0:u16, lifetime:u32, client ip:16]                   24 bytes
//   answer header   [2, R=1|opcode, 0, result, lifetime:u32, epoch:u32, 0:12]             24 bytes
//   MAP body        [nonce:12, protocol, 0:3, internal:u16, external:u16, external ip:16] 36 bytes
//
// Messages are multiples of 4 bytes and at most 1100 (RFC 6887 7, 8.3). A NAT-PMP-only router
// answers a PCP request with NAT-PMP's "unsupported version" (version 0): that is reported as such,
// so the caller can fall back to NAT-PMP.
import { isIPv4 } from 'node:net';
import type { Decoded } from './natpmp.js';

export const PCP_VERSION = 2;
const OP_ANNOUNCE = 0;
const OP_MAP = 1;
const RESPONSE_BIT = 0x80;
const TCP = 6;
export const MAX_PCP_MESSAGE = 1100;
const HEADER = 24;
const MAP_BODY = 36;

export const PCP_RESULTS: Record<number, string> = {
  0: 'success',
  1: 'unsupported version',
  2: 'not authorized',
  3: 'malformed request',
  4: 'unsupported opcode',
  5: 'unsupported option',
  6: 'malformed option',
  7: 'network failure',
  8: 'no resources',
  9: 'unsupported protocol',
  10: 'user exceeded quota',
  11: 'cannot provide the external port',
  12: 'address mismatch (the router sees this peer at another address)',
  13: 'excessive remote peers',
};

export function pcpResultWords(code: number): string {
  return PCP_RESULTS[code] ?? `result code ${code}`;
}

/** 16 bytes: an IPv4 address as ::ffff:a.b.c.d. */
export function mappedAddress(ipv4: string): Buffer {
  if (!isIPv4(ipv4)) throw new Error(`not an IPv4 address: ${ipv4}`);
  const b = Buffer.alloc(16);
  b.writeUInt16BE(0xffff, 10);
  ipv4.split('.').forEach((octet, i) => b.writeUInt8(Number(octet), 12 + i));
  return b;
}

/** The IPv4 address in ::ffff:a.b.c.d, or undefined for a real IPv6 address. */
export function unmappedAddress(bytes: Buffer): string | undefined {
  if (bytes.length !== 16) return undefined;
  const prefix = bytes.subarray(0, 10).every((x) => x === 0) && bytes.readUInt16BE(10) === 0xffff;
  return prefix ? [...bytes.subarray(12, 16)].join('.') : undefined;
}

function header(opcode: number, lifetimeSeconds: number, clientIp: string, size: number): Buffer {
  const b = Buffer.alloc(size);
  b.writeUInt8(PCP_VERSION, 0);
  b.writeUInt8(opcode, 1);
  b.writeUInt32BE(lifetimeSeconds, 4);
  mappedAddress(clientIp).copy(b, 8);
  return b;
}

export function encodeAnnounce(clientIp: string): Buffer {
  return header(OP_ANNOUNCE, 0, clientIp, HEADER);
}

export interface PcpMapRequest {
  /** 12 random bytes, the same for a mapping's renewals and its removal. */
  nonce: Buffer;
  /** Our own address as the router sees it (PCP checks it against the packet's source). */
  clientIp: string;
  internalPort: number;
  suggestedExternalPort: number;
  /** Seconds; 0 removes the mapping. */
  lifetimeSeconds: number;
}

export function encodeMap(r: PcpMapRequest): Buffer {
  if (r.nonce.length !== 12) throw new Error('a PCP nonce is 12 bytes');
  const b = header(OP_MAP, r.lifetimeSeconds, r.clientIp, HEADER + MAP_BODY);
  r.nonce.copy(b, 24);
  b.writeUInt8(TCP, 36);
  b.writeUInt16BE(r.internalPort, 40);
  b.writeUInt16BE(r.lifetimeSeconds === 0 ? 0 : r.suggestedExternalPort, 42);
  mappedAddress('0.0.0.0').copy(b, 44); // no preference for the external address
  return b;
}

export type PcpAnswer =
  | { kind: 'natpmp-only'; result: number }
  | { kind: 'announce'; result: number; epoch: number }
  /** A MAP refusal cut short after the header (allowed for errors). */
  | { kind: 'map-refused'; result: number; epoch: number }
  | {
      kind: 'map';
      result: number;
      lifetimeSeconds: number;
      epoch: number;
      nonce: Buffer;
      protocol: number;
      internalPort: number;
      externalPort: number;
      /** Undefined when the router assigned an IPv6 address (not used by rcpp2p). */
      externalIp: string | undefined;
    };

/** Reads one answer; anything malformed is a problem, never a throw. */
export function decodePcpAnswer(bytes: Buffer): Decoded<PcpAnswer> {
  if (bytes.length > MAX_PCP_MESSAGE) return bad(`an answer of ${bytes.length} bytes`);
  if (bytes.length >= 8 && bytes.readUInt8(0) === 0) {
    // NAT-PMP's own answer to a version it does not speak (RFC 6886 3.5, RFC 6887 9)
    const result = bytes.readUInt16BE(2);
    return { ok: true, value: { kind: 'natpmp-only', result } };
  }
  if (bytes.length < HEADER || bytes.length % 4 !== 0) {
    return bad(`an answer of ${bytes.length} bytes (a multiple of 4, at least 24, expected)`);
  }
  const version = bytes.readUInt8(0);
  if (version !== PCP_VERSION) return bad(`version ${version} (PCP is 2)`);
  const rOp = bytes.readUInt8(1);
  if ((rOp & RESPONSE_BIT) === 0) return bad('a request, not an answer');
  const opcode = rOp & 0x7f;
  const result = bytes.readUInt8(3);
  const lifetimeSeconds = bytes.readUInt32BE(4);
  const epoch = bytes.readUInt32BE(8);
  if (opcode === OP_ANNOUNCE) return { ok: true, value: { kind: 'announce', result, epoch } };
  if (opcode !== OP_MAP) return bad(`opcode ${opcode}`);
  if (bytes.length < HEADER + MAP_BODY) {
    // RFC 6887 7.2: a server may cut an error answer short; a success never.
    if (result === 0) return bad('a MAP answer without its body');
    return { ok: true, value: { kind: 'map-refused', result, epoch } };
  }
  return {
    ok: true,
    value: {
      kind: 'map',
      result,
      lifetimeSeconds,
      epoch,
      nonce: Buffer.from(bytes.subarray(24, 36)),
      protocol: bytes.readUInt8(36),
      internalPort: bytes.readUInt16BE(40),
      externalPort: bytes.readUInt16BE(42),
      externalIp: unmappedAddress(bytes.subarray(44, 60)),
    },
  };
}

function bad(problem: string): { ok: false; problem: string } {
  return { ok: false, problem };
}

export const PCP_TCP = TCP;
