// The console's last line of defence against terminal escape injection: a file name, a peer name or
// a sentence from a peer may hold ESC sequences (clear the screen, set the clipboard with OSC 52,
// forge a log line after a newline) or bidi overrides that disguise a name. The view passes every
// line it prints through escapeControls(); the newlines it writes itself are added afterwards.
import { BIDI_CHARS, CONTROL_CHARS, LONE_SURROGATE } from '../protocol/text.js';

const UNSAFE = new RegExp(
  `${CONTROL_CHARS.source}|${BIDI_CHARS.source}|${LONE_SURROGATE.source}`,
  'gu',
);

/** C0 (newline and tab included), DEL, C1, bidi controls and lone surrogates shown as \uXXXX. */
export function escapeControls(text: string): string {
  return text.replace(UNSAFE, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
