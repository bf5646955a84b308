// One client connection on the file server, from hello to bye.
//
//   await-hello --hello(v ok, admitted)--> ready --list/get/put--> busy (one command) --done--> ready
//   ready --bye--> closed;  any state --peer misbehaves / idle / shutdown--> error {code} sent, closed
//
// Commands run one at a time. A refused list (missing path...) is answered with `error` and the
// session goes on; anything that breaks the protocol, an idle peer (TIMEOUT) or a shutdown (ABORTED)
// ends the session with `error {code, message}`. Nothing a peer sends makes serve() throw.

import { isRcppError, RcppError } from '../errors.js';
import { logger } from '../log.js';
import type { OnProgress } from '../progress.js';
import { CommandBudget } from '../protocol/budget.js';
import { MAX_LISTING_ENTRIES, MAX_PATH_DEPTH, PROTOCOL_VERSION } from '../protocol/limits.js';
import type { ListingEntry, Message, MessageOf } from '../protocol/messages.js';
import { packParts } from '../protocol/parts.js';
import { quote } from '../protocol/text.js';
import { prepareAll, readAccept, releaseAll, sendAccept } from './accept.js';
import { heartbeatMs, type FrameChannel } from './channel.js';
import { manifestForGet } from './manifest.js';
import type { Prepared, ReceiveSpec } from './receive-file.js';
import { checkRelativePath, foldName, SafeRoot } from './safe-path.js';
import { progressEvents } from './client-progress.js';
import { receiveFiles, sendFiles } from './stream-files.js';
import { walkTree } from './walk.js';

const log = logger('server');

/** How the working directory is named to a client: never by its real path. */
const SHARED = 'The shared folder';

export interface SessionContext {
  workDir: string;
  serverName: string;
  idleTimeoutMs: number;
  onProgress: OnProgress;
  /** Who the client is, for the partial files it leaves (its fingerprint, else its name). */
  peerId: string;
  /** Called once the client said hello; throws (BUSY) when the server will not serve it now. */
  admit?: () => void;
  /** A receiving peer: puts only, overwrite only when allowed, progress for each file. */
  receiveOnly?: { allowOverwrite: boolean };
}

export class ServerSession {
  private readonly stopper = new AbortController();
  private heartbeat = 5000;

  constructor(
    private readonly ch: FrameChannel,
    private readonly client: string,
    private readonly ctx: SessionContext,
  ) {}

  stop(reason: RcppError): void {
    this.stopper.abort(reason);
  }

  async run(outer?: AbortSignal): Promise<void> {
    const signal = outer ? AbortSignal.any([outer, this.stopper.signal]) : this.stopper.signal;
    const ch = this.ch;
    let message: string | undefined;
    let greeted = false;
    try {
      await this.handshake(signal);
      greeted = true;
      for (;;) {
        const msg = await ch.readMessage(signal);
        if (msg.t === 'bye') break;
        ch.startHeartbeat(this.heartbeat);
        try {
          await this.dispatch(msg, signal);
        } finally {
          ch.stopHeartbeat();
        }
      }
      // After bye nothing is left to say. We do not send a FIN either: the side that closes first
      // keeps the port pair in TIME_WAIT, which would block the next punch between the same
      // ports. Whoever owns the stream resets it now (see serve.ts).
      ch.stopHeartbeat();
    } catch (err) {
      if (!isRcppError(err)) log(`session of ${this.client} failed: ${String(err)}`);
      const e = isRcppError(err)
        ? err
        : new RcppError('INTERNAL', 'The file server failed unexpectedly.');
      message = e.message;
      if (e.code !== 'CONNECTION_LOST' && ch.writable) {
        ch.send({ t: 'error', code: e.code, message: e.message });
        await ch.end();
      } else {
        ch.destroy();
      }
    } finally {
      // A connection that never said hello is a path that lost the client's race: not a session.
      if (greeted) {
        this.ctx.onProgress({
          type: 'server:session-ended',
          client: this.client,
          ...(message ? { message } : {}),
        });
      }
    }
  }

  private async handshake(signal: AbortSignal): Promise<void> {
    const msg = await this.ch.readMessage(signal);
    if (msg.t !== 'hello') {
      throw new RcppError('PROTOCOL_ERROR', `The client sent ${msg.t} before hello.`);
    }
    this.ctx.admit?.();
    this.heartbeat = heartbeatMs(msg.idleMs);
    this.ch.send({
      t: 'welcome',
      v: PROTOCOL_VERSION,
      server: this.ctx.serverName,
      features: [],
      idleMs: this.ctx.idleTimeoutMs,
    });
  }

