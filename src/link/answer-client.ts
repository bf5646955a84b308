// File-server side of one connection set-up: a client's request arrives on the signaling socket
// (or, in periodic mode, in its record). We check the client is registered, answer with our fresh
// addresses, then run our half of the same path plan the client runs: punch toward it, dial its
// listener, accept on ours. Every stream that passes the TLS check against the client's recorded
// fingerprint is handed to the file server; the client keeps the first one and drops the others.
import type { Duplex } from 'node:stream';
import { deadline } from '../deadline.js';
import { isRcppError, RcppError } from '../errors.js';
import { logger } from '../log.js';
import type { Candidate, Contender } from '../nat/path-race.js';
import { openPublicListener, type PublicListener } from '../nat/public-listener.js';
import type { PunchPlan } from '../nat/punch-plan.js';
import type { SharedListener } from '../nat/shared-listener.js';
import { formatEndpoint, relayKindOf, type SignalingKind } from '../peer.js';
import type { OnProgress } from '../progress.js';
import type { RendezvousDirectory } from '../rendezvous/directory.js';
import { parsePeerRecord, type PeerRecord } from '../rendezvous/peer-record.js';
import {
  readSignal,
  writeSignal,
  type SignalAddresses,
  type SignalMessage,
} from '../rendezvous/signaling.js';
import { recordSentAhead } from '../rendezvous/signaling-transport.js';
import type { Identity } from '../secure/identity.js';
import type { KnownPeers } from '../secure/known-peers.js';
import { secureAsServer } from '../secure/tls-channel.js';
import { toContenders } from './contenders.js';
import type { SelfAddresses } from './join-rendezvous.js';
import { makeLink, type OnLink } from './link.js';
import {
  addressesToOffer,
  familyViews,
  planPaths,
  sameSiteAnywhere,
  wantsListener,
  type PathStep,
} from './path-plan.js';
import { admitClient, rememberProven, type ClientPolicy } from './pinning.js';

const log = logger('answer');

export interface AnswerContext {
  serverName: string;
  identity: Identity;
  /** Client identities pinned so far; a changed one is refused. */
  trust: KnownPeers;
  clientPolicy: ClientPolicy;
  directory: RendezvousDirectory;
  self: SelfAddresses;
  /** The punch port's listener while the router maps it (self.mapped). */
  mappedListener?: SharedListener;
  onLink: OnLink;
  onProgress?: OnProgress;
  /** The transport clients reach us through (for the links' descriptions). */
  signaling: SignalingKind;
  /** Aborted when the file server stops. */
  signal: AbortSignal;
  /**
   * A one-shot send admits its receiver by the code instead of a client record and pinning: the
   * client it returns (the request's fingerprint, once proven), or a refusal thrown.
   */
  introduce?: (request: ConnectionRequest) => PeerRecord;
  /** Reads a client's record (default: the directory's read, one remote command each). */
  readClient?: (name: string, signal: AbortSignal) => Promise<PeerRecord | undefined>;
}

export type ConnectionRequest = Extract<SignalMessage, { t: 'request' }>;

/** A set-up in progress, so that relay channels for it can find it. */
export interface PendingSetup {
  client: PeerRecord;
  offer(candidate: Candidate): void;
}

const REQUEST_TIMEOUT_MS = 8000;
/** How long our side keeps trying paths after answering a request. */
const SETUP_WINDOW_MS = 15_000;

