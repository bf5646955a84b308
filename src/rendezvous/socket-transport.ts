// The socket signaling transport: the file server has the rendezvous host listen on a Unix socket
// in the account's rcpp2p folder (OpenSSH streamlocal forwarding) and clients open channels to it.
// The folder is the account's (0700), so only the account reaches the socket. Relays go this way
// too. See signaling-transport.ts for the other transports.
import type {
  OnChannel,
  SignalingListener,
  SignalingPlace,
  SignalingRoute,
} from './signaling-transport.js';
import { openMessage, writeSignal } from './signaling.js';

export async function offerSocket(
  place: SignalingPlace,
  onChannel: OnChannel,
  signal: AbortSignal,
): Promise<SignalingListener> {
  const { session, directory } = place;
  const path = directory.socketPath(place.home, place.serverName);
  // OpenSSH does not replace a socket left by a crash (StreamLocalBindUnlink no by default).
  await directory.unlinkSocket(place.serverName, signal);
  session.onIncoming(onChannel);
  try {
    await session.forwardIn(path, { signal });
  } catch (err) {
    session.onIncoming(undefined);
    throw err;
  }
  let closing: Promise<void> | undefined;
  const offer = { via: 'socket' } as const;
  return {
    offer,
    // A forwarded socket lives as long as the session.
    failed: new Promise<Error>(() => {}),
    close(closeSignal) {
      closing ??= (async () => {
        session.onIncoming(undefined);
        await directory.unlinkSocket(place.serverName, closeSignal);
      })();
      return closing;
    },
  };
}

export function routeSocket(place: SignalingPlace): SignalingRoute {
  const path = place.directory.socketPath(place.home, place.serverName);
  return {
    kind: 'socket',
    relays: true,
    async open(purpose, signal) {
      const channel = await place.session.forwardOut(path, { signal });
      writeSignal(channel, openMessage(purpose));
      return channel;
    },
  };
}
