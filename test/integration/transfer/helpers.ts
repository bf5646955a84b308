// Fixtures for the transfer integration tests: temp folders, a FileServer on 127.0.0.1 port 0,
// clients over plain TCP, random files, and a proxy that counts control messages in each direction,
// can add latency, can cut the connection after N bytes, and can rewrite frames on their way (to
// corrupt file bytes, or to act when a file starts).
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, open, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { ProgressEvent } from '../../../src/progress.js';
import { encodeControl, FrameDecoder } from '../../../src/protocol/frames.js';
import { decodeMessage, type Message } from '../../../src/protocol/messages.js';
import { FileClient, type OpenOptions } from '../../../src/transfer/file-client.js';
import { FileServer, type FileServerOptions } from '../../../src/transfer/file-server.js';

export async function tempDir(
  label: string,
): Promise<{ path: string; cleanup: () => Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), `rcpp2p-${label}-`));
  return { path, cleanup: () => rm(path, { recursive: true, force: true }) };
}

export interface RunningServer {
  port: number;
  server: FileServer;
  events: ProgressEvent[];
  sockets: Set<net.Socket>;
  close(): Promise<void>;
}

/**
 * A FileServer on 127.0.0.1 port 0. Every connection is its own client (`tester1`, `tester2`...)
 * unless `clientName` names them all alike (for the per-client session limit).
 */
export async function startServer(
  opts: Partial<FileServerOptions> & { workDir: string; clientName?: string },
): Promise<RunningServer> {
  const events: ProgressEvent[] = [];
  const server = new FileServer({
    serverName: 'testsrv',
    onProgress: (e) => events.push(e),
    ...opts,
  });
  const sockets = new Set<net.Socket>();
  let connections = 0;
  const listener = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    const name = opts.clientName ?? `tester${++connections}`;
    void server.serve(socket, { name }).finally(() => socket.destroy());
  });
  await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
  const port = (listener.address() as net.AddressInfo).port;
  return {
    port,
    server,
    events,
    sockets,
    async close() {
      await server.close();
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => listener.close(() => resolve()));
    },
  };
}

export async function connect(port: number): Promise<net.Socket> {
  const socket = net.connect(port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  return socket;
}

export async function openClient(
  port: number,
  opts: Partial<OpenOptions> = {},
): Promise<FileClient> {
  return FileClient.open(await connect(port), { clientName: 'tester', ...opts });
}

/** Writes `size` random bytes (in 1 MiB pieces) and returns their SHA-256. */
export async function randomFile(path: string, size: number, mtimeMs?: number): Promise<string> {
  await mkdir(dirname(path), { recursive: true });
  const hash = createHash('sha256');
  const fh = await open(path, 'w');
  try {
    for (let done = 0; done < size;) {
      const chunk = randomBytes(Math.min(1024 * 1024, size - done));
      hash.update(chunk);
      await fh.write(chunk);
      done += chunk.length;
    }
    if (mtimeMs !== undefined) await fh.utimes(mtimeMs / 1000, mtimeMs / 1000);
  } finally {
    await fh.close();
  }
  return hash.digest('hex');
}

export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 1024 * 1024 }))
    hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Waits until `check` holds, polling every 10 ms, failing after `ms`. */
export async function until(check: () => boolean, ms = 5000, what = 'a condition'): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A frame on its way through the proxy. */
export type ProxyFrame =
  { kind: 'control'; msg: Message; payload: Buffer } | { kind: 'data'; payload: Buffer };

export interface ProxyOptions {
  /** One-way delay added to every chunk, both directions. */
  latencyMs?: number;
  /** Cut the connection (both sockets destroyed) once this many bytes went this way. */
  cut?: { direction: 'toServer' | 'toClient'; afterBytes: number };
  /**
   * Sees every frame going this way before it is forwarded; may return another payload for it (the
   * frame is sent with that payload), or 'hold' to keep it back until the next frame that passes
   * (held frames go just before it, in order). The proxy then forwards whole frames, not the chunks
   * it read.
   */
  onFrame?: {
    direction: 'toServer' | 'toClient';
    rewrite: (frame: ProxyFrame) => Buffer | 'hold' | undefined;
  };
}

