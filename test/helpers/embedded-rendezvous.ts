// The embedded rendezvous on loopback for tests that attack it: two accounts (alice: key + password,
// bob: key only), a stranger's key nobody authorised, and real ssh2 clients (and files OpenSSH's
// ssh client can use) to log in, run commands and forward Unix sockets with.
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import type {
  AnyAuthMethod,
  AuthHandlerMiddleware,
  ClientChannel,
  ConnectConfig,
  ParsedKey,
} from 'ssh2';
import { renderRendezvousCommand, type RendezvousOp } from '../../src/rendezvous/commands.js';
import { SSH } from './sshd.js';
import { runCommand, type RunResult } from './processes.js';
import { formatKnownHostsLine } from '../../src/rendezvous/known-hosts.js';
import { hashPassword, saveAccounts } from '../../src/rendezvous-server/accounts.js';
import {
  startRendezvousServer,
  type RendezvousServerOptions,
  type RunningRendezvous,
} from '../../src/rendezvous-server/server.js';
import { generateSshKeyPair } from '../../src/rendezvous/ssh-key.js';

export const ALICE_PASSWORD = 'correct horse battery staple';
export type KeyName = 'alice' | 'bob' | 'stranger';

export interface LoginOptions {
  user: string;
  /** Log in with this key (public key method). */
  key?: KeyName;
  password?: string;
  /** Answer keyboard-interactive prompts with this. */
  keyboard?: string;
  /** Full control: exactly these attempts, in order (overrides key/password/keyboard). */
  authHandler?: AnyAuthMethod[] | AuthHandlerMiddleware;
  /** Connect from this loopback address (127.0.0.2 is another source than 127.0.0.1). */
  localAddress?: string;
  readyTimeoutMs?: number;
}

export interface EmbeddedLab {
  dir: string;
  stateDir: string;
  rv: RunningRendezvous;
  port: number;
  /** Every console line the rendezvous produced, in order. */
  events: string[];
  /** known_hosts for OpenSSH's ssh client. */
  knownHostsFile: string;
  /** Path of a 0600 private key file for OpenSSH's ssh client. */
  keyFile(name: KeyName): string;
  parsedKey(name: KeyName): ParsedKey;
  publicLine(name: KeyName): string;
  /** The account's home folder on the rendezvous host. */
  home(user: string): string;
  login(opts: LoginOptions): Promise<ssh2.Client>;
  /** A login that must fail: resolves with the client's error message. */
  refusedLogin(opts: LoginOptions): Promise<string>;
  /** Runs OpenSSH's ssh client against the rendezvous (batch mode, only the given key). */
  ssh(user: string, key: KeyName, args: string[]): Promise<RunResult>;
  /** Resolves with the first console line matching `pattern` (now or later). */
  waitForEvent(pattern: RegExp, timeoutMs?: number): Promise<string>;
  stop(): Promise<void>;
}

export async function startEmbeddedLab(
  extra: Partial<Omit<RendezvousServerOptions, 'stateDir' | 'host' | 'port'>> = {},
): Promise<EmbeddedLab> {
  const dir = await mkdtemp(join(tmpdir(), 'rcpp2p-rv-attack-'));
  const stateDir = join(dir, 'state');
  const pairs = {
    alice: generateSshKeyPair(),
    bob: generateSshKeyPair(),
    stranger: generateSshKeyPair(),
  };
  await saveAccounts(stateDir, [
    {
      user: 'alice',
      authorizedKeys: [pairs.alice.public],
      passwordHash: await hashPassword(ALICE_PASSWORD),
    },
    { user: 'bob', authorizedKeys: [pairs.bob.public] },
  ]);
  for (const [name, pair] of Object.entries(pairs)) {
    await writeFile(join(dir, `${name}_key`), pair.private, { mode: 0o600 });
  }
  const events: string[] = [];
  const listeners = new Set<() => void>();
  const rv = await startRendezvousServer({
    ...extra,
    stateDir,
    host: '127.0.0.1',
    port: 0,
    onEvent: (text) => {
      events.push(text);
      extra.onEvent?.(text);
      for (const l of listeners) l();
    },
  });
  const knownHostsFile = join(dir, 'known_hosts');
  await writeFile(
    knownHostsFile,
    formatKnownHostsLine('127.0.0.1', rv.port, rv.hostKey.type, rv.hostKey.blob) + '\n',
    { mode: 0o600 },
  );
  await chmod(dir, 0o700);
  const clients = new Set<ssh2.Client>();

  const parsedKey = (name: KeyName): ParsedKey => {
    const key = ssh2.utils.parseKey(pairs[name].private);
    if (key instanceof Error) throw key;
    return key;
  };

  const connect = (opts: LoginOptions): Promise<ssh2.Client> =>
    new Promise((resolve, reject) => {
      const client = new ssh2.Client();
      clients.add(client);
      client.once('ready', () => resolve(client));
      client.on('error', (err) => {
        clients.delete(client);
        reject(err);
      });
      client.once('close', () => {
        clients.delete(client);
        reject(new Error('closed before login'));
      });
      const config: ConnectConfig = {
        host: '127.0.0.1',
        port: rv.port,
        username: opts.user,
        hostVerifier: (key: Buffer) => key.equals(rv.hostKey.blob),
        readyTimeout: opts.readyTimeoutMs ?? 20_000,
        // The openssh_* forwarding calls check the server's software name unless told otherwise.
        strictVendor: false,
      };
      if (opts.localAddress) config.localAddress = opts.localAddress;
      if (opts.authHandler) config.authHandler = opts.authHandler;
      else {
        if (opts.key) config.privateKey = pairs[opts.key].private;
        if (opts.password !== undefined) config.password = opts.password;
        if (opts.keyboard !== undefined) {
          const answer = opts.keyboard;
          config.tryKeyboard = true;
          client.on('keyboard-interactive', (_n, _i, _l, prompts, finish) =>
            finish(prompts.map(() => answer)),
          );
        }
      }
      client.connect(config);
    });

  return {
    dir,
    stateDir,
    rv,
    port: rv.port,
    events,
    knownHostsFile,
    keyFile: (name) => join(dir, `${name}_key`),
    parsedKey,
    publicLine: (name) => pairs[name].public,
    home: (user) => join(stateDir, 'home', user),
    login: connect,
    ssh: (user, key, args) =>
      runCommand(SSH, [
        ...['-F', '/dev/null', '-p', String(rv.port), '-i', join(dir, `${key}_key`)],
        ...['-o', 'BatchMode=yes', '-o', 'IdentitiesOnly=yes', '-o', 'IdentityAgent=none'],
        ...['-o', 'StrictHostKeyChecking=yes', '-o', `UserKnownHostsFile=${knownHostsFile}`],
        ...['-o', 'ConnectTimeout=10', '-o', 'LogLevel=ERROR', `${user}@127.0.0.1`, ...args],
      ]),
    async refusedLogin(opts) {
      try {
        const client = await connect(opts);
        client.end();
      } catch (err) {
        return (err as Error).message;
      }
      throw new Error(`the login of ${opts.user} was accepted`);
    },
    waitForEvent(pattern, timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        const check = (): boolean => {
          const hit = events.find((e) => pattern.test(e));
          if (hit === undefined) return false;
          listeners.delete(listener);
          clearTimeout(timer);
          resolve(hit);
          return true;
        };
        const listener = (): void => void check();
        const timer = setTimeout(() => {
          listeners.delete(listener);
          reject(new Error(`no console line matched ${pattern}; got:\n${events.join('\n')}`));
        }, timeoutMs);
        listeners.add(listener);
        check();
      });
    },
    async stop() {
      for (const c of clients) c.destroy();
      await rv.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export interface ExecResult {
  stdout: string;
  stderr: string;
  code: number | undefined;
}

/** Runs one command; `stdin` is written and closed (undefined: closed at once). */
export function exec(
  client: ssh2.Client,
  command: string,
  stdin?: Buffer | string,
): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    client.exec(command, (err, channel) => {
      if (err) {
        reject(err);
        return;
      }
      collect(channel, resolve);
      channel.end(stdin);
    });
  });
}

