// Client side: "give me an authenticated stream to file server NAME".
//
//   join the rendezvous (external address + the server's record, one round trip)
//   -> the server is offline or unknown? say so at once
//   -> signaling channel to the server's socket: request / accept, within the answer deadline
//      (a hung or sleeping server keeps its record "online"; this is where that is found out),
//      or periodic mode when the rendezvous offers no socket forwarding
//   -> race LAN, punch, listener and relay; TLS 1.3 with the fingerprints from the records
//   -> tell the server which path won; hand back the Link
import { randomBytes } from 'node:crypto';
import type { Duplex } from 'node:stream';
import { deadline } from '../deadline.js';
import { isRcppError, RcppError } from '../errors.js';
import { logger } from '../log.js';
import { racePaths } from '../nat/path-race.js';
import { openPublicListener, type PublicListener } from '../nat/public-listener.js';
import { formatEndpoint, type PathKind } from '../peer.js';
import type { OnProgress } from '../progress.js';
import { describeAge, type PeerRecord } from '../rendezvous/peer-record.js';
import {
  readSignal,
  writeSignal,
  type SignalAddresses,
  type SignalMessage,
} from '../rendezvous/signaling.js';
import type { SshAuth } from '../rendezvous/ssh-auth.js';
import { isForwardingProhibited } from '../rendezvous/ssh-session.js';
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
}

export const DEFAULT_ANSWER_TIMEOUT_MS = 10_000;
/** How long a server that acknowledged the request may take to answer it (a burst of clients). */
const BUSY_ANSWER_MS = 60_000;
const RACE_DEADLINE_MS = 12_000;

export async function openLink(opts: ClientLinkOptions): Promise<Link> {
  const started = Date.now();
  const joined = await joinRendezvous(
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
  try {
    const record = await requireOnlineServer(joined, opts.serverName, opts.signal);
    opts.onProgress?.({
      type: 'peer:found',
      name: record.name,
      role: 'server',
      lastSeen: record.lastSeen,
    });
    checkPinned(opts.trust, record);
    if (record.signaling === 'records') {
      return await openPeriodicLink(joined, record, {
        ...opts,
        started,
        reason: 'the file server runs in periodic mode',
      });
    }
    const socketPath = joined.directory.socketPath(joined.home, opts.serverName);
    // A publicly reachable client listens for this one set-up, so the server can dial it (the
    // reversed path); the request says where.
    const listener = wantsListener(joined.self) ? await openPublicListener(opts.signal) : undefined;
    try {
      const self = addressesToOffer(joined.self, listener?.port);
      const answerMs = opts.answerTimeoutMs ?? DEFAULT_ANSWER_TIMEOUT_MS;
      const answer = deadline(opts.signal, answerMs, () => notAnswering(record, answerMs));
      const session = randomBytes(16).toString('hex');
      let channel: Duplex;
      let accept: SignalAddresses;
      try {
        try {
          channel = await joined.session.forwardOut(socketPath, { signal: answer.signal });
        } catch (err) {
          if (isForwardingProhibited(err)) {
            return await openPeriodicLink(joined, record, {
              ...opts,
              started,
              reason: 'the rendezvous host does not allow socket forwarding',
            });
          }
          if (answer.signal.aborted) throw err;
          throw offline(record, 'its signaling socket does not answer');
        }
        accept = await request(channel, self, record, session, opts, answer.signal);
      } finally {
        answer.clear();
      }
      const context: RaceContext = { joined, record, channel, socketPath, session, self, listener };
      return await race(context, accept, opts, started);
    } finally {
      listener?.close();
    }
  } catch (err) {
    await joined.session.close();
    throw err;
  }
}

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
    writeSignal(channel, { t: 'open', v: 1, kind: 'signal' });
    writeSignal(channel, { t: 'request', session, client: opts.clientName, ...self });
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
  socketPath: string;
  session: string;
  /** What we told the server about ourselves. */
  self: SignalAddresses;
  listener: PublicListener | undefined;
}

async function race(
  ctx: RaceContext,
  accept: SignalAddresses,
  opts: ClientLinkOptions,
  started: number,
): Promise<Link> {
  const { joined, record, channel, socketPath, session } = ctx;
  try {
    const steps = planPaths(
      { ...ctx.self, role: 'client', localPort: joined.self.localPort },
      accept,
      opts.timing ?? DEFAULT_TIMING,
    ).filter((step) => opts.paths === undefined || opts.paths.includes(step.path));
    const contenders = toContenders(steps, {
      localPort: joined.self.localPort,
      listener: ctx.listener,
      openRelay: async (relaySignal) => {
        const relay = await joined.session.forwardOut(socketPath, { signal: relaySignal });
        writeSignal(relay, { t: 'open', v: 1, kind: 'relay', session });
        return relay;
      },
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
    });
    writeSignal(channel, { t: 'chosen', session, path: winner.candidate.path });
    channel.end();
    await rememberProven(opts.trust, record, opts.onProgress);
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
      },
      () => joined.session.close(),
    );
  } catch (err) {
    channel.destroy();
    throw err;
  }
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
