// Client side: "give me an authenticated stream to file server NAME".
//
//   join the rendezvous (external address + the server's record, one round trip)
//   -> the server is offline or unknown? say so at once
//   -> signaling channel over the transport the server's record names (a socket, a TCP port on the
//      rendezvous's loopback, or a remote command: rendezvous/signaling-transport.ts): request /
//      accept, within the answer deadline (a hung or sleeping server keeps its record "online";
//      this is where that is found out), or periodic mode when the server runs in it
//   -> race LAN, punch, listener and relay (where the transport carries one); TLS 1.3 with the
//      fingerprints from the records
//   -> tell the server which path won; hand back the Link
import { randomBytes } from 'node:crypto';
import type { Duplex } from 'node:stream';
import { deadline } from '../deadline.js';
import { isRcppError, RcppError } from '../errors.js';
import { logger } from '../log.js';
import { racePaths } from '../nat/path-race.js';
import { openPublicListener, type PublicListener } from '../nat/public-listener.js';
import { formatEndpoint, relayKindOf, type PathKind } from '../peer.js';
import type { OnProgress } from '../progress.js';
import { describeAge, type PeerRecord } from '../rendezvous/peer-record.js';
import {
  readSignal,
  writeSignal,
  type Introduction,
  type SignalAddresses,
  type SignalMessage,
} from '../rendezvous/signaling.js';
import { routeTo, type SignalingRoute } from '../rendezvous/signaling-transport.js';
import { isForwardingProhibited } from '../rendezvous/ssh-session.js';
import type { SshAuth } from '../rendezvous/ssh-auth.js';
import type { Identity } from '../secure/identity.js';
import type { KnownPeers } from '../secure/known-peers.js';
import { secureAsClient } from '../secure/tls-channel.js';
import { toContenders } from './contenders.js';
import { joinRendezvous, type Joined, type RendezvousSettings } from './join-rendezvous.js';
import { makeLink, type Link } from './link.js';
import {
  addressesToOffer,
  DEFAULT_TIMING,
  planPaths,
  wantsListener,
  type PlanTiming,
} from './path-plan.js';
import { checkPinned, rememberProven } from './pinning.js';
import { openPeriodicLink } from './periodic-client.js';
import {
  clientMappingAfterLogin,
  startClientMapping,
  type ClientMapping,
  type PortMappingSettings,
} from './router-mapping.js';

const log = logger('link');

export interface ClientLinkOptions {
  rendezvous: RendezvousSettings;
  auth: SshAuth;
  localPort: number;
  clientName: string;
  identity: Identity;
  /** Identities pinned so far (known_peers): a changed one is refused, a new one remembered. */
  trust: KnownPeers;
  serverName: string;
  signal: AbortSignal;
  onProgress?: OnProgress;
  timing?: PlanTiming;
  /** Bound on the whole path race (socket mode). */
  raceDeadlineMs?: number;
  /** How long a file server whose record says online may take to answer the request. */
  answerTimeoutMs?: number;
  /** Only these paths take part in the race (diagnosis: "does the relay work from here?"). */
  paths?: readonly PathKind[];
  /** Ask our router to map a port for this one set-up (UPnP, NAT-PMP, PCP). */
  portMapping?: PortMappingSettings;
  /** Receiving a one-shot send: the code vouches for the sender, and for us, instead of pins. */
  introduction?: SendIntroduction;
}

/** How a receiver of a one-shot send (rcpp2p --receive) trusts the sender and is trusted. */
export interface SendIntroduction {
  /** Throws unless the sender's record proves it was written by someone holding the code. */
  checkSender(record: PeerRecord): void;
  /** What the request carries for this set-up: our fingerprint and our proof of the code. */
  introduce(session: string): Introduction;
}

export const DEFAULT_ANSWER_TIMEOUT_MS = 10_000;
/** How long a server that acknowledged the request may take to answer it (a burst of clients). */
const BUSY_ANSWER_MS = 60_000;
const RACE_DEADLINE_MS = 12_000;

