// A peer's record on the rendezvous account: who it is (certificate fingerprint), where it was
// last seen, and how to reach it. Records come from a shared account, so they are read with the
// same strict field readers as network messages (src/validate.ts).
import { RcppError } from '../errors.js';
import {
  familyOf,
  NAT_KINDS,
  PEER_NAME,
  PORT_MAPPING_PROTOCOLS,
  SIGNALING_KINDS,
  type Endpoint,
  type MappedEndpoint,
  type NatKind,
  type Role,
  type SignalingKind,
} from '../peer.js';
import { fields, type Complaint, type Fields } from '../validate.js';
import { SOFTWARE } from '../version.js';

export interface PeriodicRequest {
  /** Random id, so the server punches once per request. */
  id: string;
  /** ISO time the client asked. */
  at: string;
  external: Endpoint;
  /** A port the client listens on for this request, for a server behind the same router. */
  lanPort?: number;
}

/**
 * How clients reach a running file server (see SignalingKind). In the record, the kinds without
 * parameters are plain strings ("socket", "exec", "records"; the first and last are what earlier
 * versions wrote and read), the TCP port an object: {"via": "tcp", "port": 40123, "token": "..."}.
 * The token must open every channel to that port: a port on the host's loopback is reachable by
 * every local user of the host, the record only by the account.
 */
export type SignalingOffer =
  | { via: 'socket' }
  | { via: 'tcp'; port: number; token: string }
  | { via: 'exec' }
  | { via: 'records' };

export const SIGNALING_TOKEN = /^[0-9a-f]{32}$/;

export interface PeerRecord {
  v: 1;
  role: Role;
  name: string;
  /** SHA256:... of the peer's TLS certificate: the identity a connection must prove. */
  fingerprint: string;
  /** ISO time of the last publish. */
  lastSeen: string;
  software: string;
  external?: Endpoint;
  local?: Endpoint[];
  nat?: NatKind;
  /** The other address family (dual-stack peers): what the rendezvous saw there. */
  other?: FamilyReach;
  /** File servers: the punch port as mapped on their router (absent in records of older peers). */
  mapped?: MappedEndpoint;
  /** File servers: true while running. */
  online?: boolean;
  /** File servers: how clients reach them. */
  signaling?: SignalingOffer;
  /** File servers in periodic mode: how often they read client records. */
  pollSeconds?: number;
  /** Clients in periodic mode: a pending connection request. */
  request?: PeriodicRequest;
  /** A one-shot send (rcpp2p --send): what the receiver checks before it trusts this record. */
  offer?: SendOffer;
}

/**
 * The offer of a one-shot send, in the sender's record (named send-<nameplate>). Everyone in the
 * account can write records, so the receiver trusts the fingerprint only when `proof` shows the
 * writer knew the code (secure/send-code.ts).
 */
export interface SendOffer {
  /** ISO time after which the sender stops waiting. */
  expires: string;
  /** HMAC(code's key, the sender's fingerprint), hex. */
  proof: string;
}

export const SEND_PROOF = /^[0-9a-f]{64}$/;

/** What a peer learned about itself in one address family (IPv4 or IPv6). */
export interface FamilyReach {
  /** Its address and port as the rendezvous saw them (a NAT's mapping, or its own address). */
  external: Endpoint;
  nat: NatKind;
  /** A listener in that family, offered in signaling by a peer reachable there. */
  listen?: Endpoint;
}

/**
 * Where a peer is, as it learned on joining the rendezvous: `external`/`nat` in the family of its
 * rendezvous session, `other` in the other family when it has a route there (dual stack).
 */
export interface PeerAddresses {
  external: Endpoint;
  local: Endpoint[];
  nat: NatKind;
  other?: FamilyReach;
  /** A port the peer's router forwards to it (UPnP, NAT-PMP or PCP), checked to be reachable. */
  mapped?: MappedEndpoint;
}

export const FINGERPRINT = /^SHA256:[A-Za-z0-9+/]{43}$/;
export const MAX_RECORD_BYTES = 16 * 1024;
const MAX_LOCAL_ENDPOINTS = 16;
const ISO_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)$/;
const REQUEST_ID = /^[0-9a-f]{8,64}$/;

/** This peer's own record, fresh: the one function that fills in version, software and time. */
export function selfRecord(
  who: { role: Role; name: string; fingerprint: string },
  addresses: PeerAddresses,
  extra: Pick<PeerRecord, 'online' | 'signaling' | 'pollSeconds' | 'request' | 'offer'> = {},
): PeerRecord {
  return {
    v: 1,
    role: who.role,
    name: who.name,
    fingerprint: who.fingerprint,
    lastSeen: new Date().toISOString(),
    software: SOFTWARE,
    external: addresses.external,
    local: addresses.local,
    nat: addresses.nat,
    ...(addresses.other && {
      other: { external: addresses.other.external, nat: addresses.other.nat },
    }),
    ...(addresses.mapped && { mapped: addresses.mapped }),
    ...extra,
  };
}