export function collect(channel: ClientChannel, done: (r: ExecResult) => void): void {
  let stdout = '';
  let stderr = '';
  let code: number | undefined;
  channel.on('data', (d: Buffer) => (stdout += d.toString()));
  channel.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  channel.on('exit', (c: number | null) => (code = c ?? undefined));
  channel.on('close', () => done({ stdout, stderr, code }));
}

export function command(op: RendezvousOp): string {
  return renderRendezvousCommand(op);
}

/** Offers a Unix socket path (streamlocal-forward): true when the rendezvous accepted it. */
export function forwardIn(client: ssh2.Client, path: string): Promise<boolean> {
  return new Promise((resolve) =>
    client.openssh_forwardInStreamLocal(path, (err) => resolve(!err)),
  );
}

export function unforwardIn(client: ssh2.Client, path: string): Promise<boolean> {
  return new Promise((resolve) =>
    client.openssh_unforwardInStreamLocal(path, (err) => resolve(!err)),
  );
}

/** Opens a channel to an offered path (direct-streamlocal): the channel, or undefined if refused. */
export function forwardOut(client: ssh2.Client, path: string): Promise<ClientChannel | undefined> {
  return new Promise((resolve) =>
    client.openssh_forwardOutStreamLocal(path, (err, channel) =>
      resolve(err ? undefined : channel),
    ),
  );
}

/** Answers every incoming Unix-socket channel on `client` with `reply` and closes it. */
export function answerIncoming(client: ssh2.Client, reply: string): void {
  client.on('unix connection', (_info, accept) => {
    const channel = accept();
    channel.end(reply);
  });
}

/** Reads a channel to its end. */
export function readToEnd(channel: ClientChannel): Promise<string> {
  return new Promise((resolve) => {
    let text = '';
    channel.on('data', (d: Buffer) => (text += d.toString()));
    channel.on('close', () => resolve(text));
  });
}

/**
 * A bare TCP connection to the rendezvous: 'accepted' once the server sends its SSH version line,
 * 'refused' when it closes the connection without a byte. The socket stays open when accepted.
 */
export function rawConnect(
  port: number,
  localAddress = '127.0.0.1',
): Promise<{ verdict: 'accepted' | 'refused'; socket: net.Socket }> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port, localAddress });
    socket.on('error', () => {});
    socket.once('data', () => resolve({ verdict: 'accepted', socket }));
    socket.once('close', () => resolve({ verdict: 'refused', socket }));
  });
}

/** Resolves when the socket or client has closed; rejects after `timeoutMs`. */
export function closed(socket: net.Socket | ssh2.Client, timeoutMs = 20_000): Promise<void> {
  return new Promise((resolve, reject) => {
    if (socket instanceof net.Socket && socket.destroyed) {
      resolve();
      return;
    }
    const timer = setTimeout(
      () => reject(new Error(`still open after ${timeoutMs} ms`)),
      timeoutMs,
    );
    socket.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** Retries `attempt` (every 20 ms, at most `tries` times) until it returns true. */
export async function eventually(attempt: () => Promise<boolean>, tries = 250): Promise<boolean> {
  for (let i = 0; i < tries; i++) {
    if (await attempt()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return false;
}

export function randomName(): string {
  return `n${randomBytes(4).toString('hex')}`;
}
