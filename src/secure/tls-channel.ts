// TLS 1.3 with certificates on both sides over an already connected stream: a punched TCP socket, a
// reversed or LAN connection, or an SSH channel relayed through the rendezvous (any Duplex). The
// file server is the TLS server, the client the TLS client, whichever side dialled.
//
// Trust is a pinned fingerprint, not a CA: OpenSSL's own chain and hostname checks are switched off
// (rejectUnauthorized: false, checkServerIdentity: () => undefined) because every certificate is
// self-signed, and each side compares the peer certificate's fingerprint with the one in the peer's
// rendezvous record itself.
//
// In TLS 1.3 the client finishes its handshake before the server has seen the client certificate,
// so each side ends the set-up with a one-byte verdict on the other's certificate:
//
//   client                                        server
//   ---- ClientHello ------------------------------->
//   <--- ServerHello .. Certificate .. Finished -----
//   [check the server fingerprint]
//   ---- Certificate .. Finished, verdict ---------->  [check the client fingerprint]
//   <------------------------------------ verdict ---
//
// ACCEPT (0x01) lets the other side go on; REFUSE (0x00) is followed by a close. A side resolves only
// when its own check passed AND it read the peer's ACCEPT, so both sides report
// PEER_IDENTITY_MISMATCH on a wrong fingerprint, and no application byte crosses before that.
import tls from 'node:tls';
import type { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import { abortError, RcppError } from '../errors.js';
import type { Role } from '../peer.js';
import { fingerprintOf, type Identity } from './identity.js';

export interface PeerIdentity {
  name: string;
  fingerprint: string;
}

export interface SecureOptions {
  identity: Identity;
  /** Who the peer must be: its name and the fingerprint from its rendezvous record. */
  expected: PeerIdentity;
  signal?: AbortSignal;
  /** Deadline for the handshake and the verdicts; default 10 s. */
  timeoutMs?: number;
}

export interface SecureChannel {
  socket: tls.TLSSocket;
  peer: PeerIdentity;
}

export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;

// AES-128-GCM first: with AES instructions it is the fastest here (../shared/PERF-FACTS.md).
// Record size stays at the TLS maximum (16 KiB, Node's default), which bulk 1 MiB writes need.
const CIPHERS = 'TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256';
const ACCEPT = 0x01;
const REFUSE = 0x00;
const REFUSE_GRACE_MS = 1000;

type Listener = (...args: unknown[]) => void;

/**
 *   handshaking --peer certificate matches, ACCEPT sent--> verdict-sent --peer's ACCEPT--> ended (ok)
 *   handshaking --mismatch (REFUSE sent) / error / abort / timeout--> ended (failed)
 *   verdict-sent --peer's REFUSE / error / abort / timeout--> ended (failed)
 */
type HandshakeState =
  { s: 'handshaking' } | { s: 'verdict-sent'; fingerprint: string } | { s: 'ended' };

export function secureAsClient(stream: Duplex, opts: SecureOptions): Promise<SecureChannel> {
  return handshake('client', stream, opts, () =>
    tls.connect({
      socket: stream,
      key: opts.identity.keyPem,
      cert: opts.identity.certPem,
      minVersion: 'TLSv1.3',
      maxVersion: 'TLSv1.3',
      ciphers: CIPHERS,
      rejectUnauthorized: false, // we pin the fingerprint ourselves, see above
      checkServerIdentity: () => undefined,
    }),
  );
}

export function secureAsServer(stream: Duplex, opts: SecureOptions): Promise<SecureChannel> {
  return handshake('server', stream, opts, () => {
    const secureContext = tls.createSecureContext({
      key: opts.identity.keyPem,
      cert: opts.identity.certPem,
      minVersion: 'TLSv1.3',
      maxVersion: 'TLSv1.3',
      ciphers: CIPHERS,
      honorCipherOrder: true,
    });
    return new tls.TLSSocket(stream, {
      isServer: true,
      secureContext,
      requestCert: true,
      rejectUnauthorized: false, // we pin the fingerprint ourselves, see above
    });
  });
}

function handshake(
  role: Role,
  stream: Duplex,
  opts: SecureOptions,
  start: () => tls.TLSSocket,
): Promise<SecureChannel> {
  const { expected, signal, identity } = opts;
  const who = `${role === 'client' ? 'the file server' : 'the client'} ${expected.name}`;
  const Who = who.charAt(0).toUpperCase() + who.slice(1);
  if (signal?.aborted) {
    stream.destroy();
    return Promise.reject(abortError(signal));
  }
  return new Promise<SecureChannel>((resolve, reject) => {
    const socket = start();
    const listeners: [EventEmitter, string, Listener][] = [];
    const listen = (emitter: EventEmitter, event: string, fn: Listener): void => {
      emitter.on(event, fn);
      listeners.push([emitter, event, fn]);
    };
    let state: HandshakeState = { s: 'handshaking' };

    // The one place that ends the set-up, for success and for every failure.
    const finish = (err?: RcppError, refusePeer = false): void => {
      if (state.s === 'ended') return;
      const verdictSent = state.s === 'verdict-sent' ? state : undefined;
      state = { s: 'ended' };
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      for (const [emitter, event, fn] of listeners) emitter.off(event, fn);
      if (!err && verdictSent) {
        resolve({ socket, peer: { name: expected.name, fingerprint: verdictSent.fingerprint } });
        return;
      }
      err ??= new RcppError('INTERNAL', 'The secure handshake ended before the verdicts.');
      // errors after giving up (a reset while closing) must not crash the process
      socket.on('error', () => {});
      stream.on('error', () => {});
      if (refusePeer && !socket.destroyed) {
        socket.end(Buffer.from([REFUSE]));
        const grace = setTimeout(() => socket.destroy(), REFUSE_GRACE_MS);
        grace.unref();
        socket.once('close', () => {
          clearTimeout(grace);
          stream.destroy();
        });
      } else {
        socket.destroy();
        stream.destroy();
      }
      reject(err);
    };

    const timeoutMs = opts.timeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS;
    const timer = setTimeout(() => {
      finish(
        new RcppError(
          'TIMEOUT',
          `${Who} did not complete the secure handshake within ${formatSeconds(timeoutMs)}.`,
          'The connection may have been cut, or the other side is not rcpp2p.',
        ),
      );
    }, timeoutMs);
    const onAbort = (): void => finish(abortError(signal as AbortSignal));
    signal?.addEventListener('abort', onAbort, { once: true });

    const onHandshakeDone = (): void => {
      if (state.s !== 'handshaking') return;
      const check = checkPeer(socket, role, expected, Who);
      if ('error' in check) {
        finish(check.error, true);
        return;
      }
      state = { s: 'verdict-sent', fingerprint: check.fingerprint };
      socket.write(Buffer.from([ACCEPT]));
      listen(socket, 'readable', readVerdict);
      readVerdict();
    };
    const readVerdict = (): void => {
      if (state.s !== 'verdict-sent') return;
      const byte = socket.read(1) as Buffer | null;
      if (byte === null) return;
      if (byte[0] === ACCEPT) {
        finish();
      } else if (byte[0] === REFUSE) {
        finish(
          new RcppError(
            'PEER_IDENTITY_MISMATCH',
            `${Who} refused this peer's certificate (${identity.fingerprint}): it expected another fingerprint.`,
            role === 'client'
              ? `The server holds an outdated record of this client: run rcpp2p --addclient again for ${identity.name}, then retry.`
              : `The client holds an outdated record of this server: restart this file server (${identity.name}) so it publishes its record again.`,
          ),
        );
      } else {
        finish(
          new RcppError(
            'PROTOCOL_ERROR',
            `${Who} sent an unexpected byte after the secure handshake.`,
            'Both peers need the same rcpp2p version.',
          ),
        );
      }
    };
    const onLost = (): void => {
      finish(
        new RcppError(
          'CONNECTION_LOST',
          `${Who} closed the connection during the secure handshake.`,
          state.s === 'verdict-sent'
            ? 'It may have refused this peer.'
            : 'The other side may not be rcpp2p.',
        ),
      );
    };
    // The raw stream can close before its last bytes were looked at (they are decrypted
    // synchronously, so a verdict already sits in the TLS socket's buffer): read it first.
    const onStreamClose = (): void => {
      readVerdict();
      onLost();
    };
    const onError = (err: unknown): void => finish(describeError(err as Error, who));

    listen(socket, role === 'client' ? 'secureConnect' : 'secure', onHandshakeDone);
    listen(socket, 'error', onError);
    listen(socket, 'end', onLost);
    listen(socket, 'close', onLost);
    listen(stream, 'error', onError);
    listen(stream, 'close', onStreamClose);
  });
}

function checkPeer(
  socket: tls.TLSSocket,
  role: Role,
  expected: PeerIdentity,
  Who: string,
): { fingerprint: string } | { error: RcppError } {
  const cert = socket.getPeerX509Certificate();
  if (!cert) {
    return {
      error: new RcppError(
        'PEER_IDENTITY_MISMATCH',
        `${Who} presented no certificate, so it cannot be the peer named in its record.`,
        'Someone other than an rcpp2p peer answered; check that you reached the right peer.',
      ),
    };
  }
  const actual = fingerprintOf(cert.raw);
  if (actual === expected.fingerprint) return { fingerprint: actual };
  return {
    error: new RcppError(
      'PEER_IDENTITY_MISMATCH',
      `${Who} presented certificate ${actual}, but its rendezvous record says ${expected.fingerprint}.`,
      role === 'client'
        ? `Either its record changed (it made a new identity) or someone else answered. Restart the file server ${expected.name} so it publishes its record again, then retry.`
        : `Either its record changed (it made a new identity) or someone else answered. Run rcpp2p --addclient again for ${expected.name}, then retry.`,
    ),
  };
}

function describeError(err: Error & { code?: string }, who: string): RcppError {
  // OpenSSL errors have ERR_SSL_* codes; resets and hang-ups have errno codes (ECONNRESET, EPIPE)
  const code = err.code ?? '';
  const tlsFailure =
    code.startsWith('ERR_SSL') || (code === '' && /SSL routines|alert/i.test(err.message));
  if (tlsFailure) {
    return new RcppError(
      'PROTOCOL_ERROR',
      `The secure handshake with ${who} failed (${err.message}).`,
      'The other side may not be rcpp2p, or runs a version without TLS 1.3.',
      { cause: err },
    );
  }
  return new RcppError(
    'CONNECTION_LOST',
    `The connection to ${who} broke during the secure handshake (${err.message}).`,
    '',
    { cause: err },
  );
}

function formatSeconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${(ms / 1000).toFixed(1)} s`;
}
