// TCP simultaneous-open probe for the NAT lab, run as its own process inside a host namespace:
//   node dist/test/helpers/punch-probe.js --name server --local-port 20000 --peer 203.0.113.22:20001
//   (an IPv6 peer is written [2001:db8:2::2]:20001)
//        [--start-at EPOCH_MS] [--interval 150] [--deadline 6000]
// or, learning the external address the way rcpp2p does (an SSH session from the same local port,
// `echo $SSH_CLIENT`, session kept open while punching — NAT-FACTS items 5 and 6):
//   ... --observe 203.0.113.10:22 --user root --key FILE --host-key 'ssh-ed25519 AAAA...'
//   prints {"event":"observed","ip","port"} and then reads one stdin line {"peer":"ip:port","startAt":ms}
// With --observe and --listen-check it instead checks whether a net.Server can listen() on the
// session's local port, and whether connect() from that port works while / after it listens.
//
// Punch: from startAt until startAt+deadline, connect({host, port, localPort}); an attempt that has
// not connected after `interval` ms is destroyed and retried; after an error (RST) the next attempt
// waits for the end of the interval. Once connected, both sides send "hello from NAME\n" and read
// the peer's line. Prints one JSON line {"event":"result", ...} and exits 0 (also on failure).
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import type * as Ssh2 from 'ssh2';
import type { Client } from 'ssh2';

// ssh2 is CommonJS; require() sidesteps named-export detection
const require = createRequire(import.meta.url);
const ssh2 = require('ssh2') as typeof Ssh2;

interface HostPort {
  host: string;
  port: number;
}

interface PunchResult {
  event: 'result';
  name: string;
  ok: boolean;
  startAt: number;
  connectedAt?: number;
  connectMs?: number;
  attempts: number;
  errors: Record<string, number>;
  line?: string;
  local?: string;
  remote?: string;
}

/** IPv4:PORT or [IPv6]:PORT. */
function parseHostPort(text: string | undefined, what: string): HostPort {
  const m = /^(?:([\d.]+)|\[([0-9a-fA-F:.]+)\]):(\d+)$/.exec(text ?? '');
  if (!m) throw new Error(`${what} must be IP:PORT or [IPv6]:PORT, got ${String(text)}`);
  return { host: (m[1] ?? m[2]) as string, port: Number(m[3]) };
}

function emit(obj: object): void {
  process.stdout.write(`${JSON.stringify(obj)}\n`);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}

function count(errors: Record<string, number>, code: string): void {
  errors[code] = (errors[code] ?? 0) + 1;
}

type Attempt = { socket: net.Socket } | { code: string };

/** One connect() from localPort; gives up (destroy) at slotEnd. */
function attempt(peer: HostPort, localPort: number, slotEnd: number): Promise<Attempt> {
  return new Promise((resolve) => {
    const s = net.connect({ host: peer.host, port: peer.port, localPort });
    const timer = setTimeout(() => {
      s.destroy();
      resolve({ code: 'TIMEOUT' });
    }, slotEnd - Date.now());
    s.once('connect', () => {
      clearTimeout(timer);
      s.removeAllListeners('error');
      s.on('error', () => undefined);
      resolve({ socket: s });
    });
    s.once('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      s.destroy();
      resolve({ code: e.code ?? 'ERROR' });
    });
  });
}

/** Sends our line, reads the peer's line (bounded). */
function exchange(s: net.Socket, name: string, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => finish(new Error('EXCHANGE_TIMEOUT')), timeoutMs);
    const finish = (err: Error | undefined, line?: string): void => {
      clearTimeout(timer);
      s.removeListener('data', onData);
      if (err) reject(err);
      else resolve(line ?? '');
    };
    const onData = (d: Buffer): void => {
      buf += d.toString('utf8');
      const i = buf.indexOf('\n');
      if (i >= 0) finish(undefined, buf.slice(0, i));
    };
    s.on('data', onData);
    s.once('error', (e: NodeJS.ErrnoException) => finish(new Error(e.code ?? 'ERROR')));
    s.once('end', () => finish(new Error('EOF')));
    s.write(`hello from ${name}\n`);
  });
}

async function punch(
  name: string,
  peer: HostPort,
  localPort: number,
  startAt: number,
  intervalMs: number,
  deadlineMs: number,
): Promise<PunchResult> {
  await sleep(startAt - Date.now());
  const deadline = startAt + deadlineMs;
  const errors: Record<string, number> = {};
  let attempts = 0;
  while (Date.now() < deadline && attempts < 100_000) {
    attempts += 1;
    const slotEnd = Math.min(Date.now() + intervalMs, deadline);
    const r = await attempt(peer, localPort, slotEnd);
    if ('socket' in r) {
      const s = r.socket;
      const connectedAt = Date.now();
      try {
        const line = await exchange(s, name, 3000);
        const result: PunchResult = {
          event: 'result',
          name,
          ok: true,
          startAt,
          connectedAt,
          connectMs: connectedAt - startAt,
          attempts,
          errors,
          line,
          local: `${s.localAddress}:${s.localPort}`,
          remote: `${s.remoteAddress}:${s.remotePort}`,
        };
        s.end();
        await Promise.race([new Promise((res) => s.once('close', res)), sleep(1000)]);
        s.destroy();
        return result;
      } catch (err) {
        count(errors, `exchange:${(err as Error).message}`);
        s.destroy();
        continue;
      }
    }
    count(errors, r.code);
    await sleep(slotEnd - Date.now());
  }
  return { event: 'result', name, ok: false, startAt, attempts, errors };
}

