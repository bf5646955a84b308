// The running file server's presence on the rendezvous, until stopped:
//
//   connect (from the configured port) -> learn external address -> refuse if the name is live elsewhere
//   -> offer the signaling socket (or fall back to periodic mode) -> publish our record (online)
//   -> answer requests; republish every heartbeat; in periodic mode read client records every poll
//   -> the session drops: reconnect with backoff (1 s doubling to 60 s) and republish; a new
//      external address is learned on every reconnect
//   -> stopped: publish the record as offline, remove the socket, close.
// Authentication, host-key and name conflicts are fatal; network trouble never is.
import type { Duplex } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import { deadline } from '../deadline.js';
import { isRcppError, RcppError } from '../errors.js';
import { logger } from '../log.js';
import type { PunchPlan } from '../nat/punch-plan.js';
import type { OnProgress } from '../progress.js';
import { selfRecord, type PeerRecord } from '../rendezvous/peer-record.js';
import { readSignal } from '../rendezvous/signaling.js';
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

const log = logger('serve');

export interface ServeRendezvousOptions {
  rendezvous: RendezvousSettings;
  auth: SshAuth;
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
/** How long the name-conflict probe waits for the rendezvous to open a channel to the old socket. */
const PROBE_TIMEOUT_MS = 5000;
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
}

export async function serveRendezvous(opts: ServeRendezvousOptions): Promise<void> {
  let backoffMs = 1000;
  const state: ServeState = { connectedOnce: false };
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
      const ended = await serveOneSession(joined, opts, state);
      if (opts.signal.aborted) return;
      reportReconnect(
        opts,
        backoffMs,
        `the rendezvous session ended${ended ? ` (${ended.message})` : ''}`,
      );
    } catch (err) {
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
  const socketPath = directory.socketPath(joined.home, opts.serverName);
  const sessionStop = new AbortController();
  const signal = AbortSignal.any([opts.signal, sessionStop.signal]);
  const timers: NodeJS.Timeout[] = [];
  let onStop: (() => void) | undefined;
  try {
    await refuseIfNameLive(joined, opts, socketPath, state);
    let mode: 'socket' | 'records' = 'records';
    let reason: string | undefined = opts.forcePeriodic ? 'periodic mode was requested' : undefined;
    if (!opts.forcePeriodic) {
      try {
        await directory.unlinkSocket(opts.serverName, signal);
        await session.forwardIn(socketPath, { signal });
        mode = 'socket';
      } catch (err) {
        if (signal.aborted) throw err;
        reason = isRcppError(err) ? err.message : String(err);
      }
    }
    const record = (online: boolean): PeerRecord =>
      selfRecord(
        { role: 'server', name: opts.serverName, fingerprint: opts.identity.fingerprint },
        joined.self,
        { online, signaling: mode, pollSeconds: opts.pollSeconds },
      );
    /** Publishes us as online and remembers which record that was (see refuseIfNameLive). */
    const publishOnline = async (): Promise<void> => {
      const online = record(true);
      await directory.publish(online, signal);
      state.lastPublished = online.lastSeen;
    };
    await publishOnline();
    opts.onProgress?.({ type: 'record:published', name: opts.serverName, role: 'server' });
    opts.onProgress?.({ type: 'signaling:ready', mode, ...(reason !== undefined && { reason }) });

    const ctx: AnswerContext = {
      serverName: opts.serverName,
      identity: opts.identity,
      trust: opts.trust,
      clientPolicy: opts.clientPolicy ?? 'new',
      directory,
      self: joined.self,
      onLink: opts.onLink,
      signal,
      ...(opts.onProgress && { onProgress: opts.onProgress }),
    };
    const pending = new Map<string, PendingSetup>();
    session.onIncoming((channel) => {
      handleChannel(channel, ctx, pending).catch((err: unknown) => {
        log(`channel failed: ${(err as Error).message}`);
        channel.destroy();
      });
    });

    const heartbeatMs = (opts.heartbeatSeconds ?? 60) * 1000;
    timers.push(
      setInterval(() => {
        publishOnline().catch((err: unknown) => log(`heartbeat failed: ${(err as Error).message}`));
      }, heartbeatMs),
    );
    if (mode === 'records') timers.push(startPolling(ctx, opts));

    const ended = await Promise.race([
      session.closed,
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
        if (mode === 'socket') {
          await directory.unlinkSocket(opts.serverName, goodbye.signal).catch(() => {});
        }
      } finally {
        goodbye.clear();
      }
    }
    return ended;
  } finally {
    // One listener per session on the process-wide signal, removed with the session.
    if (onStop) opts.signal.removeEventListener('abort', onStop);
    for (const t of timers) clearInterval(t);
    sessionStop.abort();
    await session.close();
  }
}

/** Another file server with our name that still answers on its socket means a real conflict. */
async function refuseIfNameLive(
  joined: Joined,
  opts: ServeRendezvousOptions,
  socketPath: string,
  state: ServeState,
): Promise<void> {
  const old = joined.record;
  if (old?.online !== true || old.signaling !== 'socket') return;
  // The record is the one this process published before its session dropped (nobody has written
  // over it since). After a silent network loss the rendezvous host may still hold that dead
  // session, and its socket still accepts: that is our own ghost, not a conflict. Without this, a
  // reconnect behind a NAT that gave us a new port made the server exit with NAME_IN_USE.
  if (old.fingerprint === opts.identity.fingerprint && old.lastSeen === state.lastPublished) {
    return;
  }
  // A rendezvous can hold a channel open forever when the socket's owner is a dead connection it
  // has not noticed yet (the embedded rendezvous waits on it): only an answer in time counts.
  const probe = deadline(
    opts.signal,
    PROBE_TIMEOUT_MS,
    () => new RcppError('TIMEOUT', 'The old signaling socket did not answer in time.'),
  );
  try {
    const channel = await joined.session.forwardOut(socketPath, { signal: probe.signal });
    channel.destroy();
  } catch (err) {
    if (opts.signal.aborted) throw err;
    return; // nobody listens, or too late: the previous run ended without marking itself offline
  } finally {
    probe.clear();
  }
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
): Promise<void> {
  const wait = deadline(
    ctx.signal,
    OPEN_TIMEOUT_MS,
    () => new RcppError('TIMEOUT', 'A signaling channel said nothing in time.'),
  );
  const open = await readSignal(channel, { signal: wait.signal }).finally(() => wait.clear());
  if (open.t !== 'open')
    throw new RcppError('PROTOCOL_ERROR', 'A signaling channel did not start with "open".');
  if (open.kind === 'signal') {
    if (pending.size >= MAX_PENDING_SETUPS) {
      throw new RcppError('BUSY', 'Too many connection set-ups at once.');
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
