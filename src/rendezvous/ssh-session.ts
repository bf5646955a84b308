// One SSH session to the rendezvous, opened from this peer's hole-punching port so that the
// rendezvous sees (and tells us) the NAT mapping that port gets. Runs commands, and offers or opens
// the Unix-socket channels used for signaling and relay. ssh2 does the protocol; this file adds the
// host-key check against known_hosts, clear errors, and a close that leaves no TIME_WAIT behind.
import { randomInt } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type net from 'node:net';
import type { Duplex } from 'node:stream';
import ssh2 from 'ssh2';
import type { Client, ClientChannel, ConnectConfig, ServerHostKeyAlgorithm } from 'ssh2';
import { abortError, isRcppError, RcppError } from '../errors.js';
import { logger } from '../log.js';
import { closeWithoutTimeWait, connectFrom, describeConnectError, isPortBusy } from '../net/tcp.js';
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
  keepaliveSeconds: number;
  readyTimeoutMs?: number;
  signal?: AbortSignal;
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
  stderr: string;
  code: number | null;
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
  /** Resolves when the session ends, with the error that ended it, if any. */
  readonly closed: Promise<Error | undefined>;
  private readonly client: Client;
  private closing: Promise<void> | undefined;
  private incoming: ((stream: Duplex) => void) | undefined;

  private constructor(client: Client, socket: net.Socket, closed: Promise<Error | undefined>) {
    this.client = client;
    this.localPort = socket.localPort ?? 0;
    this.localAddress = socket.localAddress ?? '';
    this.closed = closed;
    client.on('unix connection', (_info, accept) => {
      const stream = accept();
      if (this.incoming) this.incoming(stream);
      else stream.destroy();
    });
  }

  static async open(opts: RendezvousSessionOptions): Promise<RendezvousSession> {
    try {
      return await RendezvousSession.connect(opts);
    } catch (err) {
      // closes the "Connecting to rendezvous..." step; the error itself is reported by the caller
      opts.onProgress?.({
        type: 'rendezvous:failed',
        message: isRcppError(err) ? err.message : String(err),
      });
      throw err;
    }
  }

  private static async connect(opts: RendezvousSessionOptions): Promise<RendezvousSession> {
    const what = `The rendezvous host ${opts.host}:${opts.port}`;
    const started = Date.now();
    opts.onProgress?.({
      type: 'rendezvous:connecting',
      host: opts.host,
      port: opts.port,
      localPort: opts.localPort,
    });
    const socket = await openSocket(opts, what);
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

    const ready = new Promise<void>((resolve, reject) => {
      const signal = opts.signal;
      const onAbort = (): void => {
        client.destroy();
        reject(abortError(signal as AbortSignal));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      client.once('ready', () => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      });
      client.once('error', (err: Error & { level?: string }) => {
        signal?.removeEventListener('abort', onAbort);
        reject(hostKeyProblem ?? translateSshError(err, opts, what));
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
    opts.onProgress?.({ type: 'rendezvous:connected', ms: Date.now() - started });
    log(`session ready from local port ${socket.localPort ?? '?'} in ${Date.now() - started} ms`);
    return new RendezvousSession(client, socket, closed);
  }

  /** Runs one command; rejects only when the session fails, not on a non-zero exit. */
  exec(command: string, opts: { stdin?: string; timeoutMs?: number } = {}): Promise<ExecResult> {
    return new Promise((resolve, reject) => {
      const timeoutMs = opts.timeoutMs ?? 15_000;
      this.client.exec(command, (err, channel) => {
        if (err) {
          reject(
            new RcppError(
              'RENDEZVOUS_REFUSED',
              `The rendezvous host refused to run a command: ${err.message}.`,
              '',
              { cause: err },
            ),
          );
          return;
        }
        const out: Buffer[] = [];
        const errOut: Buffer[] = [];
        let code: number | null = null;
        const timer = setTimeout(() => {
          channel.destroy();
          reject(
            new RcppError(
              'RENDEZVOUS_TIMEOUT',
              'A command on the rendezvous host did not finish in time.',
            ),
          );
        }, timeoutMs);
        channel.on('data', (d: Buffer) => out.push(d));
        channel.stderr.on('data', (d: Buffer) => errOut.push(d));
        channel.on('exit', (c: number | null) => {
          code = c;
        });
        channel.on('close', () => {
          clearTimeout(timer);
          resolve({
            stdout: Buffer.concat(out).toString('utf8'),
            stderr: Buffer.concat(errOut).toString('utf8'),
            code,
          });
        });
        channel.end(opts.stdin ?? '');
      });
    });
  }

  /** Offers a Unix socket on the rendezvous host; connections to it arrive via onIncoming. */
  forwardIn(socketPath: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.client.openssh_forwardInStreamLocal(socketPath, (err) => {
        if (err) {
          reject(
            new RcppError(
              'RENDEZVOUS_REFUSED',
              `The rendezvous host refused to offer the signaling socket ${socketPath}: ${err.message}.`,
              'The rendezvous sshd needs AllowStreamLocalForwarding yes; without it rcpp2p falls back to periodic mode.',
              { cause: err },
            ),
          );
        } else resolve();
      });
    });
  }

  onIncoming(handler: (stream: Duplex) => void): void {
    this.incoming = handler;
  }

  /** Opens a channel to a Unix socket on the rendezvous host (a file server's signaling socket). */
  forwardOut(socketPath: string): Promise<ClientChannel> {
    return new Promise((resolve, reject) => {
      this.client.openssh_forwardOutStreamLocal(socketPath, (err, channel) => {
        if (err) {
          reject(Object.assign(err, { rendezvousRefused: true }));
        } else resolve(channel);
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

async function openSocket(opts: RendezvousSessionOptions, what: string): Promise<net.Socket> {
  const remote = { ip: opts.host, port: opts.port };
  const timeoutMs = opts.readyTimeoutMs ?? 20_000;
  try {
    if (opts.localPort === 0) return await connectFromFreshPort(opts, timeoutMs);
    return await connectFrom({ remote, localPort: opts.localPort, signal: opts.signal, timeoutMs });
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
        'RENDEZVOUS_UNREACHABLE',
        `Local port ${opts.localPort} is already in use for the rendezvous host.`,
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
): Promise<net.Socket> {
  const remote = { ip: opts.host, port: opts.port };
  for (let attempt = 1; ; attempt++) {
    const localPort = FRESH_PORT_MIN + randomInt(FRESH_PORT_MAX - FRESH_PORT_MIN);
    try {
      return await connectFrom({ remote, localPort, signal: opts.signal, timeoutMs });
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
