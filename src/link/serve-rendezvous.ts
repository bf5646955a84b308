// The running file server's presence on the rendezvous, until stopped:
//
//   connect (from the configured port) -> learn external address -> refuse if the name is live elsewhere
//   -> offer the best signaling transport the host allows (socket, TCP port, remote command; see
//      rendezvous/signaling-transport.ts), or fall back to periodic mode -> publish our record (online)
//   -> answer requests; republish every heartbeat; in periodic mode read client records every poll
//   -> the session drops: reconnect with backoff (1 s doubling to 60 s) and republish; a new
//      external address is learned on every reconnect
//   -> stopped: publish the record as offline, stop offering (a socket is removed), close.
// Authentication, host-key and name conflicts are fatal; network trouble never is.
import type { Duplex } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import { deadline } from '../deadline.js';
import { isRcppError, RcppError } from '../errors.js';
import { logger } from '../log.js';
import type { PortMapping } from '../nat/port-mapping/port-mapping.js';
import type { PunchPlan } from '../nat/punch-plan.js';
import { SharedListener } from '../nat/shared-listener.js';
import { freeLocalPort } from '../net/tcp.js';
import type { OnProgress } from '../progress.js';
import { relayKindOf, type SignalingKind } from '../peer.js';
import {
  selfRecord,
  type PeerRecord,
  type SendOffer,
  type SignalingOffer,
} from '../rendezvous/peer-record.js';
import { readSignal, writeSignal } from '../rendezvous/signaling.js';
import {
  knock,
  offerSignaling,
  routeTo,
  type SignalingListener,
  type SignalingPlace,
} from '../rendezvous/signaling-transport.js';
import { ClientRecordReader } from '../rendezvous/client-records.js';
import type { SshAuth } from '../rendezvous/ssh-auth.js';
import type { Identity } from '../secure/identity.js';
import type { KnownPeers } from '../secure/known-peers.js';
import {
  answerPeriodicRequest,
  answerSignaling,
  type AnswerContext,
  type PendingSetup,
} from './answer-client.js';
import { joinRendezvous, type Joined, type RendezvousSettings } from './join-rendezvous.js';
import type { OnLink } from './link.js';
import { admitClient, type ClientPolicy } from './pinning.js';
import { startServerMapping, usableMapping, type PortMappingSettings } from './router-mapping.js';

const log = logger('serve');

export interface ServeRendezvousOptions {
  rendezvous: RendezvousSettings;
  auth: SshAuth;
  /** The punch port; 0: any free port, kept for the whole run (a send). */
  localPort: number;
  serverName: string;
  identity: Identity;
  /** Client identities pinned so far (known_peers). */
  trust: KnownPeers;
  /** Which clients to serve; default: pinned ones and new ones ('new'). */
  clientPolicy?: ClientPolicy;
  pollSeconds: number;
  onLink: OnLink;
  signal: AbortSignal;
  onProgress?: OnProgress;
  heartbeatSeconds?: number;
  /** Force periodic mode even when forwarding works (tests, diagnosis). */
  forcePeriodic?: boolean;
  /** Offer only these live transports, in this order (tests, diagnosis); default: all, best first. */
  signaling?: readonly Exclude<SignalingKind, 'records'>[];
  /**
   * Called once per rendezvous session, after the record is published: more work on that session
   * (the file index). `signal` aborts when the session ends or the server stops.
   */
  onSession?: (joined: Joined, signal: AbortSignal) => void;
  /** Ask the router to map the punch port (UPnP, NAT-PMP, PCP) while serving. */
  portMapping?: PortMappingSettings;
  /** Connection set-ups in progress at once; more are refused with BUSY (default 64). */
  maxPendingSetups?: number;
  /**
   * A one-shot send instead of a file server: the offer goes into the record, and clients are
   * admitted by `introduce` (their proof of the code) instead of their records and known_peers.
   */
  send?: { offer: SendOffer; introduce: NonNullable<AnswerContext['introduce']> };
}