  private async dispatch(msg: Message, signal: AbortSignal): Promise<void> {
    if (this.ctx.receiveOnly && msg.t !== 'put') {
      throw new RcppError(
        'PEER_REFUSED',
        `This peer only receives files; it does not answer ${msg.t === 'list' || msg.t === 'get' ? msg.t : 'that'}.`,
      );
    }
    switch (msg.t) {
      case 'list':
        return this.list(msg, signal);
      case 'get':
        return this.get(msg, signal);
      case 'put':
        return this.put(msg, signal);
      default:
        throw new RcppError(
          'PROTOCOL_ERROR',
          `The client sent ${msg.t} where a command (list, get, put or bye) was expected.`,
        );
    }
  }

  /** Reports a request, once its paths were checked: quoted (escapes shown), a long list cut. */
  private request(op: string, paths: readonly string[], refused = 0, more = 0): void {
    const shown = paths.slice(0, 3).map((p) => quote(p, 120));
    const rest = paths.length - shown.length + more;
    let detail = shown.join(', ') + (rest > 0 ? ` and ${rest} more` : '');
    if (refused > 0) {
      detail = detail
        ? `${detail} (${refused} refused)`
        : `${refused} refused path${refused === 1 ? '' : 's'}`;
    }
    this.ctx.onProgress({ type: 'server:request', client: this.client, op, detail });
  }

  private async list(msg: MessageOf<'list'>, signal: AbortSignal): Promise<void> {
    const refused = isRefused(msg.path, true);
    this.request('list', refused ? [] : [msg.path || '.'], refused ? 1 : 0);
    let entries: ListingEntry[];
    let truncated = false;
    try {
      const root = await SafeRoot.open(this.ctx.workDir, SHARED);
      const res = await root.resolveExisting(msg.path, { allowRoot: true });
      if (res.kind === 'file') {
        entries = [
          { path: msg.path, kind: 'file', size: res.stats.size, mtimeMs: res.stats.mtimeMs },
        ];
      } else {
        const rel = checkRelativePath(msg.path, { allowRoot: true }).join('/');
        const w = await walkTree(res.abs, rel, {
          root,
          recursive: msg.recursive,
          maxEntries: MAX_LISTING_ENTRIES,
          signal,
        });
        truncated = w.truncated;
        entries = [
          ...w.dirs.map((d): ListingEntry => ({
            path: d.rel,
            kind: 'dir',
            size: 0,
            mtimeMs: d.mtimeMs,
          })),
          ...w.files.map((f): ListingEntry => ({
            path: f.rel,
            kind: 'file',
            size: f.size,
            mtimeMs: f.mtimeMs,
          })),
        ].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
      }
    } catch (err) {
      if (!isRcppError(err) || err.code === 'ABORTED' || err.code === 'TIMEOUT') throw err;
      this.ch.send({ t: 'error', code: err.code, message: err.message });
      return;
    }
    const parts = packParts({ entries });
    for (const [n, p] of parts.entries()) {
      const last = n === parts.length - 1;
      this.ch.send({ t: 'listing', entries: p.entries, last, truncated: last && truncated });
      await this.ch.flush(signal);
    }
  }

  private async get(msg: MessageOf<'get'>, signal: AbortSignal): Promise<void> {
    const valid = msg.paths.filter((p) => !isRefused(p));
    this.request('get', valid, msg.paths.length - valid.length);
    const root = await SafeRoot.open(this.ctx.workDir, SHARED);
    const m = await manifestForGet(root, msg.paths, signal);
    const wire = {
      files: m.files.map(({ i, root: r, path, size, mtimeMs }) => ({
        i,
        root: r,
        path,
        size,
        mtimeMs,
      })),
      dirs: m.dirs.map(({ root: r, path, mtimeMs }) => ({ root: r, path, mtimeMs })),
      problems: m.problems.map(({ root: r, path, code, message }) => ({
        root: r,
        path,
        code,
        message,
      })),
    };
    // Part by part, each written out before the next is sent: a client that does not read holds
    // one part in our buffers, not the whole manifest.
    const parts = packParts(wire);
    for (const [n, p] of parts.entries()) {
      this.ch.send({ t: 'manifest', ...p, last: n === parts.length - 1 });
      await this.ch.flush(signal);
    }
    const accepted = await readAccept(this.ch, (i) => i < m.files.length, signal);
    const files = accepted.files.map((a) => {
      const f = m.files[a.i]!;
      return {
        spec: { i: f.i, abs: f.abs, shown: f.path, size: f.size, mtimeMs: f.mtimeMs },
        ...(a.resume ? { resume: a.resume } : {}),
      };
    });
    await sendFiles(this.ch, files, { signal });
  }

