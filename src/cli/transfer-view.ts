// The progress of a get or put, file by file and overall.
//
// In a terminal: live lines drawn by cli-progress at the bottom, the file that is moving now
// ("photo.jpg  58% [=====     ] 580.00 MiB/1.00 GiB 221.15 MiB/s ETA 2s") and, when more than
// one file moves, the whole command ("2/7 files  40% [===   ] 1.20 GiB/3.00 GiB 200.00 MiB/s ETA 9s").
// Each finished file leaves one line above them ("photo.jpg 100% [=====] 1.00 GiB 221.15 MiB/s
// Complete."), and so does a line the caller logs meanwhile. Every line is fitted to the width.
// Without a terminal: only the finished-file lines, at full width, one per file.
//
// Files are tracked by name: several may be in flight at once (the next one streams while the last
// one is verified), so a file's numbers never mix with another's.
import cliProgress from 'cli-progress';
import { formatBytes, formatEta, formatSpeed } from './format.js';
import { fitLine, type BarLine } from './progress-line.js';
import { escapeControls } from './safe-text.js';

export interface TransferViewOptions {
  stream: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  /** Bars only in a terminal and not under --json. */
  live: boolean;
  /** Writes one permanent line (the caller adds its prefix and newline). */
  writeLine: (text: string) => void;
  now: () => number;
}

/** After this many files, finished files are counted instead of listed. */
export const LISTED_FILES = 10;
const SPEED_WINDOW_MS = 3000;
const REDRAW_MS = 100;

interface FileState {
  /** The name as shown: control characters escaped. */
  label: string;
  total: number;
  resumedFrom: number;
  done: number;
  started: number;
  samples: Sample[];
}

interface Sample {
  t: number;
  bytes: number;
}

export class TransferView {
  private readonly inFlight = new Map<string, FileState>();
  /** The file the live file line shows: the last one started that is still in flight. */
  private shown: FileState | undefined;
  private plan: { files: number; bytes: number } | undefined;
  private filesStarted = 0;
  private filesDone = 0;
  private bytesOfFinished = 0;
  private totalSamples: Sample[] = [];
  private listed = 0;
  private unlistedFiles = 0;
  private unlistedBytes = 0;
  private bars:
    | { multi: cliProgress.MultiBar; file: cliProgress.SingleBar; total?: cliProgress.SingleBar }
    | undefined;
  private lastRedraw = 0;

  constructor(private readonly opts: TransferViewOptions) {}

  /** True while live lines are on the screen (other output must go through log()). */
  get isLive(): boolean {
    return this.bars !== undefined;
  }

  hasFileInFlight(): boolean {
    return this.inFlight.size > 0;
  }

  setPlan(files: number, bytes: number): void {
    this.plan = { files, bytes };
  }

  start(file: string, total: number, resumedFrom: number): void {
    const now = this.opts.now();
    if (this.filesStarted === 0) this.totalSamples = [{ t: now, bytes: resumedFrom }];
    this.filesStarted++;
    const label = escapeControls(file);
    if (this.listed < LISTED_FILES && resumedFrom > 0) {
      this.log(`Resuming ${label} from ${formatBytes(resumedFrom)} of ${formatBytes(total)}.`);
    }
    const state: FileState = {
      label,
      total,
      resumedFrom,
      done: resumedFrom,
      started: now,
      samples: [{ t: now, bytes: resumedFrom }],
    };
    this.inFlight.set(file, state);
    this.shown = state;
    if (this.opts.live) this.showBars();
    this.redraw(true);
  }

  bytes(file: string, done: number): void {
    const f = this.inFlight.get(file);
    if (!f) return;
    const now = this.opts.now();
    f.done = Math.min(Math.max(done, f.done), Math.max(f.total, done));
    addSample(f.samples, now, f.done);
    addSample(this.totalSamples, now, this.overallDone());
    this.redraw(false);
  }

  done(file: string, bytes: number): void {
    this.end(file, bytes, 'Complete.');
  }

  failed(file: string): void {
    this.end(file, undefined, 'Failed.');
  }

  /** A permanent line: above the live lines while they show, else straight out. */
  log(text: string): void {
    if (this.bars) {
      this.bars.multi.log(`${text}\n`);
      this.redraw(true);
    } else {
      this.opts.writeLine(text);
    }
  }

  /**
   * Leaves the live lines on the screen as they are now, each ended by a newline (Ctrl-C, an error),
   * and forgets the files in flight; without a terminal, writes their lines once.
   */
  freeze(): void {
    const lines = this.liveLines();
    this.inFlight.clear();
    this.shown = undefined;
    if (this.bars) {
      for (const l of lines) this.bars.multi.log(`${l}\n`);
      this.stopBars();
    } else {
      for (const l of lines) this.opts.writeLine(l);
    }
  }

  /** The command ended: clears the live lines and counts the files that were not listed. */
  finish(): void {
    this.inFlight.clear();
    this.shown = undefined;
    this.stopBars();
    if (this.unlistedFiles > 0) {
      this.opts.writeLine(
        `... and ${this.unlistedFiles} more files (${formatBytes(this.unlistedBytes)}).`,
      );
      this.unlistedFiles = 0;
      this.unlistedBytes = 0;
    }
  }