const FATAL = new Set([
  'AUTH_FAILED',
  'HOST_KEY_UNKNOWN',
  'HOST_KEY_MISMATCH',
  'HOST_KEY_REVOKED',
  'NAME_IN_USE',
  'CONFIG_INVALID',
]);
const MAX_BACKOFF_MS = 60_000;
/** How long a stopping server waits to mark itself offline on the rendezvous. */
const GOODBYE_TIMEOUT_MS = 3000;
/**
 * How long the name-conflict probe waits for the old server's answer: through a remote command it
 * takes two looks at the request folder and two commands (about 0.5 s, seconds on a loaded host).
 */
const PROBE_TIMEOUT_MS = 5000;
const PROBE_TIMEOUT_EXEC_MS = 10_000;
const MAX_PENDING_SETUPS = 64;
/** Requests older than this are not answered in periodic mode. */
const REQUEST_MAX_AGE_MS = 120_000;
/** Clocks differ a little between peers; a request dated further ahead than this is forged. */
const REQUEST_MAX_SKEW_MS = 30_000;
/** How long the first line of a new signaling channel may take. */
const OPEN_TIMEOUT_MS = 8000;

/** What one run of the server remembers from one rendezvous session to the next. */
interface ServeState {
  /** The lastSeen of the record this process last published, if any. */
  lastPublished?: string;
  /** True once a session was established: later failures are network trouble, not set-up. */
  connectedOnce: boolean;
  /** The punch port's mapping on the router, kept across sessions; removed when we stop. */
  mapping?: PortMapping;
  /** Where a mapped punch port listens during set-ups that use the mapping. */
  mappedListener?: SharedListener;
  /** The mapping's progress lines wait until the first login has said its own. */
  releaseMappingProgress?: () => void;
  /** Called once a login from the punch port worked: only then is that port mapped. */
  portIsOurs?: () => void;
}

export async function serveRendezvous(options: ServeRendezvousOptions): Promise<void> {
  const opts = options.localPort === 0 ? { ...options, localPort: await freeLocalPort() } : options;
  let portIsOurs: () => void = () => {};
  const ours = new Promise<void>((resolve) => (portIsOurs = resolve));
  const router = startServerMapping(opts.portMapping, opts.localPort, ours, opts.onProgress);
  const state: ServeState = {
    connectedOnce: false,
    portIsOurs,
    ...(router && {
      mapping: router.mapping,
      mappedListener: new SharedListener(opts.localPort),
      releaseMappingProgress: router.releaseProgress,
    }),
  };
  try {
    await serveUntilStopped(opts, state);
  } finally {
    // Stopped (Ctrl-C, SIGTERM) or failed: the router forgets the punch port now, not at lease end.
    router?.releaseProgress();
    await router?.mapping.close();
  }
}

async function serveUntilStopped(opts: ServeRendezvousOptions, state: ServeState): Promise<void> {
  let backoffMs = 1000;
  while (!opts.signal.aborted) {
    let joined: Joined | undefined;
    try {
      joined = await joinRendezvous(
        {
          rendezvous: opts.rendezvous,
          auth: opts.auth,
          localPort: opts.localPort,
          portFallback: 'fail',
          signal: opts.signal,
          // Nobody waits on a file server's start: let the other family's login finish.
          otherFamilyWaitMs: 5000,
          ...(opts.onProgress && { onProgress: opts.onProgress }),
        },
        { role: 'server', name: opts.serverName },
      );
      backoffMs = 1000;
      state.connectedOnce = true;
      state.portIsOurs?.();
      state.releaseMappingProgress?.();
      const ended = await serveOneSession(joined, opts, state);
      if (opts.signal.aborted) return;
      reportReconnect(
        opts,
        backoffMs,
        `the rendezvous session ended${ended ? ` (${ended.message})` : ''}`,
      );
    } catch (err) {
      state.releaseMappingProgress?.();
      await joined?.session.close();
      if (opts.signal.aborted) return;
      if (isRcppError(err) && FATAL.has(err.code)) throw err;
      // Our own port taken before we ever connected: another process holds it, and waiting will not
      // help. (After a silent link loss the old socket holds it for a while; that one we wait out.)
      if (isRcppError(err) && err.code === 'PORT_IN_USE' && !state.connectedOnce) throw err;
      reportReconnect(opts, backoffMs, isRcppError(err) ? err.message : String(err));
    }
    try {
      await delay(backoffMs, undefined, { signal: opts.signal });
    } catch {
      return;
    }
    backoffMs = Math.min(backoffMs * 2, MAX_BACKOFF_MS);
  }
}

