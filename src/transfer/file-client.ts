// The client side of the transfer protocol over one authenticated stream: list, get, put, close.
//
// Commands run one at a time on the connection (later calls wait their turn in `line`). Each costs a
// fixed number of round trips whatever the number of files: get = get -> manifest, accept -> files +
// done; put = put -> accept, files + done -> results + done. Per-file failures come back as ok:false
// results; a broken connection (lost, protocol error, timeout, abort) rejects, and every later command
// on this client rejects with CONNECTION_LOST. Only a refused list leaves the connection usable.
//
// Connection state (ClientState; every transition is in nextState()):
//
//   ready  --start-->  busy  --finish (done, or a refused list)-->  ready
//   busy   --fail (lost, protocol error, timeout, abort)-->  broken {error}
//   ready | busy | broken  --close-->  closed {closing}      (closed is final; finish/fail keep it)

import { join, posix } from 'node:path';
import type { Duplex } from 'node:stream';
import { abortError, RcppError, type ErrorCode } from '../errors.js';
import type { OnProgress } from '../progress.js';
import { CommandBudget } from '../protocol/budget.js';
import {
  MAX_LISTING_ENTRIES,
  MAX_PATH_DEPTH,
  MAX_REQUEST_PATHS,
  NAME_PATTERN,
  PROTOCOL_VERSION,
} from '../protocol/limits.js';
import type { ManifestDir, ManifestFile, Problem } from '../protocol/messages.js';
import { packParts } from '../protocol/parts.js';
import { quote } from '../protocol/text.js';
import { prepareAll, readAccept, releaseAll, sendAccept } from './accept.js';
import { FrameChannel, heartbeatMs } from './channel.js';
import { progressEvents } from './client-progress.js';
import { withHint } from './hints.js';
import { manifestForPut, type Manifest } from './manifest.js';
import type { ReceiveSpec } from './receive-file.js';
import { checkRelativePath, foldName, normalizeUserPath, SafeRoot } from './safe-path.js';
import { receiveFiles, sendFiles, type FileOutcome } from './stream-files.js';

export interface TransferOptions {
  signal?: AbortSignal;
  onProgress?: OnProgress;
  force?: boolean;
}

export type TransferResult =
  | {
      ok: true;
      op: 'get' | 'put';
      /** Remote path, POSIX, relative to the server's working directory. */
      file: string;
      localPath: string;
      /** File size. */
      bytes: number;
      /** Bytes not sent again thanks to resume. */
      resumedBytes: number;
      sha256: string;
      transferMs: number;
    }
  | {
      ok: false;
      op: 'get' | 'put';
      file: string;
      localPath?: string;
      error: { code: ErrorCode; message: string; hint: string };
    };

export interface ListEntry {
  path: string;
  kind: 'file' | 'dir';
  size: number;
  mtimeMs: number;
}

export interface OpenOptions {
  clientName: string;
  signal?: AbortSignal;
  /** Fail a command when the server sends nothing for this long (default 60 s; 0 = never). */
  idleTimeoutMs?: number;
  /**
   * The server's certificate fingerprint, as the link layer checked it. Partial files of a get are
   * bound to it (to the name the server gives in welcome when absent).
   */
  serverFingerprint?: string;
}

export type ClientState =
  | { s: 'ready' }
  | { s: 'busy' }
  | { s: 'broken'; error: RcppError }
  | { s: 'closed'; closing: Promise<void> };

export type ClientEvent =
  | { e: 'start' }
  | { e: 'finish' }
  | { e: 'fail'; error: RcppError }
  | { e: 'close'; closing: Promise<void> };

/** The one place the connection state changes. */
export function nextState(state: ClientState, event: ClientEvent): ClientState {
  switch (event.e) {
    case 'start':
      if (state.s !== 'ready')
        throw new RcppError('INTERNAL', `A command started while ${state.s}.`);
      return { s: 'busy' };
    case 'finish':
      return state.s === 'busy' ? { s: 'ready' } : state;
    case 'fail':
      return state.s === 'busy' ? { s: 'broken', error: event.error } : state;
    case 'close':
      return state.s === 'closed' ? state : { s: 'closed', closing: event.closing };
  }
}

/** A refusal of one command that leaves the connection usable. */
class Refused extends Error {
  constructor(readonly error: RcppError) {
    super(error.message);
  }
}

function failed(op: 'get' | 'put', file: string, err: unknown, localPath?: string): TransferResult {
  const e = withHint(err);
  return {
    ok: false,
    op,
    file,
    ...(localPath ? { localPath } : {}),
    error: { code: e.code, message: e.message, hint: e.hint },
  };
}

function protocolError(sentence: string): RcppError {
  return new RcppError('PROTOCOL_ERROR', sentence);
}

