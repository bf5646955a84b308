// The signaling channel between a client and a running file server: JSON lines through a Unix
// socket that the file server offers on the rendezvous host (ssh2 openssh_forwardInStreamLocal).
//
// Every channel starts with an `open` line saying what it is for:
//   signal: client -> request, server -> accept | refuse, client -> chosen (which path won)
//   relay:  after the open line the channel carries the TLS bytes of one session (the fallback path)
// Lines are capped and every field is checked before use: the socket is reachable by anyone who can
// log in to the rendezvous account.
import type { Duplex } from 'node:stream';
import { abortError, isErrorCode, RcppError, type ErrorCode } from '../errors.js';
import type { Endpoint, PathKind } from '../progress.js';
import { isPeerName } from './names.js';
import { isEndpoint, type NatKind } from './peer-record.js';

export const SIGNAL_VERSION = 1;
export const MAX_SIGNAL_LINE = 16 * 1024;

export interface PeerAddresses {
  external: Endpoint;
  local: Endpoint[];
  nat: NatKind;
  /** A listening endpoint, offered by a peer that is publicly reachable. */
  listen?: Endpoint;
  /** A port listening on every local address, offered to a peer behind the same router. */
  lanPort?: number;
}

export type SignalMessage =
  | { t: 'open'; v: number; kind: 'signal' }
  | { t: 'open'; v: number; kind: 'relay'; session: string }
  | ({ t: 'request'; session: string; client: string } & PeerAddresses)
  | ({ t: 'accept'; session: string; server: string } & PeerAddresses)
  | { t: 'refuse'; code: ErrorCode; message: string; hint: string }
  | { t: 'chosen'; session: string; path: PathKind };

const SESSION_ID = /^[0-9a-f]{32}$/;
const PATHS: PathKind[] = ['lan', 'direct', 'reversed', 'periodic', 'relay'];

export function encodeSignal(message: SignalMessage): string {
  return JSON.stringify(message) + '\n';
}

function protocolError(what: string): RcppError {
  return new RcppError('PROTOCOL_ERROR', `Bad signaling message: ${what}.`);
}

function checkAddresses(m: Partial<PeerAddresses>): void {
  if (!isEndpoint(m.external)) throw protocolError('external address');
  if (!Array.isArray(m.local) || m.local.length > 16 || !m.local.every(isEndpoint)) {
    throw protocolError('local addresses');
  }
  if (m.nat !== 'public' && m.nat !== 'port-preserving' && m.nat !== 'port-changing') {
    throw protocolError('NAT kind');
  }
  if (m.listen !== undefined && !isEndpoint(m.listen)) throw protocolError('listen address');
  if (m.lanPort !== undefined && !isPort(m.lanPort)) throw protocolError('LAN port');
}

function isPort(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 1 && value <= 65535;
}

