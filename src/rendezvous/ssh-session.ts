// One SSH session to the rendezvous, opened from this peer's hole-punching port so that the
// rendezvous sees (and tells us) the NAT mapping that port gets. Runs commands (to completion, or
// long-running as a stream), and offers or opens the channels used for signaling and relay: Unix
// sockets and TCP ports on the rendezvous host's loopback. ssh2 does the protocol; this file adds the
// host-key check against known_hosts, clear errors, and a close that leaves no TIME_WAIT behind.
import { randomInt } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { setTimeout as delay } from 'node:timers/promises';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import ssh2 from 'ssh2';
import type { Client, ClientChannel, ConnectConfig, ServerHostKeyAlgorithm } from 'ssh2';
import { deadline } from '../deadline.js';
import { abortError, isRcppError, RcppError } from '../errors.js';
import { logger } from '../log.js';
import { hostPort } from '../peer.js';
import { Slots } from '../slots.js';
import {
  closeWithoutTimeWait,
  connectFrom,
  describeConnectError,
  isPortBusy,
  socketFamily,
} from '../net/tcp.js';
import type { OnProgress } from '../progress.js';
import {
  checkHostKey,
  hostKeyAlgorithmsFor,
  keyTypeOfBlob,
  knownTypesFor,
  sshFingerprint,
} from './known-hosts.js';
import type { SshAuth } from './ssh-auth.js';

// Ports a client punches from (IANA's dynamic range), one fresh port per command.
const FRESH_PORT_MIN = 49152;
const FRESH_PORT_MAX = 65535;

const log = logger('ssh');

export interface RendezvousSessionOptions {
  host: string;
  port: number;
  user: string;
  auth: SshAuth;
  knownHostsFile: string;
  /** The local port to connect from (the port this peer punches from). */
  localPort: number;
  /** When that port is taken: a file server fails, a client may take any other port. */
  portFallback: 'fail' | 'any';
  /** Connect over this address family only (the host may be a name with A and AAAA records). */
  family?: 4 | 6;
  /** Called once the TCP connection stands, before the SSH handshake (its family and local port). */
  onConnected?: (family: 4 | 6, localPort: number) => void;
  keepaliveSeconds: number;
  readyTimeoutMs?: number;
  signal: AbortSignal;
  onProgress?: OnProgress;
  /** Called with an unknown host key; resolve true to trust it for this session (wizard only). */
  onUnknownHostKey?: (info: UnknownHostKey) => Promise<boolean>;
}

export interface UnknownHostKey {
  host: string;
  port: number;
  keyType: string;
  keyBlob: Buffer;
  fingerprint: string;
  /** Key types known_hosts already holds for this host (it was known with another key type). */
  knownTypes: string[];
}

export interface ExecResult {
  stdout: string;
  /** The same output as bytes (binary output such as an index file). */
  stdoutBytes: Buffer;
  stderr: string;
  code: number | null;
}

export interface ExecOptions {
  signal: AbortSignal;
  stdin?: string | Buffer;
  timeoutMs?: number;
  /** Output past this many bytes closes the channel and fails the command (untrusted output). */
  maxStdoutBytes?: number;
}

/** How one channel request reports back to openChannel. */
interface ChannelRequest<T> {
  /** Hands over an opened channel; false (and the channel closed) when the request was aborted. */
  adopt(channel: Duplex): boolean;
  /** Resolves the request; false when it was already aborted. */
  succeed(value: T): boolean;
  fail(err: Error): void;
}

const EXEC_TIMEOUT_MS = 15_000;
/** Of a command's error output, this much is kept (its last line is shown in a sentence). */
const MAX_STDERR_BYTES = 64 * 1024;
/**
 * Below OpenSSH's default MaxSessions (10), leaving room for forwarded channels' bookkeeping and
 * for the one long-running command of the exec signaling transport (execStream, not queued here).
 */