export class FileClient {
  private state: ClientState = { s: 'ready' };
  /** Commands waiting their turn: each runs after the previous one settled. */
  private line: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly ch: FrameChannel,
    readonly serverName: string,
    private readonly heartbeat: number,
    /** Who the server is, for the partial files of a get. */
    private readonly peerId: string,
  ) {}

  private on(event: ClientEvent): void {
    this.state = nextState(this.state, event);
  }

  /** Says hello and checks the server's welcome (protocol version, name). */
  static async open(stream: Duplex, opts: OpenOptions): Promise<FileClient> {
    if (!NAME_PATTERN.test(opts.clientName)) {
      throw new RcppError('USAGE', `${quote(opts.clientName)} is not a valid client name.`);
    }
    const idleTimeoutMs = opts.idleTimeoutMs ?? 60_000;
    const ch = new FrameChannel(stream, { peer: 'the server', idleTimeoutMs });
    try {
      ch.send({
        t: 'hello',
        v: PROTOCOL_VERSION,
        client: opts.clientName,
        features: [],
        idleMs: idleTimeoutMs,
      });
      const msg = await ch.readMessage(opts.signal);
      if (msg.t === 'error') throw withHint(new RcppError(msg.code, msg.message));
      if (msg.t !== 'welcome') throw protocolError(`The server sent ${msg.t} instead of welcome.`);
      ch.peer = `the server ${msg.server}`;
      const peerId = opts.serverFingerprint ?? `name:${msg.server}`;
      return new FileClient(ch, msg.server, heartbeatMs(msg.idleMs), peerId);
    } catch (err) {
      ch.destroy();
      throw withHint(err);
    }
  }

  async list(
    path: string,
    opts: { signal?: AbortSignal; recursive?: boolean } = {},
  ): Promise<ListEntry[]> {
    const p = normalizeUserPath(path);
    checkRelativePath(p, { allowRoot: true });
    const entries = await this.exclusive(opts.signal, (signal) =>
      this.doList(p === '.' ? '' : p, opts.recursive ?? false, signal),
    );
    return entries;
  }

  async get(
    remotePaths: string[],
    localDir: string,
    opts: TransferOptions = {},
  ): Promise<TransferResult[]> {
    const localRoot = await SafeRoot.open(localDir);
    const byRequest: TransferResult[][] = remotePaths.map(() => []);
    const sent: string[] = [];
    const origin: number[] = [];
    remotePaths.forEach((raw, n) => {
      const p = normalizeUserPath(raw);
      try {
        checkRelativePath(p);
        sent.push(p);
        origin.push(n);
      } catch (err) {
        byRequest[n]!.push(failed('get', p, err));
      }
    });
    if (sent.length > MAX_REQUEST_PATHS) {
      throw new RcppError(
        'USAGE',
        `One get names at most ${MAX_REQUEST_PATHS} paths.`,
        'Split the command.',
      );
    }
    if (sent.length > 0) {
      await this.exclusive(opts.signal, (signal) =>
        this.doGet(sent, localRoot, localDir, opts, signal, (r, result) =>
          byRequest[origin[r]!]!.push(result),
        ),
      );
    }
    return byRequest.flat();
  }

  async put(
    localPaths: string[],
    remoteDir: string,
    opts: TransferOptions = {},
  ): Promise<TransferResult[]> {
    let dir = normalizeUserPath(remoteDir);
    if (dir === '.') dir = '';
    if (dir !== '') checkRelativePath(dir);
    const m = await manifestForPut(localPaths, dir, opts.signal);
    const byRequest: TransferResult[][] = localPaths.map(() => []);
    for (const p of m.problems)
      byRequest[p.root]!.push(failed('put', p.path, p.error, p.localPath ?? localPaths[p.root]));
    if (m.files.length > 0 || m.dirs.length > 0) {
      await this.exclusive(opts.signal, (signal) =>
        this.doPut(m, opts, signal, (r, result) => byRequest[r]!.push(result)),
      );
    }
    return byRequest.flat();
  }

  /** Says bye and ends the stream; a command still running is cut. Idempotent. */
  close(): Promise<void> {
    const st = this.state;
    if (st.s === 'closed') return st.closing;
    const closing = (async () => {
      if (st.s !== 'ready' || !this.ch.writable) {
        this.ch.destroy();
        return;
      }
      this.ch.send({ t: 'bye' });
      // The server closes on bye; we wait for that instead of closing first, so our punching port
      // is not left in TIME_WAIT toward the server (the next command reuses the same 4-tuple).
      await this.ch.end(2000, { sendFin: false });
    })();
    this.on({ e: 'close', closing });
    return closing;
  }

  private exclusive<T>(
    signal: AbortSignal | undefined,
    fn: (signal?: AbortSignal) => Promise<T>,
  ): Promise<T> {
    const run = this.line.then(async () => {
      const st = this.state;
      if (st.s === 'closed')
        throw new RcppError('CONNECTION_LOST', 'This connection to the server was closed.');
      if (st.s === 'broken') throw st.error;
      if (signal?.aborted) throw abortError(signal);
      this.on({ e: 'start' });
      this.ch.startHeartbeat(this.heartbeat);
      try {
        const out = await fn(signal);
        this.on({ e: 'finish' });
        return out;
      } catch (err) {
        if (err instanceof Refused) {
          this.on({ e: 'finish' });
          throw withHint(err.error);
        }
        const e = withHint(err);
        this.on({
          e: 'fail',
          error: new RcppError(
            'CONNECTION_LOST',
            `The connection to ${this.ch.peer} was closed after an error: ${e.message}`,
            'Connect again.',
          ),
        });
        this.ch.destroy();
        throw e;
      } finally {
        this.ch.stopHeartbeat();
      }
    });
    this.line = run.catch(() => {});
    return run;
  }

  private async doList(
    path: string,
    recursive: boolean,
    signal?: AbortSignal,
  ): Promise<ListEntry[]> {
    this.ch.send({ t: 'list', path, recursive });
    const entries: ListEntry[] = [];
    for (;;) {
      const msg = await this.ch.readMessage(signal);
      if (msg.t === 'error') throw new Refused(new RcppError(msg.code, msg.message));
      if (msg.t !== 'listing')
        throw protocolError(`The server sent ${msg.t} instead of a listing.`);
      for (const e of msg.entries) {
        try {
          checkRelativePath(e.path);
        } catch {
          throw protocolError(`The server listed an unsafe name ${quote(e.path)}.`);
        }
        entries.push(e);
      }
      if (entries.length > MAX_LISTING_ENTRIES)
        throw protocolError('The server sent a longer listing than allowed.');
      if (msg.last) return entries;
    }
  }

  /** Reads manifest parts; a manifest over the command budget breaks the protocol. */
  private async readManifest(roots: number, signal?: AbortSignal) {
    const files: ManifestFile[] = [];
    const dirs: ManifestDir[] = [];
    const problems: Problem[] = [];
    const budget = CommandBudget.forReading();
    const over = (): RcppError =>
      protocolError(
        `The server sent a larger manifest than one command may hold (${budget.describe()}).`,
      );
    for (;;) {
      const msg = await this.ch.readMessage(signal);
      if (msg.t === 'error') throw new RcppError(msg.code, msg.message);
      if (msg.t !== 'manifest')
        throw protocolError(`The server sent ${msg.t} instead of a manifest.`);
      for (const f of msg.files) {
        if (f.i !== files.length || f.root >= roots)
          throw protocolError('The server sent a malformed manifest.');
        if (!budget.addFile(f.path)) throw over();
        files.push(f);
      }
      for (const d of msg.dirs) {
        if (d.root >= roots) throw protocolError('The server sent a malformed manifest.');
        if (!budget.addDir(d.path)) throw over();
        dirs.push(d);
      }
      for (const p of msg.problems) {
        if (p.root >= roots) throw protocolError('The server sent a malformed manifest.');
        if (!budget.addProblem(p.path, p.message)) throw over();
        problems.push(p);
      }
      if (msg.last) return { files, dirs, problems };
    }
  }

  private async doGet(
    sent: string[],
    localRoot: SafeRoot,
    localDir: string,
    opts: TransferOptions,
    signal: AbortSignal | undefined,
    add: (root: number, result: TransferResult) => void,
  ): Promise<void> {
    this.ch.send({ t: 'get', paths: sent });
    const m = await this.readManifest(sent.length, signal);
    for (const p of m.problems)
      add(p.root, failed('get', p.path, new RcppError(p.code, p.message)));
    // Every folder a get brings is named in its manifest: no more may be created.
    localRoot.allowNewFolders(m.dirs.length + MAX_PATH_DEPTH);
    const dirTimes: { abs: string; mtimeMs: number }[] = [];
    for (const d of m.dirs) {
      try {
        const dest = destination(sent, d.root, d.path);
        dirTimes.push({
          abs: await localRoot.ensureDir(checkRelativePath(dest), dest),
          mtimeMs: d.mtimeMs,
        });
      } catch (err) {
        if (err instanceof RcppError && (err.code === 'ABORTED' || err.code === 'TIMEOUT'))
          throw err;
        // The files inside a refused folder are refused one by one with the reason.
      }
    }
    const dests = new Map<number, string>();
    const taken = new Set<string>();
    const specs = m.files.map((f): ReceiveSpec | { i: number; refusal: RcppError } => {
      try {
        const dest = destination(sent, f.root, f.path);
        // Two names a case-insensitive or normalizing disk would store as one file are one file.
        const key = foldName(dest);
        if (taken.has(key))
          throw new RcppError(
            'PATH_REFUSED',
            `${quote(dest)} would be received twice by one command.`,
          );
        taken.add(key);
        dests.set(f.i, dest);
        return {
          i: f.i,
          rel: dest,
          shown: f.path,
          size: f.size,
          mtimeMs: f.mtimeMs,
          peer: this.peerId,
        };
      } catch (err) {
        return { i: f.i, refusal: withHint(err) };
      }
    });
    const prep = await prepareAll(localRoot, specs, opts.force ?? false, signal);
    try {
      sendAccept(this.ch, prep.accept, prep.refused, true);
    } catch (err) {
      await releaseAll(prep.prepared);
      throw err;
    }
    const events = progressEvents('get', opts.onProgress, (i) => {
      const f = m.files[i];
      return f && { file: f.path, size: f.size };
    });
    opts.onProgress?.({
      type: 'transfer:plan',
      op: 'get',
      files: prep.prepared.size,
      bytes: [...prep.prepared.values()].reduce((n, p) => n + p.spec.size, 0),
    });
    for (const r of prep.refused) events.failed?.(r.i, new RcppError(r.code, r.message));
    const outcomes = await receiveFiles(this.ch, prep.prepared, {
      ...(signal ? { signal } : {}),
      events,
      dirTimes,
    });
    const refused = new Map(prep.refused.map((r) => [r.i, r] as const));
    for (const f of m.files) {
      const dest = dests.get(f.i);
      const localPath = dest === undefined ? undefined : join(localDir, ...dest.split('/'));
      add(f.root, result('get', f, localPath, refused.get(f.i), outcomes.get(f.i)));
    }
  }

  private async doPut(
    m: Manifest,
    opts: TransferOptions,
    signal: AbortSignal | undefined,
    add: (root: number, result: TransferResult) => void,
  ): Promise<void> {
    // Folders first: the server creates only folders an entry has named by then.
    const parts = packParts({
      dirs: m.dirs.map(({ path, mtimeMs }) => ({ path, mtimeMs })),
      files: m.files.map(({ i, path, size, mtimeMs }) => ({ i, path, size, mtimeMs })),
    });
    const force = opts.force ?? false;
    parts.forEach((p, n) => this.ch.send({ t: 'put', ...p, force, last: n === parts.length - 1 }));
    const accepted = await readAccept(this.ch, (i) => i < m.files.length, signal);
    const events = progressEvents('put', opts.onProgress, (i) => {
      const f = m.files[i];
      return f && { file: f.path, size: f.size };
    });
    opts.onProgress?.({
      type: 'transfer:plan',
      op: 'put',
      files: accepted.files.length,
      bytes: accepted.files.reduce((n, a) => n + (m.files[a.i]?.size ?? 0), 0),
    });
    for (const r of accepted.refused) events.failed?.(r.i, new RcppError(r.code, r.message));
    const outcomes = await sendFiles(
      this.ch,
      accepted.files.map((a) => {
        const f = m.files[a.i]!;
        return {
          spec: { i: f.i, abs: f.abs, shown: f.path, size: f.size, mtimeMs: f.mtimeMs },
          ...(a.resume ? { resume: a.resume } : {}),
        };
      }),
      { ...(signal ? { signal } : {}), events },
    );
    const refused = new Map(accepted.refused.map((r) => [r.i, r] as const));
    for (const f of m.files)
      add(f.root, result('put', f, f.abs, refused.get(f.i), outcomes.get(f.i)));
  }
}

