// How clients reach a running file server through the rendezvous host: the signaling transports,
// and the choice among them. Best first:
//
//   socket  a Unix socket the host forwards to the server (OpenSSH streamlocal): live, carries relays
//   tcp     a TCP port on the host's loopback forwarded to the server (tcpip-forward 127.0.0.1:0),
//           for hosts without Unix-socket forwarding (Dropbear, AllowStreamLocalForwarding no):
//           live, carries relays; every channel must name the token from the server's record
//   exec    a remote command in the server's session watching a request folder, and one in the
//           client's (only a shell account needed: DisableForwarding yes): live, no relay
//   records periodic polling of the records (the last resort; link/periodic-client.ts)
//
// The file server tries socket, tcp, exec in that order and keeps the first one the host allows
// and that answers its own ping through the host (a host may let a server offer a socket or a port
// and still refuse clients the way in: AllowStreamLocalForwarding remote, PermitOpen none). Its
// record names the winner (peer-record.ts SignalingOffer) and clients open the same one. Every
// channel carries the JSON lines of signaling.ts, whatever the transport.
import type { Duplex } from 'node:stream';
import { deadline } from '../deadline.js';
import { abortError, isRcppError, RcppError } from '../errors.js';
import { logger } from '../log.js';
import type { SignalingKind } from '../peer.js';
import type { RendezvousDirectory } from './directory.js';
import { offerExec, routeExec } from './exec-transport.js';
import type { SignalingOffer } from './peer-record.js';
import { readSignal, type ChannelPurpose } from './signaling.js';
import { offerSocket, routeSocket } from './socket-transport.js';
import type { RendezvousSession } from './ssh-session.js';
import { offerTcp, routeTcp } from './tcp-transport.js';

export { recordSentAhead } from './exec-transport.js';

const log = logger('signaling');

/** Where a file server's signaling lives on the rendezvous account. */
export interface SignalingPlace {
  session: RendezvousSession;
  directory: RendezvousDirectory;
  /** The account's home on the host ($HOME), for absolute socket paths. */
  home: string;
  serverName: string;
  /** Client side: who is asking (the exec transport sends its record ahead). */
  clientName?: string;
}

/** The file server's side of one transport, for the life of one rendezvous session. */
export interface SignalingListener {
  /** What the record says, so that clients open the same transport. */
  readonly offer: SignalingOffer;
  /** Resolves with the reason when the transport stops working while the session is still up. */
  readonly failed: Promise<Error>;
  /**
   * Moves some bytes through a channel of the session (see keepTransportAlive); rejects when the
   * transport does not carry them. Without it, the offer is pinged through the host.
   */
  touch?(signal: AbortSignal): Promise<void>;
  /** Stops offering (a socket is removed from the host); idempotent. */
  close(signal: AbortSignal): Promise<void>;
}

/**
 * Hands over channels from clients. A transport only hands over channels from the account: a TCP
 * transport checks the token of the open line first (and pushes the line back for the reader).
 */
export type OnChannel = (channel: Duplex) => void;

/** The client's side of one transport. */
export interface SignalingRoute {
  readonly kind: SignalingKind;
  /** True when relay channels can go this way. */
  readonly relays: boolean;
  /** Opens a channel to the file server and writes its open line. */
  open(purpose: ChannelPurpose, signal: AbortSignal): Promise<Duplex>;
}

type LiveKind = Exclude<SignalingKind, 'records'>;
export const LIVE_KINDS: readonly LiveKind[] = ['socket', 'tcp', 'exec'];

/** How long the server's ping to its own offer may take before that transport is given up. */
const SELF_CHECK_MS = 5000;
/** Touches that may fail in a row before the transport counts as broken. */
const MAX_FAILED_TOUCHES = 2;

export interface OfferedSignaling {
  listener: SignalingListener | undefined;
  /** Why the better transports were not used, in words for the user ('' when the best was). */
  reason: string;
}

/**
 * Offers the best transport this host allows (server side); undefined when none works. With
 * `touchMs`, the offer is touched that often (keepTransportAlive).
 */
export async function offerSignaling(
  place: SignalingPlace,
  onChannel: OnChannel,
  opts: { signal: AbortSignal; kinds?: readonly LiveKind[]; touchMs?: number },
): Promise<OfferedSignaling> {
  const refused: LiveKind[] = [];
  for (const kind of opts.kinds ?? LIVE_KINDS) {
    let listener: SignalingListener | undefined;
    try {
      listener = await offerOne(kind, place, onChannel, opts.signal);
      if (kind !== 'exec') await checkOwnOffer(place, listener.offer, opts.signal);
      if (opts.touchMs) listener = keepTransportAlive(place, listener, opts.touchMs, opts.signal);
      return { listener, reason: refusedWords(refused) };
    } catch (err) {
      if (opts.signal.aborted) throw err;
      if (isRcppError(err) && FATAL_OFFER.has(err.code)) throw err;
      log(`${kind} transport not available: ${(err as Error).message}`);
      await listener?.close(opts.signal).catch(() => {});
      refused.push(kind);
    }
  }
  return { listener: undefined, reason: refusedWords(refused) };
}

/** Errors that would stop every transport alike: no point trying the next one. */
const FATAL_OFFER = new Set(['AUTH_FAILED', 'CONFIG_INVALID']);

