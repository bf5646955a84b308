// Client side: "give me an authenticated stream to file server NAME".
//
//   join the rendezvous (external address + the server's record, one round trip)
//   -> the server is offline or unknown? say so at once
//   -> signaling channel to the server's socket: request / accept (or periodic mode without one)
//   -> race LAN, punch, listener and relay; TLS 1.3 with the fingerprints from the records
//   -> tell the server which path won; hand back the TLS stream
import { randomBytes } from 'node:crypto';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { isRcppError, RcppError } from '../errors.js';
import { logger } from '../log.js';
import { racePaths } from '../nat/path-race.js';
import { openPublicListener, type PublicListener } from '../nat/public-listener.js';
import { closeLinkStream } from '../net/tcp.js';
import type { OnProgress, PathKind } from '../progress.js';
import { describeAge, type PeerRecord } from '../rendezvous/peer-record.js';
import {
  readSignal,
  writeSignal,
  type PeerAddresses,
  type SignalMessage,
} from '../rendezvous/signaling.js';
import type { SshAuth } from '../rendezvous/ssh-auth.js';
import type { Identity } from '../secure/identity.js';
import { secureAsClient } from '../secure/tls-channel.js';
import { toContenders } from './contenders.js';
import { joinRendezvous, type Joined, type RendezvousSettings } from './join-rendezvous.js';
import { DEFAULT_TIMING, planPaths, type PlanTiming } from './path-plan.js';
import { openPeriodicLink } from './periodic-client.js';

const log = logger('link');

export interface ClientLinkOptions {
  rendezvous: RendezvousSettings;
  auth: SshAuth;
  localPort: number;
  clientName: string;
  identity: Identity;
  serverName: string;
  signal?: AbortSignal;
  onProgress?: OnProgress;
  timing?: PlanTiming;
  /** Bound on the whole path race (socket mode). */
  raceDeadlineMs?: number;
}

export interface Link {
  stream: TLSSocket;
  path: PathKind;
  reason: string;
  remote: string;
  /** From the start of openLink to the authenticated stream. */
  setupMs: number;
  serverName: string;
  /** Closes the stream without leaving the punching port in TIME_WAIT, then the SSH session. */
  close(): Promise<void>;
}

const SIGNAL_TIMEOUT_MS = 8000;
const RACE_DEADLINE_MS = 12_000;

export async function openLink(opts: ClientLinkOptions): Promise<Link> {
  const started = Date.now();
  const joined = await joinRendezvous(
    {
      rendezvous: opts.rendezvous,
      auth: opts.auth,
      localPort: opts.localPort,
      portFallback: 'any',
      ...(opts.signal && { signal: opts.signal }),
      ...(opts.onProgress && { onProgress: opts.onProgress }),
    },
    { role: 'server', name: opts.serverName },
  );
  try {
    const record = await requireOnlineServer(joined, opts.serverName);
    opts.onProgress?.({
      type: 'peer:found',
      name: record.name,
      role: 'server',
      lastSeen: record.lastSeen,
    });
    if (record.signaling === 'records') {
      return await openPeriodicLink(joined, record, {
        ...opts,
        started,
        reason: 'the file server runs in periodic mode',
      });
    }
    const socketPath = joined.directory.socketPath(joined.home, opts.serverName);
    let channel: Duplex;
    try {
      channel = await joined.session.forwardOut(socketPath);
    } catch (err) {
      if (isForwardingProhibited(err)) {
        return await openPeriodicLink(joined, record, {
          ...opts,
          started,
          reason: 'the rendezvous host does not allow socket forwarding',
        });
      }
      throw offline(record, `its signaling socket does not answer (${(err as Error).message})`);
    }
    return await signalAndRace(joined, record, channel, socketPath, opts, started);
  } catch (err) {
    await joined.session.close();
    throw err;
  }
}

async function requireOnlineServer(joined: Joined, serverName: string): Promise<PeerRecord> {
  const record = joined.record;
  if (record === undefined) {
    const known = (await joined.directory.list('server').catch(() => [])).map((r) => r.name);
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

function isForwardingProhibited(err: unknown): boolean {
  // OpenSSH answers "administratively prohibited" (reason 1) when AllowStreamLocalForwarding is no.
  const e = err as { reason?: number; message?: string };
  return e.reason === 1 || /prohibited/i.test(e.message ?? '');
}

async function signalAndRace(
  joined: Joined,
  record: PeerRecord,
  channel: Duplex,
  socketPath: string,
  opts: ClientLinkOptions,
  started: number,
): Promise<Link> {
  const session = randomBytes(16).toString('hex');
  let listener: PublicListener | undefined;
  const raceController = new AbortController();
  const signal = opts.signal
    ? AbortSignal.any([opts.signal, raceController.signal])
    : raceController.signal;
  try {
    if (joined.self.nat === 'public') listener = await openPublicListener(signal);
    const self: PeerAddresses = {
      external: joined.self.external,
      local: joined.self.local,
      nat: joined.self.nat,
      ...(listener && { listen: { ip: joined.self.external.ip, port: listener.port } }),
    };
    writeSignal(channel, { t: 'open', v: 1, kind: 'signal' });
    writeSignal(channel, { t: 'request', session, client: opts.clientName, ...self });
    const answer = await readSignal(channel, {
      signal: AbortSignal.any([signal, AbortSignal.timeout(SIGNAL_TIMEOUT_MS)]),
    }).catch((err: unknown) => {
      throw isRcppError(err) && err.code === 'CONNECTION_LOST'
        ? offline(record, 'it closed the signaling channel')
        : err;
    });
    const accept = checkAnswer(answer, session, opts.serverName);
    log(
      `server ${opts.serverName} answered: external ${accept.external.ip}:${accept.external.port} nat ${accept.nat}`,
    );

    const steps = planPaths(
      { ...self, role: 'client', localPort: joined.self.localPort },
      accept,
      opts.timing ?? DEFAULT_TIMING,
    );
    const contenders = toContenders(steps, {
      localPort: joined.self.localPort,
      listener,
      openRelay: async () => {
        const relay = await joined.session.forwardOut(socketPath);
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
      ...(opts.signal && { signal: opts.signal }),
      ...(opts.onProgress && { onProgress: opts.onProgress }),
    });
    writeSignal(channel, { t: 'chosen', session, path: winner.candidate.path });
    channel.end();
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
    return makeLink(winner.secured.socket, winner.candidate.stream, {
      path: winner.candidate.path,
      reason: winner.candidate.reason,
      remote: winner.candidate.remote,
      setupMs,
      serverName: opts.serverName,
      closeSession: () => joined.session.close(),
    });
  } catch (err) {
    channel.destroy();
    throw err;
  } finally {
    raceController.abort();
    listener?.close();
  }
}

function checkAnswer(answer: SignalMessage, session: string, serverName: string): PeerAddresses {
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

export function makeLink(
  stream: TLSSocket,
  raw: Duplex,
  info: Omit<Link, 'stream' | 'close'> & { closeSession: () => Promise<void> },
): Link {
  let closing: Promise<void> | undefined;
  const { closeSession, ...rest } = info;
  return {
    ...rest,
    stream,
    close() {
      closing ??= (async () => {
        // The transfer protocol has said goodbye by now; a reset leaves no TIME_WAIT on our port.
        closeLinkStream(raw);
        stream.destroy();
        await closeSession();
      })();
      return closing;
    },
  };
}