interface Observation {
  client: Client;
  sock: net.Socket;
  ip: string;
  port: number;
}

/** SSH session from localPort to the rendezvous; `echo $SSH_CLIENT` tells our external address. */
async function observe(
  rv: HostPort,
  localPort: number,
  user: string,
  keyFile: string,
  hostKey: string,
): Promise<Observation> {
  const sock = net.connect({ host: rv.host, port: rv.port, localPort });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('rendezvous connect timeout')), 5000);
    sock.once('connect', () => {
      clearTimeout(timer);
      resolve();
    });
    sock.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
  const expected = Buffer.from(hostKey.split(' ')[1] ?? '', 'base64');
  const client = new ssh2.Client();
  await new Promise<void>((resolve, reject) => {
    client.once('ready', () => resolve());
    client.once('error', reject);
    client.connect({
      sock,
      username: user,
      privateKey: readFileSync(keyFile),
      readyTimeout: 10_000,
      hostVerifier: (key: Buffer) => key.equals(expected),
    });
  });
  client.on('error', () => undefined);
  const out = await new Promise<string>((resolve, reject) => {
    client.exec('echo "$SSH_CLIENT"', (err, stream) => {
      if (err) return reject(err);
      let text = '';
      stream.on('data', (d: Buffer) => (text += d.toString('utf8')));
      stream.stderr.on('data', () => undefined);
      stream.on('close', () => resolve(text));
    });
  });
  const [ip, port] = out.trim().split(' ');
  if (!ip || !port) throw new Error(`unexpected $SSH_CLIENT: ${out}`);
  return { client, sock, ip, port: Number(port) };
}

function readLine(timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const rl = createInterface({ input: process.stdin });
    const timer = setTimeout(() => {
      rl.close();
      reject(new Error('no peer line on stdin'));
    }, timeoutMs);
    rl.once('line', (line) => {
      clearTimeout(timer);
      rl.close();
      resolve(line);
    });
  });
}

/** Can a server listen() on a port our held session uses, and can we still connect() from it? */
async function listenCheck(localPort: number, peer: HostPort): Promise<object> {
  const listenOn = (host?: string): Promise<{ code: string; server?: net.Server }> =>
    new Promise((resolve) => {
      const srv = net.createServer((s) => s.destroy());
      srv.once('error', (e: NodeJS.ErrnoException) => resolve({ code: e.code ?? 'ERROR' }));
      srv.listen(host ? { port: localPort, host } : { port: localPort }, () =>
        resolve({ code: 'ok', server: srv }),
      );
    });
  const connectOnce = async (): Promise<string> => {
    const r = await attempt(peer, localPort, Date.now() + 2000);
    if ('socket' in r) {
      r.socket.destroy();
      return 'connected';
    }
    return r.code;
  };
  const anyHost = await listenOn();
  await new Promise((res) => (anyHost.server ? anyHost.server.close(res) : res(undefined)));
  const v4 = await listenOn('0.0.0.0');
  const connectWhileListening = await connectOnce();
  await new Promise((res) => (v4.server ? v4.server.close(res) : res(undefined)));
  const connectAfterClose = await connectOnce();
  return {
    event: 'listen-check',
    listenDefaultHost: anyHost.code,
    listen0000: v4.code,
    connectWhileListening,
    connectAfterClose,
  };
}

async function main(): Promise<void> {
  const { values: v } = parseArgs({
    options: {
      name: { type: 'string', default: 'probe' },
      'local-port': { type: 'string' },
      peer: { type: 'string' },
      'start-at': { type: 'string' },
      interval: { type: 'string', default: '150' },
      deadline: { type: 'string', default: '6000' },
      observe: { type: 'string' },
      user: { type: 'string', default: 'root' },
      key: { type: 'string' },
      'host-key': { type: 'string' },
      'listen-check': { type: 'boolean', default: false },
    },
  });
  const localPort = Number(v['local-port']);
  if (!Number.isInteger(localPort) || localPort <= 0) throw new Error('--local-port is required');
  const intervalMs = Number(v.interval);
  const deadlineMs = Number(v.deadline);
  let held: Observation | undefined;
  try {
    let peer: HostPort;
    let startAt: number;
    if (v.observe) {
      if (!v.key || !v['host-key']) throw new Error('--observe needs --key and --host-key');
      const rv = parseHostPort(v.observe, '--observe');
      held = await observe(rv, localPort, v.user, v.key, v['host-key']);
      emit({ event: 'observed', ip: held.ip, port: held.port });
      if (v['listen-check']) {
        emit(await listenCheck(localPort, parseHostPort(v.peer, '--peer')));
        return;
      }
      const msg = JSON.parse(await readLine(30_000)) as { peer: string; startAt: number };
      peer = parseHostPort(msg.peer, 'peer');
      startAt = msg.startAt;
    } else {
      peer = parseHostPort(v.peer, '--peer');
      startAt = v['start-at'] ? Number(v['start-at']) : Date.now();
    }
    emit(await punch(v.name, peer, localPort, startAt, intervalMs, deadlineMs));
  } finally {
    held?.client.end();
    held?.sock.destroy();
  }
}

main().then(
  () => process.exit(0),
  (err: Error) => {
    emit({ event: 'error', message: err.message });
    process.exit(1);
  },
);