/** A TCP proxy in front of the server that records the control messages going each way. */
export interface Proxy {
  port: number;
  toServer: string[];
  toClient: string[];
  /** Both directions in the order the proxy saw them (a request before its answer). */
  log: { way: 'toServer' | 'toClient'; t: string }[];
  bytes: { toServer: number; toClient: number };
  close(): Promise<void>;
}

export async function startProxy(serverPort: number, opts: ProxyOptions = {}): Promise<Proxy> {
  const proxy: Proxy = {
    port: 0,
    toServer: [],
    toClient: [],
    log: [],
    bytes: { toServer: 0, toClient: 0 },
    close: async () => {},
  };
  const sockets = new Set<net.Socket>();
  const listener = net.createServer({ allowHalfOpen: true }, (down) => {
    const up = net.connect({ port: serverPort, host: '127.0.0.1', allowHalfOpen: true });
    sockets.add(down).add(up);
    // Once one side is gone, let what is still delayed arrive, then drop both.
    const kill = (): void => {
      setTimeout(
        () => {
          down.destroy();
          up.destroy();
        },
        (opts.latencyMs ?? 0) + 20,
      );
    };
    down.on('error', kill).on('close', kill);
    up.on('error', kill).on('close', kill);
    relay(down, up, 'toServer');
    relay(up, down, 'toClient');
  });
  function relay(from: net.Socket, to: net.Socket, way: 'toServer' | 'toClient'): void {
    if (opts.onFrame?.direction === way) {
      relayFrames(from, to, way, opts.onFrame.rewrite);
      return;
    }
    const decoder = new FrameDecoder();
    const cut = opts.cut?.direction === way ? opts.cut.afterBytes : Infinity;
    // One FIFO per direction, drained by one timer, so delayed chunks keep their order.
    const queue: { at: number; piece: Buffer | 'end' }[] = [];
    let timer: NodeJS.Timeout | undefined;
    const deliver = (piece: Buffer | 'end'): void => {
      if (to.destroyed) return;
      if (piece === 'end') {
        to.end();
        return;
      }
      to.write(piece);
      if (proxy.bytes[way] >= cut) {
        from.destroy();
        to.destroy();
      }
    };
    const pump = (): void => {
      timer = undefined;
      const now = Date.now();
      while (queue.length > 0 && queue[0]!.at <= now) deliver(queue.shift()!.piece);
      if (queue.length > 0) timer = setTimeout(pump, queue[0]!.at - now);
    };
    const push = (piece: Buffer | 'end'): void => {
      if (!opts.latencyMs) return deliver(piece);
      queue.push({ at: Date.now() + opts.latencyMs, piece });
      timer ??= setTimeout(pump, opts.latencyMs);
    };
    from.on('data', (chunk: Buffer) => {
      let piece = chunk;
      const room = cut - proxy.bytes[way];
      if (room <= 0) return;
      if (piece.length > room) piece = piece.subarray(0, room);
      proxy.bytes[way] += piece.length;
      try {
        for (const f of decoder.push(piece)) {
          if (f.kind === 'control') {
            const t = decodeMessage(f.payload).t;
            proxy[way].push(t);
            proxy.log.push({ way, t });
          }
        }
      } catch {
        proxy[way].push('(undecodable)');
      }
      push(piece);
    });
    from.on('end', () => push('end'));
  }
  /** Forwards whole frames, each shown to `rewrite` first (a parser of its own: 5-byte headers). */
  function relayFrames(
    from: net.Socket,
    to: net.Socket,
    way: 'toServer' | 'toClient',
    rewrite: (frame: ProxyFrame) => Buffer | 'hold' | undefined,
  ): void {
    let pending = Buffer.alloc(0);
    const held: Buffer[] = [];
    from.on('data', (chunk: Buffer) => {
      proxy.bytes[way] += chunk.length;
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 5) {
        const type = pending[0]!;
        const length = pending.readUInt32BE(1);
        if (pending.length < 5 + length) break;
        const payload = pending.subarray(5, 5 + length);
        pending = pending.subarray(5 + length);
        let frame: ProxyFrame;
        if (type === 1) {
          const msg = decodeMessage(payload);
          proxy[way].push(msg.t);
          proxy.log.push({ way, t: msg.t });
          frame = { kind: 'control', msg, payload };
        } else {
          frame = { kind: 'data', payload };
        }
        const out = rewrite(frame) ?? payload;
        const header = Buffer.alloc(5);
        header[0] = type;
        header.writeUInt32BE(out === 'hold' ? payload.length : out.length, 1);
        if (out === 'hold') {
          held.push(Buffer.concat([header, payload]));
          continue;
        }
        if (!to.destroyed) to.write(Buffer.concat([...held.splice(0), header, out]));
      }
    });
    from.on('end', () => {
      if (!to.destroyed) to.end();
    });
  }
  await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
  proxy.port = (listener.address() as net.AddressInfo).port;
  proxy.close = async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => listener.close(() => resolve()));
  };
  return proxy;
}