function reportReconnect(opts: ServeRendezvousOptions, inMs: number, message: string): void {
  log(`reconnecting in ${inMs} ms: ${message}`);
  opts.onProgress?.({ type: 'rendezvous:reconnecting', inMs, message });
}

/** Serves requests on one rendezvous session; resolves when it ends or the server stops. */
async function serveOneSession(
  joined: Joined,
  opts: ServeRendezvousOptions,
  state: ServeState,
): Promise<Error | undefined> {
  const { session, directory } = joined;
  const place: SignalingPlace = {
    session,
    directory,
    home: joined.home,
    serverName: opts.serverName,
  };
  const sessionStop = new AbortController();
  const signal = AbortSignal.any([opts.signal, sessionStop.signal]);
  const timers: NodeJS.Timeout[] = [];
  let onStop: (() => void) | undefined;
  let listener: SignalingListener | undefined;
  let offMapping: (() => void) | undefined;
  let records: ClientRecordReader | undefined;
  try {
    await refuseIfNameLive(joined, place, opts, state);
    const ctx: AnswerContext = {
      serverName: opts.serverName,
      identity: opts.identity,
      trust: opts.trust,
      clientPolicy: opts.clientPolicy ?? 'new',
      directory,
      self: joined.self,
      ...(state.mappedListener && { mappedListener: state.mappedListener }),
      onLink: opts.onLink,
      // known once offered; until then only the offer's own ping comes in
      signaling: 'records',
      signal,
      ...(opts.onProgress && { onProgress: opts.onProgress }),
      ...(opts.send && { introduce: opts.send.introduce }),
    };
    // One running command reads client records for the whole session (saves one per set-up).
    const reader = new ClientRecordReader(session, directory, signal);
    records = reader;
    void reader.start();
    ctx.readClient = (name, readSignal) => reader.read(name, readSignal);
    const pending = new Map<string, PendingSetup>();
    const limit = opts.maxPendingSetups ?? MAX_PENDING_SETUPS;
    const onChannel = (channel: Duplex): void => {
      handleChannel(channel, ctx, pending, limit).catch((err: unknown) => {
        log(`channel failed: ${(err as Error).message}`);
        channel.destroy();
      });
    };
    let reason = 'periodic mode was requested';
    if (!opts.forcePeriodic) {
      const offered = await offerSignaling(place, onChannel, {
        signal,
        touchMs: opts.rendezvous.keepaliveSeconds * 1000,
        ...(opts.signaling && { kinds: opts.signaling }),
      });
      listener = offered.listener;
      reason = offered.reason;
    }
    const offer: SignalingOffer = listener?.offer ?? { via: 'records' };
    ctx.signaling = offer.via;
    // The mapped punch port, offered while the rendezvous agrees it is ours (see router-mapping.ts).
    const offerMapping = async (): Promise<void> => {
      const mapped =
        state.mapping && (await usableMapping(state.mapping, state.mapping.current(), joined.self));
      if (mapped) joined.self.mapped = mapped;
      else delete joined.self.mapped;
    };
    await offerMapping();
    const record = (online: boolean): PeerRecord =>
      selfRecord(
        { role: 'server', name: opts.serverName, fingerprint: opts.identity.fingerprint },
        joined.self,
        {
          online,
          signaling: offer,
          pollSeconds: opts.pollSeconds,
          ...(opts.send && { offer: opts.send.offer }),
        },
      );
    /** Publishes us as online and remembers which record that was (see refuseIfNameLive). */
    const publishOnline = async (): Promise<void> => {
      const online = record(true);
      await directory.publish(online, signal);
      state.lastPublished = online.lastSeen;
    };
    await publishOnline();
    offMapping = state.mapping?.onChange(() => {
      offerMapping()
        .then(publishOnline)
        .catch((err: unknown) => log(`republishing the mapping failed: ${(err as Error).message}`));
    });
    opts.onProgress?.({ type: 'record:published', name: opts.serverName, role: 'server' });
    log(`signaling: ${offer.via}, relay: ${relayKindOf(offer.via)}${reason ? ` (${reason})` : ''}`);
    opts.onProgress?.({
      type: 'signaling:ready',
      mode: offer.via,
      relay: relayKindOf(offer.via),
      pollSeconds: opts.pollSeconds,
      ...(reason !== '' && { reason }),
    });
    opts.onSession?.(joined, signal);

    const heartbeatMs = (opts.heartbeatSeconds ?? 60) * 1000;
    timers.push(
      setInterval(() => {
        publishOnline().catch((err: unknown) => log(`heartbeat failed: ${(err as Error).message}`));
      }, heartbeatMs),
    );
    // (A send admits no client records: a host with nothing live cannot carry one.)
    if (offer.via === 'records' && !opts.send) timers.push(startPolling(ctx, opts));

    const ended = await Promise.race([
      session.closed,
      ...(listener ? [listener.failed] : []),
      new Promise<undefined>((resolve) => {
        onStop = () => resolve(undefined);
        opts.signal.addEventListener('abort', onStop, { once: true });
      }),
    ]);
    if (opts.signal.aborted) {
      // Stopping: say so on the rendezvous, briefly (the server's own signal is already aborted).
      const goodbye = deadline(
        sessionStop.signal,
        GOODBYE_TIMEOUT_MS,
        () => new RcppError('TIMEOUT', 'The rendezvous did not take the offline record in time.'),
      );
      try {
        await directory.publish(record(false), goodbye.signal).catch(() => {});
        await listener?.close(goodbye.signal).catch(() => {});
      } finally {
        goodbye.clear();
      }
    }
    return ended;
  } finally {
    // One listener per session on the process-wide signal, removed with the session.
    if (onStop) opts.signal.removeEventListener('abort', onStop);
    offMapping?.();
    records?.close();
    for (const t of timers) clearInterval(t);
    sessionStop.abort();
    await listener?.close(AbortSignal.timeout(GOODBYE_TIMEOUT_MS)).catch(() => {});
    await session.close();
  }
}

