// The file server: serves one working directory to authenticated connections handed over by the link
// layer. Each connection is a ServerSession (server-session.ts); this class admits them (BUSY beyond
// maxSessions, or, once the client said hello, beyond maxSessionsPerClient for that client, so no
// client can take every session; a path that lost the client's race never says hello and never
// counts),
// tracks them, removes expired partial files (partials.ts) at start and daily, and ends everything on
// close(). The server serves every client itself; nothing is handed to another process.

import type { Duplex } from 'node:stream';
import { RcppError } from '../errors.js';
import { logger } from '../log.js';
import { ignoreProgress, type OnProgress } from '../progress.js';
import { FrameChannel } from './channel.js';
import { PARTIAL_MAX_AGE_MS, removeExpiredPartials } from './partials.js';
import { ServerSession } from './server-session.js';

const log = logger('server');
const SWEEP_EVERY_MS = 24 * 60 * 60 * 1000;

export interface FileServerOptions {
  workDir: string;
  serverName: string;
  onProgress?: OnProgress;
  /** End a session when the client has sent nothing for this long (default 60 s; 0 = never). */
  idleTimeoutMs?: number;
  /**
   * Connections served at once (default 24); more are refused with BUSY. A stalled connection holds
   * about 2 MiB (a frame in the socket's buffer, the next one read ahead), so 24 of them stay
   * within about 50 MiB.
   */
  maxSessions?: number;
  /** Connections one client may hold at once (default a quarter of maxSessions, at least 1). */
  maxSessionsPerClient?: number;
  /** Partial files untouched for this long are removed (default 7 days; 0 = never). */
  partialMaxAgeMs?: number;
  /**
   * A receiving peer (rcpp2p --receive), not a file server: only puts are served, nothing is listed
   * or read, files are replaced only when the receiver allowed it, and each file reports progress.
   */
  receiveOnly?: { allowOverwrite: boolean };
}

/** The client of a connection, as the link layer authenticated it. */
export interface ClientPeer {
  name: string;
  /** Its certificate fingerprint; partial files are bound to it (to the name when absent). */
  fingerprint?: string;
}

export class FileServer {
  private readonly sessions = new Set<ServerSession>();
  private readonly perClient = new Map<string, number>();
  private readonly running = new Set<Promise<void>>();
  private readonly onProgress: OnProgress;
  private readonly idleTimeoutMs: number;
  private readonly maxSessions: number;
  private readonly maxPerClient: number;
  private readonly stopSweeps = new AbortController();
  private sweepTimer: NodeJS.Timeout | undefined;
  private sweeping: Promise<void> = Promise.resolve();
  private closing: Promise<void> | undefined;

  constructor(private readonly opts: FileServerOptions) {
    this.onProgress = opts.onProgress ?? ignoreProgress;
    this.idleTimeoutMs = opts.idleTimeoutMs ?? 60_000;
    this.maxSessions = opts.maxSessions ?? 24;
    this.maxPerClient = opts.maxSessionsPerClient ?? Math.max(1, Math.floor(this.maxSessions / 4));
    const maxAgeMs = opts.partialMaxAgeMs ?? PARTIAL_MAX_AGE_MS;
    if (maxAgeMs > 0) {
      this.sweep(maxAgeMs);
      this.sweepTimer = setInterval(() => this.sweep(maxAgeMs), SWEEP_EVERY_MS);
      this.sweepTimer.unref();
    }
  }

  get activeSessions(): number {
    return this.sessions.size;
  }

  /** Serves one authenticated connection until it ends; never throws for what the peer does. */
  async serve(
    stream: Duplex,
    peer: ClientPeer,
    opts: { signal?: AbortSignal } = {},
  ): Promise<void> {
    const ch = new FrameChannel(stream, {
      peer: `client ${peer.name}`,
      idleTimeoutMs: this.idleTimeoutMs,
    });
    const refusal = this.closing
      ? `The file server ${this.opts.serverName} is shutting down.`
      : this.sessions.size >= this.maxSessions
        ? `The file server ${this.opts.serverName} is serving ${this.sessions.size} connections, its limit.`
        : undefined;
    if (refusal) {
      this.onProgress({ type: 'server:refused', client: peer.name, message: refusal });
      if (ch.writable) ch.send({ t: 'error', code: 'BUSY', message: refusal });
      await ch.end();
      return;
    }
    let admitted = false;
    const session = new ServerSession(ch, peer.name, {
      workDir: this.opts.workDir,
      serverName: this.opts.serverName,
      idleTimeoutMs: this.idleTimeoutMs,
      onProgress: this.onProgress,
      peerId: peer.fingerprint ?? `name:${peer.name}`,
      ...(this.opts.receiveOnly && { receiveOnly: this.opts.receiveOnly }),
      admit: () => {
        const theirs = this.perClient.get(peer.name) ?? 0;
        if (theirs >= this.maxPerClient) {
          const message = `The file server ${this.opts.serverName} is serving ${theirs} connections of ${peer.name}, the limit for one client.`;
          this.onProgress({ type: 'server:refused', client: peer.name, message });
          throw new RcppError('BUSY', message);
        }
        this.perClient.set(peer.name, theirs + 1);
        admitted = true;
      },
    });
    this.sessions.add(session);
    const run = session.run(opts.signal);
    this.running.add(run);
    try {
      await run;
    } finally {
      this.sessions.delete(session);
      if (admitted) {
        const left = (this.perClient.get(peer.name) ?? 1) - 1;
        if (left > 0) this.perClient.set(peer.name, left);
        else this.perClient.delete(peer.name);
      }
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
      clearInterval(this.sweepTimer);
      this.stopSweeps.abort(reason);
      for (const s of this.sessions) s.stop(reason);
      await Promise.allSettled([...this.running, this.sweeping]);
    })();
    return this.closing;
  }

  /** Removes expired partials in the background; one sweep at a time. */
  private sweep(maxAgeMs: number): void {
    this.sweeping = this.sweeping.then(async () => {
      if (this.stopSweeps.signal.aborted) return;
      try {
        const removed = await removeExpiredPartials(this.opts.workDir, {
          maxAgeMs,
          signal: this.stopSweeps.signal,
        });
        if (removed > 0) {
          const days = Math.round(maxAgeMs / 86_400_000);
          this.onProgress({
            type: 'note',
            text: `Removed ${removed} partial file${removed === 1 ? '' : 's'} of transfers cut more than ${days} day${days === 1 ? '' : 's'} ago.`,
          });
        }
      } catch (err) {
        log(`sweeping partial files failed: ${String(err)}`);
      }
    });
  }
}