const MAX_CONCURRENT_EXECS = 8;
/** Where TCP forwarding listens and connects on the rendezvous host: its loopback only. */
const LOOPBACK = '127.0.0.1';
/** How long a login keeps retrying connections the host dropped before the SSH handshake. */
const PREAUTH_RETRY_MS = 20_000;

/** Jittered, doubling pauses: 100-300 ms, 200-600 ms, ... at most 2-6 s. */
function preauthRetryDelay(attempt: number): number {
  const base = Math.min(100 * 2 ** (attempt - 1), 2000);
  return base + randomInt(base * 2);
}

/** A connection closed or reset before the SSH handshake: the host shed load (MaxStartups). */
function isDroppedBeforeHandshake(err: unknown): boolean {
  return err instanceof Error && droppedEarly.has(err);
}
const droppedEarly = new WeakSet<Error>();

/** True for the error of a command whose output went past its maxStdoutBytes. */
export function isOutputTooLarge(err: unknown): boolean {
  return err instanceof Error && outputTooLarge.has(err);
}
const outputTooLarge = new WeakSet<Error>();

/** A close or reset of an open TCP connection (not a refused or unreachable one). */
function isConnectionDrop(err: Error & { code?: string }): boolean {
  return (
    err.code === 'ECONNRESET' ||
    err.code === 'EPIPE' ||
    /lost before handshake|ECONNRESET|socket hang up|Connection lost/i.test(err.message)
  );
}

function droppedBeforeHandshake(err: Error, what: string): RcppError {
  const dropped = new RcppError(
    'RENDEZVOUS_UNREACHABLE',
    `${what} closed the connection before the SSH handshake, again and again.`,
    'It may be overloaded (OpenSSH drops new logins while many are in progress: MaxStartups); try again in a minute.',
    { cause: err },
  );
  droppedEarly.add(dropped);
  return dropped;
}

const DEFAULT_HOST_KEY_ORDER = [
  'ssh-ed25519',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'rsa-sha2-512',
  'rsa-sha2-256',
];

export class RendezvousSession {
  readonly localPort: number;
  readonly localAddress: string;
  /** The address family this session reached the rendezvous over. */
  readonly family: 4 | 6;
  /** Resolves when the session ends, with the error that ended it, if any. */
  readonly closed: Promise<Error | undefined>;
  private readonly client: Client;
  private closing: Promise<void> | undefined;
  private incoming: ((stream: Duplex) => void) | undefined;
  /** The TCP port this session had the host forward to it, if any. */
  private tcpPort: number | undefined;
  /** OpenSSH refuses an 11th session channel on one connection (MaxSessions 10): queue instead. */
  private readonly execSlots = new Slots(MAX_CONCURRENT_EXECS);

  private constructor(client: Client, socket: Socket, closed: Promise<Error | undefined>) {
    this.client = client;
    this.localPort = socket.localPort ?? 0;
    this.localAddress = socket.localAddress ?? '';
    this.family = socketFamily(socket);
    this.closed = closed;
    client.on('unix connection', (_info, accept) => {
      const stream = accept();
      if (this.incoming) this.incoming(stream);
      else stream.destroy();
    });
    client.on('tcp connection', (info, accept, reject) => {
      // ssh2 only reports connections to ports we asked for; this session asks for one at most.
      if (!this.incoming || info.destPort !== this.tcpPort) {
        reject();
        return;
      }
      this.incoming(accept());
    });
  }

