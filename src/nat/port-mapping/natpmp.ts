// NAT-PMP (RFC 6886) packets, sans-IO: the two requests rcpp2p sends (the router's external address,
// and a TCP mapping, which with lifetime 0 is its removal) and a strict reader for the answers.
//
//   external address  request  [0, 0]                                              2 bytes
//                     answer   [0, 128, result:u16, epoch:u32, ip:4]               12 bytes
//   map TCP           request  [0, 2, 0:u16, internal:u16, external:u16, life:u32] 12 bytes
//                     answer   [0, 130, result:u16, epoch:u32, internal:u16,
//                               external:u16, life:u32]                            16 bytes
//
// An error answer may stop after the 8-byte header (RFC 6886 3.5: "Unsupported Version" and
// "Unsupported Opcode" carry nothing else); a success must carry every field. A PCP server that
// does not speak NAT-PMP answers with its own version (2): that is "not NAT-PMP", not garbage.

export const NATPMP_PORT = 5351;
export const NATPMP_VERSION = 0;
const OP_EXTERNAL = 0;
const OP_MAP_TCP = 2;
const RESPONSE = 128;
/** Larger answers are refused before they are read (a router is untrusted input). */
export const MAX_NATPMP_ANSWER = 1100;

export const NATPMP_RESULTS: Record<number, string> = {
  0: 'success',
  1: 'unsupported version',
  2: 'not authorized or refused',
  3: 'network failure (the router has no external address)',
  4: 'out of resources',
  5: 'unsupported opcode',
};

export function resultWords(code: number): string {
  return NATPMP_RESULTS[code] ?? `result code ${code}`;
}

export function encodeExternalAddressRequest(): Buffer {
  return Buffer.from([NATPMP_VERSION, OP_EXTERNAL]);
}

export interface NatPmpMapRequest {
  internalPort: number;
  /** The external port we would like (the router may give another); 0 when removing. */
  suggestedExternalPort: number;
  /** Seconds; 0 removes the mapping of internalPort. */
  lifetimeSeconds: number;
}

export function encodeMapRequest(r: NatPmpMapRequest): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt8(NATPMP_VERSION, 0);
  b.writeUInt8(OP_MAP_TCP, 1);
  b.writeUInt16BE(r.internalPort, 4);
  b.writeUInt16BE(r.lifetimeSeconds === 0 ? 0 : r.suggestedExternalPort, 6);
  b.writeUInt32BE(r.lifetimeSeconds, 8);
  return b;
}

export type NatPmpAnswer =
  | { op: 'external'; result: number; epoch: number; externalIp?: string }
  | {
      op: 'map';
      result: number;
      epoch: number;
      internalPort?: number;
      externalPort?: number;
      lifetimeSeconds?: number;
    };

export type Decoded<T> = { ok: true; value: T } | { ok: false; problem: string };

/** Reads one answer; anything malformed is a problem, never a throw. */
export function decodeNatPmpAnswer(bytes: Buffer): Decoded<NatPmpAnswer> {
  if (bytes.length > MAX_NATPMP_ANSWER) return bad(`an answer of ${bytes.length} bytes`);
  if (bytes.length < 8) return bad(`an answer of ${bytes.length} bytes (at least 8 expected)`);
  const version = bytes.readUInt8(0);
  if (version !== NATPMP_VERSION) return bad(`version ${version} (NAT-PMP is 0)`);
  const op = bytes.readUInt8(1);
  const result = bytes.readUInt16BE(2);
  const epoch = bytes.readUInt32BE(4);
  if (op === RESPONSE + OP_EXTERNAL) {
    if (result !== 0) return { ok: true, value: { op: 'external', result, epoch } };
    if (bytes.length < 12) return bad('an external-address answer without the address');
    const externalIp = [...bytes.subarray(8, 12)].join('.');
    return { ok: true, value: { op: 'external', result, epoch, externalIp } };
  }
  if (op === RESPONSE + OP_MAP_TCP) {
    if (result !== 0) return { ok: true, value: { op: 'map', result, epoch } };
    if (bytes.length < 16) return bad('a mapping answer without the mapping');
    return {
      ok: true,
      value: {
        op: 'map',
        result,
        epoch,
        internalPort: bytes.readUInt16BE(8),
        externalPort: bytes.readUInt16BE(10),
        lifetimeSeconds: bytes.readUInt32BE(12),
      },
    };
  }
  return bad(`opcode ${op}`);
}

function bad(problem: string): { ok: false; problem: string } {
  return { ok: false, problem };
}
