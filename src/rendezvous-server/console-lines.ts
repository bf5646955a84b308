// Lines for the embedded rendezvous's console. Every line is made display-safe (a user name or any
// other text a client chose may carry terminal escapes, C1 controls or bidi overrides), and lines
// anyone can cause (refused logins and connections) are limited per source address and in all per
// time window; what was left out is counted and said in one summary line when the window ends.
import { displaySafe } from '../protocol/text.js';

export interface LineLimitOptions {
  /** What the summary line calls the lines it left out, e.g. "refused logins and connections". */
  what: string;
  windowMs?: number;
  /** Lines shown per source address per window. */
  perSource?: number;
  /** Lines shown in all per window. */
  total?: number;
  now?: () => number;
}

/** Source addresses remembered per window; beyond this every source shares one count. */
const MAX_SOURCES = 4096;
const MAX_LINE_CHARS = 1000;

/** Makes one line safe to print on a terminal: controls become U+FFFD, long text is cut. */
export function consoleSafe(text: string): string {
  return displaySafe(text, MAX_LINE_CHARS);
}

export class LimitedLines {
  private readonly windowMs: number;
  private readonly perSource: number;
  private readonly total: number;
  private readonly now: () => number;
  private windowStart: number;
  private readonly shown = new Map<string, number>();
  private shownTotal = 0;
  private hidden = 0;
  private readonly hiddenSources = new Set<string>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly emit: (text: string) => void,
    private readonly opts: LineLimitOptions,
  ) {
    this.windowMs = opts.windowMs ?? 60_000;
    this.perSource = opts.perSource ?? 5;
    this.total = opts.total ?? 30;
    this.now = opts.now ?? Date.now;
    this.windowStart = this.now();
  }

  /** Shows `text` unless this source or everyone has used up the window's lines. */
  line(source: string, text: string): void {
    this.roll(false);
    const key = this.shown.has(source) || this.shown.size < MAX_SOURCES ? source : '*';
    const mine = this.shown.get(key) ?? 0;
    if (mine >= this.perSource || this.shownTotal >= this.total) {
      this.hidden++;
      if (this.hiddenSources.size < MAX_SOURCES) this.hiddenSources.add(source);
      this.timer ??= setTimeout(
        () => {
          this.timer = undefined;
          this.roll(true);
        },
        Math.max(0, this.windowStart + this.windowMs - this.now()),
      ).unref();
      return;
    }
    this.shown.set(key, mine + 1);
    this.shownTotal++;
    this.emit(consoleSafe(text));
  }

  /** Says what is still left out, and stops the timer. */
  close(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.roll(true);
  }

  /** Starts a new window once the current one is over (or when forced), after its summary. */
  private roll(force: boolean): void {
    const now = this.now();
    if (!force && now - this.windowStart < this.windowMs) return;
    if (this.hidden > 0) {
      const sources = this.hiddenSources.size;
      const seconds = Math.max(1, Math.round((now - this.windowStart) / 1000));
      this.emit(
        `${this.hidden} more ${this.opts.what} from ${sources} address${sources === 1 ? '' : 'es'} ` +
          `in the last ${seconds} s were not shown.`,
      );
    }
    clearTimeout(this.timer);
    this.timer = undefined;
    this.windowStart = now;
    this.shown.clear();
    this.shownTotal = 0;
    this.hidden = 0;
    this.hiddenSources.clear();
  }
}
