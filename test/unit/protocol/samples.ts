// One valid example of every control message, shared by the message table tests and the fuzz test.
import type { Message } from '../../../src/protocol/messages.js';

const H = 'a'.repeat(64);

export const VALID: Message[] = [
  { t: 'hello', v: 1, client: 'laptop', features: [], idleMs: 60000 },
  { t: 'welcome', v: 1, server: 'ASUS', features: ['future-thing'], idleMs: 0 },
  { t: 'list', path: '', recursive: false },
  {
    t: 'listing',
    entries: [{ path: 'a', kind: 'dir', size: 0, mtimeMs: 1.5 }],
    last: true,
    truncated: false,
  },
  { t: 'get', paths: ['photos', 'a/b.txt'] },
  {
    t: 'manifest',
    files: [{ i: 0, root: 0, path: 'photos/x.jpg', size: 10, mtimeMs: 1700000000000.123 }],
    dirs: [{ root: 0, path: 'photos', mtimeMs: -5 }],
    problems: [
      { root: 1, path: 'a/b.txt', code: 'FILE_NOT_FOUND', message: 'a/b.txt does not exist.' },
    ],
    last: true,
  },
  {
    t: 'put',
    files: [{ i: 0, path: 'x', size: 0, mtimeMs: 0 }],
    dirs: [],
    force: false,
    last: true,
  },
  {
    t: 'accept',
    files: [{ i: 0 }, { i: 1, resume: { blockSize: 1048576, length: 1048577, hashes: [H, H] } }],
    refused: [{ i: 2, code: 'FILE_EXISTS', message: 'x already exists.' }],
    last: true,
  },
  { t: 'file', i: 0, offset: 0 },
  { t: 'file-end', i: 0, sha256: H },
  { t: 'file-ok', i: 3 },
  { t: 'file-error', i: 3, code: 'DISK_FULL', message: 'full' },
  { t: 'done' },
  { t: 'error', code: 'BUSY', message: 'busy' },
  { t: 'bye' },
  { t: 'keepalive' },
];

export const HASH = H;
