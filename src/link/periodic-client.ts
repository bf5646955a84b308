// Periodic mode, client side: when the rendezvous offers no live signaling (forwarding disabled),
// the records are the only channel. The client writes a connection request into its own record and
// keeps one long connect() toward the server's published address; the server reads client records
// every pollSeconds and sends SYN bursts toward requesters. When a burst crosses our SYN_SENT
// socket, both connect (NAT-FACTS item 3). The cost is up to one poll interval of waiting.
import { randomBytes } from 'node:crypto';
import { isRcppError, RcppError } from '../errors.js';
import { logger } from '../log.js';
import { racePaths } from '../nat/path-race.js';
import { openPublicListener } from '../nat/public-listener.js';
import type { PunchPlan } from '../nat/punch-plan.js';
import { selfRecord, type PeerRecord, type PeriodicRequest } from '../rendezvous/peer-record.js';
import { secureAsClient } from '../secure/tls-channel.js';
import { toContenders } from './contenders.js';
import type { Joined } from './join-rendezvous.js';
import { makeLink, type Link } from './link.js';
import type { ClientLinkOptions } from './open-link.js';
import type { PathStep } from './path-plan.js';
import { rememberProven } from './pinning.js';

const log = logger('periodic');

const DEFAULT_POLL_SECONDS = 10;
const WITHDRAW_TIMEOUT_MS = 3000;

export async function openPeriodicLink(
  joined: Joined,
  record: PeerRecord,
  opts: ClientLinkOptions & { started: number; reason: string },
): Promise<Link> {
  const external = record.external;
  if (external === undefined) {
    throw new RcppError(
      'NO_PATH',
      `File server ${record.name} has not published an address, and ${opts.reason}.`,
      'Restart the file server so that it publishes its address.',
    );
  }
  const pollSeconds = record.pollSeconds ?? DEFAULT_POLL_SECONDS;
  // Behind the same router as the server (or on the same machine), a SYN to a closed port is
  // answered with RST at once, so two punches rarely cross: listen as well, and let the server
  // dial us on the LAN (it learns the port from the request).
  const sameRouter = joined.self.external.ip === external.ip;
  const listener = sameRouter ? await openPublicListener(opts.signal) : undefined;
  const request: PeriodicRequest = {
    id: randomBytes(8).toString('hex'),
    at: new Date().toISOString(),
    external: joined.self.external,
    ...(listener && { lanPort: listener.port }),
  };
  const ownRecord = selfRecord(
    { role: 'client', name: opts.clientName, fingerprint: opts.identity.fingerprint },
    joined.self,
    { request },
  );
  const reason =
    `${opts.reason}; the server reads requests every ${pollSeconds} s` +
    (sameRouter ? ', and both peers are behind the same router' : '');
  // One long SYN_SENT socket at a time (the kernel re-sends its SYN), replaced only when a router
  // answers with RST; the deadline covers two poll intervals and the burst itself.
  const plan: PunchPlan = {
    attemptTimeoutMs: 30_000,
    refusedRetryMs: 200,
    otherRetryMs: 500,
    deadlineMs: (pollSeconds * 2 + 10) * 1000,
  };
  try {
    await joined.directory.publish(ownRecord, opts.signal);
    log(
      `request ${request.id} published; waiting up to ${plan.deadlineMs / 1000} s for the server`,
    );
    const steps: PathStep[] = [{ method: 'punch', path: 'periodic', remote: external, reason }];
    if (listener) steps.push({ method: 'accept', path: 'periodic', reason });
    const winner = await racePaths({
      contenders: toContenders(steps, {
        localPort: joined.self.localPort,
        listener,
        punchPlan: plan,
      }),
      secure: (candidate, raceSignal) =>
        secureAsClient(candidate.stream, {
          identity: opts.identity,
          expected: { name: record.name, fingerprint: record.fingerprint },
          signal: raceSignal,
        }),
      discard: (secured) => secured.socket.destroy(),
      deadlineMs: plan.deadlineMs,
      signal: opts.signal,
      ...(opts.onProgress && { onProgress: opts.onProgress }),
    }).catch((err: unknown) => {
      if (isRcppError(err) && err.code !== 'NO_PATH') throw err;
      throw new RcppError(
        'NO_PATH',
        `File server ${record.name} did not reach this client within ${plan.deadlineMs / 1000} s in periodic mode ` +
          `(${opts.reason}).`,
        'Check that the file server is running; periodic mode needs NATs that keep ports.',
        { cause: err },
      );
    });
    await rememberProven(opts.trust, record, opts.onProgress);
    const setupMs = Date.now() - opts.started;
    const remote = winner.candidate.remote;
    opts.onProgress?.({ type: 'link:established', path: 'periodic', remote, reason, ms: setupMs });
    opts.onProgress?.({
      type: 'link:secured',
      peer: record.name,
      fingerprint: winner.secured.peer.fingerprint,
      ms: setupMs,
    });
    return makeLink(
      winner.secured.socket,
      winner.candidate.stream,
      {
        path: 'periodic',
        reason,
        remote,
        peer: record.name,
        peerFingerprint: winner.secured.peer.fingerprint,
        setupMs,
        ...(winner.candidate.family && { family: winner.candidate.family }),
      },
      async () => {
        await withdraw(joined, ownRecord);
        await joined.session.close();
      },
    );
  } catch (err) {
    await withdraw(joined, ownRecord);
    throw err;
  } finally {
    listener?.close();
  }
}

/**
 * Publishes our record without the request again, so the server stops sending SYN bursts for it.
 * Runs also after Ctrl-C, so it has its own short deadline instead of the command's signal.
 */
async function withdraw(joined: Joined, record: PeerRecord): Promise<void> {
  const copy = { ...record, lastSeen: new Date().toISOString() };
  delete copy.request;
  await joined.directory.publish(copy, AbortSignal.timeout(WITHDRAW_TIMEOUT_MS)).catch(() => {});
}
