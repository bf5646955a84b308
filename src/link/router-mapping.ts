// The link layer's use of router port mapping (src/nat/port-mapping), for both roles:
// - the file server maps its punch port for as long as it serves, and offers the mapping (in its
//   record and in every accept) while it is usable;
// - a client maps a fresh listening port for one command, found in parallel with the rendezvous
//   login and waited for only when a router has answered (never on a silent network).
// "Usable" means the router's external address is the one the rendezvous sees us at; otherwise a
// NAT above the router would drop what the mapping lets in, and that is said and the mapping removed.
import { abortError } from '../errors.js';
import { logger } from '../log.js';
import { openPublicListener, type PublicListener } from '../nat/public-listener.js';
import type { Mapping } from '../nat/port-mapping/gateway-client.js';
import { judgeMapping } from '../nat/port-mapping/judge.js';
import { startPortMapping, type PortMapping } from '../nat/port-mapping/port-mapping.js';
import { familyOf, type MappedEndpoint, type PortMappingProtocol } from '../peer.js';
import type { OnProgress, ProgressEvent } from '../progress.js';
import type { SelfAddresses } from './join-rendezvous.js';

const log = logger('portmap');

export interface PortMappingSettings {
  /** 'auto': ask the router; 'off': never. */
  mode: 'auto' | 'off';
  /** Which protocols may be used (diagnosis); default all. */
  protocols?: readonly PortMappingProtocol[];
}

/** The file server's lease: renewed every half hour while it runs. */
export const SERVER_LEASE_SECONDS = 3600;
/** A client's lease: one command; renewed if the command runs longer. */
export const CLIENT_LEASE_SECONDS = 300;
/** How long a client waits after its login for a mapping a router is already working on. */
export const CLIENT_MAPPING_WAIT_MS = 1000;

/**
 * Holds progress events back until release() (so the mapping's lines come after the login's, not
 * in the middle of "Connecting..."), then passes everything on. `quiet` events are never said.
 */
function heldProgress(
  onProgress: OnProgress | undefined,
  quiet: ProgressEvent['type'][] = [],
): { report: OnProgress; release: () => void } {
  let held: ProgressEvent[] | undefined = [];
  return {
    report: (e) => {
      if (quiet.includes(e.type)) return;
      if (held) held.push(e);
      else onProgress?.(e);
    },
    release: () => {
      const events = held ?? [];
      held = undefined;
      for (const e of events) onProgress?.(e);
    },
  };
}

export interface ServerMapping {
  mapping: PortMapping;
  /** Reports what was held back while logging in, and everything from now on. */
  releaseProgress: () => void;
}

/**
 * The router is looked for at once; the punch port is mapped only after `punchPortIsOurs` resolves
 * (the first login from it worked): a second server started on the same port by mistake must not
 * map, and then on its way out remove, the first one's mapping.
 */
export function startServerMapping(
  settings: PortMappingSettings | undefined,
  punchPort: number,
  punchPortIsOurs: Promise<void>,
  onProgress: OnProgress | undefined,
): ServerMapping | undefined {
  if (settings?.mode !== 'auto') return undefined;
  const progress = heldProgress(onProgress);
  const mapping = startPortMapping({
    internalPort: async (signal) => {
      await Promise.race([
        punchPortIsOurs,
        new Promise((_resolve, reject) => {
          if (signal.aborted) reject(abortError(signal));
          signal.addEventListener('abort', () => reject(abortError(signal)), { once: true });
        }),
      ]);
      return punchPort;
    },
    lifetimeSeconds: SERVER_LEASE_SECONDS,
    ...(settings.protocols && { protocols: settings.protocols }),
    onProgress: progress.report,
  });
  return { mapping, releaseProgress: progress.release };
}

export interface ClientMapping {
  mapping: PortMapping;
  /** The listener whose port is mapped, once a router answered. */
  listener(): PublicListener | undefined;
  /** Reports what was held back while logging in, and everything from now on. */
  releaseProgress: () => void;
  /** Closes the listener and removes the mapping. Idempotent. */
  close(): Promise<void>;
}

export function startClientMapping(
  settings: PortMappingSettings | undefined,
  onProgress: OnProgress | undefined,
): ClientMapping | undefined {
  if (settings?.mode !== 'auto') return undefined;
  let listener: PublicListener | undefined;
  // A client says nothing when no router answers: its output stays as it was.
  const progress = heldProgress(onProgress, ['portmap:unavailable']);
  const mapping = startPortMapping({
    internalPort: async (signal) => {
      listener = await openPublicListener(signal);
      return listener.port;
    },
    lifetimeSeconds: CLIENT_LEASE_SECONDS,
    ...(settings.protocols && { protocols: settings.protocols }),
    onProgress: progress.report,
  });
  const releaseProgress = progress.release;
  let closing: Promise<void> | undefined;
  return {
    mapping,
    listener: () => listener,
    releaseProgress,
    close() {
      closing ??= (async () => {
        releaseProgress();
        await mapping.close();
        listener?.close();
      })();
      return closing;
    },
  };
}

/**
 * The client's mapping once its login is done: waits only if a router is already working on it,
 * and otherwise stops the search and removes whatever cannot be offered, so nothing lingers.
 */
export async function clientMappingAfterLogin(
  router: ClientMapping,
  self: SelfAddresses,
  signal: AbortSignal,
): Promise<MappedEndpoint | undefined> {
  const current = await router.mapping.settled(CLIENT_MAPPING_WAIT_MS, signal);
  router.releaseProgress();
  const endpoint = await usableMapping(router.mapping, current, self);
  if (endpoint === undefined || router.listener() === undefined) {
    await router.close();
    return undefined;
  }
  return endpoint;
}

/**
 * The mapping to offer for this rendezvous session, or undefined. One the rendezvous contradicts is
 * rejected (said, removed). A public peer needs none.
 */
export async function usableMapping(
  mapping: PortMapping,
  current: Mapping | undefined,
  self: SelfAddresses,
): Promise<MappedEndpoint | undefined> {
  // A mapping is IPv4: judged against what the rendezvous saw of us over IPv4.
  const v4 =
    familyOf(self.external.ip) === 4
      ? { external: self.external, nat: self.nat }
      : self.other && familyOf(self.other.external.ip) === 4
        ? self.other
        : undefined;
  if (current === undefined || v4 === undefined || v4.nat === 'public') return undefined;
  const verdict = judgeMapping(current.external, v4.external);
  if (!verdict.usable) {
    log(`mapping ${current.external.ip}:${current.external.port} rejected: ${verdict.reason}`);
    await mapping.reject(verdict.reason);
    return undefined;
  }
  return { protocol: current.protocol, external: current.external };
}
