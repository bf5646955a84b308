// File-server side of one connection set-up: a client's request arrives on the signaling socket
// (or, in periodic mode, in its record). We check the client is registered, answer with our fresh
// addresses, then run our half of the same path plan the client runs: punch toward it, dial its
// listener, accept on ours. Every stream that passes the TLS check against the client's recorded
// fingerprint is handed to the file server; the client keeps the first one and drops the others.
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { isRcppError, RcppError } from '../errors.js';
import { logger } from '../log.js';
import type { Candidate, Contender } from '../nat/path-race.js';
import { openPublicListener, type PublicListener } from '../nat/public-listener.js';
import type { PunchPlan } from '../nat/punch-plan.js';
import type { OnProgress, PathKind } from '../progress.js';
import type { RendezvousDirectory } from '../rendezvous/directory.js';
import type { PeerRecord } from '../rendezvous/peer-record.js';
import { readSignal, writeSignal, type PeerAddresses } from '../rendezvous/signaling.js';
import type { Identity } from '../secure/identity.js';
import { secureAsServer } from '../secure/tls-channel.js';
import { toContenders } from './contenders.js';
import type { SelfAddresses } from './join-rendezvous.js';
import { planPaths } from './path-plan.js';

const log = logger('answer');

/** Serves one authenticated stream until it ends (the file server). */
export type OnLink = (
  stream: TLSSocket,
  raw: Duplex,
  info: { client: string; path: PathKind; reason: string; remote: string },
) => Promise<void>;

export interface AnswerContext {
  serverName: string;
  identity: Identity;
  directory: RendezvousDirectory;
  self: SelfAddresses;
  onLink: OnLink;
  onProgress?: OnProgress;
  /** Aborted when the file server stops. */
  signal: AbortSignal;
}

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
  const request = await readSignal(channel, {
    signal: AbortSignal.any([ctx.signal, AbortSignal.timeout(REQUEST_TIMEOUT_MS)]),
  });
  if (request.t !== 'request') {
    throw new RcppError('PROTOCOL_ERROR', `Expected a connection request, got "${request.t}".`);
  }
  const client = await ctx.directory.read('client', request.client).catch((err: unknown) => {
    refuse(channel, err);
    throw err;
  });
  if (client === undefined) {
    const err = new RcppError(
      'PEER_REFUSED',
      `File server ${ctx.serverName} does not know a client named ${request.client}.`,
      'Run rcpp2p --addclient on the client machine to register it on the rendezvous.',
    );
    refuse(channel, err);
    ctx.onProgress?.({ type: 'server:refused', client: request.client, message: err.message });
    return;
  }

  const stop = new AbortController();
  const contenderSignal = AbortSignal.any([
    ctx.signal,
    stop.signal,
    AbortSignal.timeout(SETUP_WINDOW_MS),
  ]);
  let listener: PublicListener | undefined;
  try {
    const sameRouter = request.external.ip === ctx.self.external.ip;
    // A public server, or a server behind the client's own router, listens for this one set-up.
    if (ctx.self.nat === 'public' || (sameRouter && ctx.self.local.length > 0)) {
      listener = await openPublicListener(contenderSignal);
    }
    const self: PeerAddresses = {
      external: ctx.self.external,
      local: ctx.self.local,
      nat: ctx.self.nat,
      ...(listener &&
        ctx.self.nat === 'public' && { listen: { ip: ctx.self.external.ip, port: listener.port } }),
      ...(listener && sameRouter && { lanPort: listener.port }),
    };
    writeSignal(channel, {
      t: 'accept',
      session: request.session,
      server: ctx.serverName,
      ...self,
    });
    const offer = (candidate: Candidate): void => secureAndServe(candidate, client, ctx);
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
    listener?.close();
    channel.destroy();
    // Relay channels may still arrive a moment after the client chose; keep the entry briefly.
    setTimeout(() => pending.delete(request.session), 5000).unref();
  }
}

/** Periodic mode: a client asked through its record; punch toward it from our port. */
export async function answerPeriodicRequest(
  client: PeerRecord,
  ctx: AnswerContext,
  plan: PunchPlan,
): Promise<void> {
  const request = client.request;
  if (request === undefined) return;
  const remote = `${request.external.ip}:${request.external.port}`;
  log(`periodic request ${request.id} from ${client.name}: SYN burst toward ${remote}`);
  const contenders = toContenders(
    [
      {
        method: 'punch',
        path: 'periodic',
        remote: request.external,
        reason: 'periodic mode (records only)',
      },
    ],
    { localPort: ctx.self.localPort, listener: undefined, punchPlan: plan },
  );
  await runContenders(
    contenders,
    AbortSignal.any([ctx.signal, AbortSignal.timeout(plan.deadlineMs + 1000)]),
    (c) => secureAndServe(c, client, ctx),
  );
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

function secureAndServe(candidate: Candidate, client: PeerRecord, ctx: AnswerContext): void {
  secureAsServer(candidate.stream, {
    identity: ctx.identity,
    expected: { name: client.name, fingerprint: client.fingerprint },
    signal: ctx.signal,
  })
    .then(async ({ socket }) => {
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
      await ctx.onLink(socket, candidate.stream, {
        client: client.name,
        path: candidate.path,
        reason: candidate.reason,
        remote: candidate.remote,
      });
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