/** Where a file of a get lands under localDir: its path from the requested item's parent down. */
function destination(sent: readonly string[], root: number, path: string): string {
  const req = sent[root]!;
  if (path !== req && !path.startsWith(`${req}/`)) {
    throw new RcppError(
      'PATH_REFUSED',
      `The server named ${quote(path)}, which is not inside ${quote(req)} that was asked for.`,
    );
  }
  const base = posix.dirname(req);
  const dest = base === '.' ? path : path.slice(base.length + 1);
  checkRelativePath(dest);
  return dest;
}

function result(
  op: 'get' | 'put',
  f: { path: string; size: number },
  localPath: string | undefined,
  refusal: { code: ErrorCode; message: string } | undefined,
  outcome: FileOutcome | undefined,
): TransferResult {
  if (refusal) return failed(op, f.path, new RcppError(refusal.code, refusal.message), localPath);
  if (!outcome)
    return failed(
      op,
      f.path,
      protocolError(`No result came back for ${quote(f.path)}.`),
      localPath,
    );
  if (!outcome.ok) return failed(op, f.path, outcome.error, localPath);
  return {
    ok: true,
    op,
    file: f.path,
    localPath: localPath ?? '',
    bytes: f.size,
    resumedBytes: outcome.resumedBytes,
    sha256: outcome.sha256,
    transferMs: outcome.transferMs,
  };
}
