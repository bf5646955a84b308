// The embedded rendezvous: an SSH server (ssh2's Server) that speaks exactly what rcpp2p needs from
// an OpenSSH account, for the demo and for people who would rather not use sshd:
//   - public-key and password login for the accounts in <state>/accounts.json
//   - rcpp2p's rendezvous commands (and nothing else: no shell, no other commands)
//   - Unix-socket forwarding by name (streamlocal-forward / direct-streamlocal), kept in memory and
//     scoped to the account: the signaling and relay channels between peers
// Records persist under <state>/home/<user>/; a client that vanishes loses its forwardings.
import { mkdir } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { join, relative, resolve } from 'node:path';
import type { Duplex } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import ssh2 from 'ssh2';
import { parseSshKey } from '../rendezvous/ssh-key.js';
import type { AuthContext, Connection, ServerChannel } from 'ssh2';
import { logger } from '../log.js';
import { parseRendezvousCommand } from '../rendezvous/commands.js';
import { SOFTWARE, VERSION } from '../version.js';
import { checkPassword, loadAccounts, type Account } from './accounts.js';
import { loadOrCreateHostKey, type HostKey } from './host-key.js';
import { runRendezvousCommand } from './run-command.js';

const log = logger('rendezvous-server');

export interface RendezvousServerOptions {
  stateDir: string;
  host: string;
  /** 0 = any free port. */
  port: number;
  /** One line per notable event (logins, refusals), for the server's console. */
  onEvent?: (text: string) => void;
}

export interface RunningRendezvous {
  host: string;
  port: number;
  hostKey: HostKey;
  close(): Promise<void>;
}

const FAILED_LOGIN_DELAY_MS = 400;

interface Forwarding {
  connection: Connection;
}

export async function startRendezvousServer(
  opts: RendezvousServerOptions,
): Promise<RunningRendezvous> {
  const hostKey = await loadOrCreateHostKey(opts.stateDir);
  const forwardings = new Map<string, Forwarding>();
  const event = (text: string): void => {
    log(text);
    opts.onEvent?.(text);
  };

  const server = new ssh2.Server(
    { hostKeys: [hostKey.privateKey], ident: `rcpp2p_${VERSION}` },
    (connection, info) => {
      const remote = { ip: info.ip.replace(/^::ffff:/, ''), port: info.port };
      let account: Account | undefined;
      connection.on('error', (err) =>
        log(`connection ${remote.ip}:${remote.port}: ${err.message}`),
      );
      connection.on('authentication', (ctx) => {
        authenticate(ctx, opts.stateDir)
          .then((found) => {
            if (found) {
              account = found;
              ctx.accept();
            } else {
              event(`refused login of ${ctx.username} from ${remote.ip} (${ctx.method})`);
              ctx.reject(['publickey', 'password', 'keyboard-interactive']);
            }
          })
          .catch(() => ctx.reject());
      });
      connection.on('ready', () => {
        const user = account as Account;
        const home = resolve(opts.stateDir, 'home', user.user);
        event(`${user.user} logged in from ${remote.ip}:${remote.port}`);
        const key = (path: string): string => `${user.user}\0${path}`;
        const insideHome = (path: string): boolean =>
          !relative(home, resolve(home, path)).startsWith('..');

        connection.on('session', (acceptSession) => {
          const session = acceptSession();
          session.on('exec', (acceptExec, _reject, { command }) => {
            const channel = acceptExec();
            runExec(channel, command, {
              home,
              remote,
              localPort: (server.address() as AddressInfo).port,
              unlinkSocket: (path) => {
                const existing = forwardings.get(key(path));
                if (existing) forwardings.delete(key(path));
              },
            }).catch((err: unknown) => {
              channel.stderr.write(`rcpp2p rendezvous: ${(err as Error).message}\n`);
              channel.exit(1);
              channel.end();
            });
          });
          session.on('shell', (_accept, reject) => reject());
          session.on('pty', (_accept, reject) => reject?.());
        });

        connection.on('request', (accept, reject, requestName, info) => {
          // ssh2's types list only tcpip-forward, but OpenSSH's streamlocal requests arrive here too.
          const name = requestName as string;
          const socketPath = (info as { socketPath?: string }).socketPath;
          if (name === 'streamlocal-forward@openssh.com' && socketPath && insideHome(socketPath)) {
            const current = forwardings.get(key(socketPath));
            if (current && current.connection !== connection) {
              reject?.();
              return;
            }
            forwardings.set(key(socketPath), { connection });
            accept?.();
            return;
          }
          if (name === 'cancel-streamlocal-forward@openssh.com' && socketPath) {
            if (forwardings.get(key(socketPath))?.connection === connection)
              forwardings.delete(key(socketPath));
            accept?.();
            return;
          }
          reject?.();
        });

        connection.on('openssh.streamlocal', (accept, reject, info) => {
          const target = forwardings.get(key(info.socketPath));
          if (!target) {
            reject();
            return;
          }
          target.connection.openssh_forwardOutStreamLocal(info.socketPath, (err, upstream) => {
            if (err) {
              reject();
              return;
            }
            splice(accept(), upstream);
          });
        });
        connection.on('tcpip', (_accept, reject) => reject());
      });
      connection.on('close', () => {
        for (const [k, f] of forwardings) if (f.connection === connection) forwardings.delete(k);
      });
    },
  );
  server.on('error', (err: Error) => log(`server error: ${err.message}`));

  await new Promise<void>((resolveListen, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolveListen();
    });
  });
  const port = (server.address() as AddressInfo).port;
  await mkdir(join(opts.stateDir, 'home'), { recursive: true, mode: 0o700 });
  event(
    `${SOFTWARE} rendezvous listening on ${opts.host}:${port}, host key ${hostKey.fingerprint}`,
  );
  let closing: Promise<void> | undefined;
  return {
    host: opts.host,
    port,
    hostKey,
    close() {
      closing ??= new Promise<void>((done) => {
        for (const f of forwardings.values()) f.connection.end();
        server.close(() => done());
      });
      return closing;
    },
  };
}