export async function answerSignaling(
  channel: Duplex,
  ctx: AnswerContext,
  pending: Map<string, PendingSetup>,
): Promise<void> {
  const started = Date.now();
  const wait = deadline(ctx.signal, REQUEST_TIMEOUT_MS, () => requestTimeout());
  const request = await readSignal(channel, { signal: wait.signal }).finally(() => wait.clear());
  if (request.t !== 'request') {
    throw new RcppError('PROTOCOL_ERROR', `Expected a connection request, got "${request.t}".`);
  }
  // Alive and on it: the client keeps waiting however busy we are, instead of calling us hung.
  writeSignal(channel, { t: 'received', session: request.session });
  const client = ctx.introduce
    ? introduced(channel, request, ctx.introduce, ctx)
    : await registeredClient(channel, request, ctx);
  if (client === undefined) return;
  log(
    `request from ${request.client}: admitted ${Date.now() - started} ms after the channel opened`,
  );

  const stop = new AbortController();
  const setupWindow = deadline(
    AbortSignal.any([ctx.signal, stop.signal]),
    SETUP_WINDOW_MS,
    () => new RcppError('TIMEOUT', 'The set-up window closed.'),
  );
  const contenderSignal = setupWindow.signal;
  let listener: PublicListener | undefined;
  try {
    const sameRouter = sameSiteAnywhere(request, ctx.self);
    // A server whose router maps its punch port listens there for a client without an IPv6 path to
    // it (with one, IPv6 is raced first, and punching from our port must stay possible). Otherwise
    // a public server, or a server behind the client's own router, listens for this one set-up.
    let mapped = sameRouter || sharesIpv6(request, ctx.self) ? undefined : ctx.self.mapped;
    if (mapped && ctx.mappedListener) {
      const from = familyViews(request).get(4)?.external.ip ?? request.external.ip;
      listener = await ctx.mappedListener.acquire(from, contenderSignal).catch((err: unknown) => {
        log(`cannot listen on the mapped port: ${(err as Error).message}`);
        return undefined;
      });
    }
    if (!listener) mapped = undefined;
    if (!mapped && (wantsListener(ctx.self) || (sameRouter && ctx.self.local.length > 0))) {
      listener = await openPublicListener(contenderSignal);
    }
    const self: SignalAddresses = {
      ...addressesToOffer(
        ctx.self,
        mapped ? undefined : listener?.port,
        listener && sameRouter ? listener.port : undefined,
      ),
      ...(listener && mapped && { mapped }),
    };
    log(`answering ${request.client} ${Date.now() - started} ms after the channel opened`);
    writeSignal(channel, {
      t: 'accept',
      session: request.session,
      server: ctx.serverName,
      ...self,
    });
    const offer = (candidate: Candidate): void => secureAndServe(candidate, client, ctx, started);
    pending.set(request.session, { client, offer });

    // The client tells us which path won, or hangs up: either way our attempts can stop.
    readSignal(channel, { signal: contenderSignal })
      .then((m) => log(`client ${client.name} chose ${m.t === 'chosen' ? m.path : m.t}`))
      .catch(() => {})
      .finally(() => stop.abort());

    const steps = planPaths({ ...self, role: 'server', localPort: ctx.self.localPort }, request);
    const contenders = toContenders(steps, { localPort: ctx.self.localPort, listener });
    await runContenders(contenders, contenderSignal, offer);
    await new Promise<void>((resolve) => {
      if (contenderSignal.aborted) resolve();
      else contenderSignal.addEventListener('abort', () => resolve(), { once: true });
    });
  } finally {
    stop.abort();
    setupWindow.clear();
    listener?.close();
    channel.destroy();
    // Relay channels may still arrive a moment after the client chose; keep the entry briefly.
    setTimeout(() => pending.delete(request.session), 5000).unref();
  }
}

/** A one-shot send's receiver, admitted by its proof of the code (or refused: undefined). */
function introduced(
  channel: Duplex,
  request: ConnectionRequest,
  introduce: NonNullable<AnswerContext['introduce']>,
  ctx: AnswerContext,
): PeerRecord | undefined {
  try {
    return introduce(request);
  } catch (err) {
    refuseClient(channel, ctx, request.client, err);
    return undefined;
  }
}

/** The requesting client's record, admitted by the server's policy (or refused: undefined). */
async function registeredClient(
  channel: Duplex,
  request: ConnectionRequest,
  ctx: AnswerContext,
): Promise<PeerRecord | undefined> {
  const read = ctx.readClient ?? ((name, signal) => ctx.directory.read('client', name, signal));
  const client =
    recordAhead(channel, request.client) ??
    (await read(request.client, ctx.signal).catch((err: unknown) => {
      refuse(channel, err);
      throw err;
    }));
  try {
    if (client === undefined) {
      throw new RcppError(
        'PEER_REFUSED',
        `File server ${ctx.serverName} does not know a client named ${request.client}.`,
        'Run rcpp2p --addclient on the client machine to register it on the rendezvous.',
      );
    }
    await ctx.trust.reload();
    admitClient(ctx.trust, ctx.clientPolicy, ctx.serverName, client);
    return client;
  } catch (err) {
    refuseClient(channel, ctx, request.client, err);
    return undefined;
  }
}

/** Tells the client why it is refused, and the server's log. */
function refuseClient(channel: Duplex, ctx: AnswerContext, client: string, err: unknown): void {
  refuse(channel, err);
  ctx.onProgress?.({ type: 'server:refused', client, message: (err as Error).message });
}

/**
 * Periodic mode: a client asked through its record; punch toward it from our port, and, when it is
 * behind our own router and listens for this request, dial it on the LAN as well.
 */
