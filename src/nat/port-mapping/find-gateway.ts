// Finding a router that maps ports: every allowed protocol is asked at once, and the best answer
// wins. PCP and NAT-PMP share UDP 5351 of the default gateway (PCP first: a NAT-PMP-only router
// says so at once, and NAT-PMP is asked next); UPnP searches the LAN by SSDP at the same time.
// A gateway that speaks PCP or NAT-PMP answers in milliseconds, so an earlier UPnP answer waits a
// little (preferUdpMs) for it; a router where nothing listens on 5351 answers "port unreachable" at
// once. The caller bounds the whole search with its signal.
//
//   searching --UDP client found-------------------------------> found (PCP or NAT-PMP)
//   searching --UPnP client found, UDP failed or waited out----> found (UPnP)
//   searching --everything failed------------------------------> none (the reasons)
import { abortError } from '../../errors.js';
import type { PortMappingProtocol } from '../../peer.js';
import type { GatewayClient } from './gateway-client.js';
import { defaultGateway } from './gateway.js';
import { findNatPmp } from './natpmp-client.js';
import { findPcp, NATPMP_ONLY } from './pcp-client.js';
import { openIgd, searchIgd } from './upnp-client.js';

export interface FindGatewayOptions {
  /** Which protocols may be used (PCP, then NAT-PMP, then UPnP is the preference). */
  protocols: readonly PortMappingProtocol[];
  signal: AbortSignal;
  /** How long a UPnP answer waits for a pending PCP/NAT-PMP probe; default 250 ms. */
  preferUdpMs?: number;
  /** The default gateway; found from the routing table when not given (null: none). */
  gateway?: string | null;
  /** Called once, as soon as some router answered (the mapping is then likely to follow). */
  onAnswer?: (protocol: PortMappingProtocol) => void;
}

export type FindResult = { ok: true; client: GatewayClient } | { ok: false; reasons: string[] };

const PREFER_UDP_MS = 250;

export async function findGateway(opts: FindGatewayOptions): Promise<FindResult> {
  if (opts.signal.aborted) throw abortError(opts.signal);
  const gateway = opts.gateway === undefined ? await defaultGateway() : (opts.gateway ?? undefined);
  const stop = new AbortController();
  const signal = AbortSignal.any([opts.signal, stop.signal]);
  const reasons: string[] = [];
  let answered = false;
  const onAnswer = (protocol: PortMappingProtocol): void => {
    if (!answered) opts.onAnswer?.(protocol);
    answered = true;
  };
  const note = (err: unknown): undefined => {
    if (!signal.aborted) reasons.push((err as Error).message);
    return undefined;
  };

  const allowed = (p: PortMappingProtocol): boolean => opts.protocols.includes(p);
  const udp: Promise<GatewayClient | undefined> =
    gateway !== undefined && (allowed('pcp') || allowed('natpmp'))
      ? probeUdp(gateway, allowed, signal, onAnswer).catch(note)
      : Promise.resolve(undefined);
  if (gateway === undefined && (allowed('pcp') || allowed('natpmp'))) {
    reasons.push('no default gateway for NAT-PMP or PCP');
  }
  const upnp: Promise<GatewayClient | undefined> = allowed('upnp')
    ? searchIgd(gateway, signal)
        .then((location) => {
          onAnswer('upnp');
          return openIgd(location, signal);
        })
        .catch(note)
    : Promise.resolve(undefined);

  try {
    let udpSettled = false;
    const udpResult = udp.finally(() => {
      udpSettled = true;
    });
    const first = await Promise.race([
      udpResult.then((client) => ({ from: 'udp' as const, client })),
      upnp.then((client) => ({ from: 'upnp' as const, client })),
    ]);
    if (first.from === 'udp' && first.client) return { ok: true, client: first.client };
    if (first.from === 'upnp' && first.client) {
      if (!udpSettled) {
        const preferred = await Promise.race([
          udpResult,
          delay(opts.preferUdpMs ?? PREFER_UDP_MS, signal),
        ]);
        if (preferred) return { ok: true, client: preferred };
      }
      return { ok: true, client: first.client };
    }
    // The first to settle had nothing: the other one decides.
    const other = first.from === 'udp' ? await upnp : await udpResult;
    if (other) return { ok: true, client: other };
    if (opts.signal.aborted) throw abortError(opts.signal);
    return { ok: false, reasons };
  } finally {
    stop.abort();
  }
}

async function probeUdp(
  gateway: string,
  allowed: (p: PortMappingProtocol) => boolean,
  signal: AbortSignal,
  onAnswer: (p: PortMappingProtocol) => void,
): Promise<GatewayClient> {
  if (allowed('pcp')) {
    try {
      const client = await findPcp(gateway, signal);
      onAnswer('pcp');
      return client;
    } catch (err) {
      // Only a router that answered in NAT-PMP's version is worth a NAT-PMP request: silence or
      // "port unreachable" would be the same again.
      if (!allowed('natpmp') || (err as Error).message !== NATPMP_ONLY) throw err;
    }
  }
  const client = await findNatPmp(gateway, signal);
  onAnswer('natpmp');
  return client;
}

function delay(ms: number, signal: AbortSignal): Promise<undefined> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(undefined), ms);
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        resolve(undefined);
      },
      { once: true },
    );
  });
}
