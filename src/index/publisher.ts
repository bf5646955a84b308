// Keeps a file server's index on the rendezvous up to date while the server runs.
//
//   start       -> scan the folder, encode the index, watch the folders
//   a change    -> idle -> due (timer at scanDueAt) -> scanning -> idle
//                  a change while scanning makes the scan finish into `due` again
//   every scan  -> an index that differs from the last one (paths, sizes, times, truncation)
//                  is encoded and handed to the attached sink; an unchanged one is not sent
//   attach      -> the rendezvous session (sink) changed: the current index is sent to it at once
//   close       -> watches and timers closed, a running scan aborted; idempotent
//
// Library code: it never prints, it reports IndexEvents.
import { createHash } from 'node:crypto';
import { abortError, isRcppError } from '../errors.js';
import { logger } from '../log.js';
import { FolderWatch, type WatchCoverage } from './folder-watch.js';
import { encodeIndex, entryLines, type IndexSummary } from './index-file.js';
import {
  DEFAULT_RESCAN_TIMING,
  periodicRescanMs,
  scanDueAt,
  type ChangeWindow,
  type LastScan,
  type RescanTiming,
} from './rescan-timing.js';
import { scanFolder, type FolderScan } from './scan-folder.js';

const log = logger('index');

export type IndexEvent =
  | { type: 'index:scanned'; files: number; bytes: number; problems: number; ms: number }
  | {
      type: 'index:published';
      summary: IndexSummary;
      /** Bytes stored on the rendezvous. */
      indexBytes: number;
      /** Scanning the folder and encoding the index. */
      buildMs: number;
      /** Sending it to the rendezvous, until the rendezvous answered. */
      uploadMs: number;
    }
  | { type: 'index:publish-failed'; message: string }
  | { type: 'index:scan-failed'; message: string }
  | { type: 'index:watch-limited'; coverage: WatchCoverage };

/** Sends index bytes to the rendezvous (one session's worth). */
export type IndexSink = (data: Buffer, signal: AbortSignal) => Promise<void>;

export interface IndexPublisherOptions {
  workDir: string;
  serverName: string;
  /** The rendezvous's limit for one index. */
  maxBytes: number;
  onEvent?: (event: IndexEvent) => void;
  timing?: RescanTiming;
}

type ScanState =
  | { kind: 'idle'; periodic: NodeJS.Timeout | undefined }
  | { kind: 'due'; changes: ChangeWindow; timer: NodeJS.Timeout }
  | { kind: 'scanning'; changes: ChangeWindow | undefined; startedAt: number }
  | { kind: 'closed' };

interface Current {
  digest: string;
  data: Buffer;
  summary: IndexSummary;
  /** From the start of the scan that produced it until it was encoded. */
  buildMs: number;
}

interface Attached {
  sink: IndexSink;
  signal: AbortSignal;
  /** Digest of the index this sink holds. */
  holds: string | undefined;
}

export class IndexPublisher {
  private state: ScanState = { kind: 'idle', periodic: undefined };
  private readonly stop = new AbortController();
  private readonly timing: RescanTiming;
  private readonly watch: FolderWatch;
  private lastScan: LastScan | undefined;
  private current: Current | undefined;
  private attached: Attached | undefined;
  private publishing: Promise<void> | undefined;
  private publishAgain = false;
  private watchLimitReported = false;
  private scanRun: Promise<void> | undefined;

  constructor(private readonly opts: IndexPublisherOptions) {
    this.timing = opts.timing ?? DEFAULT_RESCAN_TIMING;
    this.watch = new FolderWatch(() => this.changed());
  }

  /** Scans now (the first index) and from then on whenever the folder changes. */
  start(): void {
    this.runScan();
  }

  /** Publishes to `sink` from now until `signal` aborts (one rendezvous session). */
  attach(sink: IndexSink, signal: AbortSignal): void {
    if (this.state.kind === 'closed' || signal.aborted) return;
    this.attached = { sink, signal, holds: undefined };
    this.kickPublish();
  }

  /** The index as last encoded (for tests and the bench). */
  get summary(): IndexSummary | undefined {
    return this.current?.summary;
  }

  /** Stops watching and scanning; waits for a publish in flight to end. Idempotent. */
  async close(): Promise<void> {
    this.toIdle();
    this.state = { kind: 'closed' };
    this.stop.abort();
    this.watch.close();
    await this.scanRun;
    await this.publishing;
  }

