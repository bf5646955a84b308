// The receive-side order rules, fed message arrays: a sender that keeps them, and every way a hostile
// sender can break them (each with its code and sentence).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isRcppError } from '../../../src/errors.js';
import type { Message } from '../../../src/protocol/messages.js';
import {
  ReceiveOrder,
  type Arrival,
  type Expected,
  type ReceiveStep,
} from '../../../src/protocol/receive-order.js';

const MiB = 1024 * 1024;
const SHA = 'a'.repeat(64);

/** Three accepted files: 0 (3 MiB, no partial), 1 (10 bytes), 2 (5 MiB, a partial of 2.5 MiB). */
function accepted(): Map<number, Expected> {
  return new Map<number, Expected>([
    [0, { shown: 'a.bin', size: 3 * MiB }],
    [1, { shown: 'b.txt', size: 10 }],
    [
      2,
      {
        shown: 'c.bin',
        size: 5 * MiB,
        resume: { blockSize: MiB, length: 2.5 * MiB, hashes: [SHA, SHA, SHA] },
      },
    ],
  ]);
}

const m = (msg: Message): Arrival => ({ kind: 'message', msg });
const data = (length: number): Arrival => ({ kind: 'data', length });

/** Feeds the arrivals; returns the steps, or the error's code and sentence. */
function run(arrivals: Arrival[], abandonAfter?: number): ReceiveStep[] | string {
  const order = new ReceiveOrder(accepted(), 'the server ASUS');
  const steps: ReceiveStep[] = [];
  try {
    arrivals.forEach((a, n) => {
      steps.push(order.step(a));
      if (n === abandonAfter) order.abandon(order.current!);
    });
  } catch (err) {
    assert.ok(isRcppError(err), String(err));
    return `${err.code}: ${err.message}`;
  }
  return steps;
}

describe('receive order: a sender that keeps the rules', () => {
  it('files with data and file-end, a resume from a block of the partial, done', () => {
    const steps = run([
      m({ t: 'file', i: 0, offset: 0 }),
      data(MiB),
      data(2 * MiB),
      m({ t: 'file-end', i: 0, sha256: SHA }),
      m({ t: 'file', i: 2, offset: 2 * MiB }),
      data(3 * MiB),
      m({ t: 'file-end', i: 2, sha256: SHA }),
      m({ t: 'done' }),
    ]);
    assert.deepEqual(steps, [
      { do: 'start', i: 0, offset: 0 },
      { do: 'data', i: 0, length: MiB },
      { do: 'data', i: 0, length: 2 * MiB },
      { do: 'end', i: 0, sha256: SHA },
      { do: 'start', i: 2, offset: 2 * MiB },
      { do: 'data', i: 2, length: 3 * MiB },
      { do: 'end', i: 2, sha256: SHA },
      { do: 'finish', neverSent: [1] },
    ]);
  });

  it('offsets the partial allows: 0, a block start inside it, its end', () => {
    for (const offset of [0, MiB, 2 * MiB, 2.5 * MiB]) {
      const steps = run([m({ t: 'file', i: 2, offset })]);
      assert.deepEqual(steps, [{ do: 'start', i: 2, offset }], String(offset));
    }
  });

  it('a sender failing in the middle of a file, or before starting one', () => {
    const steps = run([
      m({ t: 'file', i: 0, offset: 0 }),
      data(100),
      m({ t: 'file-error', i: 0, code: 'SOURCE_CHANGED', message: 'changed' }),
      m({ t: 'file-error', i: 1, code: 'FILE_NOT_FOUND', message: 'gone' }),
      m({ t: 'done' }),
    ]);
    assert.ok(Array.isArray(steps));
    assert.deepEqual(
      steps.map((s) => (s.do === 'sender-failed' ? [s.i, s.error.code, s.current] : s.do)),
      ['start', 'data', [0, 'SOURCE_CHANGED', true], [1, 'FILE_NOT_FOUND', false], 'finish'],
    );
    assert.deepEqual(steps.at(-1), { do: 'finish', neverSent: [2] });
  });

  it('after the receiver gave up on a file, the sender may move on without ending it', () => {
    const steps = run(
      [
        m({ t: 'file', i: 0, offset: 0 }),
        data(10),
        m({ t: 'file', i: 1, offset: 0 }),
        data(10),
        m({ t: 'file-end', i: 1, sha256: SHA }),
        m({ t: 'done' }),
      ],
      1,
    );
    assert.ok(Array.isArray(steps), JSON.stringify(steps));
    assert.deepEqual(steps.at(-1), { do: 'finish', neverSent: [2] });
  });
});