/** Counts of each message type in a recorded list. */
export function tally(types: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const t of types) out[t] = (out[t] ?? 0) + 1;
  return out;
}

/**
 * A peer that speaks the protocol by hand over a socket: sends any message or raw data frame, and
 * reads the other side's messages (keepalives dropped). For hostile clients and servers.
 */
export interface RawPeer {
  socket: net.Socket;
  send(msg: Message): void;
  /** One data frame carrying `bytes` (length-prefixed by hand: any length, even a wrong one). */
  data(bytes: Buffer): void;
  /** The next message; rejects when the connection closes first or after `ms`. */
  next(ms?: number): Promise<Message>;
  /** Every message until the other side closes. */
  rest(ms?: number): Promise<Message[]>;
  close(): void;
}

export function rawPeer(socket: net.Socket): RawPeer {
  const decoder = new FrameDecoder();
  const inbox: Message[] = [];
  let closed = false;
  let wake: (() => void) | undefined;
  socket.on('data', (chunk: Buffer) => {
    for (const f of decoder.push(chunk)) {
      if (f.kind !== 'control') continue;
      const msg = decodeMessage(f.payload);
      if (msg.t !== 'keepalive') inbox.push(msg);
    }
    wake?.();
  });
  const onEnd = (): void => {
    closed = true;
    wake?.();
  };
  socket.on('close', onEnd);
  socket.on('error', onEnd);
  const next = async (ms = 10_000): Promise<Message> => {
    const end = Date.now() + ms;
    while (inbox.length === 0) {
      if (closed) throw new Error('the connection closed before the next message');
      const left = end - Date.now();
      if (left <= 0) throw new Error('timed out waiting for a message');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      wake = undefined;
    }
    return inbox.shift()!;
  };
  return {
    socket,
    send: (msg) => socket.write(encodeControl(msg)),
    data(bytes) {
      const header = Buffer.alloc(5);
      header[0] = 2;
      header.writeUInt32BE(bytes.length, 1);
      socket.write(Buffer.concat([header, bytes]));
    },
    next,
    async rest(ms = 10_000) {
      const out: Message[] = [];
      for (;;) {
        try {
          out.push(await next(ms));
        } catch (err) {
          if (closed) return out;
          throw err;
        }
      }
    },
    close: () => socket.destroy(),
  };
}

/** A raw client past hello/welcome. */
export async function rawClient(port: number, name = 'mallory'): Promise<RawPeer> {
  const peer = rawPeer(await connect(port));
  peer.send({ t: 'hello', v: 1, client: name, features: [], idleMs: 0 });
  const welcome = await peer.next();
  if (welcome.t !== 'welcome') throw new Error(`expected welcome, got ${JSON.stringify(welcome)}`);
  return peer;
}

/** The last message of a list, which must be `error {code}`; returns it. */
export function lastError(msgs: Message[], code: string): Extract<Message, { t: 'error' }> {
  const last = msgs.at(-1);
  if (last?.t !== 'error' || last.code !== code) {
    throw new Error(`expected error ${code} last, got ${JSON.stringify(msgs)}`);
  }
  return last;
}
