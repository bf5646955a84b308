// What an SSH server lets a client do, measured with ssh2 as rcpp2p uses it. Run as its own process
// inside a lab host namespace:
//   node dist/test/helpers/ssh-probe.js --host rv --port 22 --user root --key FILE
//        --host-key 'ssh-ed25519 AAAA...' --dir RENDEZVOUS_DIR [--unix-target PATH] [--echo-port N]
// It logs in, then tries in turn, printing one JSON line per step and a final {"event":"result"}:
//   exec            `echo "$SSH_CLIENT"` (an exec request running a shell command)
//   hello           rcpp2p's own hello command (src/rendezvous/commands.ts), $SSH_CLIENT and $HOME
//   streamlocal     streamlocal-forward@openssh.com on <dir>/sockets/probe-PID.sock, then a
//                   direct-streamlocal channel to that same socket: the bytes must come back to us
//                   through the server (rcpp2p's signaling pattern, NAT-FACTS item 7)
//   directStreamlocal  direct-streamlocal to --unix-target, a Unix listener that is not a forward
//   tcpipForward    tcpip-forward on 127.0.0.1 port 0: prints {"event":"tcpip-forward","port":N}
//                   and waits up to 10 s for someone on the server to connect to 127.0.0.1:N
//   directTcpip     direct-tcpip to 127.0.0.1:--echo-port on the server; reads one line
// Each capability is {"ok":true,...} or {"ok":false,"error":"..."}. Exits 0 unless login failed.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';
import type { Duplex } from 'node:stream';
import type * as Ssh2 from 'ssh2';
import type { Client } from 'ssh2';
import {
  parseHelloReply,
  renderRendezvousCommand,
  socketPath,
} from '../../src/rendezvous/commands.js';

// ssh2 is CommonJS; require() sidesteps named-export detection
const require = createRequire(import.meta.url);
const ssh2 = require('ssh2') as typeof Ssh2;

export type Capability = { ok: true; detail?: string } | { ok: false; error: string };

export interface SshProbeResult {
  event: 'result';
  banner: string;
  exec: Capability;
  hello: Capability;
  streamlocal: Capability;
  directStreamlocal: Capability;
  tcpipForward: Capability;
  directTcpip: Capability;
}

const STEP_MS = 10_000;

