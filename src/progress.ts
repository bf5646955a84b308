// Progress events: library layers report what they do through these; only src/cli renders them.
// Each event is a plain object with a `type`; add new kinds here rather than printing.

import type { Endpoint, NatKind, PathKind, Role } from './peer.js';

export type ProgressEvent =
  // rendezvous
  | { type: 'rendezvous:connecting'; host: string; port: number; localPort: number }
  | { type: 'rendezvous:connected'; ms: number }
  | { type: 'rendezvous:failed'; message: string }
  | { type: 'rendezvous:reconnecting'; inMs: number; message: string }
  | {
      type: 'nat:external-address';
      external: Endpoint;
      local: Endpoint;
      natKind: NatKind;
      /** The other address family, for a dual-stack peer. */
      other?: { external: Endpoint; natKind: NatKind };
    }
  | { type: 'peer:found'; name: string; role: Role; lastSeen: string }
  /** A peer proved its identity for the first time and is now pinned in known_peers. */
  | { type: 'peer:first-contact'; name: string; role: Role; fingerprint: string; file: string }
  | { type: 'record:published'; name: string; role: Role }
  | { type: 'signaling:ready'; mode: 'socket' | 'records'; reason?: string }
  // connection set-up
  | { type: 'link:trying'; path: PathKind; remote: string }
  | { type: 'link:attempt-failed'; path: PathKind; message: string }
  | { type: 'link:established'; path: PathKind; remote: string; reason: string; ms: number }
  | { type: 'link:secured'; peer: string; fingerprint: string; ms: number }
  // server side
  | { type: 'server:listening'; name: string; workDir: string }
  | {
      type: 'server:client-connected';
      client: string;
      path: PathKind;
      reason: string;
      remote: string;
    }
  | { type: 'server:client-failed'; client: string; message: string }
  | { type: 'server:request'; client: string; op: string; detail: string }
  | { type: 'server:session-ended'; client: string; message?: string }
  | { type: 'server:refused'; client: string; message: string }
  // transfers
  /** Once per get or put, when the files to move are known (after refusals): for the overall line. */
  | { type: 'transfer:plan'; op: 'get' | 'put'; files: number; bytes: number }
  | { type: 'transfer:start'; op: 'get' | 'put'; file: string; size: number; resumedFrom: number }
  | { type: 'transfer:bytes'; op: 'get' | 'put'; file: string; done: number; total: number }
  | { type: 'transfer:verifying'; op: 'get' | 'put'; file: string }
  | { type: 'transfer:done'; op: 'get' | 'put'; file: string; bytes: number; sha256: string }
  | { type: 'transfer:failed'; op: 'get' | 'put'; file: string; message: string }
  // anything worth a line that is not a step
  | { type: 'note'; text: string };

export type OnProgress = (event: ProgressEvent) => void;

export const ignoreProgress: OnProgress = () => {};
