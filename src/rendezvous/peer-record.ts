// A peer's record on the rendezvous account: who it is (certificate fingerprint), where it was
// last seen, and how to reach it. Records come from a shared account, so they are parsed strictly.
import { RcppError } from '../errors.js';
import type { Endpoint } from '../progress.js';
import type { Role } from './commands.js';
import { isPeerName } from './names.js';

/** What the NAT in front of a peer does, as far as one observation can tell. */
export type NatKind = 'public' | 'port-preserving' | 'port-changing';

export interface PeriodicRequest {
  /** Random id, so the server punches once per request. */
  id: string;
  /** ISO time the client asked. */
  at: string;
  external: Endpoint;
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
  /** File servers: true while running. */
  online?: boolean;
  /** File servers: how clients reach them ('socket' = live signaling, 'records' = periodic mode). */
  signaling?: 'socket' | 'records';
  /** File servers in periodic mode: how often they read client records. */
  pollSeconds?: number;
  /** Clients in periodic mode: a pending connection request. */
  request?: PeriodicRequest;
}

const FINGERPRINT = /^SHA256:[A-Za-z0-9+/]{43}$/;
const MAX_RECORD_BYTES = 16 * 1024;

/** An IPv4/IPv6 address and a port, as records and signaling messages carry them. */
export function isEndpoint(v: unknown): v is Endpoint {
  const e = v as Endpoint;
  return (
    typeof e === 'object' &&
    e !== null &&
    typeof e.ip === 'string' &&
    /^[0-9A-Fa-f.:]{2,64}$/.test(e.ip) &&
    Number.isInteger(e.port) &&
    e.port > 0 &&
    e.port <= 65535
  );
}

function isIsoTime(v: unknown): v is string {
  return typeof v === 'string' && v.length <= 40 && !Number.isNaN(Date.parse(v));
}

/** Parses a record read from the rendezvous; throws a sentence naming the peer when it is bad. */
export function parsePeerRecord(text: string, expected: { role: Role; name: string }): PeerRecord {
  const who = `${expected.role} ${expected.name}`;
  const bad = (what: string): RcppError =>
    new RcppError(
      'RENDEZVOUS_REFUSED',
      `The rendezvous record of ${who} is damaged (${what}).`,
      `Restart that ${expected.role === 'server' ? 'file server' : 'client with --addclient'} to publish it again.`,
    );
  if (text.length > MAX_RECORD_BYTES) throw bad('too large');
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw bad('not JSON');
  }
  const r = raw as Partial<PeerRecord>;
  if (typeof r !== 'object' || r === null) throw bad('not an object');
  if (r.v !== 1) throw bad(`unknown version ${String(r.v)}`);
  if (r.role !== expected.role || r.name !== expected.name || !isPeerName(r.name)) {
    throw bad('it names another peer');
  }
  if (typeof r.fingerprint !== 'string' || !FINGERPRINT.test(r.fingerprint)) {
    throw bad('no valid certificate fingerprint');
  }
  if (!isIsoTime(r.lastSeen)) throw bad('no valid last-seen time');
  if (r.external !== undefined && !isEndpoint(r.external)) throw bad('bad external address');
  if (
    r.local !== undefined &&
    (!Array.isArray(r.local) || r.local.length > 16 || !r.local.every(isEndpoint))
  ) {
    throw bad('bad local addresses');
  }
  if (r.nat !== undefined && !['public', 'port-preserving', 'port-changing'].includes(r.nat)) {
    throw bad('bad NAT kind');
  }
  if (r.signaling !== undefined && r.signaling !== 'socket' && r.signaling !== 'records') {
    throw bad('bad signaling mode');
  }
  if (
    r.pollSeconds !== undefined &&
    !(Number.isInteger(r.pollSeconds) && r.pollSeconds > 0 && r.pollSeconds <= 3600)
  ) {
    throw bad('bad poll interval');
  }
  if (r.request !== undefined) {
    const q = r.request;
    if (
      typeof q !== 'object' ||
      q === null ||
      typeof q.id !== 'string' ||
      !/^[0-9a-f]{8,64}$/.test(q.id) ||
      !isIsoTime(q.at) ||
      !isEndpoint(q.external)
    ) {
      throw bad('bad connection request');
    }
  }
  return {
    v: 1,
    role: r.role,
    name: r.name,
    fingerprint: r.fingerprint,
    lastSeen: r.lastSeen,
    software: typeof r.software === 'string' ? r.software.slice(0, 64) : 'unknown',
    ...(r.external && { external: r.external }),
    ...(r.local && { local: r.local }),
    ...(r.nat && { nat: r.nat }),
    ...(typeof r.online === 'boolean' && { online: r.online }),
    ...(r.signaling && { signaling: r.signaling }),
    ...(r.pollSeconds && { pollSeconds: r.pollSeconds }),
    ...(r.request && { request: r.request }),
  };
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