function emit(obj: object): void {
  process.stdout.write(`${JSON.stringify(obj)}\n`);
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Runs `step`, bounded by STEP_MS; any error becomes {ok:false}. */
async function attempt(step: () => Promise<string | undefined>): Promise<Capability> {
  let timer: NodeJS.Timeout | undefined;
  try {
    const detail = await Promise.race([
      step(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${STEP_MS} ms`)), STEP_MS);
      }),
    ]);
    return detail === undefined ? { ok: true } : { ok: true, detail };
  } catch (err) {
    return { ok: false, error: message(err) };
  } finally {
    clearTimeout(timer);
  }
}

function execText(client: Client, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    client.exec(command, (err, stream) => {
      if (err) return reject(err);
      let out = '';
      let errText = '';
      let code: number | undefined;
      stream.on('data', (d: Buffer) => (out += d.toString('utf8')));
      stream.stderr.on('data', (d: Buffer) => (errText += d.toString('utf8')));
      stream.on('exit', (c: number | undefined) => (code = c));
      stream.on('close', () => {
        if (code === 0) resolve(out);
        else reject(new Error(`exit ${String(code)}: ${errText.trim() || out.trim()}`));
      });
    });
  });
}

/** Reads one line from a stream (after writing `send`, if given). */
function readLine(stream: Duplex, send?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = '';
    stream.on('data', (d: Buffer) => {
      buf += d.toString('utf8');
      const i = buf.indexOf('\n');
      if (i >= 0) resolve(buf.slice(0, i));
    });
    stream.once('error', reject);
    stream.once('close', () => reject(new Error(`closed before a line (got "${buf}")`)));
    if (send !== undefined) stream.write(send);
  });
}

function promisify<T>(
  f: (cb: (err: Error | null | undefined, value: T) => void) => void,
): Promise<T> {
  return new Promise((resolve, reject) => f((err, v) => (err ? reject(err) : resolve(v))));
}

async function main(): Promise<void> {
  const { values: v } = parseArgs({
    options: {
      host: { type: 'string' },
      port: { type: 'string', default: '22' },
      user: { type: 'string', default: 'root' },
      key: { type: 'string' },
      'host-key': { type: 'string' },
      dir: { type: 'string' },
      'unix-target': { type: 'string' },
      'echo-port': { type: 'string' },
    },
  });
  if (!v.host || !v.key || !v['host-key'] || !v.dir) {
    throw new Error('--host, --key, --host-key and --dir are required');
  }
  const dir = v.dir;
  const keyFile = v.key;
  const expected = Buffer.from(v['host-key'].split(' ')[1] ?? '', 'base64');
  const client = new ssh2.Client();
  let banner = '';
  await new Promise<void>((resolve, reject) => {
    client.once('ready', () => resolve());
    client.once('error', reject);
    client.once('handshake', () => undefined);
    client.connect({
      host: v.host,
      port: Number(v.port),
      username: v.user,
      privateKey: readFileSync(keyFile),
      readyTimeout: STEP_MS,
      // as rcpp2p does: ssh2 otherwise refuses the openssh_* requests to a server whose banner
      // does not say OpenSSH (the embedded rendezvous)
      strictVendor: false,
      hostVerifier: (key: Buffer) => key.equals(expected),
      debug: (line: string) => {
        const m = /Remote ident: '(.*)'/.exec(line);
        if (m) banner = m[1] ?? '';
      },
    });
  });
  client.on('error', () => undefined);
  emit({ event: 'login', banner });

  const exec = await attempt(async () => (await execText(client, 'echo "$SSH_CLIENT"')).trim());
  let home = '';
  const hello = await attempt(async () => {
    const cmd = renderRendezvousCommand({ op: 'hello', dir, role: 'server', name: 'probe' });
    const reply = parseHelloReply(await execText(client, cmd));
    home = reply.home;
    return `${reply.observed.ip} ${reply.observed.port} home=${reply.home}`;
  });

  // streamlocal-forward, then a direct-streamlocal back to it through the server
  const sock = socketPath(home || '/nonexistent', dir, `probe-${process.pid}`);
  const streamlocal = await attempt(async () => {
    await promisify<void>((cb) =>
      client.openssh_forwardInStreamLocal(sock, (e) => cb(e, undefined)),
    );
    const incoming = new Promise<string>((resolve) => {
      client.once('unix connection', (_info, accept) => {
        const s = accept();
        void readLine(s, 'back through the server\n').then(resolve, () => undefined);
      });
    });
    const out = await promisify<Duplex>((cb) => client.openssh_forwardOutStreamLocal(sock, cb));
    const [line] = await Promise.all([readLine(out, 'out\n'), incoming]);
    out.destroy();
    return line;
  });

  const target = v['unix-target'];
  const directStreamlocal = target
    ? await attempt(async () => {
        const out = await promisify<Duplex>((cb) =>
          client.openssh_forwardOutStreamLocal(target, cb),
        );
        const line = await readLine(out, 'hello\n');
        out.destroy();
        return line;
      })
    : ({ ok: false, error: 'not tried (no --unix-target)' } as const);

  const tcpipForward = await attempt(async () => {
    const port = await promisify<number>((cb) => client.forwardIn('127.0.0.1', 0, cb));
    const connected = new Promise<string>((resolve) => {
      client.once('tcp connection', (info, accept) => {
        const s = accept();
        s.on('error', () => undefined);
        s.end('via tcpip-forward\n');
        resolve(`port ${info.destPort} from ${info.srcIP}`);
      });
    });
    emit({ event: 'tcpip-forward', port });
    return connected;
  });

  const echoPort = Number(v['echo-port']);
  const directTcpip = echoPort
    ? await attempt(async () => {
        const out = await promisify<Duplex>((cb) =>
          client.forwardOut('127.0.0.1', 0, '127.0.0.1', echoPort, cb),
        );
        const line = await readLine(out);
        out.destroy();
        return line;
      })
    : ({ ok: false, error: 'not tried (no --echo-port)' } as const);

  const result: SshProbeResult = {
    event: 'result',
    banner,
    exec,
    hello,
    streamlocal,
    directStreamlocal,
    tcpipForward,
    directTcpip,
  };
  emit(result);
  client.end();
}

main().then(
  () => process.exit(0),
  (err: Error) => {
    emit({ event: 'error', message: err.message });
    process.exit(1);
  },
);
