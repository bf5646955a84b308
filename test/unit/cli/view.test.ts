// The console view as a user sees it: events in, the screen of a fake terminal (or the plain lines
// of a log) out. Time is a fake clock, so speeds and ETAs are exact.
/* eslint-disable no-control-regex -- control characters are what these tests look for */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { afterEach, describe, it } from 'node:test';
import { RcppError } from '../../../src/errors.js';
import type { ProgressEvent } from '../../../src/progress.js';
import { ConsoleView } from '../../../src/cli/view.js';
import { VirtualTerminal } from '../../helpers/virtual-terminal.js';

const KiB = 1024;
const MiB = 1024 * KiB;

class Capture extends Writable {
  text = '';
  override _write(chunk: Buffer | string, _e: BufferEncoding, done: () => void): void {
    this.text += chunk.toString();
    done();
  }
}

/** Views of the running test: finished after each, so no live bar (a timer) outlives a failure. */
const views: ConsoleView[] = [];
afterEach(() => {
  for (const v of views.splice(0)) v.finish();
});

function setup(stderr: NodeJS.WritableStream & { isTTY?: boolean; columns?: number }) {
  const clock = { t: 1_000_000 };
  const stdout = new Capture();
  const view = new ConsoleView({ stdout, stderr, json: false, now: () => clock.t });
  views.push(view);
  const emit = (...events: ProgressEvent[]): void => events.forEach((e) => view.onProgress(e));
  return { view, stdout, clock, emit };
}

const start = (file: string, size: number, resumedFrom = 0): ProgressEvent => ({
  type: 'transfer:start',
  op: 'put',
  file,
  size,
  resumedFrom,
});
const bytes = (file: string, done: number, total: number): ProgressEvent => ({
  type: 'transfer:bytes',
  op: 'put',
  file,
  done,
  total,
});
const done = (file: string, size: number): ProgressEvent => ({
  type: 'transfer:done',
  op: 'put',
  file,
  bytes: size,
  sha256: 'x',
});

/**
 * A put of three files as the transfer layer reports it: the next file starts streaming before the
 * previous one is confirmed, so starts and dones interleave. Each file moves at 1 MiB/s.
 */
function multiFilePut(s: ReturnType<typeof setup>, until: 'middle' | 'end'): void {
  const { emit, clock } = s;
  emit({ type: 'transfer:plan', op: 'put', files: 3, bytes: 100 * KiB + 200_000 + MiB });
  emit(start('mixed/f1.dat', 100 * KiB));
  clock.t += 100;
  emit(bytes('mixed/f1.dat', 100 * KiB, 100 * KiB));
  emit(start('mixed/f2.dat', 200_000));
  clock.t += 50;
  emit(done('mixed/f1.dat', 100 * KiB));
  clock.t += 150;
  emit(bytes('mixed/f2.dat', 200_000, 200_000));
  emit(start('mixed/big.bin', MiB));
  emit(done('mixed/f2.dat', 200_000));
  clock.t += 500;
  emit(bytes('mixed/big.bin', MiB / 2, MiB));
  if (until === 'middle') return;
  clock.t += 500;
  emit(bytes('mixed/big.bin', MiB, MiB));
  emit(done('mixed/big.bin', MiB));
}