  /**
   * Receives a put: each part is prepared and accepted as it arrives, then the files stream in. Files
   * and folder entries count against the command budget (a client going over breaks the protocol);
   * a folder is created only when an entry names it (or it leads to the destination, at most
   * MAX_PATH_DEPTH of them), and two names one disk could take for the same file are refused.
   */
  private async put(first: MessageOf<'put'>, signal: AbortSignal): Promise<void> {
    const root = await SafeRoot.open(this.ctx.workDir, SHARED);
    root.allowNewFolders(MAX_PATH_DEPTH);
    const prepared = new Map<number, Prepared>();
    const dirTimes: { abs: string; mtimeMs: number }[] = [];
    const folders = new Set<string>();
    const names = new Set<string>();
    const budget = CommandBudget.forReading();
    const refusals: { file: string; message: string }[] = [];
    let count = 0;
    let msg = first;
    this.describePut(first);
    try {
      for (;;) {
        const specs: (ReceiveSpec | { i: number; refusal: RcppError })[] = [];
        for (const f of msg.files) {
          if (f.i !== count++)
            throw new RcppError('PROTOCOL_ERROR', 'The client numbered its files out of order.');
          if (!budget.addFile(f.path)) throw overBudget(budget);
          const key = foldName(f.path);
          const duplicate = names.has(key);
          names.add(key);
          specs.push(
            duplicate
              ? {
                  i: f.i,
                  refusal: new RcppError(
                    'PATH_REFUSED',
                    `${quote(f.path)} is listed twice in one put (perhaps in another case or Unicode form).`,
                  ),
                }
              : {
                  i: f.i,
                  rel: f.path,
                  shown: f.path,
                  size: f.size,
                  mtimeMs: f.mtimeMs,
                  peer: this.ctx.peerId,
                },
          );
        }
        for (const d of msg.dirs) if (!budget.addDir(d.path)) throw overBudget(budget);
        root.allowNewFolders(msg.dirs.length);
        for (const d of msg.dirs) {
          try {
            const abs = await root.ensureDir(checkRelativePath(d.path), d.path);
            if (!folders.has(abs)) dirTimes.push({ abs, mtimeMs: d.mtimeMs });
            folders.add(abs);
          } catch (err) {
            if (isRcppError(err) && (err.code === 'ABORTED' || err.code === 'TIMEOUT')) throw err;
            // A refused folder: the files inside it are refused one by one with the reason.
          }
        }
        const force = first.force && (this.ctx.receiveOnly?.allowOverwrite ?? true);
        const part = await prepareAll(root, specs, force, signal);
        for (const [i, p] of part.prepared) prepared.set(i, p);
        for (const r of part.refused) {
          const f = msg.files.find((x) => x.i === r.i);
          if (f) refusals.push({ file: f.path, message: r.message });
        }
        sendAccept(this.ch, part.accept, part.refused, msg.last);
        if (msg.last) break;
        const next = await this.ch.readMessage(signal);
        if (next.t !== 'put')
          throw new RcppError(
            'PROTOCOL_ERROR',
            `The client sent ${next.t} in the middle of a put.`,
          );
        msg = next;
      }
    } catch (err) {
      await releaseAll(prepared);
      throw err;
    }
    // A receiving peer shows each file arriving; a file server only logs the request.
    const shown = new Map(
      [...prepared].map(([i, p]) => [i, { file: p.spec.shown, size: p.spec.size }]),
    );
    const events = this.ctx.receiveOnly
      ? progressEvents('get', this.ctx.onProgress, (i) => shown.get(i))
      : {};
    if (this.ctx.receiveOnly) {
      for (const r of refusals) {
        this.ctx.onProgress({ type: 'transfer:failed', op: 'get', ...r });
      }
      this.ctx.onProgress({
        type: 'transfer:plan',
        op: 'get',
        files: prepared.size,
        bytes: [...shown.values()].reduce((n, f) => n + f.size, 0),
      });
    }
    await receiveFiles(this.ch, prepared, { signal, dirTimes, events });
  }

  /** Reports a put from its first part, its paths checked first. */
  private describePut(msg: MessageOf<'put'>): void {
    const paths = [...msg.files, ...msg.dirs].map((e) => e.path);
    const valid = paths.filter((p) => !isRefused(p));
    // The first part may be one of several: say "more" unless it is the last.
    this.request(
      'put',
      valid.slice(0, 1),
      paths.length - valid.length,
      msg.last ? valid.length - 1 : 1,
    );
  }
}

/** Whether a client's path would be refused (checked before anything shows it). */
function isRefused(path: string, allowRoot = false): boolean {
  try {
    checkRelativePath(path, { allowRoot });
    return false;
  } catch {
    return true;
  }
}

function overBudget(budget: CommandBudget): RcppError {
  return new RcppError(
    'PROTOCOL_ERROR',
    `The client offered more than one command may move (${budget.describe()}).`,
  );
}