/** Another file server with our name that still answers means a real conflict. */
async function refuseIfNameLive(
  joined: Joined,
  place: SignalingPlace,
  opts: ServeRendezvousOptions,
  state: ServeState,
): Promise<void> {
  const old = joined.record;
  if (old?.online !== true) return;
  const route = routeTo(place, old.signaling);
  if (route === undefined) return;
  // The record is the one this process published before its session dropped (nobody has written
  // over it since). After a silent network loss the rendezvous host may still hold that dead
  // session, and its socket still accepts: that is our own ghost, not a conflict. Without this, a
  // reconnect behind a NAT that gave us a new port made the server exit with NAME_IN_USE.
  if (old.fingerprint === opts.identity.fingerprint && old.lastSeen === state.lastPublished) {
    return;
  }
  // Only an answer in time counts, with one exception: a socket that opens but stays silent is
  // taken as live (a hung server; refusing is safer than taking its name). A TCP port or a request
  // folder could belong to anyone or to nobody by now, so there it must be a pong.
  const probe = deadline(
    opts.signal,
    route.kind === 'exec' ? PROBE_TIMEOUT_EXEC_MS : PROBE_TIMEOUT_MS,
    () => new RcppError('TIMEOUT', 'The old signaling channel did not answer in time.'),
  );
  let live: boolean;
  try {
    const result = await knock(route, probe.signal);
    if (opts.signal.aborted) throw opts.signal.reason;
    live = result === 'answered' || (result === 'silent' && route.kind === 'socket');
  } finally {
    probe.clear();
  }
  if (!live) return; // nobody answers: the previous run ended without marking itself offline
  if (old.fingerprint === opts.identity.fingerprint) {
    throw new RcppError(
      'NAME_IN_USE',
      `File server ${opts.serverName} is already running with this configuration.`,
      'Stop the other rcpp2p process first.',
    );
  }
  throw new RcppError(
    'NAME_IN_USE',
    `Another file server named ${opts.serverName} is running on the rendezvous.`,
    'Choose a different file-server name with rcpp2p --configure.',
  );
}