  /**
   * Logs in, retrying (with jittered back-off, within PREAUTH_RETRY_MS) when the host drops the
   * connection before the SSH handshake: OpenSSH's MaxStartups drops new connections at random
   * while more than 10 are unauthenticated, which a burst of peers sharing one account meets.
   */
  static async open(opts: RendezvousSessionOptions): Promise<RendezvousSession> {
    const started = Date.now();
    opts.onProgress?.({
      type: 'rendezvous:connecting',
      host: opts.host,
      port: opts.port,
      localPort: opts.localPort,
    });
    for (let attempt = 1; ; attempt++) {
      try {
        const session = await RendezvousSession.connect(opts);
        opts.onProgress?.({ type: 'rendezvous:connected', ms: Date.now() - started });
        return session;
      } catch (err) {
        const pauseMs = preauthRetryDelay(attempt);
        if (
          isDroppedBeforeHandshake(err) &&
          !opts.signal.aborted &&
          Date.now() - started + pauseMs < PREAUTH_RETRY_MS
        ) {
          log(`dropped before the SSH handshake (attempt ${attempt}); retrying in ${pauseMs} ms`);
          await delay(pauseMs, undefined, { signal: opts.signal }).catch(() => {});
          if (!opts.signal.aborted) continue;
        }
        const final = opts.signal.aborted ? abortError(opts.signal) : err;
        // closes the "Connecting to rendezvous..." step; the error itself is reported by the caller
        opts.onProgress?.({
          type: 'rendezvous:failed',
          message: isRcppError(final) ? final.message : String(final),
        });
        throw final;
      }
    }
  }