export async function openLink(opts: ClientLinkOptions): Promise<Link> {
  const started = Date.now();
  // Asked in parallel with the login: a router that maps ports answers within milliseconds.
  const router = startClientMapping(opts.portMapping, opts.onProgress);
  let joined: Joined;
  try {
    joined = await joinRendezvous(
      {
        rendezvous: opts.rendezvous,
        auth: opts.auth,
        localPort: opts.localPort,
        portFallback: 'any',
        signal: opts.signal,
        ...(opts.onProgress && { onProgress: opts.onProgress }),
      },
      { role: 'server', name: opts.serverName },
    );
  } catch (err) {
    await router?.close();
    throw err;
  }
  // The router's mapping lives as long as the link (closed with it), or ends here on failure.
  let routerOwnedByLink = false;
  try {
    const record = await requireOnlineServer(joined, opts.serverName, opts.signal);
    opts.onProgress?.({
      type: 'peer:found',
      name: record.name,
      role: 'server',
      lastSeen: record.lastSeen,
    });
    if (opts.introduction) opts.introduction.checkSender(record);
    else checkPinned(opts.trust, record);
    const route = routeTo(
      {
        session: joined.session,
        directory: joined.directory,
        home: joined.home,
        serverName: opts.serverName,
        clientName: opts.clientName,
      },
      record.signaling,
    );
    if (route === undefined && opts.introduction) {
      throw new RcppError(
        'NO_PATH',
        'The sender is waiting in periodic mode, which cannot carry a send (the rendezvous host allows neither forwarding nor remote commands).',
        'Use a rendezvous host that allows TCP forwarding, or send with --put to a file server.',
      );
    }
    if (route === undefined) {
      await router?.close();
      return await openPeriodicLink(joined, record, {
        ...opts,
        started,
        reason: 'the file server runs in periodic mode (the last resort)',
      });
    }
    // A publicly reachable client listens for this one set-up, so the server can dial it (the
    // reversed path); the request says where.
    // A client behind an IPv4 NAT offers its router's mapping of a fresh listening port, if it has
    // one; that listener also serves as the public one when we are reachable without a NAT (IPv6).
    const mapped = router
      ? await clientMappingAfterLogin(router, joined.self, opts.signal)
      : undefined;
    const listener = mapped
      ? router?.listener()
      : wantsListener(joined.self)
        ? await openPublicListener(opts.signal)
        : undefined;
    try {
      const self: SignalAddresses = {
        ...addressesToOffer(joined.self, listener?.port),
        ...(mapped && { mapped }),
      };
      const limitMs = opts.answerTimeoutMs ?? DEFAULT_ANSWER_TIMEOUT_MS;
      const answer = deadline(opts.signal, limitMs, () => notAnswering(record, limitMs));
      const session = randomBytes(16).toString('hex');
      let channel: Duplex;
      let accept: SignalAddresses;
      const asked = Date.now();
      try {
        try {
          channel = await route.open({ kind: 'signal' }, answer.signal);
        } catch (err) {
          if (answer.signal.aborted) throw err;
          log(`opening the ${route.kind} signaling channel failed: ${(err as Error).message}`);
          if (isForwardingProhibited(err)) throw notAllowed(record, route.kind);
          throw offline(record, UNANSWERED[route.kind]);
        }
        accept = await request(channel, self, record, session, opts, answer.signal);
      } finally {
        answer.clear();
      }
      const answerMs = Date.now() - asked;
      log(`${route.kind} signaling: answer in ${answerMs} ms`);
      const context: RaceContext = {
        joined,
        record,
        channel,
        route,
        session,
        self,
        listener,
        router,
        answerMs,
      };
      const link = await race(context, accept, opts, started);
      routerOwnedByLink = true;
      return link;
    } finally {
      listener?.close();
    }
  } catch (err) {
    await joined.session.close();
    throw err;
  } finally {
    if (!routerOwnedByLink) await router?.close();
  }
}

/**
 * The file server could offer its transport but the host does not let this login open it (a
 * `Match` block, `AllowStreamLocalForwarding remote`): not the server's fault, and not offline.
 */
