// Periodic mode, client side: when the rendezvous offers no live signaling (forwarding disabled),
// the records are the only channel. The client writes a connection request into its own record and
// keeps one long connect() toward the server's published address; the server reads client records
// every pollSeconds and sends SYN bursts toward requesters. When a burst crosses our SYN_SENT
// socket, both connect (NAT-FACTS item 3). The cost is up to one poll interval of waiting.
import { randomBytes } from 'node:crypto';
import { RcppError } from '../errors.js';
import { logger } from '../log.js';
import { punch } from '../nat/punch.js';
import type { PunchPlan } from '../nat/punch-plan.js';
import type { PeerRecord } from '../rendezvous/peer-record.js';
import { secureAsClient } from '../secure/tls-channel.js';
import { SOFTWARE } from '../version.js';
import type { Joined } from './join-rendezvous.js';
import { makeLink, type ClientLinkOptions, type Link } from './open-link.js';

const log = logger('periodic');

const DEFAULT_POLL_SECONDS = 10;

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
  const request = {
    id: randomBytes(8).toString('hex'),
    at: new Date().toISOString(),
    external: joined.self.external,
  };
  const ownRecord: PeerRecord = {
    v: 1,
    role: 'client',
    name: opts.clientName,
    fingerprint: opts.identity.fingerprint,
    lastSeen: request.at,
    software: SOFTWARE,
    external: joined.self.external,
    local: joined.self.local,
    nat: joined.self.nat,
    request,
  };
  await joined.directory.publish(ownRecord);
  const remote = `${external.ip}:${external.port}`;
  opts.onProgress?.({ type: 'link:trying', path: 'periodic', remote });
  log(
    `request ${request.id} published; waiting up to ${pollSeconds * 2 + 10} s for the server's SYN burst`,
  );

  // One long SYN_SENT socket at a time (the kernel re-sends its SYN), replaced only when a router
  // answers with RST; the deadline covers two poll intervals and the burst itself.
  const plan: PunchPlan = {
    attemptTimeoutMs: 30_000,
    refusedRetryMs: 200,
    otherRetryMs: 500,
    deadlineMs: (pollSeconds * 2 + 10) * 1000,
  };
  const signal = opts.signal ?? new AbortController().signal;
  try {
    const socket = await punch({
      localPort: joined.self.localPort,
      remote: external,
      signal,
      plan,
    }).catch((err: unknown) => {
      throw new RcppError(
        'NO_PATH',
        `File server ${record.name} did not reach this client within ${plan.deadlineMs / 1000} s in periodic mode ` +
          `(${opts.reason}).`,
        'Check that the file server is running; periodic mode needs NATs that keep ports.',
        { cause: err },
      );
    });
    const secured = await secureAsClient(socket, {
      identity: opts.identity,
      expected: { name: record.name, fingerprint: record.fingerprint },
      signal,
    });
    const setupMs = Date.now() - opts.started;
    const reason = `${opts.reason}; the server reads requests every ${pollSeconds} s`;
    opts.onProgress?.({ type: 'link:established', path: 'periodic', remote, reason, ms: setupMs });
    opts.onProgress?.({
      type: 'link:secured',
      peer: record.name,
      fingerprint: secured.peer.fingerprint,
      ms: setupMs,
    });
    return makeLink(secured.socket, socket, {
      path: 'periodic',
      reason,
      remote,
      setupMs,
      serverName: record.name,
      closeSession: async () => {
        const withoutRequest = withoutOwnRequest(ownRecord);
        await joined.directory
          .publish({ ...withoutRequest, lastSeen: new Date().toISOString() })
          .catch(() => {});
        await joined.session.close();
      },
    });
  } catch (err) {
    const withoutRequest = withoutOwnRequest(ownRecord);
    await joined.directory.publish(withoutRequest).catch(() => {});
    throw err;
  }
}

/** Our record with the request taken out again (the server stops sending SYN bursts for it). */
function withoutOwnRequest(record: PeerRecord): PeerRecord {
  const copy = { ...record };
  delete copy.request;
  return copy;
}
