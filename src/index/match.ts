// What `--search PATTERN` matches, case-insensitively:
//   no * or ?           -> a substring of the path          ("beach" finds photos/2024/beach.jpg)
//   * or ?, no /        -> a glob on the file's own name    ("*.jpg", "IMG_00??.jpg")
//   * or ?, and a /     -> a glob on the whole path         ("photos/*/beach*")
// `*` is any run of characters (across folders in a whole-path glob), `?` one character. Both sides
// are compared in Unicode NFC and lower case, so a name written on a Mac (NFD) still matches. The
// glob matcher backtracks only to the last `*`, so no pattern takes more than length x length steps.
import { RcppError } from '../errors.js';
import { BIDI_CHARS, CONTROL_CHARS } from '../protocol/text.js';

export const MAX_PATTERN_CHARS = 1024;

export type PathMatcher = (path: string) => boolean;

export function compilePattern(pattern: string): PathMatcher {
  if (pattern.trim() === '') {
    throw new RcppError(
      'USAGE',
      'The search pattern is empty.',
      'Give part of a file name, or a pattern such as "*.jpg".',
    );
  }
  if (pattern.length > MAX_PATTERN_CHARS) {
    throw new RcppError(
      'USAGE',
      `The search pattern is longer than ${MAX_PATTERN_CHARS} characters.`,
    );
  }
  if (CONTROL_CHARS.test(pattern) || BIDI_CHARS.test(pattern)) {
    throw new RcppError('USAGE', 'The search pattern contains a control character.');
  }
  const p = fold(pattern);
  if (!/[*?]/.test(p)) return (path) => fold(path).includes(p);
  if (p.includes('/')) return (path) => globMatch(p, fold(path));
  return (path) => globMatch(p, fold(path.slice(path.lastIndexOf('/') + 1)));
}

const ASCII = /^[\x20-\x7e]*$/;

function fold(text: string): string {
  return ASCII.test(text) ? text.toLowerCase() : text.normalize('NFC').toLowerCase();
}

/** Whole-string wildcard match; `?` takes one code point (a surrogate pair counts as one). */
export function globMatch(pattern: string, text: string): boolean {
  let p = 0;
  let t = 0;
  let star = -1;
  let resume = 0;
  while (t < text.length) {
    const c = pattern[p];
    if (c === '*') {
      star = p++;
      resume = t;
    } else if (c === '?') {
      p++;
      t += codePointLength(text, t);
    } else if (c !== undefined && c === text[t]) {
      p++;
      t++;
    } else if (star >= 0) {
      // Let the last * take one more character and try again from there.
      p = star + 1;
      resume += codePointLength(text, resume);
      t = resume;
    } else {
      return false;
    }
  }
  while (pattern[p] === '*') p++;
  return p === pattern.length;
}

function codePointLength(text: string, at: number): number {
  const unit = text.charCodeAt(at);
  const next = text.charCodeAt(at + 1);
  return unit >= 0xd800 && unit <= 0xdbff && next >= 0xdc00 && next <= 0xdfff ? 2 : 1;
}
