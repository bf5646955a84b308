// The file server: serves one working directory to authenticated connections handed over by the link
// layer. Each connection is a ServerSession (server-session.ts); this class admits them (BUSY beyond
// maxSessions), tracks them, and ends them all on close().

import type { Duplex } from 'node:stream';
import { RcppError } from '../errors.js';
import { ignoreProgress, type OnProgress } from '../progress.js';
import { FrameChannel } from './channel.js';
import type { SendHooks } from './send-file.js';
import { ServerSession } from './server-session.js';

export interface FileServerOptions {
  workDir: string;
  serverName: string;
  onProgress?: OnProgress;
  /** End a session when the client has sent nothing for this long (default 60 s; 0 = never). */
  idleTimeoutMs?: number;
  /** Connections served at once (default 32); more are refused with BUSY. */
  maxSessions?: number;
  /** Test hooks on the sending side (corrupting a chunk...); never set in production. */
  hooks?: SendHooks;
}

export class FileServer {
  private readonly sessions = new Set<ServerSession>();
  private readonly running = new Set<Promise<void>>();
  private readonly onProgress: OnProgress;
  private readonly idleTimeoutMs: number;
  private readonly maxSessions: number;
  private closing: Promise<void> | undefined;

  constructor(private readonly opts: FileServerOptions) {
    this.onProgress = opts.onProgress ?? ignoreProgress;
    this.idleTimeoutMs = opts.idleTimeoutMs ?? 60_000;
    this.maxSessions = opts.maxSessions ?? 32;
  }

  get activeSessions(): number {
    return this.sessions.size;
  }

  /** Serves one authenticated connection until it ends; never throws for what the peer does. */
  async serve(
    stream: Duplex,
    peer: { name: string },
    opts: { signal?: AbortSignal } = {},
  ): Promise<void> {
    const ch = new FrameChannel(stream, {
      peer: `client ${peer.name}`,
      idleTimeoutMs: this.idleTimeoutMs,
    });
    if (this.closing || this.sessions.size >= this.maxSessions) {
      const message = this.closing
        ? `The file server ${this.opts.serverName} is shutting down.`
        : `The file server ${this.opts.serverName} is serving ${this.sessions.size} connections, its limit.`;
      this.onProgress({ type: 'server:refused', client: peer.name, message });
      if (ch.writable) ch.send({ t: 'error', code: 'BUSY', message });
      await ch.end();
      return;
    }
    const session = new ServerSession(ch, peer.name, {
      workDir: this.opts.workDir,
      serverName: this.opts.serverName,
      idleTimeoutMs: this.idleTimeoutMs,
      onProgress: this.onProgress,
      ...(this.opts.hooks ? { hooks: this.opts.hooks } : {}),
    });
    this.sessions.add(session);
    const run = session.run(opts.signal);
    this.running.add(run);
    try {
      await run;
    } finally {
      this.sessions.delete(session);
      this.running.delete(run);
    }
  }

  /** Ends every session (they are told ABORTED with a sentence) and refuses new ones; idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      const reason = new RcppError(
        'ABORTED',
        `The file server ${this.opts.serverName} is shutting down.`,
      );
      for (const s of this.sessions) s.stop(reason);
      await Promise.allSettled([...this.running]);
    })();
    return this.closing;
  }
}