function notAllowed(record: PeerRecord, kind: SignalingRoute['kind']): RcppError {
  const what = kind === 'socket' ? 'Unix-socket' : 'TCP';
  return new RcppError(
    'RENDEZVOUS_REFUSED',
    `The rendezvous host does not let this client open file server ${record.name}'s signaling ${kind === 'socket' ? 'socket' : 'port'} (no ${what} forwarding for this login).`,
    `Ask the host's administrator to allow ${what} forwarding for this account, or restart the file server with --periodic.`,
  );
}

/** How a live transport's silence reads in "File server X is offline (...): ...". */
const UNANSWERED: Record<SignalingRoute['kind'], string> = {
  socket: 'its signaling socket does not answer',
  tcp: 'its signaling port does not answer',
  exec: 'it does not watch for requests',
  records: 'it does not poll',
};

async function requireOnlineServer(
  joined: Joined,
  serverName: string,
  signal: AbortSignal,
): Promise<PeerRecord> {
  const record = joined.record;
  if (record === undefined) {
    const known = (await joined.directory.list('server', signal).catch(() => [])).map(
      (r) => r.name,
    );
    throw new RcppError(
      'PEER_UNKNOWN',
      `No file server named ${serverName} is registered on the rendezvous.`,
      known.length > 0
        ? `Known file servers: ${known.join(', ')}.`
        : 'Start rcpp2p (no arguments) on the file-server machine first.',
    );
  }
  if (record.online === false) throw offline(record);
  return record;
}

function offline(record: PeerRecord, detail?: string): RcppError {
  return new RcppError(
    'PEER_OFFLINE',
    `File server ${record.name} is offline (last seen ${describeAge(record.lastSeen, Date.now())})` +
      (detail ? `: ${detail}` : '') +
      '.',
    `Start rcpp2p on the ${record.name} machine and try again.`,
  );
}

function notAnswering(record: PeerRecord, ms: number, what = 'did not reply'): RcppError {
  return new RcppError(
    'PEER_NOT_ANSWERING',
    `File server ${record.name} does not answer (asleep or hung?); it ${what} within ` +
      `${Math.round(ms / 1000)} s, and its record was last updated ${describeAge(record.lastSeen, Date.now())}.`,
    `Check that the ${record.name} machine is awake and rcpp2p still runs there; restart it if it hangs.`,
  );
}

/** Sends our request on the signaling channel and reads the server's accept (or refusal). */
async function request(
  channel: Duplex,
  self: SignalAddresses,
  record: PeerRecord,
  session: string,
  opts: ClientLinkOptions,
  signal: AbortSignal,
): Promise<SignalAddresses> {
  try {
    writeSignal(channel, {
      t: 'request',
      session,
      client: opts.clientName,
      ...self,
      ...(opts.introduction && { introduction: opts.introduction.introduce(session) }),
    });
    const read = (readSignalWith: AbortSignal): Promise<SignalMessage> =>
      readSignal(channel, { signal: readSignalWith }).catch((err: unknown) => {
        throw isRcppError(err) && err.code === 'CONNECTION_LOST'
          ? offline(record, 'it closed the signaling channel')
          : err;
      });
    let answer = await read(signal);
    if (answer.t === 'received' && answer.session === session) {
      // The server is alive and working on it (a burst of clients can keep it busy): wait longer.
      const busy = deadline(opts.signal, BUSY_ANSWER_MS, () =>
        notAnswering(record, BUSY_ANSWER_MS, 'took the request but did not finish it'),
      );
      try {
        answer = await read(busy.signal);
      } finally {
        busy.clear();
      }
    }
    const accept = checkAnswer(answer, session, opts.serverName);
    log(
      `server ${opts.serverName} answered: external ${formatEndpoint(accept.external)} nat ${accept.nat}`,
    );
    return accept;
  } catch (err) {
    channel.destroy();
    throw err;
  }
}

/** What the race needs from the set-up so far. */
interface RaceContext {
  joined: Joined;
  record: PeerRecord;
  /** The signaling channel: it carries `chosen` once a path won. */
  channel: Duplex;
  route: SignalingRoute;
  /** How long the server took to answer, from opening the signaling channel. */
  answerMs: number;
  session: string;
  /** What we told the server about ourselves. */
  self: SignalAddresses;
  listener: PublicListener | undefined;
  /** Our router's mapping for this set-up: removed when the link closes. */
  router: ClientMapping | undefined;
}