export async function answerPeriodicRequest(
  client: PeerRecord,
  ctx: AnswerContext,
  plan: PunchPlan,
): Promise<void> {
  const request = client.request;
  if (request === undefined) return;
  const remote = formatEndpoint(request.external);
  log(`periodic request ${request.id} from ${client.name}: SYN burst toward ${remote}`);
  const reason = 'periodic mode (records only)';
  const steps: PathStep[] = [
    { method: 'punch', path: 'periodic', remote: request.external, reason },
  ];
  if (request.lanPort !== undefined && request.external.ip === ctx.self.external.ip) {
    for (const local of client.local ?? []) {
      steps.push({
        method: 'connect',
        path: 'periodic',
        remote: { ip: local.ip, port: request.lanPort },
        reason,
      });
    }
  }
  const contenders = toContenders(steps, {
    localPort: ctx.self.localPort,
    listener: undefined,
    punchPlan: plan,
  });
  const started = Date.now();
  const setupWindow = deadline(
    ctx.signal,
    plan.deadlineMs + 1000,
    () => new RcppError('TIMEOUT', 'The periodic set-up window closed.'),
  );
  try {
    await runContenders(contenders, setupWindow.signal, (c) =>
      secureAndServe(c, client, ctx, started),
    );
  } finally {
    setupWindow.clear();
  }
}

/** The client's record when the transport brought it along (exec) and it names this client. */
function recordAhead(channel: Duplex, name: string): PeerRecord | undefined {
  const text = recordSentAhead(channel);
  if (text === undefined) return undefined;
  try {
    const record = parsePeerRecord(text, { role: 'client', name });
    log(`the record of client ${name} came with its request`);
    return record;
  } catch {
    return undefined; // read it again the usual way, which says what is wrong with it
  }
}

/** Both peers have an IPv6 address (the plan then races IPv6 first). */
function sharesIpv6(a: SignalAddresses, b: SignalAddresses): boolean {
  return familyViews(a).has(6) && familyViews(b).has(6);
}

function requestTimeout(): RcppError {
  return new RcppError('TIMEOUT', 'A signaling channel sent no connection request in time.');
}

function refuse(channel: Duplex, err: unknown): void {
  const e = isRcppError(err) ? err : new RcppError('INTERNAL', 'The file server failed to answer.');
  writeSignal(channel, { t: 'refuse', code: e.code, message: e.message, hint: e.hint });
  channel.end();
}

async function runContenders(
  contenders: Contender[],
  signal: AbortSignal,
  offer: (c: Candidate) => void,
): Promise<void> {
  await Promise.all(
    contenders.map((c) =>
      c.run(signal, offer).catch((err: unknown) => {
        if (!signal.aborted) log(`${c.path} toward ${c.remote} gave up: ${(err as Error).message}`);
      }),
    ),
  );
}

function secureAndServe(
  candidate: Candidate,
  client: PeerRecord,
  ctx: AnswerContext,
  started: number,
): void {
  secureAsServer(candidate.stream, {
    identity: ctx.identity,
    expected: { name: client.name, fingerprint: client.fingerprint },
    signal: ctx.signal,
  })
    .then(async ({ socket, peer }) => {
      // A send's receiver is introduced by the code for this once: nothing to remember.
      if (!ctx.introduce) await rememberProven(ctx.trust, client, ctx.onProgress);
      // The client keeps one stream and closes the others unused: announce a stream once it
      // carries the client's first bytes. (The file server's 'data' listener is added in the same
      // tick by onLink, so both see that first chunk.)
      socket.once('data', () =>
        ctx.onProgress?.({
          type: 'server:client-connected',
          client: client.name,
          path: candidate.path,
          reason: candidate.reason,
          remote: candidate.remote,
        }),
      );
      const link = makeLink(socket, candidate.stream, {
        path: candidate.path,
        reason: candidate.reason,
        remote: candidate.remote,
        peer: client.name,
        peerFingerprint: peer.fingerprint,
        setupMs: Date.now() - started,
        ...(candidate.family && { family: candidate.family }),
        signaling: ctx.signaling,
        relay: relayKindOf(ctx.signaling),
      });
      try {
        await ctx.onLink(link);
      } finally {
        await link.close();
      }
    })
    .catch((err: unknown) => {
      candidate.stream.destroy();
      // Losing candidates are closed by the client mid-handshake; only identity failures matter.
      if (isRcppError(err) && err.code === 'PEER_IDENTITY_MISMATCH') {
        ctx.onProgress?.({
          type: 'server:client-failed',
          client: client.name,
          message: err.message,
        });
      } else {
        log(
          `${candidate.path} candidate from ${candidate.remote} dropped: ${(err as Error).message}`,
        );
      }
    });
}