  private static async connect(opts: RendezvousSessionOptions): Promise<RendezvousSession> {
    const what = `The rendezvous host ${hostPort(opts.host, opts.port)}`;
    const started = Date.now();
    const socket = await openSocket(opts, what);
    opts.onConnected?.(socketFamily(socket), socket.localPort ?? 0);
    const knownHostsText = await readKnownHosts(opts.knownHostsFile);
    let hostKeyProblem: RcppError | undefined;
    const client = new ssh2.Client();
    closeWithoutTimeWait(socket);

    const hostVerifier = (blob: Buffer, verify: (ok: boolean) => void): void => {
      verifyHostKey(opts, knownHostsText, blob)
        .then((problem) => {
          hostKeyProblem = problem;
          verify(problem === undefined);
        })
        .catch((err: unknown) => {
          hostKeyProblem = isRcppError(err)
            ? err
            : new RcppError('INTERNAL', `Checking the host key failed: ${String(err)}`);
          verify(false);
        });
    };

    const knownTypes = hostKeyAlgorithmsFor(knownTypesFor(knownHostsText, opts.host, opts.port));
    const config: ConnectConfig = {
      sock: socket,
      username: opts.user,
      hostVerifier,
      readyTimeout: opts.readyTimeoutMs ?? 20_000,
      keepaliveInterval: opts.keepaliveSeconds * 1000,
      keepaliveCountMax: 3,
      // The Unix-socket forwarding we use is an OpenSSH extension that the embedded rendezvous
      // speaks too; do not refuse it for a server that is not named OpenSSH.
      strictVendor: false,
      algorithms: {
        // Like OpenSSH: ask first for the key types known_hosts has for this host.
        serverHostKey: [
          ...knownTypes.filter((t) => DEFAULT_HOST_KEY_ORDER.includes(t)),
          ...DEFAULT_HOST_KEY_ORDER.filter((t) => !knownTypes.includes(t)),
        ] as ServerHostKeyAlgorithm[],
      },
      ...authConfig(opts.auth),
    };

    let handshook = false;
    client.once('handshake', () => {
      handshook = true;
    });
    const ready = new Promise<void>((resolve, reject) => {
      const signal = opts.signal;
      const onAbort = (): void => {
        client.destroy();
        reject(abortError(signal));
      };
      signal.addEventListener('abort', onAbort, { once: true });
      client.once('ready', () => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      });
      client.once('error', (err: Error & { level?: string; code?: string }) => {
        signal.removeEventListener('abort', onAbort);
        if (hostKeyProblem) reject(hostKeyProblem);
        else if (!handshook && isConnectionDrop(err)) reject(droppedBeforeHandshake(err, what));
        else reject(translateSshError(err, opts, what));
      });
    });
    const closed = new Promise<Error | undefined>((resolve) => {
      let lastError: Error | undefined;
      client.on('error', (err) => {
        lastError = err;
      });
      client.once('close', () => resolve(lastError));
    });
    if (opts.auth.method === 'password') {
      const password = opts.auth.password;
      client.on('keyboard-interactive', (_name, _instructions, _lang, prompts, finish) => {
        finish(prompts.map(() => password));
      });
    }
    client.connect(config);
    await ready;
    log(`session ready from local port ${socket.localPort ?? '?'} in ${Date.now() - started} ms`);
    return new RendezvousSession(client, socket, closed);
  }

  /**
   * Runs one command; rejects only when the session fails, the command outlives `timeoutMs`, or the
   * signal aborts (the channel is then closed at once), not on a non-zero exit.
   */
  async exec(command: string, opts: ExecOptions): Promise<ExecResult> {
    const release = await this.execSlots.take(opts.signal);
    try {
      return await this.execNow(command, opts);
    } finally {
      release();
    }
  }

  private execNow(command: string, opts: ExecOptions): Promise<ExecResult> {
    const limit = deadline(
      opts.signal,
      opts.timeoutMs ?? EXEC_TIMEOUT_MS,
      () =>
        new RcppError(
          'RENDEZVOUS_TIMEOUT',
          'A command on the rendezvous host did not finish in time.',
          'Check that the rendezvous host is not overloaded, and try again.',
        ),
    );
    return this.openChannel<ExecResult>(limit.signal, (done) => {
      this.client.exec(command, (err, channel) => {
        if (err) {
          done.fail(commandRefused(err));
          return;
        }
        if (!done.adopt(channel)) return;
        const out: Buffer[] = [];
        const errOut: Buffer[] = [];
        let outBytes = 0;
        let errBytes = 0;
        let code: number | null = null;
        channel.on('data', (d: Buffer) => {
          outBytes += d.length;
          if (opts.maxStdoutBytes !== undefined && outBytes > opts.maxStdoutBytes) {
            channel.destroy();
            const tooMuch = new RcppError(
              'RENDEZVOUS_REFUSED',
              `A command on the rendezvous host printed more than ${opts.maxStdoutBytes} bytes, more than rcpp2p reads.`,
            );
            outputTooLarge.add(tooMuch);
            done.fail(tooMuch);
            return;
          }
          out.push(d);
        });
        channel.stderr.on('data', (d: Buffer) => {
          // Only the last lines are ever shown; keep a bounded amount of it.
          errBytes += d.length;
          if (errBytes <= MAX_STDERR_BYTES) errOut.push(d);
        });
        channel.on('exit', (c: number | null) => {
          code = c;
        });
        channel.on('close', () => {
          const stdoutBytes = Buffer.concat(out);
          done.succeed({
            stdout: stdoutBytes.toString('utf8'),
            stdoutBytes,
            stderr: Buffer.concat(errOut).toString('utf8'),
            code,
          });
        });
        channel.end(opts.stdin ?? '');
      });
    }).finally(() => limit.clear());
  }

  /** Offers a Unix socket on the rendezvous host; connections to it arrive via onIncoming. */
  forwardIn(socketPath: string, opts: { signal: AbortSignal }): Promise<void> {
    return this.openChannel<void>(opts.signal, (done) => {
      this.client.openssh_forwardInStreamLocal(socketPath, (err) => {
        if (err) {
          done.fail(
            new RcppError(
              'RENDEZVOUS_REFUSED',
              `The rendezvous host refused to offer the signaling socket ${socketPath}: ${err.message}.`,
              'The rendezvous sshd needs AllowStreamLocalForwarding yes; without it rcpp2p falls back to periodic mode.',
              { cause: err },
            ),
          );
        } else if (!done.succeed(undefined)) {
          // Aborted while the host said yes: take the offer back.
          this.client.openssh_unforwardInStreamLocal(socketPath, () => {});
        }
      });
    });
  }

  /**
   * Has the host listen on a free TCP port on its own loopback (tcpip-forward 127.0.0.1:0) and
   * forward connections to it here; resolves with the port. Connections arrive via onIncoming.
   */
  forwardInTcp(opts: { signal: AbortSignal }): Promise<number> {
    return this.openChannel<number>(opts.signal, (done) => {
      this.client.forwardIn(LOOPBACK, 0, (err, port) => {
        if (err) {
          done.fail(
            new RcppError(
              'RENDEZVOUS_REFUSED',
              `The rendezvous host refused to forward a TCP port on its loopback: ${err.message}.`,
              'The rendezvous sshd needs AllowTcpForwarding yes (or remote) for this transport.',
              { cause: err },
            ),
          );
        } else if (done.succeed(port)) {
          this.tcpPort = port;
        } else {
          this.client.unforwardIn(LOOPBACK, port, () => {});
        }
      });
    });
  }

  /**
   * Connections to our socket (forwardIn) or port (forwardInTcp) on the host; one handler, and
   * without one (undefined) every connection is refused.
   */
  onIncoming(handler: ((stream: Duplex) => void) | undefined): void {
    this.incoming = handler;
  }

  /** Opens a channel to a TCP port on the rendezvous host's loopback (direct-tcpip). */
  forwardOutTcp(port: number, opts: { signal: AbortSignal }): Promise<ClientChannel> {
    return this.openChannel<ClientChannel>(opts.signal, (done) => {
      this.client.forwardOut(LOOPBACK, 0, LOOPBACK, port, (err, channel) => {
        if (err) done.fail(forwardError(err, `port ${port} on its loopback`));
        else if (done.adopt(channel)) done.succeed(channel);
      });
    });
  }

  /**
   * Starts a long-running command and hands back its channel: stdin is what we write, stdout what
   * we read (stderr is dropped). Closing the channel closes the command's stdin. On abort the
   * channel is closed, whether it is already open or arrives later.
   */
  execStream(command: string, opts: { signal: AbortSignal }): Promise<ClientChannel> {
    return this.openChannel<ClientChannel>(opts.signal, (done) => {
      this.client.exec(command, (err, channel) => {
        if (err) {
          done.fail(commandRefused(err));
          return;
        }
        if (!done.adopt(channel)) return;
        channel.stderr.resume();
        done.succeed(channel);
      });
    });
  }

  /**
   * Opens a channel to a Unix socket on the rendezvous host (a file server's signaling socket). On
   * abort the promise rejects at once; a channel the host opens after that is closed on arrival.
   */
  forwardOut(socketPath: string, opts: { signal: AbortSignal }): Promise<ClientChannel> {
    return this.openChannel<ClientChannel>(opts.signal, (done) => {
      this.client.openssh_forwardOutStreamLocal(socketPath, (err, channel) => {
        if (err) done.fail(forwardError(err, socketPath));
        else if (done.adopt(channel)) done.succeed(channel);
      });
    });
  }

  /**
   * The one shape of every channel request: `start` asks ssh2 and reports through `done`. An abort
   * rejects at once and closes the channel, whether it is already open or arrives later.
   */
  private openChannel<T>(
    signal: AbortSignal,
    start: (done: ChannelRequest<T>) => void,
  ): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (signal.aborted) {
        reject(abortError(signal));
        return;
      }
      let state: 'waiting' | 'settled' = 'waiting';
      let channel: Duplex | undefined;
      const settle = (): boolean => {
        if (state === 'settled') return false;
        state = 'settled';
        signal.removeEventListener('abort', onAbort);
        return true;
      };
      const onAbort = (): void => {
        if (!settle()) return;
        channel?.destroy();
        reject(abortError(signal));
      };
      signal.addEventListener('abort', onAbort, { once: true });
      start({
        adopt(c) {
          if (state === 'settled') {
            c.destroy();
            return false;
          }
          channel = c;
          return true;
        },
        succeed(value) {
          if (!settle()) return false;
          resolve(value);
          return true;
        },
        fail(err) {
          if (settle()) reject(err);
        },
      });
    });
  }

  /** Ends the session; idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.client.end();
      await Promise.race([this.closed, new Promise((r) => setTimeout(r, 1500).unref())]);
      this.client.destroy();
    })();
    return this.closing;
  }
}

async function openSocket(opts: RendezvousSessionOptions, what: string): Promise<Socket> {
  const remote = { ip: opts.host, port: opts.port };
  const timeoutMs = opts.readyTimeoutMs ?? 20_000;
  try {
    if (opts.localPort === 0) return await connectFromFreshPort(opts, timeoutMs);
    return await connectFrom({
      remote,
      localPort: opts.localPort,
      signal: opts.signal,
      timeoutMs,
      ...(opts.family !== undefined && { family: opts.family }),
    });
  } catch (err) {
    if (isPortBusy(err) && opts.portFallback === 'any') {
      log(`local port ${opts.localPort} busy, taking another port`);
      try {
        return await connectFromFreshPort(opts, timeoutMs);
      } catch (err2) {
        throw describeConnectError(err2, what) ?? err2;
      }
    }
    if (isPortBusy(err)) {
      throw new RcppError(
        'PORT_IN_USE',
        `Local port ${opts.localPort} is already in use on this machine.`,
        'Is another rcpp2p file server running with this configuration? Stop it, or pick another port with rcpp2p --configure.',
        { cause: err },
      );
    }
    if (isRcppError(err)) throw err;
    throw describeConnectError(err, what) ?? err;
  }
}

/**
 * Connects from a random high port bound explicitly. (Letting the kernel pick at connect() time
 * would not set SO_REUSEADDR on the port, and the hole punch could not share it afterwards.)
 */
