// A baseline for the benchmark: the same hole-punched TCP path rcpp2p uses, with nothing on top but
// (optionally) Node's TLS 1.3. One side sends N random bytes, the other writes them to a file and
// fsyncs it, as rcpp2p does. Run one process per side inside the lab's namespaces:
//   node dist/bench/raw-stream.js send|recv LOCALPORT REMOTEIP:REMOTEPORT BYTES FILE [tls]
//   node dist/bench/raw-stream.js listen PORT - BYTES FILE    (127.0.0.1, one connection, no TLS)
// The sender ignores FILE (it sends random bytes from memory). The receiver prints "BYTES MS" (first
// byte to fsync done) and exits 0 only when all BYTES arrived. The receiver writes 1 MiB at a time
// (see receive()); with TLS this is the ceiling Node's own TLS and file writes allow.
import { open, type FileHandle } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import { punch } from '../src/nat/punch.js';
import { generateIdentity } from '../src/secure/identity.js';

const CHUNK = 1024 * 1024;

async function main(): Promise<void> {
  const [role, localPortText, remoteText, bytesText, file, tlsFlag] = process.argv.slice(2);
  if (role === 'listen' && bytesText && file) {
    // The receiving end of a baseline that arrives through someone else's tunnel (ssh -R / -W).
    const server = net.createServer((socket) => {
      server.close();
      receive(socket, Number(bytesText), file).catch((err: unknown) => {
        process.stderr.write(`raw-stream: ${(err as Error).message}\n`);
        process.exit(1);
      });
    });
    server.listen(Number(localPortText), '127.0.0.1', () => process.stdout.write('listening\n'));
    return;
  }
  const [ip, port] = (remoteText ?? '').split(':');
  if ((role !== 'send' && role !== 'recv') || !ip || !port || !bytesText || !file) {
    throw new Error('usage: raw-stream send|recv LOCALPORT IP:PORT BYTES FILE [tls]');
  }
  const total = Number(bytesText);
  const socket = await punch({
    localPort: Number(localPortText),
    remote: { ip, port: Number(port) },
    signal: AbortSignal.timeout(20_000),
  });
  socket.setNoDelay(true);
  let stream: Duplex = socket;
  if (tlsFlag === 'tls') stream = await secure(socket, role);
  if (role === 'send') await send(stream, total);
  else await receive(stream, total, file);
}

async function secure(socket: Duplex, role: 'send' | 'recv'): Promise<Duplex> {
  const id = generateIdentity(role === 'send' ? 'bench-send' : 'bench-recv');
  const options = {
    key: id.keyPem,
    cert: id.certPem,
    minVersion: 'TLSv1.3' as const,
    ciphers: 'TLS_AES_128_GCM_SHA256',
    rejectUnauthorized: false,
  };
  return new Promise((resolve, reject) => {
    const t =
      role === 'send'
        ? tls.connect({ socket, ...options, checkServerIdentity: () => undefined }, () =>
            resolve(t),
          )
        : new tls.TLSSocket(socket, {
            isServer: true,
            secureContext: tls.createSecureContext(options),
          });
    if (role === 'recv') t.once('secure', () => resolve(t));
    t.once('error', reject);
  });
}

async function send(stream: Duplex, total: number): Promise<void> {
  const chunk = randomBytes(CHUNK);
  let sent = 0;
  while (sent < total) {
    const n = Math.min(CHUNK, total - sent);
    if (!stream.write(n === CHUNK ? chunk : chunk.subarray(0, n))) {
      await new Promise((r) => stream.once('drain', r));
    }
    sent += n;
  }
  await new Promise<void>((resolve) => stream.end(resolve));
  await new Promise((r) => stream.once('close', r));
}

/**
 * Socket to file the fastest plain way Node offers: the chunks the stream delivers (16 KiB each
 * from TLS) are gathered into 1 MiB and written with one writev, one write in flight while the next
 * MiB arrives (the socket pauses if a second one is ready first), then fsync.
 */
async function receive(stream: Duplex, total: number, file: string): Promise<void> {
  const fh = await open(file, 'w');
  let got = 0;
  let first = 0;
  let pos = 0;
  let batch: Buffer[] = [];
  let batchBytes = 0;
  let inflight: Promise<void> | undefined;
  try {
    await new Promise<void>((resolve, reject) => {
      stream.on('error', reject);
      stream.on('end', () => {
        if (got < total) reject(new Error(`received ${got} of ${total} bytes`));
      });
      stream.on('data', (buf: Buffer) => {
        if (first === 0) first = performance.now();
        got += buf.length;
        batch.push(buf);
        batchBytes += buf.length;
        if (batchBytes < CHUNK && got < total) return;
        const pieces = batch;
        const at = pos;
        pos += batchBytes;
        batch = [];
        batchBytes = 0;
        const before = inflight;
        if (before) stream.pause();
        inflight = (async () => {
          await before;
          stream.resume();
          await writeAll(fh, pieces, at);
        })();
        inflight.catch(reject);
        if (got >= total) inflight.then(resolve, reject);
      });
    });
    await fh.sync();
  } finally {
    await fh.close();
  }
  if (got !== total) throw new Error(`received ${got} of ${total} bytes`);
  process.stdout.write(`${got} ${(performance.now() - first).toFixed(1)}\n`);
  stream.destroy();
}

async function writeAll(fh: FileHandle, pieces: Buffer[], at: number): Promise<void> {
  let rest = pieces;
  while (rest.length > 0) {
    const { bytesWritten } = await fh.writev(rest, at);
    if (bytesWritten <= 0) throw new Error('the disk accepted no bytes');
    at += bytesWritten;
    let n = bytesWritten;
    let k = 0;
    while (k < rest.length && n >= rest[k]!.length) n -= rest[k++]!.length;
    rest = k < rest.length ? [rest[k]!.subarray(n), ...rest.slice(k + 1)] : [];
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`raw-stream: ${(err as Error).message}\n`);
  process.exit(1);
});
