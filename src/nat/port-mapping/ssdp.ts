// SSDP (UPnP Device Architecture 1.1, section 1.3), sans-IO: the M-SEARCH that asks the LAN for an
// Internet Gateway Device, and a strict reader for the answers. An answer names the device's
// description by a LOCATION URL; anyone on the LAN can answer, so the URL must be plain http on
// the answering address itself (no name to resolve, no other host to be sent to).
import { isIPv4 } from 'node:net';
import type { Decoded } from './natpmp.js';

export const SSDP_ADDRESS = '239.255.255.250';
export const SSDP_PORT = 1900;
/** Larger answers are ignored: a real one is a few hundred bytes. */
export const MAX_SSDP_ANSWER = 2048;
const MAX_LOCATION = 256;

/** What rcpp2p searches for: gateways of both versions (a v2 device also answers for v1). */
export const IGD_SEARCH_TARGETS = [
  'urn:schemas-upnp-org:device:InternetGatewayDevice:1',
  'urn:schemas-upnp-org:device:InternetGatewayDevice:2',
] as const;

const ANSWER_TARGET =
  /^urn:schemas-upnp-org:(device:InternetGatewayDevice|device:WANConnectionDevice|service:WANIPConnection|service:WANPPPConnection):\d{1,2}$/;

/**
 * An M-SEARCH. Multicast asks every device and wants MX (they answer within MX seconds); a
 * unicast search to the gateway itself (UDA 1.1) has no MX and is answered at once.
 */
export function encodeSearch(target: string, unicastHost?: string): Buffer {
  const lines = [
    'M-SEARCH * HTTP/1.1',
    `HOST: ${unicastHost ?? SSDP_ADDRESS}:${SSDP_PORT}`,
    'MAN: "ssdp:discover"',
    ...(unicastHost === undefined ? ['MX: 1'] : []),
    `ST: ${target}`,
    '',
    '',
  ];
  return Buffer.from(lines.join('\r\n'), 'latin1');
}

export interface SearchAnswer {
  /** The description URL: http://<the answering address>:<port>/<path>. */
  location: string;
  /** The search target the device answered for. */
  target: string;
}

/** Reads one answer from `sender`; only an IGD (or its WAN service) on `sender` itself counts. */
export function decodeSearchAnswer(bytes: Buffer, sender: string): Decoded<SearchAnswer> {
  if (bytes.length > MAX_SSDP_ANSWER) return bad(`an answer of ${bytes.length} bytes`);
  const text = bytes.toString('latin1');
  const lines = text.split(/\r?\n/);
  if (!/^HTTP\/1\.[01] 200\b/i.test(lines[0] ?? '')) return bad('not an "HTTP/1.1 200" answer');
  const headers = new Map<string, string>();
  for (const line of lines.slice(1)) {
    if (line === '') break;
    const colon = line.indexOf(':');
    if (colon <= 0) return bad('a header line without a colon');
    const name = line.slice(0, colon).trim().toLowerCase();
    if (!headers.has(name)) headers.set(name, line.slice(colon + 1).trim());
  }
  const target = headers.get('st');
  if (target === undefined) return bad('no ST header');
  if (!ANSWER_TARGET.test(target)) return bad(`an answer for ${shorten(target)}`);
  const location = headers.get('location');
  if (location === undefined) return bad('no LOCATION header');
  const checked = checkLocation(location, sender);
  if (!checked.ok) return checked;
  return { ok: true, value: { location: checked.value, target } };
}

/** A description URL must be http, on the answering IPv4 address, with a port and a path. */
export function checkLocation(location: string, sender: string): Decoded<string> {
  if (location.length > MAX_LOCATION) return bad('a LOCATION longer than 256 characters');
  let url: URL;
  try {
    url = new URL(location);
  } catch {
    return bad(`LOCATION ${shorten(location)} is not a URL`);
  }
  if (url.protocol !== 'http:') return bad(`LOCATION ${shorten(location)} is not http`);
  if (url.username !== '' || url.password !== '') return bad('LOCATION carries a user name');
  if (!isIPv4(url.hostname) || url.hostname !== sender) {
    return bad(`LOCATION ${shorten(location)} is not on the answering address ${sender}`);
  }
  return { ok: true, value: url.href };
}

function shorten(text: string): string {
  const safe = JSON.stringify(text);
  return safe.length > 60 ? `${safe.slice(0, 57)}..."` : safe;
}

function bad(problem: string): { ok: false; problem: string } {
  return { ok: false, problem };
}
