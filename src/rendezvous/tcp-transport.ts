// The TCP signaling transport, for hosts that forward TCP but not Unix sockets (Dropbear, OpenSSH
// with AllowStreamLocalForwarding no): the file server has the host listen on a free port of its
// own loopback (tcpip-forward 127.0.0.1:0) and publishes the port in its record; clients open
// channels to it (direct-tcpip). Relays go this way too.
//
// Unlike a socket in the account's 0700 folder, a loopback port is reachable by every local user
// of the rendezvous host. So the record also carries a random token (the record is the account's
// alone), every channel's open line must name it, and a channel that does not is closed before
// anything reads it: a local user can open a connection and have it closed, nothing more.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { Duplex } from 'node:stream';
import { deadline } from '../deadline.js';
import { RcppError } from '../errors.js';
import { logger } from '../log.js';
import type {
  OnChannel,
  SignalingListener,
  SignalingPlace,
  SignalingRoute,
} from './signaling-transport.js';
import { openMessage, parseSignal, readLine, writeSignal } from './signaling.js';

const log = logger('signaling');

/** How long a new channel may take to name the token. */
const TOKEN_TIMEOUT_MS = 8000;

export async function offerTcp(
  place: SignalingPlace,
  onChannel: OnChannel,
  signal: AbortSignal,
): Promise<SignalingListener> {
  const { session } = place;
  const token = randomBytes(16).toString('hex');
  session.onIncoming((channel) => {
    admit(channel, token, signal).then(
      (admitted) => {
        if (admitted) onChannel(channel);
        else channel.destroy();
      },
      () => channel.destroy(),
    );
  });
  let port: number;
  try {
    port = await session.forwardInTcp({ signal });
  } catch (err) {
    session.onIncoming(undefined);
    throw err;
  }
  const offer = { via: 'tcp', port, token } as const;
  return {
    offer,
    // A forwarded port lives as long as the session.
    failed: new Promise<Error>(() => {}),
    close() {
      // Refuse whatever still arrives; the host closes the port with the session.
      session.onIncoming(undefined);
      return Promise.resolve();
    },
  };
}

/**
 * Reads the channel's first line and checks its token; on success the line is pushed back so the
 * signaling reader sees the channel as it came.
 */
async function admit(channel: Duplex, token: string, signal: AbortSignal): Promise<boolean> {
  const wait = deadline(
    signal,
    TOKEN_TIMEOUT_MS,
    () => new RcppError('TIMEOUT', 'A channel to the signaling port named no token in time.'),
  );
  try {
    const line = await readLine(channel, { signal: wait.signal });
    const open = parseSignal(line);
    if (open.t !== 'open' || open.token === undefined || !sameToken(open.token, token)) {
      log('closed a channel to the signaling port that did not name the token');
      return false;
    }
    channel.unshift(Buffer.from(line + '\n', 'utf8'));
    return true;
  } catch (err) {
    log(`closed a channel to the signaling port: ${(err as Error).message}`);
    return false;
  } finally {
    wait.clear();
  }
}

function sameToken(given: string, expected: string): boolean {
  const a = Buffer.from(given, 'utf8');
  const b = Buffer.from(expected, 'utf8');
  return a.length === b.length && timingSafeEqual(a, b);
}

export function routeTcp(
  place: SignalingPlace,
  offer: { port: number; token: string },
): SignalingRoute {
  return {
    kind: 'tcp',
    relays: true,
    async open(purpose, signal) {
      const channel = await place.session.forwardOutTcp(offer.port, { signal });
      writeSignal(channel, openMessage(purpose, offer.token));
      return channel;
    },
  };
}
