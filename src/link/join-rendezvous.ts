// The first steps both kinds of peer take: log in to the rendezvous from the punching port, learn
// the external address the NAT gave that port, and read one record, all in one round trip.
import type { Role } from '../peer.js';
import type { OnProgress } from '../progress.js';
import { RendezvousDirectory } from '../rendezvous/directory.js';
import type { PeerAddresses, PeerRecord } from '../rendezvous/peer-record.js';
import type { SshAuth } from '../rendezvous/ssh-auth.js';
import { RendezvousSession, type UnknownHostKey } from '../rendezvous/ssh-session.js';
import { classifyNat, interfaceAddresses, lanEndpoints } from '../nat/nat-kind.js';

export interface RendezvousSettings {
  host: string;
  port: number;
  user: string;
  /** rcpp2p's directory on the rendezvous account. */
  dir: string;
  knownHostsFile: string;
  keepaliveSeconds: number;
}

export interface JoinOptions {
  rendezvous: RendezvousSettings;
  auth: SshAuth;
  localPort: number;
  portFallback: 'fail' | 'any';
  signal: AbortSignal;
  onProgress?: OnProgress;
  onUnknownHostKey?: (info: UnknownHostKey) => Promise<boolean>;
}

/** Where this peer is, learned on joining: the port it punches from and what the NAT made of it. */
export interface SelfAddresses extends PeerAddresses {
  localPort: number;
}

export interface Joined {
  session: RendezvousSession;
  directory: RendezvousDirectory;
  self: SelfAddresses;
  home: string;
  record: PeerRecord | undefined;
}

export async function joinRendezvous(
  opts: JoinOptions,
  lookup: { role: Role; name: string },
): Promise<Joined> {
  const session = await RendezvousSession.open({
    host: opts.rendezvous.host,
    port: opts.rendezvous.port,
    user: opts.rendezvous.user,
    auth: opts.auth,
    knownHostsFile: opts.rendezvous.knownHostsFile,
    localPort: opts.localPort,
    portFallback: opts.portFallback,
    keepaliveSeconds: opts.rendezvous.keepaliveSeconds,
    signal: opts.signal,
    ...(opts.onProgress && { onProgress: opts.onProgress }),
    ...(opts.onUnknownHostKey && { onUnknownHostKey: opts.onUnknownHostKey }),
  });
  try {
    const directory = new RendezvousDirectory(session, opts.rendezvous.dir);
    const hello = await directory.hello(lookup.role, lookup.name, opts.signal);
    const ips = interfaceAddresses();
    const nat = classifyNat(session.localPort, hello.observed, ips);
    const self: SelfAddresses = {
      localPort: session.localPort,
      external: hello.observed,
      local: lanEndpoints(session.localPort, ips, hello.observed),
      nat,
    };
    opts.onProgress?.({
      type: 'nat:external-address',
      external: hello.observed,
      local: { ip: session.localAddress, port: session.localPort },
      natKind: nat,
    });
    return { session, directory, self, home: hello.home, record: hello.record };
  } catch (err) {
    await session.close();
    throw err;
  }
}
