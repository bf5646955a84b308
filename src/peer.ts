// The shared vocabulary of every layer: who a peer is (role, name), where it can be reached
// (endpoint), what sits in front of it (NAT kind) and how two peers ended up connected (path kind).
// Bottom layer: imports nothing but errors.ts, so protocol, nat, rendezvous, link and cli agree on
// one definition of each.
import { isIP } from 'node:net';
import { RcppError } from './errors.js';

/** The two roles a peer plays: the long-running file server, and the client that calls it. */
export type Role = 'server' | 'client';

/** An IPv4 or IPv6 address and a TCP port. */
export interface Endpoint {
  ip: string;
  port: number;
}

/** What the NAT in front of a peer does, as far as one observation can tell. */
export type NatKind = 'public' | 'port-preserving' | 'port-changing';
export const NAT_KINDS: readonly NatKind[] = ['public', 'port-preserving', 'port-changing'];

/** How a connection between two peers was made (see the README's path table). */
export type PathKind = 'lan' | 'direct' | 'reversed' | 'periodic' | 'relay';
export const PATH_KINDS: readonly PathKind[] = ['lan', 'direct', 'reversed', 'periodic', 'relay'];

/**
 * Peer names (file servers, clients, rendezvous accounts of the embedded server). They end up inside
 * shell commands run on the rendezvous host and in file names there, so they are restricted to
 * characters that need no quoting. Checked before any command is built.
 */
export const PEER_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
export const PEER_NAME_RULE =
  '1 to 64 letters, digits, dots, dashes or underscores, starting with a letter or digit';

/** rcpp2p's folder on the rendezvous account: also used in shell commands there, unquoted. */
export const RENDEZVOUS_DIR = /^[A-Za-z0-9._/+-]{1,200}$/;

export function isPeerName(name: string): boolean {
  return PEER_NAME.test(name);
}

export function checkPeerName(name: string, what = 'name'): string {
  if (!isPeerName(name)) {
    throw new RcppError('USAGE', `"${name}" is not a valid ${what}.`, `Use ${PEER_NAME_RULE}.`);
  }
  return name;
}

export function isRendezvousDir(dir: string): boolean {
  return RENDEZVOUS_DIR.test(dir) && !dir.split('/').includes('..');
}

export function isNatKind(value: unknown): value is NatKind {
  return NAT_KINDS.includes(value as NatKind);
}

export function isPathKind(value: unknown): value is PathKind {
  return PATH_KINDS.includes(value as PathKind);
}

/** A literal IPv4 or IPv6 address and a port from 1 to 65535, as records and signals carry them. */
export function isEndpoint(value: unknown): value is Endpoint {
  const e = value as Endpoint;
  return (
    typeof e === 'object' &&
    e !== null &&
    typeof e.ip === 'string' &&
    e.ip.length <= 64 &&
    isIP(e.ip) !== 0 &&
    Number.isInteger(e.port) &&
    e.port > 0 &&
    e.port <= 65535
  );
}

/** 4 or 6. */
export function familyOf(ip: string): 4 | 6 {
  return isIP(ip) === 6 ? 6 : 4;
}

/** "192.0.2.1:40001" or "[2001:db8::1]:40001", as ssh and browsers write them. */
export function formatEndpoint(e: Endpoint): string {
  return familyOf(e.ip) === 6 ? `[${e.ip}]:${e.port}` : `${e.ip}:${e.port}`;
}

/** A host (name or address) and port as ssh writes them: "host:22", "[2001:db8::1]:22". */
export function hostPort(host: string, port: number): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}

export function sameEndpoint(a: Endpoint, b: Endpoint): boolean {
  return a.ip === b.ip && a.port === b.port;
}