async function connectFromFreshPort(
  opts: RendezvousSessionOptions,
  timeoutMs: number,
): Promise<Socket> {
  const remote = { ip: opts.host, port: opts.port };
  for (let attempt = 1; ; attempt++) {
    const localPort = FRESH_PORT_MIN + randomInt(FRESH_PORT_MAX - FRESH_PORT_MIN);
    try {
      return await connectFrom({
        remote,
        localPort,
        signal: opts.signal,
        timeoutMs,
        ...(opts.family !== undefined && { family: opts.family }),
      });
    } catch (err) {
      if (!isPortBusy(err) || attempt >= 8) throw err;
    }
  }
}

async function readKnownHosts(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return '';
    throw new RcppError('HOST_KEY_UNKNOWN', `Cannot read ${file}: ${(err as Error).message}.`, '', {
      cause: err,
    });
  }
}

async function verifyHostKey(
  opts: RendezvousSessionOptions,
  knownHostsText: string,
  blob: Buffer,
): Promise<RcppError | undefined> {
  const keyType = keyTypeOfBlob(blob);
  const fingerprint = sshFingerprint(blob);
  const check = checkHostKey(knownHostsText, opts.host, opts.port, { type: keyType, blob });
  const hostLabel = opts.port === 22 ? opts.host : `[${opts.host}]:${opts.port}`;
  switch (check.status) {
    case 'match':
      return undefined;
    case 'revoked':
      return new RcppError(
        'HOST_KEY_REVOKED',
        `The host key of ${hostLabel} (${keyType} ${fingerprint}) is marked @revoked in ${opts.knownHostsFile}.`,
        'Do not connect; ask the rendezvous host owner for its new key.',
      );
    case 'mismatch':
      return new RcppError(
        'HOST_KEY_MISMATCH',
        `WARNING: the host key of ${hostLabel} has changed (now ${keyType} ${fingerprint}, ` +
          `${opts.knownHostsFile} line ${check.line} has ${check.knownFingerprint}). Someone could be ` +
          'intercepting the connection, or the host was reinstalled.',
        `If you know the key changed, remove the old line with: ssh-keygen -R "${hostLabel}" -f ${opts.knownHostsFile}`,
      );
    case 'unknown': {
      const info: UnknownHostKey = {
        host: opts.host,
        port: opts.port,
        keyType,
        keyBlob: blob,
        fingerprint,
        knownTypes: check.knownTypes,
      };
      if (opts.onUnknownHostKey && (await opts.onUnknownHostKey(info))) return undefined;
      return new RcppError(
        'HOST_KEY_UNKNOWN',
        `The host key of ${hostLabel} (${keyType} ${fingerprint}) is not in ${opts.knownHostsFile}.`,
        `Run rcpp2p --configure to check and trust it, or connect once with: ssh -p ${opts.port} ${opts.user}@${opts.host}`,
      );
    }
  }
}

