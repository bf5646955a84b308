// Hostile peers: path tricks against the server, a malicious server against the client, garbage,
// oversized frames, silence and a wrong version. Every refusal carries a code and a sentence, nothing
// outside the roots is read or written, and the server keeps serving others.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, readdir, rm, stat, symlink, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { MAX_DIRS_PER_COMMAND } from '../../../src/protocol/limits.js';
import { encodeControl, FrameDecoder } from '../../../src/protocol/frames.js';
import { decodeMessage, type Message } from '../../../src/protocol/messages.js';
import { FrameChannel } from '../../../src/transfer/channel.js';
import {
  connect,
  lastError,
  openClient,
  rawClient as rawPeerClient,
  startServer,
  tempDir,
  type RawPeer,
  type RunningServer,
} from './helpers.js';

const HELLO: Message = { t: 'hello', v: 1, client: 'mallory', features: [], idleMs: 0 };

/** Sends raw bytes, then collects every message the server sends until it closes. */
async function exchange(port: number, bytes: Buffer): Promise<Message[]> {
  const socket = await connect(port);
  const decoder = new FrameDecoder();
  const got: Message[] = [];
  socket.on('data', (chunk: Buffer) => {
    for (const f of decoder.push(chunk))
      if (f.kind === 'control') got.push(decodeMessage(f.payload));
  });
  socket.write(bytes);
  await new Promise<void>((resolve) => {
    socket.on('close', () => resolve());
    socket.on('error', () => resolve());
  });
  return got;
}

async function rawClient(port: number): Promise<FrameChannel> {
  const ch = new FrameChannel(await connect(port), { peer: 'the server', idleTimeoutMs: 5000 });
  ch.send(HELLO);
  assert.equal((await ch.readMessage()).t, 'welcome');
  return ch;
}

async function listOutside(dir: string): Promise<string[]> {
  return (await readdir(dir, { recursive: true })).map(String).sort();
}