/** Validates one decoded line; throws PROTOCOL_ERROR with what was wrong. */
export function parseSignal(line: string): SignalMessage {
  let raw: unknown;
  try {
    raw = JSON.parse(line);
  } catch {
    throw protocolError('not JSON');
  }
  const m = raw as Record<string, unknown>;
  if (typeof m !== 'object' || m === null || Array.isArray(m)) throw protocolError('not an object');
  switch (m['t']) {
    case 'open':
      if (typeof m['v'] !== 'number') throw protocolError('version');
      if (m['v'] !== SIGNAL_VERSION) {
        throw new RcppError(
          'VERSION_MISMATCH',
          `The other peer speaks signaling version ${String(m['v'])}, this rcpp2p speaks ${SIGNAL_VERSION}.`,
          'Install the same rcpp2p version on both peers.',
        );
      }
      if (m['kind'] === 'signal') return { t: 'open', v: m['v'], kind: 'signal' };
      if (
        m['kind'] === 'relay' &&
        typeof m['session'] === 'string' &&
        SESSION_ID.test(m['session'])
      ) {
        return { t: 'open', v: m['v'], kind: 'relay', session: m['session'] };
      }
      throw protocolError('channel kind');
    case 'request':
    case 'accept': {
      const who = m['t'] === 'request' ? 'client' : 'server';
      if (typeof m['session'] !== 'string' || !SESSION_ID.test(m['session']))
        throw protocolError('session id');
      if (typeof m[who] !== 'string' || !isPeerName(m[who])) throw protocolError(`${who} name`);
      checkAddresses(m);
      const addresses: PeerAddresses = {
        external: m['external'] as Endpoint,
        local: m['local'] as Endpoint[],
        nat: m['nat'] as NatKind,
        ...(m['listen'] !== undefined && { listen: m['listen'] as Endpoint }),
        ...(m['lanPort'] !== undefined && { lanPort: m['lanPort'] as number }),
      };
      return m['t'] === 'request'
        ? { t: 'request', session: m['session'], client: m['client'] as string, ...addresses }
        : { t: 'accept', session: m['session'], server: m['server'] as string, ...addresses };
    }
    case 'refuse': {
      const code = isErrorCode(m['code']) ? m['code'] : 'PEER_REFUSED';
      const message = typeof m['message'] === 'string' ? m['message'].slice(0, 500) : 'Refused.';
      const hint = typeof m['hint'] === 'string' ? m['hint'].slice(0, 500) : '';
      return { t: 'refuse', code, message, hint };
    }
    case 'chosen':
      if (typeof m['session'] !== 'string' || !SESSION_ID.test(m['session']))
        throw protocolError('session id');
      if (!PATHS.includes(m['path'] as PathKind)) throw protocolError('path');
      return { t: 'chosen', session: m['session'], path: m['path'] as PathKind };
    default:
      throw protocolError(`unknown type ${JSON.stringify(m['t'])?.slice(0, 40) ?? ''}`);
  }
}

/**
 * Reads one newline-terminated line from a stream without consuming anything after it: bytes that
 * follow the newline are pushed back (unshift), because on a relay channel they are TLS.
 */
export function readLine(
  stream: Duplex,
  opts: { signal?: AbortSignal; maxBytes?: number } = {},
): Promise<string> {
  const maxBytes = opts.maxBytes ?? MAX_SIGNAL_LINE;
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let length = 0;
    const signal = opts.signal;
    const onAbort = (): void => finish(abortError(signal as AbortSignal));
    const onEnd = (): void =>
      finish(new RcppError('CONNECTION_LOST', 'The other peer closed the signaling channel.'));
    const onError = (err: Error): void =>
      finish(
        new RcppError('CONNECTION_LOST', `The signaling channel failed: ${err.message}.`, '', {
          cause: err,
        }),
      );
    const onReadable = (): void => {
      let chunk: Buffer | null;
      while ((chunk = stream.read() as Buffer | null) !== null) {
        const newline = chunk.indexOf(0x0a);
        if (newline === -1) {
          chunks.push(chunk);
          length += chunk.length;
          if (length > maxBytes) {
            finish(
              new RcppError(
                'FRAME_TOO_LARGE',
                `A signaling line was longer than ${maxBytes} bytes.`,
              ),
            );
            return;
          }
          continue;
        }
        chunks.push(chunk.subarray(0, newline));
        length += newline;
        const rest = chunk.subarray(newline + 1);
        if (length > maxBytes) {
          finish(
            new RcppError('FRAME_TOO_LARGE', `A signaling line was longer than ${maxBytes} bytes.`),
          );
          return;
        }
        finish(undefined, Buffer.concat(chunks).toString('utf8'), rest);
        return;
      }
    };
    function finish(err?: Error, line?: string, rest?: Buffer): void {
      signal?.removeEventListener('abort', onAbort);
      stream.off('readable', onReadable);
      stream.off('end', onEnd);
      stream.off('close', onEnd);
      stream.off('error', onError);
      if (rest && rest.length > 0) stream.unshift(rest);
      if (err) reject(err);
      else resolve(line ?? '');
    }
    if (signal?.aborted) {
      reject(abortError(signal));
      return;
    }
    signal?.addEventListener('abort', onAbort, { once: true });
    stream.on('readable', onReadable);
    stream.once('end', onEnd);
    stream.once('close', onEnd);
    stream.once('error', onError);
    onReadable();
  });
}

export async function readSignal(
  stream: Duplex,
  opts: { signal?: AbortSignal } = {},
): Promise<SignalMessage> {
  return parseSignal(await readLine(stream, opts));
}

export function writeSignal(stream: Duplex, message: SignalMessage): void {
  stream.write(encodeSignal(message));
}
