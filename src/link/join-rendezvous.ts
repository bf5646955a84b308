// The first steps both kinds of peer take: log in to the rendezvous from the punching port, learn
// the external address the NAT gave that port, and read one record, all in one round trip.
import { lookup as dnsLookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { logger } from '../log.js';
import { formatEndpoint, type Role } from '../peer.js';
import type { OnProgress } from '../progress.js';
import { RendezvousDirectory } from '../rendezvous/directory.js';
import type { FamilyReach, PeerAddresses, PeerRecord } from '../rendezvous/peer-record.js';
import type { SshAuth } from '../rendezvous/ssh-auth.js';
import {
  RendezvousSession,
  type RendezvousSessionOptions,
  type UnknownHostKey,
} from '../rendezvous/ssh-session.js';
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
  /** How long to wait for the other family's address after our own login is done. */
  otherFamilyWaitMs?: number;
}

const log = logger('join');
/** A client waits this long for its address in the other family after the main login. */
const OTHER_FAMILY_WAIT_MS = 500;

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
  let probe: Promise<FamilyReach | undefined> = Promise.resolve(undefined);
  const probeStop = new AbortController();
  const session = await RendezvousSession.open({
    ...sessionOptions(opts),
    onConnected: (family, localPort) => {
      // Learn our address in the other family too (dual stack), while this session logs in.
      probe = probeOtherFamily(opts, lookup, family, localPort, probeStop.signal);
    },
  });
  try {
    const directory = new RendezvousDirectory(session, opts.rendezvous.dir);
    const hello = await directory.hello(lookup.role, lookup.name, opts.signal);
    const ips = interfaceAddresses();
    const nat = classifyNat(session.localPort, hello.observed, ips);
    const other = await settleWithin(probe, opts.otherFamilyWaitMs ?? OTHER_FAMILY_WAIT_MS);
    const self: SelfAddresses = {
      localPort: session.localPort,
      external: hello.observed,
      local: lanEndpoints(session.localPort, ips, hello.observed),
      nat,
      ...(other && { other }),
    };
    opts.onProgress?.({
      type: 'nat:external-address',
      external: hello.observed,
      local: { ip: session.localAddress, port: session.localPort },
      natKind: nat,
      ...(other && { other: { external: other.external, natKind: other.nat } }),
    });
    return { session, directory, self, home: hello.home, record: hello.record };
  } catch (err) {
    await session.close();
    throw err;
  } finally {
    probeStop.abort();
  }
}

function sessionOptions(opts: JoinOptions): RendezvousSessionOptions {
  return {
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
  };
}

/**
 * A second, short login over the other address family, from the same local port: $SSH_CLIENT there
 * tells our address and port in that family. Undefined when the rendezvous has no address in it,
 * we have no route there, or anything fails: a peer with no route in a family has no endpoint there.
 */
async function probeOtherFamily(
  opts: JoinOptions,
  lookup: { role: Role; name: string },
  family: 4 | 6,
  localPort: number,
  stop: AbortSignal,
): Promise<FamilyReach | undefined> {
  const other = family === 4 ? 6 : 4;
  if (!(await hasAddressIn(opts.rendezvous.host, other))) return undefined;
  const signal = AbortSignal.any([opts.signal, stop]);
  let session: RendezvousSession | undefined;
  try {
    session = await RendezvousSession.open({
      ...sessionOptions(opts),
      signal,
      family: other,
      localPort,
      portFallback: 'fail',
      onProgress: undefined,
      onUnknownHostKey: undefined,
    });
    const hello = await new RendezvousDirectory(session, opts.rendezvous.dir).hello(
      lookup.role,
      lookup.name,
      signal,
    );
    const nat = classifyNat(localPort, hello.observed, interfaceAddresses());
    log(`IPv${other} as well: ${formatEndpoint(hello.observed)} (${nat})`);
    return { external: hello.observed, nat };
  } catch (err) {
    log(`no IPv${other} address learned: ${(err as Error).message}`);
    return undefined;
  } finally {
    await session?.close();
  }
}

async function hasAddressIn(host: string, family: 4 | 6): Promise<boolean> {
  if (isIP(host) !== 0) return isIP(host) === family;
  const addresses = await dnsLookup(host, { all: true }).catch(() => []);
  return addresses.some((a) => a.family === family);
}

/** The probe's result, or undefined if it is not done `ms` after the primary login was. */
async function settleWithin<T>(
  promise: Promise<T | undefined>,
  ms: number,
): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}