describe('a hostile client', () => {
  let base: { path: string; cleanup: () => Promise<void> };
  let work: string;
  let outside: string;
  let srv: RunningServer;

  before(async () => {
    base = await tempDir('hostile');
    work = join(base.path, 'work');
    outside = join(base.path, 'outside');
    await mkdir(join(work, 'photos'), { recursive: true });
    await mkdir(outside);
    await writeFile(join(outside, 'secret.txt'), 'secret');
    await writeFile(join(work, 'photos', 'a.jpg'), 'jpeg');
    await symlink(join(outside, 'secret.txt'), join(work, 'escape-file'));
    await symlink(outside, join(work, 'escape-dir'));
    execFileSync('mkfifo', [join(work, 'fifo')]);
    srv = await startServer({ workDir: work, idleTimeoutMs: 400 });
  });
  after(async () => {
    await srv.close();
    await base.cleanup();
  });

  it('gets nothing through path tricks: each path refused with a code and a sentence', async () => {
    const ch = await rawClient(srv.port);
    const expected: [string, string][] = [
      ['../outside/secret.txt', 'PATH_REFUSED'],
      ['/etc/passwd', 'PATH_REFUSED'],
      ['photos/../../outside/secret.txt', 'PATH_REFUSED'],
      ['escape-file', 'PATH_REFUSED'],
      ['escape-dir/secret.txt', 'PATH_REFUSED'],
      ['escape-dir', 'PATH_REFUSED'],
      ['photos\u0000.txt', 'PATH_REFUSED'],
      ['', 'PATH_REFUSED'],
      ['.', 'PATH_REFUSED'],
      ['./photos', 'PATH_REFUSED'],
      ['photos/', 'PATH_REFUSED'],
      ['fifo', 'NOT_A_FILE'],
      ['..\\outside\\secret.txt', 'PATH_REFUSED'],
      ['a'.repeat(300), 'PATH_REFUSED'],
      ['photos/a.jpg.rcpp2p-partial', 'PATH_REFUSED'],
      ['photo\u202egpj.exe', 'PATH_REFUSED'],
      ['photos\u2215a.jpg', 'PATH_REFUSED'],
      ['photos/a.jpg\u200b', 'PATH_REFUSED'],
    ];
    const paths = expected.map(([p]) => p);
    ch.send({ t: 'get', paths });
    const m = await ch.readMessage();
    assert.equal(m.t, 'manifest');
    if (m.t !== 'manifest') return;
    assert.deepEqual(m.files, []);
    assert.deepEqual(
      m.problems.map((p) => [paths[p.root], p.code]),
      expected,
    );
    for (const p of m.problems) assert.ok(p.message.length > 10, p.message);
    ch.send({ t: 'accept', files: [], refused: [], last: true });
    assert.equal((await ch.readMessage()).t, 'done');
    ch.send({ t: 'done' });
    ch.send({ t: 'bye' });
    await ch.end();
  });

  it('cannot write outside the working directory through put paths', async () => {
    const before = await listOutside(outside);
    const ch = await rawClient(srv.port);
    const evil = [
      '../outside/evil.txt',
      '/tmp/evil.txt',
      'escape-dir/evil.txt',
      'photos/../../outside/evil.txt',
      'escape-file',
      'photos/a.jpg.rcpp2p-lock',
      'x\\..\\..\\evil',
      'fifo',
      'photos',
    ];
    ch.send({
      t: 'put',
      files: evil.map((path, i) => ({ i, path, size: 4, mtimeMs: 0 })),
      dirs: [
        { path: '../outside/newdir', mtimeMs: 0 },
        { path: 'escape-dir/newdir', mtimeMs: 0 },
      ],
      force: true,
      last: true,
    });
    const acc = await ch.readMessage();
    assert.equal(acc.t, 'accept');
    if (acc.t !== 'accept') return;
    assert.deepEqual(acc.files, []);
    assert.deepEqual(
      acc.refused.map((r) => r.i).sort(),
      evil.map((_, i) => i),
    );
    assert.deepEqual(
      [...acc.refused].sort((a, b) => a.i - b.i).map((r) => r.code),
      [
        'PATH_REFUSED',
        'PATH_REFUSED',
        'PATH_REFUSED',
        'PATH_REFUSED',
        'PATH_REFUSED',
        'PATH_REFUSED',
        'PATH_REFUSED',
        'NOT_A_FILE',
        'IS_A_DIRECTORY',
      ],
    );
    ch.send({ t: 'done' });
    assert.equal((await ch.readMessage()).t, 'done');
    ch.send({ t: 'bye' });
    await ch.end();
    assert.deepEqual(await listOutside(outside), before);
  });

  it('a 2 GiB frame header gets FRAME_TOO_LARGE, and the server serves others', async () => {
    const header = Buffer.from([2, 0x80, 0, 0, 0]);
    const replies = await exchange(srv.port, Buffer.concat([encodeControl(HELLO), header]));
    assert.equal(replies[0]?.t, 'welcome');
    const last = replies.at(-1);
    assert.ok(last?.t === 'error' && last.code === 'FRAME_TOO_LARGE', JSON.stringify(replies));
    const client = await openClient(srv.port);
    assert.ok((await client.list('')).length > 0);
    await client.close();
  });

  it('garbage gets PROTOCOL_ERROR with a sentence', async () => {
    const replies = await exchange(srv.port, Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    assert.equal(replies.length, 1);
    const [r] = replies;
    assert.ok(r?.t === 'error' && r.code === 'PROTOCOL_ERROR', JSON.stringify(r));
    assert.match(r.message, /does not speak the rcpp2p transfer protocol/);
  });

  it('a malformed message gets PROTOCOL_ERROR naming the field', async () => {
    const replies = await exchange(
      srv.port,
      Buffer.concat([encodeControl(HELLO), encodeControl({ t: 'get', paths: 'x' } as never)]),
    );
    const last = replies.at(-1);
    assert.ok(last?.t === 'error' && last.code === 'PROTOCOL_ERROR');
    assert.match(last.message, /paths/);
  });

  it('file data outside a transfer gets PROTOCOL_ERROR', async () => {
    const data = Buffer.concat([Buffer.from([2, 0, 0, 0, 3]), Buffer.from('abc')]);
    const replies = await exchange(srv.port, Buffer.concat([encodeControl(HELLO), data]));
    const err = lastError(replies, 'PROTOCOL_ERROR');
    assert.match(err.message, /sent file data where a message was expected/);
  });

  it('a client of a newer protocol version is told to upgrade the server', async () => {
    const replies = await exchange(srv.port, encodeControl({ t: 'hello', v: 2 } as never));
    const [r] = replies;
    assert.ok(r?.t === 'error' && r.code === 'VERSION_MISMATCH');
    assert.match(r.message, /upgrade rcpp2p on the server/);
  });

  it('a silent client is dropped with TIMEOUT after the idle timeout', async () => {
    const t0 = Date.now();
    const replies = await exchange(srv.port, encodeControl(HELLO));
    assert.equal(replies[0]?.t, 'welcome');
    const last = replies.at(-1);
    assert.ok(last?.t === 'error' && last.code === 'TIMEOUT');
    assert.ok(Date.now() - t0 < 5000);
  });

  it('a client that connects and sends nothing is dropped too, with TIMEOUT', async () => {
    const replies = await exchange(srv.port, Buffer.alloc(0));
    assert.equal(replies.length, 1);
    lastError(replies, 'TIMEOUT');
  });
});

/**
 * A hostile client that sends files (a put), breaking the order of the streaming phase in each way
 * the receiver checks: the server answers `error PROTOCOL_ERROR` with the rule's sentence and ends
 * the session; a file-error in the middle of a file keeps the partial for resume.
 */
describe('a hostile sender against the server (put)', () => {
  let base: { path: string; cleanup: () => Promise<void> };
  let srv: RunningServer;
  let work: string;

  before(async () => {
    base = await tempDir('hostile-sender');
    work = join(base.path, 'work');
    await mkdir(work);
    srv = await startServer({ workDir: work, clientName: 'mallory' });
  });
  after(async () => {
    await srv.close();
    await base.cleanup();
  });

  /** Offers a.bin (3 MiB) and b.txt (10 bytes); returns once both are accepted. */
  async function offer(): Promise<RawPeer> {
    const peer = await rawPeerClient(srv.port);
    peer.send({
      t: 'put',
      files: [
        { i: 0, path: 'a.bin', size: 3 * 1024 * 1024, mtimeMs: 0 },
        { i: 1, path: 'b.txt', size: 10, mtimeMs: 0 },
      ],
      dirs: [],
      force: true,
      last: true,
    });
    const acc = await peer.next();
    assert.ok(acc.t === 'accept' && acc.files.length === 2, JSON.stringify(acc));
    return peer;
  }

  const cases: [string, (peer: RawPeer) => void, RegExp][] = [
    [
      'file-end without a file',
      (p) => p.send({ t: 'file-end', i: 0, sha256: 'a'.repeat(64) }),
      /^Client mallory ended a file it had not started\.$/,
    ],
    [
      'data for a file that was not accepted',
      (p) => {
        p.send({ t: 'file', i: 5, offset: 0 });
        p.data(Buffer.from('x'));
      },
      /^Client mallory sent a file that was not accepted\.$/,
    ],
    [
      'data outside a file',
      (p) => p.data(Buffer.from('x')),
      /^Client mallory sent file data outside a file\.$/,
    ],
    [
      'a second file before file-end',
      (p) => {
        p.send({ t: 'file', i: 0, offset: 0 });
        p.data(Buffer.alloc(100));
        p.send({ t: 'file', i: 1, offset: 0 });
      },
      /^Client mallory started a file before ending the previous one\.$/,
    ],
    [
      'more bytes than announced',
      (p) => {
        p.send({ t: 'file', i: 1, offset: 0 });
        p.data(Buffer.alloc(11));
      },
      /^Client mallory sent more bytes than the file has\.$/,
    ],
    [
      'a resume offset the server never offered (1 MiB into a.bin, no partial)',
      (p) => p.send({ t: 'file', i: 0, offset: 1024 * 1024 }),
      /^Client mallory asked to continue "a\.bin" from an offset it cannot use\.$/,
    ],
    [
      'done in the middle of a file',
      (p) => {
        p.send({ t: 'file', i: 1, offset: 0 });
        p.data(Buffer.alloc(4));
        p.send({ t: 'done' });
      },
      /^Client mallory finished in the middle of a file\.$/,
    ],
  ];
  for (const [name, act, sentence] of cases) {
    it(`${name}: PROTOCOL_ERROR, nothing placed`, async () => {
      const peer = await offer();
      act(peer);
      const err = lastError(await peer.rest(), 'PROTOCOL_ERROR');
      assert.match(err.message, sentence);
      assert.ok(!(await readdir(work)).some((f) => f === 'a.bin' || f === 'b.txt'));
    });
  }

  it('file-error in the middle of a file: that file fails, its partial is kept, the put goes on', async () => {
    const peer = await offer();
    peer.send({ t: 'file', i: 0, offset: 0 });
    peer.data(Buffer.alloc(1024 * 1024, 7));
    peer.send({ t: 'file-error', i: 0, code: 'SOURCE_CHANGED', message: 'it changed' });
    peer.send({ t: 'done' });
    const replies = await peer.next();
    assert.equal(replies.t, 'done', JSON.stringify(replies));
    peer.close();
    const names = await readdir(work);
    const partial = names.find((f) => f.startsWith('a.bin.') && f.endsWith('.rcpp2p-partial'));
    assert.ok(partial, names.join(', '));
    assert.equal((await stat(join(work, partial))).size, 1024 * 1024);
    assert.ok(!names.includes('a.bin'));
    await rm(join(work, partial));
  });
});

describe('a malicious server', () => {
  let base: { path: string; cleanup: () => Promise<void> };
  let listener: net.Server;
  let port = 0;
  let script: (ch: FrameChannel) => Promise<void>;

  before(async () => {
    base = await tempDir('evil-server');
    listener = net.createServer((socket) => {
      const ch = new FrameChannel(socket, { peer: 'the client', idleTimeoutMs: 5000 });
      void (async () => {
        await ch.readMessage();
        ch.send({ t: 'welcome', v: 1, server: 'evil', features: [], idleMs: 0 });
        await script(ch);
        // Wait for the client's bye, then close first, as a real server does.
        while ((await ch.readMessage()).t !== 'bye');
        ch.destroy();
      })().catch(() => ch.destroy());
    });
    await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
    port = (listener.address() as net.AddressInfo).port;
  });
  after(async () => {
    await new Promise<void>((resolve) => listener.close(() => resolve()));
    await base.cleanup();
  });

  it('cannot make the client write outside its folder with ../ names', async () => {
    const into = join(base.path, 'inside');
    await mkdir(into);
    script = async (ch) => {
      const get = await ch.readMessage();
      assert.equal(get.t, 'get');
      ch.send({
        t: 'manifest',
        files: [
          { i: 0, root: 0, path: '../x', size: 3, mtimeMs: 0 },
          { i: 1, root: 0, path: 'photos/../../y', size: 3, mtimeMs: 0 },
          { i: 2, root: 0, path: 'other/evil', size: 3, mtimeMs: 0 },
          { i: 3, root: 0, path: '/abs/evil', size: 3, mtimeMs: 0 },
        ],
        dirs: [{ root: 0, path: '../dir', mtimeMs: 0 }],
        problems: [],
        last: true,
      });
      const acc = await ch.readMessage();
      assert.ok(acc.t === 'accept' && acc.files.length === 0 && acc.refused.length === 4);
      ch.send({ t: 'done' });
      await ch.readMessage();
    };
    const client = await openClient(port);
    const results = await client.get(['photos'], into);
    await client.close();
    assert.equal(results.length, 4);
    for (const r of results) assert.ok(!r.ok && r.error.code === 'PATH_REFUSED', JSON.stringify(r));
    assert.deepEqual(await readdir(base.path), ['inside']);
    assert.deepEqual(await readdir(into), []);
  });

  it('a server sending more bytes than announced is a PROTOCOL_ERROR, nothing is placed', async () => {
    const into = join(base.path, 'inside2');
    await mkdir(into);
    script = async (ch) => {
      await ch.readMessage();
      ch.send({
        t: 'manifest',
        files: [{ i: 0, root: 0, path: 'f', size: 3, mtimeMs: 0 }],
        dirs: [],
        problems: [],
        last: true,
      });
      await ch.readMessage();
      ch.send({ t: 'file', i: 0, offset: 0 });
      ch.sendData(Buffer.from('toolong'));
    };
    const client = await openClient(port);
    await assert.rejects(
      client.get(['f'], into),
      (err: Error & { code?: string }) => err.code === 'PROTOCOL_ERROR',
    );
    await client.close();
    assert.ok(!(await readdir(into)).includes('f'));
  });

  it('folder entries of a manifest create one folder each, and a path 129 deep none', async () => {
    const into = join(base.path, 'deep-dirs');
    await mkdir(into);
    script = async (ch) => {
      await ch.readMessage();
      const dirs = [
        { root: 0, path: ['photos', ...Array<string>(128).fill('z')].join('/'), mtimeMs: 0 },
        ...Array.from({ length: 100 }, (_, k) => ({
          root: 0,
          path: ['photos', `b${k}`, ...Array<string>(126).fill('a')].join('/'),
          mtimeMs: 0,
        })),
      ];
      ch.send({ t: 'manifest', files: [], dirs, problems: [], last: true });
      await ch.readMessage();
      ch.send({ t: 'done' });
      await ch.readMessage();
    };
    const client = await openClient(port);
    assert.deepEqual(await client.get(['photos'], into), []);
    await client.close();
    let folders = 0;
    for (const e of await readdir(into, { withFileTypes: true, recursive: true }))
      if (e.isDirectory()) folders++;
    // At most one per entry (101) plus 128: before the folder budget, 100 x 127 + 1 folders.
    assert.equal(folders, 101 + 128);
  });

  it('a manifest with more folder entries than one command may hold is a PROTOCOL_ERROR', async () => {
    const into = join(base.path, 'many-dirs');
    await mkdir(into);
    script = async (ch) => {
      await ch.readMessage();
      const dirs = Array.from({ length: 16_384 }, () => ({ root: 0, path: 'photos', mtimeMs: 0 }));
      const parts = Math.ceil((MAX_DIRS_PER_COMMAND + 1) / dirs.length);
      for (let k = 0; k < parts; k++)
        ch.send({ t: 'manifest', files: [], dirs, problems: [], last: k === parts - 1 });
    };
    const client = await openClient(port);
    await assert.rejects(client.get(['photos'], into), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'PROTOCOL_ERROR');
      assert.match(
        err.message,
        new RegExp(
          `larger manifest than one command may hold \\(.*${MAX_DIRS_PER_COMMAND} folders`,
        ),
      );
      return true;
    });
    await client.close();
    assert.deepEqual(await readdir(into), []);
  });

  /** Serves one file `f` of `size` bytes in a manifest, then runs `act` once it is accepted. */
  function serveOne(size: number, act: (ch: FrameChannel) => Promise<void>) {
    script = async (ch) => {
      await ch.readMessage();
      ch.send({
        t: 'manifest',
        files: [{ i: 0, root: 0, path: 'f', size, mtimeMs: 0 }],
        dirs: [],
        problems: [],
        last: true,
      });
      await ch.readMessage();
      await act(ch);
    };
  }

  it('a server that never sends an accepted file: PROTOCOL_ERROR for it, the others are placed', async () => {
    const into = join(base.path, 'never');
    await mkdir(into);
    const body = Buffer.from('hello');
    script = async (ch) => {
      await ch.readMessage();
      ch.send({
        t: 'manifest',
        files: [
          { i: 0, root: 0, path: 'd/one', size: body.length, mtimeMs: 0 },
          { i: 1, root: 0, path: 'd/two', size: 3, mtimeMs: 0 },
        ],
        dirs: [{ root: 0, path: 'd', mtimeMs: 0 }],
        problems: [],
        last: true,
      });
      await ch.readMessage();
      ch.send({ t: 'file', i: 0, offset: 0 });
      ch.sendData(body);
      ch.send({ t: 'file-end', i: 0, sha256: createHash('sha256').update(body).digest('hex') });
      ch.send({ t: 'done' });
      for (;;) if ((await ch.readMessage()).t === 'done') break;
    };
    const client = await openClient(port);
    const [one, two] = await client.get(['d'], into);
    await client.close();
    assert.ok(one?.ok, JSON.stringify(one));
    assert.ok(two && !two.ok, JSON.stringify(two));
    assert.equal(two.error.code, 'PROTOCOL_ERROR');
    assert.match(two.error.message, /never sent "d\/two"/);
  });

  it('a server failing a file in the middle: that file fails with its code, the partial is kept', async () => {
    const into = join(base.path, 'midway');
    await mkdir(into);
    serveOne(3 * 1024 * 1024, async (ch) => {
      ch.send({ t: 'file', i: 0, offset: 0 });
      ch.sendData(Buffer.alloc(1024 * 1024, 1));
      ch.send({ t: 'file-error', i: 0, code: 'SOURCE_CHANGED', message: 'f changed' });
      ch.send({ t: 'done' });
      await ch.readMessage();
    });
    const client = await openClient(port);
    const [r] = await client.get(['f'], into);
    await client.close();
    assert.ok(r && !r.ok && r.error.code === 'SOURCE_CHANGED', JSON.stringify(r));
    const names = await readdir(into);
    assert.equal(names.length, 1, names.join(', '));
    assert.match(names[0]!, /^f\.[0-9a-f]{8}\.rcpp2p-partial$/);
    assert.equal((await stat(join(into, names[0]!))).size, 1024 * 1024);
  });

  it('a server continuing from an offset the client never offered: PROTOCOL_ERROR', async () => {
    const into = join(base.path, 'offset');
    await mkdir(into);
    serveOne(3 * 1024 * 1024, (ch) => {
      ch.send({ t: 'file', i: 0, offset: 1024 * 1024 });
      ch.sendData(Buffer.alloc(2 * 1024 * 1024 - 1, 1));
      return Promise.resolve();
    });
    const client = await openClient(port);
    await assert.rejects(client.get(['f'], into), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'PROTOCOL_ERROR');
      assert.match(err.message, /asked to continue "f" from an offset it cannot use/);
      return true;
    });
    await client.close();
    assert.deepEqual(await readdir(into), []);
  });

  it('two names a case-insensitive or normalizing disk would merge: the second is refused', async () => {
    const into = join(base.path, 'fold');
    await mkdir(into);
    script = async (ch) => {
      await ch.readMessage();
      ch.send({
        t: 'manifest',
        files: ['d/Photo.jpg', 'd/photo.jpg', 'd/caf\u00e9', 'd/cafe\u0301'].map((path, i) => ({
          i,
          root: 0,
          path,
          size: 1,
          mtimeMs: 0,
        })),
        dirs: [{ root: 0, path: 'd', mtimeMs: 0 }],
        problems: [],
        last: true,
      });
      const acc = await ch.readMessage();
      assert.ok(acc.t === 'accept');
      assert.deepEqual(
        acc.files.map((f) => f.i),
        [0, 2],
      );
      for (const f of acc.files) ch.send({ t: 'file-error', i: f.i, code: 'BUSY', message: 'no' });
      ch.send({ t: 'done' });
      for (;;) if ((await ch.readMessage()).t === 'done') break;
    };
    const client = await openClient(port);
    const results = await client.get(['d'], into);
    await client.close();
    assert.deepEqual(
      results.map((r) => (r.ok ? 'ok' : r.error.code)),
      ['BUSY', 'PATH_REFUSED', 'BUSY', 'PATH_REFUSED'],
    );
  });

  it('a server listing unsafe names is a PROTOCOL_ERROR', async () => {
    script = async (ch) => {
      await ch.readMessage();
      ch.send({
        t: 'listing',
        entries: [{ path: '../etc', kind: 'dir', size: 0, mtimeMs: 0 }],
        last: true,
        truncated: false,
      });
    };
    const client = await openClient(port);
    await assert.rejects(
      client.list(''),
      (err: Error & { code?: string }) => err.code === 'PROTOCOL_ERROR',
    );
    await client.close();
  });
});