describe('ConsoleView: progress in a terminal', () => {
  it('shows each file of a multi-file put with its own size, and the overall line', () => {
    const term = new VirtualTerminal(100);
    const s = setup(term);
    multiFilePut(s, 'middle');
    assert.deepEqual(term.lines(), [
      'mixed/f1.dat 100% [==============================] 100.00 KiB 666.67 KiB/s Complete.',
      'mixed/f2.dat 100% [==============================] 195.31 KiB 976.56 KiB/s Complete.',
      'mixed/big.bin  50% [===============               ] 512.00 KiB/1.00 MiB 1.00 MiB/s ETA 1s',
      '2/3 files  61% [==================            ] 807.31 KiB/1.29 MiB 1009.14 KiB/s ETA 1s',
    ]);
    s.view.finish();
  });

  it('leaves one line per file and no live lines when the put ends', () => {
    const term = new VirtualTerminal(100);
    const s = setup(term);
    multiFilePut(s, 'end');
    s.view.finish();
    assert.deepEqual(term.lines(), [
      'mixed/f1.dat 100% [==============================] 100.00 KiB 666.67 KiB/s Complete.',
      'mixed/f2.dat 100% [==============================] 195.31 KiB 976.56 KiB/s Complete.',
      'mixed/big.bin 100% [==============================] 1.00 MiB 1.00 MiB/s Complete.',
    ]);
    assert.equal(term.cursorRow(), 3, 'the next output starts on the line after the last file');
    assert.equal(term.cursorCol(), 0);
  });

  it('fits a 50-column terminal: the percentage stays, the name is cut with an ellipsis', () => {
    const term = new VirtualTerminal(50);
    const s = setup(term);
    const name = 'a very long file name for the holiday video 2024.mp4';
    s.emit(start(name, 1024 * MiB));
    s.clock.t += 2000;
    s.emit(bytes(name, 400 * MiB, 1024 * MiB));
    const [line] = term.lines();
    assert.ok(line !== undefined);
    assert.ok(line.length <= 49, `"${line}" is ${line.length} columns`);
    assert.match(line, /^a very l.*….*2024\.mp4\s+39% /);
    s.view.finish();
  });

  it('shortens the overall line too, and a finished line keeps its status', () => {
    const term = new VirtualTerminal(50);
    const s = setup(term);
    multiFilePut(s, 'end');
    s.view.finish();
    for (const line of term.lines()) {
      assert.ok(line.length <= 49, `"${line}" is ${line.length} columns`);
      assert.match(line, /100% .*Complete\.$/);
    }
  });

  it('Ctrl-C: the bar line stays, ends with a newline, and "Stopping" is said once below it', () => {
    const term = new VirtualTerminal(100);
    const s = setup(term);
    s.emit(start('huge.bin', 1024 * MiB));
    s.clock.t += 2000;
    s.emit(bytes('huge.bin', 400 * MiB, 1024 * MiB));
    s.view.interrupt();
    s.view.interrupt();
    // what the transfer reports while it stops must not draw over the "Stopping" line
    s.clock.t += 200;
    s.emit(bytes('huge.bin', 420 * MiB, 1024 * MiB), {
      type: 'transfer:failed',
      op: 'put',
      file: 'huge.bin',
      message: 'Stopped by the user.',
    });
    const code = s.view.fail(new RcppError('ABORTED', 'Stopped by the user.'));
    assert.equal(code, 130);
    assert.deepEqual(term.lines(), [
      'huge.bin  39% [===========                   ] 400.00 MiB/1.00 GiB 200.00 MiB/s ETA 4s',
      'Stopping. Run the same command again to resume; press Ctrl-C again to quit at once.',
    ]);
    assert.equal(term.cursorRow(), 2);
    assert.equal(term.cursorCol(), 0);
    const cursor = [...term.raw.matchAll(/\x1b\[\?25([hl])/g)].map((m) => m[1]);
    assert.equal(cursor.at(-1), 'h', 'the cursor is shown again');
  });

  it('an error mid-transfer: the bar line ends before the error sentence', () => {
    const term = new VirtualTerminal(100);
    const s = setup(term);
    s.emit(start('huge.bin', 1024 * MiB));
    s.clock.t += 1000;
    s.emit(bytes('huge.bin', 100 * MiB, 1024 * MiB));
    const code = s.view.fail(new RcppError('CONNECTION_LOST', 'The connection to ASUS was cut.'));
    assert.equal(code, 1);
    assert.deepEqual(term.lines(), [
      'huge.bin   9% [==                            ] 100.00 MiB/1.00 GiB 100.00 MiB/s ETA 10s',
      'Error: The connection to ASUS was cut.',
      'Run the same command again: finished files are kept and a partial one resumes.',
    ]);
  });

  it('a resumed file says where it resumes and counts speed from there', () => {
    const term = new VirtualTerminal(100);
    const s = setup(term);
    s.emit(start('huge.bin', 1024 * MiB, 512 * MiB));
    s.clock.t += 1000;
    s.emit(bytes('huge.bin', 768 * MiB, 1024 * MiB));
    s.clock.t += 1000;
    s.emit(done('huge.bin', 1024 * MiB));
    s.view.finish();
    assert.deepEqual(term.lines(), [
      'Resuming huge.bin from 512.00 MiB of 1.00 GiB.',
      'huge.bin 100% [==============================] 1.00 GiB 256.00 MiB/s Complete.',
    ]);
  });
});

describe('ConsoleView: progress without a terminal (logs, CI)', () => {
  it('writes one full line per finished file, the last one included', () => {
    const log = new Capture();
    const s = setup(log);
    multiFilePut(s, 'end');
    s.view.finish();
    assert.equal(
      log.text,
      'mixed/f1.dat 100% [==============================] 100.00 KiB 666.67 KiB/s Complete.\n' +
        'mixed/f2.dat 100% [==============================] 195.31 KiB 976.56 KiB/s Complete.\n' +
        'mixed/big.bin 100% [==============================] 1.00 MiB 1.00 MiB/s Complete.\n',
    );
  });

  it('a failed file gets a line with how far it got', () => {
    const log = new Capture();
    const s = setup(log);
    s.emit(start('a.bin', 10 * MiB));
    s.clock.t += 1000;
    s.emit(bytes('a.bin', 5 * MiB, 10 * MiB), {
      type: 'transfer:failed',
      op: 'put',
      file: 'a.bin',
      message: 'disk full',
    });
    s.view.finish();
    assert.equal(
      log.text,
      'a.bin  50% [===============               ] 5.00 MiB/10.00 MiB 5.00 MiB/s Failed.\n',
    );
  });

  it('lists ten files, then counts the rest', () => {
    const log = new Capture();
    const s = setup(log);
    for (let i = 0; i < 13; i++) s.emit(start(`f${i}`, KiB), done(`f${i}`, KiB));
    s.view.finish();
    const lines = log.text.trimEnd().split('\n');
    assert.equal(lines.length, 11);
    assert.equal(lines[10], '... and 3 more files (3.00 KiB).');
  });
});

describe('ConsoleView: text from outside cannot drive the terminal', () => {
  const hostile = [
    'evil\x1b]52;c;Y3VybCB4fHNo\x07.txt', // OSC 52: set the clipboard
    'x\x1b[2J\x1b[Hclean', // clear the screen
    'a\n[12:00:00] Client alice connected', // a forged log line
    'photo\u202egpj.exe', // right-to-left override
    'c1\u009b31mred', // C1 CSI
    'bell\x07tab\tnul\x00',
  ];
  // the sequences the view itself writes (cli-progress and readline)
  const OWN = /\x1b\[(?:\?25[hl]|\?7[hl]|\d*[GABCDK]|0J|2K|1K)/g;
  const UNSAFE = /[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]/;

  it('escapes control and bidi characters in file names, peer names and sentences', () => {
    for (const tty of [true, false]) {
      const stderr = tty ? new VirtualTerminal(200) : new Capture();
      const s = setup(stderr);
      for (const text of hostile) {
        s.emit(
          { type: 'server:request', client: text, op: 'get', detail: text },
          { type: 'server:refused', client: 'bob', message: text },
          {
            type: 'peer:found',
            name: text,
            role: 'server',
            lastSeen: new Date(s.clock.t).toISOString(),
          },
          start(text, 10),
          bytes(text, 5, 10),
          done(text, 10),
        );
      }
      s.view.finish();
      s.view.fail(new RcppError('PEER_REFUSED', hostile.join(' '), hostile.join(' ')));
      s.view.fileError(hostile[0] ?? '', hostile[1] ?? '');
      s.view.print(`Files on ${hostile[2] ?? ''}`);
      const out = (tty ? (stderr as VirtualTerminal).raw : (stderr as Capture).text).replace(
        OWN,
        '',
      );
      assert.doesNotMatch(out, UNSAFE);
      assert.doesNotMatch(s.stdout.text, UNSAFE);
      assert.match(out, /evil\\u001b\]52;c;Y3VybCB4fHNo\\u0007\.txt/, 'shown, escaped');
      assert.match(out, /a\\u000a\[12:00:00\] Client alice connected/);
      assert.match(out, /photo\\u202egpj\.exe/);
    }
  });
});
