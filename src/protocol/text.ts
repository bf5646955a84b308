// Characters that must never reach a terminal or a file name from a peer, and how to show them.
// A peer's sentence or a hostile path may carry terminal escapes or bidi overrides; everything shown
// to a user passes through displaySafe() or quote() first.
/* eslint-disable no-control-regex -- matching control characters is this module's job */

/** C0 controls, DEL and C1 controls. */
export const CONTROL_CHARS = /[\u0000-\u001f\u007f-\u009f]/;

/** Bidirectional text controls (embeddings, overrides, isolates, marks) that can disguise a name. */
export const BIDI_CHARS = /[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]/;

/** A UTF-16 surrogate that is not part of a pair (in `u` mode a well-formed pair is one code point). */
export const LONE_SURROGATE = /\p{Cs}/u;

/**
 * Invisible characters: Unicode format characters (Cf: zero-width space and joiners, the BOM, soft
 * hyphen, word joiner, the bidi controls above...), line and paragraph separators (Zl, Zp), and the
 * Hangul fillers, which render as nothing. Two names that differ only by these look the same.
 */
export const INVISIBLE_CHARS = /[\p{Cf}\p{Zl}\p{Zp}\u115f\u1160\u3164\uffa0]/u;

/**
 * Characters that look like a slash or a backslash (division and fraction slashes, fullwidth and big
 * solidus, box-drawing diagonals...): `docs∕passwd` must not pass for a path inside `docs`.
 */
export const SLASH_LOOKALIKES =
  /[\u2215\u2044\uff0f\u29f8\u2571\u27cb\u1735\u2f03\u3033\u2041\u2216\uff3c\u29f5\u29f9\ufe68\u2572\u27cd]/u;

const UNSAFE_GLOBAL =
  /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c\p{Cf}\p{Zl}\p{Zp}]|\p{Cs}/gu;

/** Replaces every unsafe character with U+FFFD and cuts the text at maxChars. */
export function displaySafe(text: string, maxChars = 8192): string {
  const cut = text.length > maxChars ? `${text.slice(0, maxChars - 1)}…` : text;
  return cut.replace(UNSAFE_GLOBAL, '\ufffd');
}

/** A path or name in double quotes for a sentence, unsafe characters shown as \u escapes. */
export function quote(text: string, maxChars = 200): string {
  const cut = text.length > maxChars ? `${text.slice(0, maxChars - 1)}…` : text;
  const escaped = cut.replace(UNSAFE_GLOBAL, (ch) => {
    const code = ch.codePointAt(0)!;
    return code > 0xffff ? `\\u{${code.toString(16)}}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
  return `"${escaped}"`;
}