/** Parses a record read from the rendezvous; throws a sentence naming the peer when it is bad. */
export function parsePeerRecord(text: string, expected: { role: Role; name: string }): PeerRecord {
  const who = `${expected.role} ${expected.name}`;
  const complain: Complaint = (_where, problem) =>
    new RcppError(
      'RENDEZVOUS_REFUSED',
      `The rendezvous record of ${who} is damaged (${problem}).`,
      `Restart that ${expected.role === 'server' ? 'file server' : 'client with --addclient'} to publish it again.`,
    );
  if (text.length > MAX_RECORD_BYTES) throw complain(who, 'too large');
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw complain(who, 'not JSON');
  }
  const f = fields(raw, who, complain);
  if (f.raw('v') !== 1) f.fail(`unknown version ${JSON.stringify(f.raw('v')) ?? 'none'}`);
  const role = f.oneOf('role', ['server', 'client'] as const);
  const name = f.str('name', 64, PEER_NAME);
  if (role !== expected.role || name !== expected.name) f.fail('it names another peer');
  const record: PeerRecord = {
    v: 1,
    role,
    name,
    fingerprint: f.str('fingerprint', 64, FINGERPRINT, 'is not a certificate fingerprint'),
    lastSeen: isoTime(f, 'lastSeen'),
    software: f.has('software') ? f.str('software', 256).slice(0, 64) : 'unknown',
  };
  if (f.has('external')) record.external = f.endpoint('external');
  if (f.has('local')) record.local = f.endpoints('local', MAX_LOCAL_ENDPOINTS);
  if (f.has('nat')) record.nat = f.oneOf('nat', NAT_KINDS);
  if (f.has('other')) record.other = familyReach(f.obj('other'));
  if (f.has('mapped')) record.mapped = readMapped(f);
  if (f.has('online')) record.online = f.bool('online');
  if (f.has('signaling')) record.signaling = readSignalingOffer(f);
  if (f.has('pollSeconds')) record.pollSeconds = f.int('pollSeconds', 1, 3600);
  if (f.has('request')) {
    const q = f.obj('request');
    record.request = {
      id: q.str('id', 64, REQUEST_ID),
      at: isoTime(q, 'at'),
      external: q.endpoint('external'),
      ...(q.has('lanPort') && { lanPort: q.int('lanPort', 1, 65535) }),
    };
  }
  if (f.has('offer')) {
    const o = f.obj('offer');
    record.offer = {
      expires: isoTime(o, 'expires'),
      proof: o.str('proof', 64, SEND_PROOF, 'is not a send proof'),
    };
  }
  return record;
}

function readSignalingOffer(f: Fields): SignalingOffer {
  if (typeof f.raw('signaling') === 'string') {
    const via = f.oneOf('signaling', SIGNALING_KINDS);
    if (via === 'tcp') f.fail('signaling "tcp" needs a port and a token');
    return { via };
  }
  const o = f.obj('signaling');
  const via: SignalingKind = o.oneOf('via', SIGNALING_KINDS);
  if (via !== 'tcp') return { via };
  return {
    via,
    port: o.int('port', 1, 65535),
    token: o.str('token', 32, SIGNALING_TOKEN, 'is not a signaling token'),
  };
}

/** One family's reach, as records and signals carry it (signals add a listener). */
export function familyReach(f: Fields): FamilyReach {
  const reach: FamilyReach = { external: f.endpoint('external'), nat: f.oneOf('nat', NAT_KINDS) };
  if (!f.has('listen')) return reach;
  reach.listen = f.endpoint('listen');
  if (familyOf(reach.listen.ip) !== familyOf(reach.external.ip)) {
    f.fail('listen is in another address family than external');
  }
  return reach;
}

/** A mapped endpoint (records and signals): `{ protocol, external: { ip, port } }`. */
export function readMapped(f: Fields): MappedEndpoint {
  const m = f.obj('mapped');
  const mapped = {
    protocol: m.oneOf('protocol', PORT_MAPPING_PROTOCOLS),
    external: m.endpoint('external'),
  };
  if (familyOf(mapped.external.ip) !== 4) m.fail('mapped.external is not an IPv4 address');
  return mapped;
}

function isoTime(f: Fields, key: string): string {
  const value = f.str(key, 40, ISO_TIME, 'is not a time');
  if (Number.isNaN(Date.parse(value))) f.fail(`${key} is not a time`);
  return value;
}

export function serializePeerRecord(record: PeerRecord): string {
  const offer = record.signaling;
  if (offer === undefined) return JSON.stringify(record);
  return JSON.stringify({ ...record, signaling: offer.via === 'tcp' ? offer : offer.via });
}

/** "3 hours ago", for telling a user when an offline server was last seen. */
export function describeAge(isoTime: string, now: number): string {
  const seconds = Math.max(0, Math.round((now - Date.parse(isoTime)) / 1000));
  const units: [number, string][] = [
    [86400, 'day'],
    [3600, 'hour'],
    [60, 'minute'],
  ];
  for (const [size, unit] of units) {
    if (seconds >= size) {
      const n = Math.floor(seconds / size);
      return `${n} ${unit}${n === 1 ? '' : 's'} ago`;
    }
  }
  return seconds <= 1 ? 'just now' : `${seconds} seconds ago`;
}