describe('receive order: a hostile sender', () => {
  const cases: [string, Arrival[], string][] = [
    [
      'data before any file',
      [data(5)],
      'PROTOCOL_ERROR: The server ASUS sent file data outside a file.',
    ],
    [
      'a file that was not accepted',
      [m({ t: 'file', i: 7, offset: 0 })],
      'PROTOCOL_ERROR: The server ASUS sent a file that was not accepted.',
    ],
    [
      'the same file twice',
      [
        m({ t: 'file', i: 1, offset: 0 }),
        data(10),
        m({ t: 'file-end', i: 1, sha256: SHA }),
        m({ t: 'file', i: 1, offset: 0 }),
      ],
      'PROTOCOL_ERROR: The server ASUS sent a file that was not accepted.',
    ],
    [
      'a second file before file-end',
      [m({ t: 'file', i: 0, offset: 0 }), data(10), m({ t: 'file', i: 1, offset: 0 })],
      'PROTOCOL_ERROR: The server ASUS started a file before ending the previous one.',
    ],
    [
      'more bytes than announced',
      [m({ t: 'file', i: 1, offset: 0 }), data(8), data(3)],
      'PROTOCOL_ERROR: The server ASUS sent more bytes than the file has.',
    ],
    [
      'file-end without a file',
      [m({ t: 'file-end', i: 0, sha256: SHA })],
      'PROTOCOL_ERROR: The server ASUS ended a file it had not started.',
    ],
    [
      'file-end for another file',
      [m({ t: 'file', i: 0, offset: 0 }), m({ t: 'file-end', i: 1, sha256: SHA })],
      'PROTOCOL_ERROR: The server ASUS ended a file it had not started.',
    ],
    [
      'done in the middle of a file',
      [m({ t: 'file', i: 0, offset: 0 }), data(1), m({ t: 'done' })],
      'PROTOCOL_ERROR: The server ASUS finished in the middle of a file.',
    ],
    [
      'a resume offset without any partial (1 MiB into a.bin)',
      [m({ t: 'file', i: 0, offset: MiB })],
      'PROTOCOL_ERROR: The server ASUS asked to continue "a.bin" from an offset it cannot use.',
    ],
    [
      'an offset inside the partial that is not a block start',
      [m({ t: 'file', i: 2, offset: 1.5 * MiB })],
      'PROTOCOL_ERROR: The server ASUS asked to continue "c.bin" from an offset it cannot use.',
    ],
    [
      'a block start past the partial',
      [m({ t: 'file', i: 2, offset: 3 * MiB })],
      'PROTOCOL_ERROR: The server ASUS asked to continue "c.bin" from an offset it cannot use.',
    ],
    [
      'an offset past the end of the file',
      [m({ t: 'file', i: 1, offset: 11 })],
      'PROTOCOL_ERROR: The server ASUS asked to continue "b.txt" from an offset it cannot use.',
    ],
    [
      'file-error for a file that was not accepted',
      [m({ t: 'file-error', i: 9, code: 'IO_ERROR', message: 'x' })],
      'PROTOCOL_ERROR: The server ASUS reported on a file that was not accepted.',
    ],
    [
      'file-error for a file it had already ended',
      [
        m({ t: 'file', i: 1, offset: 0 }),
        data(10),
        m({ t: 'file-end', i: 1, sha256: SHA }),
        m({ t: 'file-error', i: 1, code: 'IO_ERROR', message: 'x' }),
      ],
      'PROTOCOL_ERROR: The server ASUS reported on a file it had already sent.',
    ],
    [
      'file-error for another file in the middle of one',
      [
        m({ t: 'file', i: 0, offset: 0 }),
        m({ t: 'file-error', i: 1, code: 'IO_ERROR', message: 'x' }),
      ],
      'PROTOCOL_ERROR: The server ASUS reported on another file in the middle of a file.',
    ],
    [
      'anything after done',
      [m({ t: 'done' }), m({ t: 'file', i: 0, offset: 0 })],
      'PROTOCOL_ERROR: The server ASUS sent more after done.',
    ],
    [
      'a command in the middle of the files',
      [m({ t: 'list', path: '', recursive: false })],
      'PROTOCOL_ERROR: The server ASUS sent list while sending files.',
    ],
    [
      'an error message: the sender’s own code and sentence',
      [m({ t: 'error', code: 'DISK_FULL', message: 'the disk is full' })],
      'DISK_FULL: the disk is full',
    ],
  ];
  for (const [name, arrivals, expected] of cases) {
    it(name, () => {
      assert.equal(run(arrivals), expected);
    });
  }
});
