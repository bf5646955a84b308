// The signaling channel between a client and a running file server: JSON lines through whichever
// transport the file server offers on the rendezvous host (signaling-transport.ts: a forwarded Unix
// socket, a forwarded TCP port on the host's loopback, or a remote command watching files).
//
// Every channel starts with an `open` line saying what it is for:
//   signal: client -> request, server -> received (at once: it is alive) -> accept | refuse,
//           client -> chosen (which path won)
//   relay:  after the open line the channel carries the TLS bytes of one session (the fallback path)
//   ping:   server -> pong, then the channel ends (is a file server answering there?)
// On a TCP port the open line carries the token from the server's record. Lines are capped and every
// field is checked before use: the channel is reachable by anyone who can log in to the rendezvous
// account (and, for a TCP port, by anyone on the rendezvous host, up to the token check).
import type { Duplex } from 'node:stream';
import { abortError, isErrorCode, RcppError, type ErrorCode } from '../errors.js';
import { NAT_KINDS, PATH_KINDS, PEER_NAME, type Endpoint, type PathKind } from '../peer.js';
import { displaySafe } from '../protocol/text.js';
import { fields, type Complaint, type Fields } from '../validate.js';
import {
  familyReach,
  FINGERPRINT,
  readMapped,
  SEND_PROOF,
  SIGNALING_TOKEN,
  type PeerAddresses,
} from './peer-record.js';

export const SIGNAL_VERSION = 1;
export const MAX_SIGNAL_LINE = 16 * 1024;
const MAX_LOCAL_ENDPOINTS = 16;
const MAX_REFUSAL_CHARS = 500;

/** What each side tells the other in request/accept: its addresses, and what it listens on. */
export interface SignalAddresses extends PeerAddresses {
  /** A listening endpoint, offered by a peer that is publicly reachable. */
  listen?: Endpoint;
  /** A port listening on every local address, offered to a peer behind the same router. */
  lanPort?: number;
}

/** The first line of every channel; `token` only on a TCP port. */
export type OpenMessage = { t: 'open'; v: number; token?: string } & (
  { kind: 'signal' } | { kind: 'relay'; session: string } | { kind: 'ping' }
);

/** What a channel is opened for: the open line without version and token. */
export type ChannelPurpose =
  { kind: 'signal' } | { kind: 'relay'; session: string } | { kind: 'ping' };

/** The open line for a purpose, as every transport writes it. */
export function openMessage(purpose: ChannelPurpose, token?: string): OpenMessage {
  return { t: 'open', v: SIGNAL_VERSION, ...purpose, ...(token !== undefined && { token }) };
}

export type SignalMessage =
  | OpenMessage
  | ({
      t: 'request';
      session: string;
      client: string;
      introduction?: Introduction;
    } & SignalAddresses)
  | { t: 'received'; session: string }
  | ({ t: 'accept'; session: string; server: string } & SignalAddresses)
  | { t: 'refuse'; code: ErrorCode; message: string; hint: string }
  | { t: 'chosen'; session: string; path: PathKind }
  | { t: 'pong' };

const SESSION_ID = /^[0-9a-f]{32}$/;

/**
 * What a receiver of a one-shot send brings instead of a client record (it need not be registered):
 * its certificate fingerprint, and proof that it knows the code (secure/send-code.ts).
 */
export interface Introduction {
  fingerprint: string;
  proof: string;
}

const complain: Complaint = (where, problem) =>
  new RcppError('PROTOCOL_ERROR', `Bad signaling message (${where}): ${problem}.`);

export function encodeSignal(message: SignalMessage): string {
  return JSON.stringify(message) + '\n';
}

function addresses(f: Fields): SignalAddresses {
  return {
    external: f.endpoint('external'),
    local: f.endpoints('local', MAX_LOCAL_ENDPOINTS),
    nat: f.oneOf('nat', NAT_KINDS),
    ...(f.has('listen') && { listen: f.endpoint('listen') }),
    ...(f.has('lanPort') && { lanPort: f.int('lanPort', 1, 65535) }),
    ...(f.has('other') && { other: familyReach(f.obj('other')) }),
    ...(f.has('mapped') && { mapped: readMapped(f) }),
  };
}

/** Validates one decoded line; throws PROTOCOL_ERROR with what was wrong. */
export function parseSignal(line: string): SignalMessage {
  let raw: unknown;
  try {
    raw = JSON.parse(line);
  } catch {
    throw complain('a line', 'not JSON');
  }
  const f = fields(raw, 'a line', complain);
  const t = f.oneOf('t', [
    'open',
    'request',
    'received',
    'accept',
    'refuse',
    'chosen',
    'pong',
  ] as const);
  const session = (): string => f.str('session', 32, SESSION_ID, 'is not a session id');
  switch (t) {
    case 'open': {
      const v = f.int('v', 0, 0xffff);
      if (v !== SIGNAL_VERSION) {
        throw new RcppError(
          'VERSION_MISMATCH',
          `The other peer speaks signaling version ${v}, this rcpp2p speaks ${SIGNAL_VERSION}.`,
          'Install the same rcpp2p version on both peers.',
        );
      }
      const kind = f.oneOf('kind', ['signal', 'relay', 'ping'] as const);
      const token = f.has('token')
        ? { token: f.str('token', 32, SIGNALING_TOKEN, 'is not a signaling token') }
        : {};
      return kind === 'relay'
        ? { t, v, kind, session: session(), ...token }
        : { t, v, kind, ...token };
    }
    case 'request': {
      const request = {
        t,
        session: session(),
        client: f.str('client', 64, PEER_NAME),
        ...addresses(f),
      };
      if (!f.has('introduction')) return request;
      const i = f.obj('introduction');
      return {
        ...request,
        introduction: {
          fingerprint: i.str('fingerprint', 64, FINGERPRINT, 'is not a certificate fingerprint'),
          proof: i.str('proof', 64, SEND_PROOF, 'is not a send proof'),
        },
      };
    }
    case 'received':
      return { t, session: session() };
    case 'accept':
      return { t, session: session(), server: f.str('server', 64, PEER_NAME), ...addresses(f) };
    case 'refuse': {
      // A refusal is shown to the user: keep its words, but only as display-safe text.
      const code = f.raw('code');
      const text = (key: string, fallback: string): string => {
        const value = f.raw(key);
        return typeof value === 'string' ? displaySafe(value, MAX_REFUSAL_CHARS) : fallback;
      };
      return {
        t,
        code: isErrorCode(code) ? code : 'PEER_REFUSED',
        message: text('message', 'Refused.'),
        hint: text('hint', ''),
      };
    }
    case 'chosen':
      return { t, session: session(), path: f.oneOf('path', PATH_KINDS) };
    case 'pong':
      return { t };
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
