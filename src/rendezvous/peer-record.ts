// A peer's record on the rendezvous account: who it is (certificate fingerprint), where it was
// last seen, and how to reach it. Records come from a shared account, so they are read with the
// same strict field readers as network messages (src/validate.ts).
import { RcppError } from '../errors.js';
import { familyOf, NAT_KINDS, PEER_NAME, type Endpoint, type NatKind, type Role } from '../peer.js';
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
  /** File servers: true while running. */
  online?: boolean;
  /** File servers: how clients reach them ('socket' = live signaling, 'records' = periodic mode). */
  signaling?: 'socket' | 'records';
  /** File servers in periodic mode: how often they read client records. */
  pollSeconds?: number;
  /** Clients in periodic mode: a pending connection request. */
  request?: PeriodicRequest;
}

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
}

export const FINGERPRINT = /^SHA256:[A-Za-z0-9+/]{43}$/;
const MAX_RECORD_BYTES = 16 * 1024;
const MAX_LOCAL_ENDPOINTS = 16;
const ISO_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)$/;
const REQUEST_ID = /^[0-9a-f]{8,64}$/;

/** This peer's own record, fresh: the one function that fills in version, software and time. */
export function selfRecord(
  who: { role: Role; name: string; fingerprint: string },
  addresses: PeerAddresses,
  extra: Pick<PeerRecord, 'online' | 'signaling' | 'pollSeconds' | 'request'> = {},
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
  if (f.has('online')) record.online = f.bool('online');
  if (f.has('signaling')) record.signaling = f.oneOf('signaling', ['socket', 'records'] as const);
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
  return record;
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

function isoTime(f: Fields, key: string): string {
  const value = f.str(key, 40, ISO_TIME, 'is not a time');
  if (Number.isNaN(Date.parse(value))) f.fail(`${key} is not a time`);
  return value;
}

export function serializePeerRecord(record: PeerRecord): string {
  return JSON.stringify(record);
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