  /** Something in the folder changed: transitions of the scan state on a change. */
  private changed(now = Date.now()): void {
    const s = this.state;
    switch (s.kind) {
      case 'closed':
        return;
      case 'scanning':
        s.changes = s.changes
          ? { firstChangeAt: s.changes.firstChangeAt, lastChangeAt: now }
          : { firstChangeAt: now, lastChangeAt: now };
        return;
      case 'due':
        clearTimeout(s.timer);
        this.toDue({ firstChangeAt: s.changes.firstChangeAt, lastChangeAt: now }, now);
        return;
      case 'idle':
        this.toDue({ firstChangeAt: now, lastChangeAt: now }, now);
        return;
    }
  }

  private toDue(changes: ChangeWindow, now: number): void {
    this.toIdle();
    const wait = Math.max(0, scanDueAt(this.timing, changes, this.lastScan) - now);
    const timer = setTimeout(() => this.runScan(), wait);
    timer.unref();
    this.state = { kind: 'due', changes, timer };
  }

  /** Clears the timer of the current state (before leaving it). */
  private toIdle(): void {
    const s = this.state;
    if (s.kind === 'due') clearTimeout(s.timer);
    if (s.kind === 'idle' && s.periodic) clearTimeout(s.periodic);
    if (s.kind !== 'closed') this.state = { kind: 'idle', periodic: undefined };
  }

  private runScan(): void {
    if (this.state.kind === 'closed') return;
    this.toIdle();
    const startedAt = Date.now();
    this.state = { kind: 'scanning', changes: undefined, startedAt };
    this.scanRun = this.scanAndEncode(startedAt)
      .catch((err: unknown) => {
        if (this.stop.signal.aborted) return;
        this.opts.onEvent?.({
          type: 'index:scan-failed',
          message: isRcppError(err) ? err.message : String(err),
        });
      })
      .finally(() => this.scanEnded(startedAt));
  }

  /** After a scan: `due` again if the folder changed meanwhile, else idle until the rescan. */
  private scanEnded(startedAt: number): void {
    const s = this.state;
    if (s.kind !== 'scanning') return;
    const endedAt = Date.now();
    this.lastScan = { endedAt, ms: endedAt - startedAt };
    if (s.changes) {
      this.toDue(s.changes, endedAt);
      return;
    }
    const periodic = setTimeout(
      () => this.runScan(),
      periodicRescanMs(this.timing, this.lastScan.ms),
    );
    periodic.unref();
    this.state = { kind: 'idle', periodic };
  }

  private async scanAndEncode(startedAt: number): Promise<void> {
    const scan = await scanFolder(this.opts.workDir, this.stop.signal);
    this.reportWatch(scan);
    this.opts.onEvent?.({
      type: 'index:scanned',
      files: scan.entries.length,
      bytes: scan.entries.reduce((sum, e) => sum + e.size, 0),
      problems: scan.problems,
      ms: scan.ms,
    });
    scan.entries.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    const digest = createHash('sha256')
      .update(entryLines(scan.entries))
      .update(scan.truncated ? 'truncated' : 'complete')
      .digest('hex');
    if (digest === this.current?.digest) return;
    if (this.stop.signal.aborted) throw abortError(this.stop.signal);
    const { data, summary } = await encodeIndex(this.opts.serverName, scan.entries, {
      maxBytes: this.opts.maxBytes,
      truncated: scan.truncated,
    });
    this.current = { digest, data, summary, buildMs: Date.now() - startedAt };
    log(`index of ${summary.files} files encoded in ${data.length} bytes`);
    this.kickPublish();
  }

  private reportWatch(scan: FolderScan): void {
    const coverage = this.watch.update(scan.folders);
    if (coverage.watched < coverage.folders && !this.watchLimitReported) {
      this.watchLimitReported = true;
      this.opts.onEvent?.({ type: 'index:watch-limited', coverage });
    }
  }

  /** Sends the current index to the attached sink unless it holds it; one send at a time. */
  private kickPublish(): void {
    if (this.publishing) {
      this.publishAgain = true;
      return;
    }
    this.publishing = (async () => {
      do {
        this.publishAgain = false;
        await this.publishOnce();
      } while (this.publishAgain && !this.stop.signal.aborted);
    })().finally(() => {
      this.publishing = undefined;
    });
  }

  private async publishOnce(): Promise<void> {
    const target = this.attached;
    const current = this.current;
    if (!target || !current || target.signal.aborted || target.holds === current.digest) return;
    const signal = AbortSignal.any([target.signal, this.stop.signal]);
    const started = Date.now();
    try {
      await target.sink(current.data, signal);
      target.holds = current.digest;
      this.opts.onEvent?.({
        type: 'index:published',
        summary: current.summary,
        indexBytes: current.data.length,
        buildMs: current.buildMs,
        uploadMs: Date.now() - started,
      });
    } catch (err) {
      if (signal.aborted) return;
      this.opts.onEvent?.({
        type: 'index:publish-failed',
        message: isRcppError(err) ? err.message : String(err),
      });
    }
  }
}