async function authenticate(ctx: AuthContext, stateDir: string): Promise<Account | undefined> {
  const account = (await loadAccounts(stateDir)).find((a) => a.user === ctx.username);
  switch (ctx.method) {
    case 'publickey': {
      if (!account) return undefined;
      for (const line of account.authorizedKeys) {
        const key = parseSshKey(line);
        if (key === undefined) continue;
        if (!key.getPublicSSH().equals(ctx.key.data)) continue;
        // Without a signature the client only asks whether the key would do; with one, check it.
        if (ctx.signature && ctx.blob && key.verify(ctx.blob, ctx.signature, ctx.hashAlgo) !== true)
          return undefined;
        return account;
      }
      return undefined;
    }
    case 'password': {
      const ok = await checkPassword(ctx.password, account?.passwordHash);
      if (!ok) await delay(FAILED_LOGIN_DELAY_MS);
      return ok ? account : undefined;
    }
    case 'keyboard-interactive': {
      const answers = await new Promise<string[]>((done) => {
        ctx.prompt([{ prompt: 'Password: ', echo: false }], (responses) => done(responses));
      });
      const ok = await checkPassword(answers[0] ?? '', account?.passwordHash);
      if (!ok) await delay(FAILED_LOGIN_DELAY_MS);
      return ok ? account : undefined;
    }
    default:
      return undefined;
  }
}

async function runExec(
  channel: ServerChannel,
  command: string,
  ctx: {
    home: string;
    remote: { ip: string; port: number };
    localPort: number;
    unlinkSocket: (path: string) => void;
  },
): Promise<void> {
  const op = parseRendezvousCommand(command);
  if (!op) {
    channel.stderr.write("This is an rcpp2p rendezvous: it runs rcpp2p's own commands only.\n");
    channel.exit(127);
    channel.end();
    return;
  }
  const result = await runRendezvousCommand(op, {
    ...ctx,
    readStdin: (limit) => readAll(channel, limit),
  });
  if (result.stdout.length > 0) channel.write(result.stdout);
  if (result.stderr) channel.stderr.write(result.stderr);
  channel.exit(result.code);
  channel.end();
}

/** All of a channel's input, or 'too-large' (and the channel closed) past `limit` bytes. */
function readAll(stream: Duplex, limit: number): Promise<Buffer | 'too-large'> {
  return new Promise((resolveRead, reject) => {
    const chunks: Buffer[] = [];
    let length = 0;
    stream.on('data', (d: Buffer) => {
      length += d.length;
      if (length > limit) {
        resolveRead('too-large');
        stream.destroy();
        return;
      }
      chunks.push(d);
    });
    stream.once('end', () => resolveRead(Buffer.concat(chunks)));
    stream.once('error', reject);
  });
}

/** Joins two channels both ways; either side closing closes the other. */
function splice(a: Duplex, b: Duplex): void {
  a.pipe(b);
  b.pipe(a);
  const closeBoth = (): void => {
    a.destroy();
    b.destroy();
  };
  a.once('close', closeBoth);
  b.once('close', closeBoth);
  a.on('error', closeBoth);
  b.on('error', closeBoth);
}