function offerOne(
  kind: LiveKind,
  place: SignalingPlace,
  onChannel: OnChannel,
  signal: AbortSignal,
): Promise<SignalingListener> {
  switch (kind) {
    case 'socket':
      return offerSocket(place, onChannel, signal);
    case 'tcp':
      return offerTcp(place, onChannel, signal);
    case 'exec':
      return offerExec(place, onChannel, signal);
  }
}

function refusedWords(refused: readonly LiveKind[]): string {
  const socket = refused.includes('socket');
  const tcp = refused.includes('tcp');
  const forwarding =
    socket && tcp ? 'no forwarding' : socket ? 'no Unix-socket forwarding' : 'no TCP forwarding';
  const parts: string[] = [];
  if (socket || tcp) parts.push(`allows ${forwarding}`);
  if (refused.includes('exec')) parts.push('did not run the watcher command');
  return parts.length > 0 ? `the rendezvous host ${parts.join(' and ')}` : '';
}

/**
 * Touches the offer every `everyMs`, so that the session carries channel traffic and not only
 * SSH keepalives: Dropbear's idle timeout (-I) does not count keepalives (global requests) as
 * activity, and an OpenSSH ChannelTimeout closes idle channels. A socket or port is pinged
 * through the host (no process is started for it); the exec watcher gets a blank line. A touch
 * that fails twice in a row means the transport broke: `failed` resolves, and the server
 * reconnects.
 */
function keepTransportAlive(
  place: SignalingPlace,
  listener: SignalingListener,
  everyMs: number,
  signal: AbortSignal,
): SignalingListener {
  const touch = (s: AbortSignal): Promise<void> =>
    listener.touch ? listener.touch(s) : pingOwnOffer(place, listener.offer, s);
  let failures = 0;
  let broken: (err: Error) => void = () => {};
  const failed = new Promise<Error>((resolve) => (broken = resolve));
  let touching = false;
  const timer = setInterval(() => {
    if (touching || signal.aborted) return;
    touching = true;
    const wait = deadline(
      signal,
      Math.max(everyMs, SELF_CHECK_MS),
      () => new RcppError('TIMEOUT', 'The signaling transport did not carry a ping in time.'),
    );
    touch(wait.signal)
      .then(
        () => (failures = 0),
        (err: unknown) => {
          if (signal.aborted) return;
          failures += 1;
          log(`touching the ${listener.offer.via} transport failed: ${(err as Error).message}`);
          if (failures >= MAX_FAILED_TOUCHES) broken(err as Error);
        },
      )
      .finally(() => {
        wait.clear();
        touching = false;
      });
  }, everyMs);
  timer.unref();
  return {
    offer: listener.offer,
    failed: Promise.race([listener.failed, failed]),
    touch,
    close(s) {
      clearInterval(timer);
      return listener.close(s);
    },
  };
}

/** The client's way to the transport a server record names; undefined in periodic mode. */
export function routeTo(
  place: SignalingPlace,
  offer: SignalingOffer | undefined,
): SignalingRoute | undefined {
  // Records from before the signaling field existed meant the socket.
  const o = offer ?? { via: 'socket' };
  switch (o.via) {
    case 'socket':
      return routeSocket(place);
    case 'tcp':
      return routeTcp(place, o);
    case 'exec':
      return routeExec(place);
    case 'records':
      return undefined;
  }
}

/**
 * Pings the file server behind a route: 'answered' (a pong came), 'silent' (the channel opened but
 * no answer came before `signal` ended: a hung server, or a host holding a dead owner's socket), or
 * 'refused' (nothing to open, or it closed without answering).
 */
export async function knock(
  route: SignalingRoute,
  signal: AbortSignal,
): Promise<'answered' | 'silent' | 'refused'> {
  let channel: Duplex;
  try {
    channel = await route.open({ kind: 'ping' }, signal);
  } catch {
    return 'refused';
  }
  try {
    const answer = await readSignal(channel, { signal });
    return answer.t === 'pong' ? 'answered' : 'refused';
  } catch {
    return signal.aborted ? 'silent' : 'refused';
  } finally {
    channel.destroy();
  }
}

/** Pings the server's own offer through the host; rejects unless the server answers. */
async function pingOwnOffer(
  place: SignalingPlace,
  offer: SignalingOffer,
  signal: AbortSignal,
): Promise<void> {
  const route = routeTo(place, offer);
  if (route === undefined) return;
  const result = await knock(route, signal);
  if (signal.aborted) throw abortError(signal);
  if (result !== 'answered') {
    throw new RcppError(
      'RENDEZVOUS_REFUSED',
      `The rendezvous host took the ${offer.via} offer but did not let a channel through to it (${result}).`,
    );
  }
}

/** The server pings itself through the host, as a client would reach it. */
async function checkOwnOffer(
  place: SignalingPlace,
  offer: SignalingOffer,
  signal: AbortSignal,
): Promise<void> {
  const wait = deadline(
    signal,
    SELF_CHECK_MS,
    () => new RcppError('TIMEOUT', 'The file server did not reach itself in time.'),
  );
  try {
    await pingOwnOffer(place, offer, wait.signal);
  } finally {
    wait.clear();
  }
}