  private end(file: string, bytes: number | undefined, status: string): void {
    const f = this.inFlight.get(file);
    if (!f) return; // refused before it started: the command's error lines say why
    const now = this.opts.now();
    this.inFlight.delete(file);
    if (this.shown === f) this.shown = undefined;
    if (bytes !== undefined) {
      f.done = bytes;
      this.filesDone++;
      this.bytesOfFinished += bytes;
    } else {
      // a failed file stops counting; what it had moved stays in the overall figure
      this.bytesOfFinished += f.done;
    }
    addSample(this.totalSamples, now, this.overallDone());
    if (this.listed < LISTED_FILES || bytes === undefined) {
      this.listed++;
      const line: BarLine = {
        name: f.label,
        ratio: f.total === 0 ? 1 : f.done / f.total,
        amount: bytes === undefined ? amountOf(f.done, f.total) : formatBytes(f.total),
        speed: formatSpeed(f.done - f.resumedFrom, now - f.started),
        tail: status,
        tailIsStatus: true,
      };
      this.log(fitLine(line, this.width()));
    } else {
      this.unlistedFiles++;
      this.unlistedBytes += f.total;
      this.redraw(true);
    }
  }

  private overallDone(): number {
    let sum = this.bytesOfFinished;
    for (const f of this.inFlight.values()) sum += f.done;
    return sum;
  }

  private multiFile(): boolean {
    return this.plan ? this.plan.files > 1 : this.filesStarted > 1;
  }

  private showBars(): void {
    if (!this.bars) {
      const multi = new cliProgress.MultiBar({
        stream: this.opts.stream,
        format: (_o: unknown, _p: unknown, payload: { line?: () => string }) =>
          payload.line?.() ?? '',
        hideCursor: true,
        clearOnComplete: true,
        fps: 10,
      });
      const file = multi.create(1, 0, { line: () => this.fileLine() });
      this.bars = { multi, file };
    }
    if (this.multiFile() && !this.bars.total) {
      this.bars.total = this.bars.multi.create(1, 0, { line: () => this.totalLine() });
    }
  }

  private stopBars(): void {
    if (!this.bars) return;
    this.bars.multi.update(); // writes what was logged
    this.bars.multi.stop();
    this.bars = undefined;
  }

  private redraw(force: boolean): void {
    if (!this.bars) return;
    const now = this.opts.now();
    if (!force && now - this.lastRedraw < REDRAW_MS) return;
    this.lastRedraw = now;
    this.bars.multi.update();
  }

  private liveLines(): string[] {
    const lines: string[] = [];
    if (this.shown) lines.push(this.fileLine());
    if (this.multiFile() && this.filesStarted > 0) lines.push(this.totalLine());
    return lines;
  }

  private fileLine(): string {
    const f = this.shown;
    if (!f) return '';
    const speed = rate(f.samples);
    return fitLine(
      {
        name: f.label,
        ratio: f.total === 0 ? 1 : f.done / f.total,
        amount: amountOf(f.done, f.total),
        speed: speed === undefined ? '-' : `${formatBytes(speed)}/s`,
        tail: eta(f.total - f.done, speed),
      },
      this.width(),
    );
  }

  private totalLine(): string {
    const done = this.overallDone();
    const speed = rate(this.totalSamples);
    const speedText = speed === undefined ? '-' : `${formatBytes(speed)}/s`;
    if (!this.plan) {
      return fitLine(
        {
          name: `${this.filesDone} files done`,
          ratio: undefined,
          amount: formatBytes(done),
          speed: speedText,
        },
        this.width(),
      );
    }
    const total = Math.max(this.plan.bytes, done);
    return fitLine(
      {
        name: `${this.filesDone}/${this.plan.files} files`,
        ratio: total === 0 ? 1 : done / total,
        amount: amountOf(done, total),
        speed: speedText,
        tail: eta(total - done, speed),
      },
      this.width(),
    );
  }

  /** Terminal columns minus one: writing the last column makes some terminals wrap. */
  private width(): number | undefined {
    if (!this.opts.live) return undefined;
    const columns = this.opts.stream.columns;
    return Math.max(20, (columns && columns > 0 ? columns : 80) - 1);
  }
}

function amountOf(done: number, total: number): string {
  return `${formatBytes(done)}/${formatBytes(total)}`;
}

function eta(remaining: number, speed: number | undefined): string {
  if (remaining <= 0) return '';
  return speed === undefined || speed <= 0
    ? 'ETA -'
    : `ETA ${formatEta((remaining / speed) * 1000)}`;
}

function addSample(samples: Sample[], t: number, bytes: number): void {
  samples.push({ t, bytes });
  // keep one sample older than the window, so the window is always covered
  while (samples.length > 2 && (samples[1]?.t ?? t) <= t - SPEED_WINDOW_MS) samples.shift();
}

/** Bytes per second over the last few seconds; undefined before there is any time to measure. */
function rate(samples: Sample[]): number | undefined {
  const first = samples[0];
  const last = samples[samples.length - 1];
  if (!first || !last || last.t - first.t < 200) return undefined;
  return ((last.bytes - first.bytes) * 1000) / (last.t - first.t);
}
