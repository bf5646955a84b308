// Pinning peers on both sides (src/secure/known-peers.ts holds the file): a changed identity is
// refused before anything is attempted, with both fingerprints and the way to accept a new one; a
// first contact is remembered once the peer has proved its identity over TLS, and announced. The
// file server may also restrict which clients it serves at all (config allowClients).
import { RcppError } from '../errors.js';
import type { Role } from '../peer.js';
import type { OnProgress } from '../progress.js';
import { describeAge, type PeerRecord } from '../rendezvous/peer-record.js';
import type { KnownPeer, KnownPeers } from '../secure/known-peers.js';

/** Which clients a file server serves: pinned ones and new ones, only pinned ones, or these names. */
export type ClientPolicy = 'new' | 'known' | readonly string[];

function roleWords(role: Role): string {
  return role === 'server' ? 'file server' : 'client';
}

/** Refuses a record whose fingerprint differs from the one pinned for its name. */
export function checkPinned(trust: KnownPeers, record: PeerRecord): void {
  const pin = trust.check(record.role, record.name, record.fingerprint);
  if (pin.status === 'changed') throw identityChanged(trust, record, pin.known);
}

function identityChanged(trust: KnownPeers, record: PeerRecord, known: KnownPeer): RcppError {
  const who = `${roleWords(record.role)} ${record.name}`;
  return new RcppError(
    'PEER_IDENTITY_CHANGED',
    `WARNING: ${who} now claims identity ${record.fingerprint} (its record was updated ` +
      `${describeAge(record.lastSeen, Date.now())}), but this peer has known it as ${known.fingerprint}` +
      `${known.since ? ` since ${known.since.slice(0, 10)}` : ''} (${trust.file} line ${known.line}). ` +
      `Someone in the rendezvous account may be impersonating it, or it made a new identity.`,
    `If you know ${record.name} was set up again, accept its new identity with: rcpp2p --forget-peer ${record.name}`,
  );
}

/** The file server's admission check for a client record, before it answers the request. */
export function admitClient(
  trust: KnownPeers,
  policy: ClientPolicy,
  serverName: string,
  client: PeerRecord,
): void {
  if (Array.isArray(policy) && !policy.includes(client.name)) {
    throw new RcppError(
      'PEER_REFUSED',
      `File server ${serverName} does not serve client ${client.name} (it is not in allowClients).`,
      `Ask the owner of ${serverName} to add ${client.name} to allowClients (rcpp2p --configure).`,
    );
  }
  checkPinned(trust, client);
  if (
    policy === 'known' &&
    trust.check('client', client.name, client.fingerprint).status === 'new'
  ) {
    throw new RcppError(
      'PEER_REFUSED',
      `File server ${serverName} serves only clients it already knows, and ${client.name} is new.`,
      `Ask the owner of ${serverName} to allow new clients for a moment (allowClients "new").`,
    );
  }
}

/** After the peer proved `record`'s identity over TLS: pin it if it was new, and say so once. */
export async function rememberProven(
  trust: KnownPeers,
  record: PeerRecord,
  onProgress: OnProgress | undefined,
): Promise<void> {
  if (trust.check(record.role, record.name, record.fingerprint).status !== 'new') return;
  await trust.remember(record.role, record.name, record.fingerprint);
  onProgress?.({
    type: 'peer:first-contact',
    role: record.role,
    name: record.name,
    fingerprint: record.fingerprint,
    file: trust.file,
  });
}
