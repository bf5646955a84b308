// Where the home router is: the gateway of the default IPv4 route. On Linux that is read from
// /proc/net/route (no command to run); elsewhere rcpp2p does not know it, and only UPnP (which finds
// the router by multicast) is tried.
import { readFile } from 'node:fs/promises';

const RTF_UP = 0x1;
const RTF_GATEWAY = 0x2;
/** /proc/net/route is a few lines per interface; more than this is not read. */
const MAX_ROUTE_TABLE = 64 * 1024;

/**
 * The gateway of the default route with the lowest metric, from /proc/net/route's text
 * (addresses in hex, in the host's byte order: little-endian on every machine Node runs on here).
 */
export function parseDefaultGateway(table: string): string | undefined {
  let best: { ip: string; metric: number } | undefined;
  for (const line of table.slice(0, MAX_ROUTE_TABLE).split('\n').slice(1)) {
    const cols = line.trim().split(/\s+/);
    if (cols.length < 8) continue;
    const [, destination, gateway, flagsHex, , , metricText, mask] = cols;
    if (destination !== '00000000' || mask !== '00000000') continue;
    const flags = Number.parseInt(flagsHex ?? '', 16);
    if (!(flags & RTF_UP) || !(flags & RTF_GATEWAY)) continue;
    const ip = hexToIpv4(gateway ?? '');
    const metric = Number(metricText);
    if (ip === undefined || ip === '0.0.0.0' || !Number.isInteger(metric)) continue;
    if (best === undefined || metric < best.metric) best = { ip, metric };
  }
  return best?.ip;
}

function hexToIpv4(hex: string): string | undefined {
  if (!/^[0-9A-Fa-f]{8}$/.test(hex)) return undefined;
  const n = Number.parseInt(hex, 16);
  return [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, n >>> 24].join('.');
}

/** This machine's default IPv4 gateway, or undefined (no default route, or not Linux). */
export async function defaultGateway(): Promise<string | undefined> {
  if (process.platform !== 'linux') return undefined;
  const table = await readFile('/proc/net/route', 'utf8').catch(() => '');
  return parseDefaultGateway(table);
}