async function race(
  ctx: RaceContext,
  accept: SignalAddresses,
  opts: ClientLinkOptions,
  started: number,
): Promise<Link> {
  const { joined, record, channel, route, session } = ctx;
  try {
    const steps = planPaths(
      { ...ctx.self, role: 'client', localPort: joined.self.localPort },
      accept,
      opts.timing ?? DEFAULT_TIMING,
    ).filter((step) => opts.paths === undefined || opts.paths.includes(step.path));
    const contenders = toContenders(steps, {
      localPort: joined.self.localPort,
      listener: ctx.listener,
      ...(route.relays && {
        openRelay: (relaySignal: AbortSignal) =>
          route.open({ kind: 'relay', session }, relaySignal),
      }),
    });
    const winner = await racePaths({
      contenders,
      secure: (candidate, raceSignal) =>
        secureAsClient(candidate.stream, {
          identity: opts.identity,
          expected: { name: opts.serverName, fingerprint: record.fingerprint },
          signal: raceSignal,
        }),
      discard: (secured) => secured.socket.destroy(),
      deadlineMs: opts.raceDeadlineMs ?? RACE_DEADLINE_MS,
      signal: opts.signal,
      ...(opts.onProgress && { onProgress: opts.onProgress }),
    }).catch((err: unknown) => {
      throw route.relays ? err : withoutRelay(err);
    });
    writeSignal(channel, { t: 'chosen', session, path: winner.candidate.path });
    channel.end();
    if (!opts.introduction) await rememberProven(opts.trust, record, opts.onProgress);
    const setupMs = Date.now() - started;
    opts.onProgress?.({
      type: 'link:established',
      path: winner.candidate.path,
      remote: winner.candidate.remote,
      reason: winner.candidate.reason,
      ms: setupMs,
    });
    opts.onProgress?.({
      type: 'link:secured',
      peer: opts.serverName,
      fingerprint: winner.secured.peer.fingerprint,
      ms: setupMs,
    });
    return makeLink(
      winner.secured.socket,
      winner.candidate.stream,
      {
        path: winner.candidate.path,
        reason: winner.candidate.reason,
        remote: winner.candidate.remote,
        peer: opts.serverName,
        peerFingerprint: winner.secured.peer.fingerprint,
        family: winner.candidate.family ?? joined.session.family,
        setupMs,
        signaling: route.kind,
        relay: relayKindOf(route.kind),
        answerMs: ctx.answerMs,
        portMapping: {
          ...(ctx.self.mapped && { client: ctx.self.mapped }),
          ...(accept.mapped && { server: accept.mapped }),
        },
      },
      async () => {
        await joined.session.close();
        await ctx.router?.close();
      },
    );
  } catch (err) {
    channel.destroy();
    throw err;
  }
}

/** A failed race over a transport without a relay says why the relay did not help. */
function withoutRelay(err: unknown): unknown {
  if (!isRcppError(err) || err.code !== 'NO_PATH') return err;
  return new RcppError(
    'NO_PATH',
    `${err.message.replace(/\.$/, '')}; and the rendezvous host allows no forwarding, so rcpp2p cannot relay through it.`,
    'Use a rendezvous host that allows TCP or Unix-socket forwarding (AllowTcpForwarding yes), or put one peer on a network that keeps ports.',
    { cause: err },
  );
}

function checkAnswer(answer: SignalMessage, session: string, serverName: string): SignalAddresses {
  if (answer.t === 'refuse') throw new RcppError(answer.code, answer.message, answer.hint);
  if (answer.t !== 'accept' || answer.session !== session) {
    throw new RcppError(
      'PROTOCOL_ERROR',
      `File server ${serverName} answered the connection request with "${answer.t}".`,
    );
  }
  if (answer.server !== serverName) {
    throw new RcppError(
      'PEER_IDENTITY_MISMATCH',
      `The signaling socket of ${serverName} was answered by a server calling itself ${answer.server}.`,
      'Two file servers may be configured with the same rendezvous directory; check their names.',
    );
  }
  return answer;
}
