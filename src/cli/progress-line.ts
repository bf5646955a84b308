// One progress line, fitted to the terminal: "photo.jpg  58% [=================             ]
// 580.00 MiB/1.00 GiB 221.15 MiB/s ETA 2s". When the terminal is too narrow, the line gives up
// parts in a fixed order (the ETA, then the speed, then the bar, then the amounts) and shortens the
// name in its middle with an ellipsis; the percentage always stays. Pure: the view renders the
// string, the tests read it.

export interface BarLine {
  name: string;
  /** 0..1; undefined when the total is not known (no percentage, no bar). */
  ratio: number | undefined;
  /** "580.00 MiB/1.00 GiB" while running, "1.00 GiB" when done. */
  amount: string;
  speed?: string;
  /** "ETA 2s" while running; a status ("Complete.", "Failed.") when done. */
  tail?: string;
  /** A status tail is worth more than the amounts; an ETA is the first thing to go. */
  tailIsStatus?: boolean;
}

export const BAR_WIDTH = 30;
const MIN_BAR = 10;
const MIN_NAME = 12;

type Part = 'bar' | 'amount' | 'speed' | 'tail';

// What stays, widest first; the first set that fits wins.
const PROGRESS_LEVELS: Part[][] = [
  ['bar', 'amount', 'speed', 'tail'],
  ['bar', 'amount', 'speed'],
  ['bar', 'amount'],
  ['amount'],
  [],
];
const STATUS_LEVELS: Part[][] = [
  ['bar', 'amount', 'speed', 'tail'],
  ['bar', 'amount', 'tail'],
  ['amount', 'tail'],
  ['tail'],
  [],
];

/** The line for a terminal `width` columns wide; undefined width: everything at full size. */
export function fitLine(line: BarLine, width?: number): string {
  if (width === undefined) return compose(line, allParts(line), line.name, BAR_WIDTH);
  const levels = line.tailIsStatus ? STATUS_LEVELS : PROGRESS_LEVELS;
  const nameWidth = displayWidth(line.name);
  for (const level of levels) {
    const parts = level.filter((p) => has(line, p));
    const minName = Math.min(nameWidth, MIN_NAME);
    const minBar = parts.includes('bar') ? MIN_BAR : 0;
    const fixed = displayWidth(compose(line, parts, '', minBar));
    if (fixed + minName > width) continue;
    const name = shorten(line.name, Math.min(nameWidth, width - fixed));
    const bar = minBar + Math.min(BAR_WIDTH - minBar, width - fixed - displayWidth(name));
    return compose(line, parts, name, parts.includes('bar') ? bar : 0);
  }
  // Narrower than a name and a percentage: keep the percentage, cut the name to what is left.
  const rest = compose(line, [], '', 0);
  return cutToWidth(compose(line, [], shorten(line.name, width - displayWidth(rest)), 0), width);
}

function allParts(line: BarLine): Part[] {
  return (['bar', 'amount', 'speed', 'tail'] as const).filter((p) => has(line, p));
}

function has(line: BarLine, part: Part): boolean {
  switch (part) {
    case 'bar':
      return line.ratio !== undefined;
    case 'amount':
      return line.amount !== '';
    case 'speed':
      return line.speed !== undefined && line.speed !== '';
    case 'tail':
      return line.tail !== undefined && line.tail !== '';
  }
}

function compose(line: BarLine, parts: Part[], name: string, barWidth: number): string {
  const out = [name];
  // Floored, so 100% means done; in hundredths of a percent, where 0.58 * 100 = 57.99... is no issue.
  const basis =
    line.ratio === undefined ? undefined : Math.floor(clamp(line.ratio) * 10_000 + 1e-6);
  if (basis !== undefined) out.push(`${Math.floor(basis / 100)}%`.padStart(4));
  if (parts.includes('bar') && basis !== undefined) {
    const filled = Math.floor((basis * barWidth) / 10_000);
    out.push(`[${'='.repeat(filled)}${' '.repeat(barWidth - filled)}]`);
  }
  if (parts.includes('amount')) out.push(line.amount);
  if (parts.includes('speed') && line.speed) out.push(line.speed);
  if (parts.includes('tail') && line.tail) out.push(line.tail);
  return out.join(' ');
}

function clamp(ratio: number): number {
  return Math.min(Math.max(ratio, 0), 1);
}

/** The text in at most `width` columns, its middle replaced by "…" when it does not fit. */
export function shorten(text: string, width: number): string {
  if (displayWidth(text) <= width) return text;
  if (width <= 1) return width === 1 ? '…' : '';
  const chars = [...text];
  const headWidth = Math.ceil((width - 1) * 0.4);
  const head = cutToWidth(text, headWidth);
  let tail = '';
  for (let i = chars.length - 1; i >= 0; i--) {
    const next = (chars[i] ?? '') + tail;
    if (displayWidth(head) + 1 + displayWidth(next) > width) break;
    tail = next;
  }
  return `${head}…${tail}`;
}

export function cutToWidth(text: string, width: number): string {
  let out = '';
  let used = 0;
  for (const ch of text) {
    const w = charWidth(ch);
    if (used + w > width) break;
    out += ch;
    used += w;
  }
  return out;
}

/** Columns a terminal gives the text: wide East Asian characters take two, combining marks none. */
export function displayWidth(text: string): number {
  let width = 0;
  for (const ch of text) width += charWidth(ch);
  return width;
}

function charWidth(ch: string): number {
  const cp = ch.codePointAt(0) ?? 0;
  if (/\p{Mn}|\p{Me}|\u200b|\u200d/u.test(ch)) return 0;
  if (
    (cp >= 0x1100 && cp <= 0x115f) ||
    (cp >= 0x2e80 && cp <= 0xa4cf && cp !== 0x303f) ||
    (cp >= 0xac00 && cp <= 0xd7a3) ||
    (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0xfe30 && cp <= 0xfe4f) ||
    (cp >= 0xff00 && cp <= 0xff60) ||
    (cp >= 0xffe0 && cp <= 0xffe6) ||
    (cp >= 0x1f300 && cp <= 0x1faff) ||
    (cp >= 0x20000 && cp <= 0x3fffd)
  ) {
    return 2;
  }
  return 1;
}
