import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isRcppError } from '../../../src/errors.js';
import { encodeControl } from '../../../src/protocol/frames.js';
import { MAX_PATH_BYTES, RESUME_MAX_BLOCKS } from '../../../src/protocol/limits.js';
import { decodeMessage, parseMessage, type Message } from '../../../src/protocol/messages.js';
import { packParts } from '../../../src/protocol/parts.js';
import { HASH as H, VALID } from './samples.js';

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(isRcppError(err), `not an RcppError: ${String(err)}`);
    return err.code;
  }
  return 'OK';
}

function mutate(msg: Message, patch: Record<string, unknown>): unknown {
  return { ...msg, ...patch };
}

describe('messages', () => {
  it('accepts one valid example of every type, unchanged', () => {
    for (const msg of VALID)
      assert.deepEqual(parseMessage(JSON.parse(JSON.stringify(msg))), msg, msg.t);
  });

  it('round-trips every type through a frame', () => {
    for (const msg of VALID) assert.deepEqual(decodeMessage(encodeControl(msg).subarray(5)), msg);
  });

  it('ignores unknown extra fields (forward compatible)', () => {
    assert.deepEqual(parseMessage({ t: 'bye', extra: [1, 2, 3] }), { t: 'bye' });
  });

  const invalid: [string, unknown][] = [
    ['not an object', 42],
    ['null', null],
    ['an array', [{ t: 'bye' }]],
    ['no type', { path: 'x' }],
    ['type not a string', { t: 5 }],
    ['unknown type', { t: 'format-disk' }],
    ['inherited-looking key only', JSON.parse('{"__proto__": {"t": "bye"}}')],
    ['hello without client', { t: 'hello', v: 1, features: [], idleMs: 0 }],
    ['hello with a bad client name', mutate(VALID[0]!, { client: 'no spaces allowed' })],
    ['hello with a long client name', mutate(VALID[0]!, { client: 'a'.repeat(65) })],
    ['hello with too many features', mutate(VALID[0]!, { features: Array(33).fill('x') })],
    ['hello with a feature of the wrong form', mutate(VALID[0]!, { features: ['UPPER'] })],
    ['hello with a fractional idleMs', mutate(VALID[0]!, { idleMs: 1.5 })],
    ['hello with a negative idleMs', mutate(VALID[0]!, { idleMs: -1 })],
    ['list with a numeric path', { t: 'list', path: 7, recursive: false }],
    ['list with recursive as a string', { t: 'list', path: '', recursive: 'yes' }],
    ['list with a path over 4096 bytes', { t: 'list', path: 'é'.repeat(2049), recursive: false }],
    [
      'listing with a bad kind',
      {
        t: 'listing',
        entries: [{ path: 'a', kind: 'link', size: 0, mtimeMs: 0 }],
        last: true,
        truncated: false,
      },
    ],
    [
      'listing with a negative size',
      {
        t: 'listing',
        entries: [{ path: 'a', kind: 'file', size: -1, mtimeMs: 0 }],
        last: true,
        truncated: false,
      },
    ],
    ['get with too many paths', { t: 'get', paths: Array(1025).fill('a') }],
    ['get with a non-string path', { t: 'get', paths: ['a', null] }],
    [
      'manifest file without root',
      mutate(VALID[5]!, { files: [{ i: 0, path: 'x', size: 1, mtimeMs: 0 }] }),
    ],
    [
      'manifest with a size over 2^53',
      mutate(VALID[5]!, { files: [{ i: 0, root: 0, path: 'x', size: 2 ** 53, mtimeMs: 0 }] }),
    ],
    [
      'manifest with an infinite-ish mtime',
      mutate(VALID[5]!, { dirs: [{ root: 0, path: 'x', mtimeMs: 1e300 }] }),
    ],
    [
      'manifest with root over the request cap',
      mutate(VALID[5]!, { dirs: [{ root: 5000, path: 'x', mtimeMs: 0 }] }),
    ],
    [
      'manifest problem with a lowercase code',
      mutate(VALID[5]!, { problems: [{ root: 0, path: 'x', code: 'nope', message: '' }] }),
    ],
    ['put with force missing', { t: 'put', files: [], dirs: [], last: true }],
    [
      'put with an index over the cap',
      mutate(VALID[6]!, { files: [{ i: 200000, path: 'x', size: 0, mtimeMs: 0 }] }),
    ],
    [
      'put with a string size',
      mutate(VALID[6]!, { files: [{ i: 0, path: 'x', size: '1', mtimeMs: 0 }] }),
    ],
    [
      'accept with a block size not a power of two',
      mutate(VALID[7]!, {
        files: [{ i: 0, resume: { blockSize: 1048577, length: 1, hashes: [H] } }],
      }),
    ],
    [
      'accept with a block size too small',
      mutate(VALID[7]!, { files: [{ i: 0, resume: { blockSize: 4096, length: 1, hashes: [H] } }] }),
    ],
    [
      'accept with the wrong block size for its length',
      mutate(VALID[7]!, {
        files: [{ i: 0, resume: { blockSize: 2097152, length: 1, hashes: [H] } }],
      }),
    ],
    [
      'accept with too few hashes',
      mutate(VALID[7]!, {
        files: [{ i: 0, resume: { blockSize: 1048576, length: 1048577, hashes: [H] } }],
      }),
    ],
    [
      'accept with an uppercase hash',
      mutate(VALID[7]!, {
        files: [{ i: 0, resume: { blockSize: 1048576, length: 1, hashes: ['A'.repeat(64)] } }],
      }),
    ],
    [
      'accept with an empty partial',
      mutate(VALID[7]!, {
        files: [{ i: 0, resume: { blockSize: 1048576, length: 0, hashes: [] } }],
      }),
    ],
    [
      'accept with too many hashes',
      mutate(VALID[7]!, {
        files: [
          {
            i: 0,
            resume: { blockSize: 1048576, length: 4097 * 1048576, hashes: Array(4097).fill(H) },
          },
        ],
      }),
    ],
    ['file with a negative offset', { t: 'file', i: 0, offset: -1 }],
    ['file with a fractional index', { t: 'file', i: 0.5, offset: 0 }],
    ['file-end with a short hash', { t: 'file-end', i: 0, sha256: 'abc' }],
    ['file-end with a non-hex hash', { t: 'file-end', i: 0, sha256: 'g'.repeat(64) }],
    ['file-error without message', { t: 'file-error', i: 0, code: 'IO_ERROR' }],
    ['error with a numeric code', { t: 'error', code: 5, message: 'x' }],
    ['error with an over-long message', { t: 'error', code: 'BUSY', message: 'x'.repeat(30000) }],
  ];

  for (const [name, json] of invalid) {
    it(`refuses ${name} with PROTOCOL_ERROR`, () => {
      assert.equal(
        code(() => parseMessage(json)),
        'PROTOCOL_ERROR',
      );
    });
  }

  it('refuses control payloads that are not UTF-8 JSON', () => {
    for (const bytes of [
      Buffer.from('{"t":'),
      Buffer.from([0xff, 0xfe]),
      Buffer.from(''),
      Buffer.from('"bye"'),
    ]) {
      assert.equal(
        code(() => decodeMessage(bytes)),
        'PROTOCOL_ERROR',
      );
    }
  });

  it('tells which side to upgrade on a version mismatch, before checking other fields', () => {
    const newerClient = code(() => parseMessage({ t: 'hello', v: 2 }));
    assert.equal(newerClient, 'VERSION_MISMATCH');
    assert.throws(() => parseMessage({ t: 'hello', v: 2, whatever: true }), {
      code: 'VERSION_MISMATCH',
      message: /client speaks transfer protocol version 2.*upgrade rcpp2p on the server/,
    });
    assert.throws(() => parseMessage({ t: 'welcome', v: 2 }), {
      code: 'VERSION_MISMATCH',
      message: /upgrade rcpp2p on the client/,
    });
    assert.throws(() => parseMessage({ t: 'welcome', v: 0 }), {
      code: 'VERSION_MISMATCH',
      message: /upgrade rcpp2p on the server/,
    });
  });

  it('keeps an unknown error code as PEER_REFUSED with the sentence', () => {
    assert.deepEqual(parseMessage({ t: 'error', code: 'NEW_IN_V1_5', message: 'later' }), {
      t: 'error',
      code: 'PEER_REFUSED',
      message: 'later',
    });
  });

  it('replaces terminal escapes and bidi controls in peer sentences', () => {
    const msg = parseMessage({ t: 'error', code: 'BUSY', message: 'a\u001b[31mb\u202ec' });
    assert.equal((msg as { message: string }).message, 'a\ufffd[31mb\ufffdc');
    const hidden = parseMessage({ t: 'error', code: 'BUSY', message: 'x\u2028y\u200bz\ufeff' });
    assert.equal((hidden as { message: string }).message, 'x\ufffdy\ufffdz\ufffd');
  });

  it('accepts the largest resume description (4096 hashes) and it fits a frame', () => {
    const msg: Message = {
      t: 'accept',
      files: [
        {
          i: 0,
          resume: {
            blockSize: 1048576,
            length: RESUME_MAX_BLOCKS * 1048576,
            hashes: new Array<string>(RESUME_MAX_BLOCKS).fill(H),
          },
        },
      ],
      refused: [],
      last: true,
    };
    assert.deepEqual(decodeMessage(encodeControl(msg).subarray(5)), msg);
  });

  it('accepts a path of exactly 4096 bytes', () => {
    assert.equal(
      code(() => parseMessage({ t: 'list', path: 'a'.repeat(MAX_PATH_BYTES), recursive: true })),
      'OK',
    );
  });
});