function authConfig(auth: SshAuth): Partial<ConnectConfig> {
  switch (auth.method) {
    case 'key':
      return {
        privateKey: auth.privateKey,
        ...(auth.passphrase !== undefined && { passphrase: auth.passphrase }),
      };
    case 'agent':
      return { agent: auth.agentSocket };
    case 'password':
      return { password: auth.password, tryKeyboard: true };
  }
}

function translateSshError(
  err: Error & { level?: string },
  opts: RendezvousSessionOptions,
  what: string,
): RcppError {
  log(`ssh error level=${err.level ?? '?'}: ${err.message}`);
  switch (err.level) {
    case 'client-authentication':
      return new RcppError(
        'AUTH_FAILED',
        `${what} refused the login for user ${opts.user} (${describeAuth(opts.auth)}).`,
        opts.auth.method === 'password'
          ? 'Check the user name and password.'
          : 'Check that the public key is in ~/.ssh/authorized_keys of that account.',
        { cause: err },
      );
    case 'client-timeout':
      return new RcppError(
        'RENDEZVOUS_TIMEOUT',
        `${what} did not complete the SSH handshake in time.`,
        'Check that it runs an SSH server on that port.',
        { cause: err },
      );
    case 'client-socket':
      return (
        describeConnectError(err, what) ??
        new RcppError(
          'RENDEZVOUS_UNREACHABLE',
          `${what} closed the connection: ${err.message}.`,
          '',
          {
            cause: err,
          },
        )
      );
    default:
      return new RcppError(
        'RENDEZVOUS_REFUSED',
        `The SSH connection to ${what.replace(/^The /, 'the ')} failed: ${err.message}.`,
        '',
        { cause: err },
      );
  }
}

