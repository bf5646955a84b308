// A Link: an authenticated, encrypted stream to one named peer, and how it was made. Both roles get
// the same shape: the client from openLink, the file server for every client it answers. Closing it
// resets a punched TCP socket (no TIME_WAIT left on the punching port pair for the next connection)
// or destroys a relay channel, then ends whatever session the link owned. close() is idempotent.
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { closeLinkStream } from '../net/tcp.js';
import type { PathKind } from '../peer.js';

export interface LinkInfo {
  path: PathKind;
  /** Why this path was taken, in words for the user. */
  reason: string;
  /** The other end ("203.0.113.21:40001", "the rendezvous host"). */
  remote: string;
  /** The other peer's name: the file server on a client's link, the client on a server's. */
  peer: string;
  /** The certificate fingerprint the other peer proved over TLS. */
  peerFingerprint: string;
  /** The address family the bytes travel over (for the relay: that of the rendezvous session). */
  family?: 4 | 6;
  /** From the start of the set-up to the authenticated stream. */
  setupMs: number;
}

export interface Link extends LinkInfo {
  readonly stream: TLSSocket;
  /** Closes the stream (the transfer protocol has said goodbye by then), then what the link owns. */
  close(): Promise<void>;
}

/** Serves one authenticated stream from a client until it ends (the file server's side). */
export type OnLink = (link: Link) => Promise<void>;

export function makeLink(
  stream: TLSSocket,
  raw: Duplex,
  info: LinkInfo,
  closeOwned: () => Promise<void> = () => Promise.resolve(),
): Link {
  let closing: Promise<void> | undefined;
  return {
    ...info,
    stream,
    close() {
      closing ??= (async () => {
        // A reset, not a FIN: the side that closes first keeps the port pair in TIME_WAIT.
        closeLinkStream(raw);
        stream.destroy();
        await closeOwned();
      })();
      return closing;
    },
  };
}
