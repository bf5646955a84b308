// Unix-socket forwarding on the embedded rendezvous: the signaling socket of a file server belongs to
// the connection that offered it, inside its own account's home. Real ssh2 clients on loopback try
// to take it over, cancel it, open what nobody offered, and reach into another account.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type net from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type ssh2 from 'ssh2';
import {
  answerIncoming,
  command,
  eventually,
  exec,
  forwardIn,
  forwardOut,
  randomName,
  readToEnd,
  startEmbeddedLab,
  unforwardIn,
  type EmbeddedLab,
} from '../../helpers/embedded-rendezvous.js';

describe('embedded rendezvous: Unix-socket forwarding', { timeout: 120_000 }, () => {
  let lab: EmbeddedLab;
  const open: ssh2.Client[] = [];
  const login = async (user: 'alice' | 'bob', reply?: string): Promise<ssh2.Client> => {
    const client = await lab.login({ user, key: user });
    open.push(client);
    if (reply !== undefined) answerIncoming(client, reply);
    return client;
  };
  const socketIn = (user: string): string =>
    join(lab.home(user), '.rcpp2p', 'sockets', `${randomName()}.sock`);
  /** What the offering side answered on a new channel to `path`, or 'refused'. */
  const reach = async (client: ssh2.Client, path: string): Promise<string> => {
    const channel = await forwardOut(client, path);
    channel?.end(); // nothing to send: half-close, as OpenSSH's channels allow
    return channel ? readToEnd(channel) : 'refused';
  };

  before(async () => {
    lab = await startEmbeddedLab();
  });
  after(async () => {
    for (const c of open) c.end();
    await lab?.stop();
  });

  it('carries a channel to the connection that offered the socket (control)', async () => {
    const server = await login('alice', 'from server');
    const client = await login('alice');
    const path = socketIn('alice');
    assert.equal(await forwardIn(server, path), true);
    assert.equal(await reach(client, path), 'from server');
  });

  it('does not let a second connection of the same account take over a socket', async () => {
    const server = await login('alice', 'real server');
    const intruder = await login('alice', 'intruder');
    const client = await login('alice');
    const path = socketIn('alice');
    assert.equal(await forwardIn(server, path), true);
    assert.equal(await forwardIn(intruder, path), false);
    assert.equal(await reach(client, path), 'real server');
  });

  it('lets only the owner cancel a forwarding; after that the name is free', async () => {
    const server = await login('alice', 'owner');
    const other = await login('alice', 'next owner');
    const client = await login('alice');
    const path = socketIn('alice');
    assert.equal(await forwardIn(server, path), true);
    await unforwardIn(other, path);
    assert.equal(await reach(client, path), 'owner', "another connection's cancel removed it");
    assert.equal(await unforwardIn(server, path), true);
    assert.equal(await reach(client, path), 'refused');
    assert.equal(await forwardIn(other, path), true);
    assert.equal(await reach(client, path), 'next owner');
  });

  it("frees a connection's sockets when it goes away", async () => {
    const server = await login('alice', 'gone');
    const path = socketIn('alice');
    assert.equal(await forwardIn(server, path), true);
    await new Promise<void>((resolve) => {
      server.once('close', () => resolve());
      server.end();
    });
    const client = await login('alice');
    // The rendezvous sees the close a moment after the client does: wait for the name to be free.
    const next = await login('alice', 'next');
    assert.ok(await eventually(() => forwardIn(next, path)));
    assert.equal(await reach(client, path), 'next');
  });

  it('relays 16 MiB each way intact, with a slow reader on one side', async () => {
    const server = await login('alice');
    const client = await login('alice');
    const path = socketIn('alice');
    const size = 16 * 1024 * 1024;
    const upload = randomBytes(size);
    const download = randomBytes(size);
    const received = new Promise<Buffer>((resolve) => {
      server.on('unix connection', (_info, accept) => {
        const channel = accept();
        const chunks: Buffer[] = [];
        // Reads in bursts, so the rendezvous must hold back the sender in between.
        channel.on('data', (d: Buffer) => {
          chunks.push(d);
          channel.pause();
          setTimeout(() => channel.resume(), 1);
        });
        channel.on('end', () => resolve(Buffer.concat(chunks)));
        channel.end(download);
      });
    });
    assert.equal(await forwardIn(server, path), true);
    const channel = await forwardOut(client, path);
    assert.ok(channel);
    const back: Buffer[] = [];
    channel.on('data', (d: Buffer) => back.push(d));
    const ended = new Promise<void>((resolve) => channel.on('end', () => resolve()));
    channel.end(upload);
    assert.ok((await received).equals(upload), 'upload arrived intact');
    await ended;
    assert.ok(Buffer.concat(back).equals(download), 'download arrived intact');
  });

  it('stops a sender into a relay nobody reads after two SSH windows and a little', async () => {
    const server = await login('alice');
    const client = await login('alice');
    const path = socketIn('alice');
    server.on('unix connection', (_info, accept) => accept().pause()); // never reads
    assert.equal(await forwardIn(server, path), true);
    const channel = await forwardOut(client, path);
    assert.ok(channel);
    const window = (): number =>
      (channel as unknown as { outgoing: { window: number } }).outgoing.window;
    let sent = 0;
    const chunk = Buffer.alloc(32 * 1024);
    for (let i = 0; i < 400; i++) channel.write(chunk, () => (sent += chunk.length));
    // Stalled: no window left and data waiting. A command answered on the same connection shows
    // that the rendezvous has handled everything sent before it, window grants included.
    const hello = command({ op: 'hello', dir: '.rcpp2p', role: 'client', name: 'x' });
    assert.ok(
      await eventually(async () => {
        if (window() > 0 || channel.writableLength === 0) return false;
        await exec(client, hello);
        return window() === 0;
      }),
    );
    // One window (2 MiB) waits in the owner's client, one in the rendezvous's channel toward it
    // and its high-water mark (256 KiB) in each direction; without the lowered buffer mark ssh2
    // grants another 2 MiB (7 MiB in all).
    const mib = sent / 1024 / 1024;
    assert.ok(mib <= 5.5, `the rendezvous took ${mib} MiB for a reader that never reads`);
    channel.destroy();
  });

  it('closes a relayed channel whose sender ignores the SSH window', async () => {
    const server = await login('alice');
    const client = await login('alice');
    const path = socketIn('alice');
    server.on('unix connection', (_info, accept) => accept().pause()); // never reads
    assert.equal(await forwardIn(server, path), true);
    const channel = await forwardOut(client, path);
    assert.ok(channel);
    let closed = false;
    channel.on('close', () => (closed = true));
    channel.on('error', () => {});
    channel.resume(); // a client channel reports its close only after its input ended
    // A hostile client writes straight through ssh2's protocol layer, past any window. Packets of
    // an odd size make the rendezvous's window count skip zero, so ssh2 never stops them.
    const raw = channel as unknown as {
      outgoing: { id: number };
      _client: { _sock: net.Socket; _protocol: { channelData(id: number, data: Buffer): void } };
    };
    const socket = raw._client._sock;
    const send = (data: Buffer): void => raw._client._protocol.channelData(raw.outgoing.id, data);
    const chunk = Buffer.alloc(32 * 1024 - 1);
    for (let sent = 0; sent < 64 * 1024 * 1024 && !closed; sent += chunk.length) {
      send(chunk);
      if (socket.writableLength > 1024 * 1024) {
        await new Promise((resolve) => socket.once('drain', resolve));
      }
    }
    // The rendezvous answers in order: once this command is answered, it has seen every byte.
    await exec(client, command({ op: 'hello', dir: '.rcpp2p', role: 'client', name: 'x' }));
    assert.equal(
      closed,
      true,
      'the rendezvous kept buffering for a sender that ignores the window',
    );
  });

  it('refuses a channel to a socket nobody offered', async () => {
    const client = await login('alice');
    assert.equal(await reach(client, socketIn('alice')), 'refused');
    assert.equal(await reach(client, '/tmp/nothing-here.sock'), 'refused');
  });

  it("keeps accounts apart: bob cannot open or take alice's socket, by any spelling", async () => {
    const server = await login('alice', 'alice server');
    const bob = await login('bob', 'bob');
    const path = socketIn('alice');
    assert.equal(await forwardIn(server, path), true);
    assert.equal(await reach(bob, path), 'refused');
    const relative = `../alice/${path.slice(lab.home('alice').length + 1)}`;
    assert.equal(await reach(bob, relative), 'refused');
    assert.equal(await forwardIn(bob, path), false);
    assert.equal(await forwardIn(bob, relative), false);
    // Bob's own socket of the same name is his, and alice's still reaches alice.
    const bobs = join(lab.home('bob'), path.slice(lab.home('alice').length + 1));
    assert.equal(await forwardIn(bob, bobs), true);
    assert.equal(await reach(await login('alice'), path), 'alice server');
    assert.equal(await reach(await login('bob'), bobs), 'bob');
  });

  it("refuses to offer a socket outside the account's home", async () => {
    const alice = await login('alice', 'x');
    for (const path of [
      '/tmp/evil.sock',
      join(lab.stateDir, 'evil.sock'),
      '../bob/.rcpp2p/sockets/x.sock',
      join(lab.home('alice'), '..', 'bob', 'x.sock'),
    ]) {
      assert.equal(await forwardIn(alice, path), false, path);
    }
    assert.equal(await forwardIn(alice, '.rcpp2p/sockets/relative.sock'), true);
  });

  it('takes a path relative to the home and the same path written in full as one socket', async () => {
    const server = await login('alice', 'relative');
    const client = await login('alice');
    const name = `${randomName()}.sock`;
    assert.equal(await forwardIn(server, `.rcpp2p/sockets/${name}`), true);
    const full = join(lab.home('alice'), '.rcpp2p', 'sockets', name);
    assert.equal(await forwardIn(await login('alice'), full), false, 'taken under its full name');
    assert.equal(await reach(client, full), 'relative');
    assert.equal(await reach(client, `.rcpp2p/./sockets/${name}`), 'relative');
  });
});
