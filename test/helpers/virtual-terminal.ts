// A fake terminal for unit tests of what the CLI draws: a writable stream with isTTY and columns
// that interprets the few control sequences cli-progress and readline write (carriage return,
// newline, cursor up/down/column, erase line, erase below, cursor show/hide, autowrap on/off) into
// a screen of lines, as a real terminal would show them. Any other escape is kept in the text, so a
// test sees it (an injected ESC shows up as "\x1b" on the screen).
/* eslint-disable no-control-regex -- control characters are what these tests look for */
import { Writable } from 'node:stream';

export class VirtualTerminal extends Writable {
  readonly isTTY = true;
  columns: number;
  /** Everything written, raw. */
  raw = '';
  private rows: string[][] = [[]];
  private row = 0;
  private col = 0;

  constructor(columns = 80) {
    super({ decodeStrings: false });
    this.columns = columns;
  }

  override _write(chunk: Buffer | string, _enc: BufferEncoding, done: () => void): void {
    const text = typeof chunk === 'string' ? chunk : chunk.toString('utf8');
    this.raw += text;
    this.feed(text);
    done();
  }

  /** The screen, one string per line, trailing spaces and trailing empty lines removed. */
  lines(): string[] {
    const out = this.rows.map((r) => r.join('').trimEnd());
    while (out.length > 0 && out[out.length - 1] === '') out.pop();
    return out;
  }

  /** The line the cursor is on (where the next output goes). */
  cursorRow(): number {
    return this.row;
  }

  cursorCol(): number {
    return this.col;
  }

  private feed(text: string): void {
    for (let i = 0; i < text.length; i++) {
      const ch = text[i] as string;
      if (ch === '\x1b') {
        const m = /^\x1b(?:\[([?\d;]*)([A-Za-z])|([78]))/.exec(text.slice(i));
        if (m) {
          this.control(m[1] ?? '', m[2] ?? m[3] ?? '');
          i += m[0].length - 1;
          continue;
        }
        this.put('\\x1b');
        continue;
      }
      if (ch === '\r') this.col = 0;
      else if (ch === '\n') {
        // a tty's output processing turns \n into \r\n
        this.row++;
        this.col = 0;
        this.ensureRow();
      } else if (ch < ' ' || ch === '\x7f')
        this.put(`\\x${ch.charCodeAt(0).toString(16).padStart(2, '0')}`);
      else this.put(ch);
    }
  }

  private put(text: string): void {
    const line = this.current();
    for (const ch of text) {
      while (line.length < this.col) line.push(' ');
      line[this.col] = ch;
      this.col++;
    }
  }

  private control(params: string, final: string): void {
    const n = params === '' || params.startsWith('?') ? 1 : Number(params.split(';')[0]);
    const line = this.current();
    switch (final) {
      case 'A':
        this.row = Math.max(0, this.row - n);
        break;
      case 'B':
        this.row += n;
        this.ensureRow();
        break;
      case 'C':
        this.col += n;
        break;
      case 'D':
        this.col = Math.max(0, this.col - n);
        break;
      case 'G':
        this.col = Math.max(0, n - 1);
        break;
      case 'K': {
        const mode = params === '' ? 0 : Number(params);
        if (mode === 0) line.splice(this.col);
        else if (mode === 1) for (let c = 0; c <= this.col && c < line.length; c++) line[c] = ' ';
        else line.splice(0);
        break;
      }
      case 'J':
        line.splice(this.col);
        this.rows.splice(this.row + 1);
        break;
      case 'h':
      case 'l':
      case '7':
      case '8':
        break; // cursor visibility, autowrap, save/restore: nothing on the screen
      default:
        this.put(`\\x1b[${params}${final}`);
    }
  }

  private current(): string[] {
    this.ensureRow();
    return this.rows[this.row] as string[];
  }

  private ensureRow(): void {
    while (this.rows.length <= this.row) this.rows.push([]);
  }
}