describe('message parts', () => {
  it('splits a long list into parts that each fit a frame, in order', () => {
    const files = Array.from({ length: 20000 }, (_, i) => ({
      i,
      path: `folder/${'n'.repeat(80)}-${i}`,
      size: i,
      mtimeMs: 0,
    }));
    const parts = packParts({ files, dirs: [] as { path: string; mtimeMs: number }[] });
    assert.ok(parts.length > 1);
    assert.deepEqual(
      parts.flatMap((p) => p.files),
      files,
    );
    for (const [n, p] of parts.entries()) {
      const frame = encodeControl({
        t: 'put',
        files: p.files,
        dirs: p.dirs,
        force: false,
        last: n === parts.length - 1,
      });
      assert.ok(frame.length <= 1024 * 1024 + 5);
    }
  });

  it('always yields one part, with empty lists when there is nothing', () => {
    assert.deepEqual(packParts({ files: [], refused: [] }), [{ files: [], refused: [] }]);
  });

  it('puts the lists of several kinds one after the other', () => {
    const parts = packParts({ a: [1, 2], b: [3] }, 1000, 2);
    assert.deepEqual(parts, [{ a: [1, 2], b: [3] }]);
    const small = packParts({ a: [1, 2, 3], b: [4] }, 1000, 2);
    assert.deepEqual(small, [
      { a: [1, 2], b: [] },
      { a: [3], b: [4] },
    ]);
  });
});
