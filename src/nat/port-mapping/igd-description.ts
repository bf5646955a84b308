// A UPnP Internet Gateway Device's description (the XML its SSDP answer points to), sans-IO: which
// WAN connection services it offers and where their control URLs are. A control URL must stay on
// the gateway that served the description: a router's XML does not get to send rcpp2p elsewhere.
//
// Preference: WANIPConnection:2 (AddAnyPortMapping picks a free port for us), then
// WANIPConnection:1, then WANPPPConnection:1 (DSL routers); the caller tries them in that order and
// keeps the first whose GetExternalIPAddress answers.
import type { Decoded } from './natpmp.js';
import { elementBlocks, elementTexts } from './xml.js';

/** A description larger than this is refused (miniupnpd's is 3 KB, big routers' about 20 KB). */
export const MAX_DESCRIPTION_BYTES = 64 * 1024;
const MAX_SERVICES = 64;
const MAX_CANDIDATES = 4;

export interface WanService {
  /** urn:schemas-upnp-org:service:WANIPConnection:1 */
  serviceType: string;
  kind: 'WANIPConnection' | 'WANPPPConnection';
  version: number;
  /** Absolute http URL on the gateway. */
  controlUrl: string;
}

const SERVICE_TYPE = /^urn:schemas-upnp-org:service:(WANIPConnection|WANPPPConnection):(\d{1,2})$/;

/** The WAN connection services of a description served from `location`, best first. */
export function parseIgdDescription(xml: string, location: string): Decoded<WanService[]> {
  if (xml.length > MAX_DESCRIPTION_BYTES) return bad('a description larger than 64 KB');
  let base: URL;
  try {
    base = new URL(location);
  } catch {
    return bad('the description URL is not a URL');
  }
  const declaredBase = elementTexts(xml, 'URLBase', 1)[0];
  let resolveFrom = base;
  if (declaredBase !== undefined && declaredBase !== '') {
    try {
      resolveFrom = new URL(declaredBase);
    } catch {
      return bad('its URLBase is not a URL');
    }
  }
  const services: WanService[] = [];
  for (const block of elementBlocks(xml, 'service', MAX_SERVICES)) {
    const serviceType = elementTexts(block, 'serviceType', 1)[0];
    const control = elementTexts(block, 'controlURL', 1)[0];
    const m = serviceType === undefined ? null : SERVICE_TYPE.exec(serviceType);
    if (!m || control === undefined || control === '' || serviceType === undefined) continue;
    let url: URL;
    try {
      url = new URL(control, resolveFrom);
    } catch {
      continue;
    }
    // Same scheme, host and port family as the description: the gateway itself.
    if (url.protocol !== 'http:' || url.hostname !== base.hostname) continue;
    if (url.username !== '' || url.password !== '') continue;
    services.push({
      serviceType,
      kind: m[1] as WanService['kind'],
      version: Number(m[2]),
      controlUrl: url.href,
    });
  }
  if (services.length === 0) return bad('no WANIPConnection or WANPPPConnection service on it');
  return { ok: true, value: rank(services).slice(0, MAX_CANDIDATES) };
}

function rank(services: WanService[]): WanService[] {
  const score = (s: WanService): number =>
    s.kind === 'WANIPConnection' ? (s.version >= 2 ? 0 : 1) : s.version >= 2 ? 2 : 3;
  const unique = services.filter(
    (s, i) =>
      services.findIndex(
        (o) => o.serviceType === s.serviceType && o.controlUrl === s.controlUrl,
      ) === i,
  );
  return unique.sort((a, b) => score(a) - score(b));
}

function bad(problem: string): { ok: false; problem: string } {
  return { ok: false, problem };
}
