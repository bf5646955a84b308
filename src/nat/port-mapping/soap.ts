// UPnP control (SOAP 1.1 over HTTP POST), sans-IO: the request for one action of a WAN connection
// service, and a strict reader for the answer: the action's output arguments, or the UPnP error
// (code and description) of a fault. The router's words are shown to the user only after
// displaySafe.
import { displaySafe } from '../../protocol/text.js';
import type { Decoded } from './natpmp.js';
import { elementBlocks, elementTexts, escapeXml } from './xml.js';

/** Larger answers are refused (a real one is under 1 KB). */
export const MAX_SOAP_ANSWER = 16 * 1024;
const MAX_ARGUMENTS = 32;

/** The UPnP errors rcpp2p acts on (UPnP IGD WANIPConnection:2 section 2.5). */
export const UPNP_ERRORS = {
  invalidAction: 401,
  invalidArgs: 402,
  actionFailed: 501,
  notAuthorized: 606,
  noSuchEntry: 714,
  conflict: 718,
  samePortRequired: 724,
  onlyPermanentLeases: 725,
  noPortMapsAvailable: 728,
} as const;

export interface SoapRequest {
  /** The SOAPAction header value, quoted as the spec shows it. */
  soapAction: string;
  body: string;
}

export function encodeSoapRequest(
  serviceType: string,
  action: string,
  args: readonly (readonly [string, string | number])[],
): SoapRequest {
  const inner = args.map(([k, v]) => `<${k}>${escapeXml(String(v))}</${k}>`).join('');
  return {
    soapAction: `"${serviceType}#${action}"`,
    body:
      '<?xml version="1.0"?>\r\n' +
      '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" ' +
      's:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/">' +
      `<s:Body><u:${action} xmlns:u="${serviceType}">${inner}</u:${action}></s:Body>` +
      '</s:Envelope>\r\n',
  };
}

export type SoapAnswer =
  | { ok: true; values: Map<string, string> }
  | { ok: false; errorCode: number | undefined; description: string };

/** Reads the answer to `action` (HTTP status and body). */
export function decodeSoapAnswer(
  status: number,
  body: string,
  action: string,
): Decoded<SoapAnswer> {
  if (body.length > MAX_SOAP_ANSWER) return bad('an answer larger than 16 KB');
  if (status === 200) {
    const block =
      elementBlocks(body, `${action}Response`, 1)[0] ??
      (emptyElement(body, `${action}Response`) ? '' : undefined);
    if (block === undefined) return bad(`a 200 answer without ${action}Response`);
    const values = new Map<string, string>();
    const pattern = /<([A-Za-z][A-Za-z0-9_]{0,63})(?:\s[^<>]*)?>([^<]*)<\/\1\s*>/g;
    for (const m of block.matchAll(pattern)) {
      const key = m[1] ?? '';
      const text = elementTexts(m[0], key, 1)[0];
      if (text === undefined) return bad(`a malformed ${key}`);
      if (!values.has(key)) values.set(key, text);
      if (values.size >= MAX_ARGUMENTS) break;
    }
    return { ok: true, value: { ok: true, values } };
  }
  if (status === 500) {
    const code = elementTexts(body, 'errorCode', 1)[0];
    const text = elementTexts(body, 'errorDescription', 1)[0] ?? '';
    const errorCode = code !== undefined && /^\d{1,4}$/.test(code) ? Number(code) : undefined;
    if (errorCode === undefined && !/Fault/.test(body)) return bad('a 500 answer that is no fault');
    return { ok: true, value: { ok: false, errorCode, description: displaySafe(text, 80) } };
  }
  return bad(`HTTP status ${status}`);
}

/** `<u:NameResponse xmlns:u="..."/>`: an action without output arguments (AddPortMapping). */
function emptyElement(xml: string, name: string): boolean {
  return new RegExp(`<(?:[A-Za-z_][\\w.-]*:)?${name}(?:\\s[^<>]*)?/>`).test(xml);
}

function bad(problem: string): { ok: false; problem: string } {
  return { ok: false, problem };
}