async function handleChannel(
  channel: Duplex,
  ctx: AnswerContext,
  pending: Map<string, PendingSetup>,
  maxPending: number,
): Promise<void> {
  const wait = deadline(
    ctx.signal,
    OPEN_TIMEOUT_MS,
    () => new RcppError('TIMEOUT', 'A signaling channel said nothing in time.'),
  );
  const open = await readSignal(channel, { signal: wait.signal }).finally(() => wait.clear());
  if (open.t !== 'open')
    throw new RcppError('PROTOCOL_ERROR', 'A signaling channel did not start with "open".');
  if (open.kind === 'ping') {
    writeSignal(channel, { t: 'pong' });
    channel.end();
    return;
  }
  if (open.kind === 'signal') {
    if (pending.size >= maxPending) {
      // Said to the client, so it reports a busy server instead of one that hung up.
      writeSignal(channel, {
        t: 'refuse',
        code: 'BUSY',
        message: `File server ${ctx.serverName} is setting up ${pending.size} connections at once, its limit.`,
        hint: 'Try again in a few seconds.',
      });
      channel.end();
      return;
    }
    await answerSignaling(channel, ctx, pending);
    return;
  }
  const setup = pending.get(open.session);
  if (!setup) throw new RcppError('PROTOCOL_ERROR', 'A relay channel named an unknown set-up.');
  setup.offer({
    path: 'relay',
    reason: 'relayed through the rendezvous',
    remote: 'the rendezvous host',
    stream: channel,
  });
}

function startPolling(ctx: AnswerContext, opts: ServeRendezvousOptions): NodeJS.Timeout {
  /** Request ids answered, with when. */
  const seen = new Map<string, number>();
  const plan: PunchPlan = {
    attemptTimeoutMs: 1000,
    refusedRetryMs: 150,
    otherRetryMs: 250,
    deadlineMs: 10_000,
  };
  let polling = false;
  const poll = async (): Promise<void> => {
    if (polling) return;
    polling = true;
    try {
      const clients = await ctx.directory.list('client', ctx.signal);
      const now = Date.now();
      // Forget requests too old to be answered again, so the set stays small.
      for (const [id, at] of seen) if (now - at > REQUEST_MAX_AGE_MS) seen.delete(id);
      for (const client of clients) {
        const request = client.request;
        if (!request || seen.has(request.id)) continue;
        const age = now - Date.parse(request.at);
        if (age > REQUEST_MAX_AGE_MS || age < -REQUEST_MAX_SKEW_MS) continue;
        seen.set(request.id, now);
        try {
          await ctx.trust.reload();
          admitClient(ctx.trust, ctx.clientPolicy, ctx.serverName, client);
        } catch (err) {
          ctx.onProgress?.({
            type: 'server:refused',
            client: client.name,
            message: (err as Error).message,
          });
          continue;
        }
        answerPeriodicRequest(client, ctx, plan).catch((err: unknown) =>
          log(`periodic answer to ${client.name} failed: ${(err as Error).message}`),
        );
      }
    } finally {
      polling = false;
    }
  };
  const timer = setInterval(() => {
    poll().catch((err: unknown) => log(`poll failed: ${(err as Error).message}`));
  }, opts.pollSeconds * 1000);
  poll().catch((err: unknown) => log(`poll failed: ${(err as Error).message}`));
  return timer;
}