/** Channel-open failure reasons (RFC 4254 section 5.1) that mean "not here", not "nobody listens". */
const OPEN_ADMINISTRATIVELY_PROHIBITED = 1;
const OPEN_UNKNOWN_CHANNEL_TYPE = 3;

function isProhibitedReason(err: { reason?: number; message?: string } | undefined): boolean {
  return (
    err?.reason === OPEN_ADMINISTRATIVELY_PROHIBITED ||
    err?.reason === OPEN_UNKNOWN_CHANNEL_TYPE ||
    /prohibited/i.test(err?.message ?? '')
  );
}

/**
 * True when the rendezvous host does not allow this forwarding at all (not: nobody listens).
 * OpenSSH says so for TCP (DisableForwarding, PermitOpen), Dropbear for Unix sockets (it has
 * none); OpenSSH's refusal of a Unix socket (AllowStreamLocalForwarding no) looks like "nobody
 * listens".
 */
export function isForwardingProhibited(err: unknown): boolean {
  return isProhibitedReason((err as { cause?: { reason?: number; message?: string } }).cause);
}

function forwardError(err: Error & { reason?: number }, target: string): RcppError {
  const why = isProhibitedReason(err)
    ? 'the host does not allow this forwarding'
    : 'nothing answers on it';
  return new RcppError(
    'RENDEZVOUS_REFUSED',
    `The rendezvous host could not open ${target}: ${why}.`,
    '',
    { cause: err },
  );
}

function describeAuth(auth: SshAuth): string {
  switch (auth.method) {
    case 'key':
      return `key ${auth.path}`;
    case 'agent':
      return 'keys from ssh-agent';
    case 'password':
      return 'password';
  }
}

/** The host would not start a command (a channel or exec request refused). */
function commandRefused(err: Error): RcppError {
  return new RcppError(
    'RENDEZVOUS_REFUSED',
    `The rendezvous host refused to run a command: ${err.message}.`,
    '',
    { cause: err },
  );
}
