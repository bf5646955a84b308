// Quotas of a logged-in account on the embedded rendezvous (security review 2, finding 6): sockets
// offered per connection and per account, channels open per connection and per account, files and
// folders in the account's home. One account must not take what all accounts share.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type ssh2 from 'ssh2';
import type { ClientChannel } from 'ssh2';
import { parseListReply } from '../../../src/rendezvous/commands.js';
import {
  command,
  exec,
  eventually,
  forwardIn,
  forwardOut,
  randomName,
  startEmbeddedLab,
  unforwardIn,
  type EmbeddedLab,
} from '../../helpers/embedded-rendezvous.js';

describe('embedded rendezvous: quotas of an account', { timeout: 120_000 }, () => {
  let lab: EmbeddedLab;
  const open: ssh2.Client[] = [];
  const login = async (user: 'alice' | 'bob'): Promise<ssh2.Client> => {
    const client = await lab.login({ user, key: user });
    open.push(client);
    return client;
  };
  const sock = (user: string): string =>
    join(lab.home(user), '.rcpp2p', 'sockets', `${randomName()}.sock`);
  /** A publish waiting for its input: holds one channel until `end()`. */
  const holdChannel = (client: ssh2.Client): Promise<ClientChannel | undefined> =>
    new Promise((resolve) =>
      client.exec(
        command({ op: 'publish', dir: '.rcpp2p', role: 'client', name: randomName() }),
        (err, channel) => resolve(err ? undefined : channel),
      ),
    );

  before(async () => {
    lab = await startEmbeddedLab({
      limits: {
        maxForwardingsPerConnection: 3,
        maxForwardingsPerAccount: 5,
        maxChannelsPerConnection: 3,
        maxChannelsPerAccount: 5,
        maxSocketChannelsPerAccount: 2,
        maxSocketPathBytes: 200,
      },
    });
  });
  after(async () => {
    for (const c of open) c.end();
    await lab?.stop();
  });

  it('takes three sockets per connection and five per account, and frees them on cancel', async () => {
    const [a, b, bob] = [await login('alice'), await login('alice'), await login('bob')];
    const first = sock('alice');
    assert.equal(await forwardIn(a, first), true);
    assert.equal(await forwardIn(a, sock('alice')), true);
    assert.equal(await forwardIn(a, sock('alice')), true);
    assert.equal(await forwardIn(a, sock('alice')), false, 'a fourth on one connection');
    assert.equal(await forwardIn(b, sock('alice')), true);
    assert.equal(await forwardIn(b, sock('alice')), true);
    assert.equal(await forwardIn(b, sock('alice')), false, 'a sixth for the account');
    assert.equal(await forwardIn(bob, sock('bob')), true, 'bob has his own');
    await lab.waitForEvent(/refused a socket of alice from 127\.0\.0\.1: 5 for the account/);
    assert.equal(await unforwardIn(a, first), true);
    assert.equal(await forwardIn(b, sock('alice')), true);
    for (const c of [a, b, bob]) c.end();
  });

  it('refuses a socket path longer than the limit', async () => {
    const a = await login('alice');
    assert.equal(await forwardIn(a, `${'d/'.repeat(100)}x.sock`), false);
    a.end();
  });

  it('holds three channels per connection and five per account', async () => {
    const [a, b, bob] = [await login('alice'), await login('alice'), await login('bob')];
    const held: ClientChannel[] = [];
    for (let i = 0; i < 3; i++) {
      const channel = await holdChannel(a);
      assert.ok(channel, `channel ${i + 1} on one connection`);
      held.push(channel);
    }
    assert.equal(await holdChannel(a), undefined, 'a fourth on one connection');
    for (let i = 0; i < 2; i++) {
      const channel = await holdChannel(b);
      assert.ok(channel, `channel ${i + 4} of the account`);
      held.push(channel);
    }
    assert.equal(await holdChannel(b), undefined, 'a sixth for the account');
    assert.equal(
      (await exec(bob, command({ op: 'list', dir: '.rcpp2p', role: 'client' }))).code,
      0,
    );
    for (const channel of held) channel.end('{}');
    // Once their commands are done (the rendezvous sees that a moment later), the places are free.
    const list = command({ op: 'list', dir: '.rcpp2p', role: 'client' });
    assert.ok(
      await eventually(async () => (await exec(a, list).catch(() => undefined))?.code === 0),
    );
    for (const c of [a, b, bob]) c.end();
  });

  it('holds two socket channels per account: the third waits until one closes', async () => {
    const [owner, a, b, bob] = [
      await login('alice'),
      await login('alice'),
      await login('alice'),
      await login('bob'),
    ];
    owner.on('unix connection', (_info, accept) => accept()); // holds every channel open
    const path = sock('alice');
    assert.equal(await forwardIn(owner, path), true);
    const first = await forwardOut(a, path);
    const second = await forwardOut(b, path);
    assert.ok(first && second);
    assert.equal(await forwardOut(a, path), undefined, 'a third socket channel of the account');
    assert.equal((await exec(a, command({ op: 'list', dir: '.rcpp2p', role: 'client' }))).code, 0);
    const bobs = sock('bob');
    bob.on('unix connection', (_info, accept) => accept());
    assert.equal(await forwardIn(bob, bobs), true);
    assert.ok(await forwardOut(bob, bobs), 'bob has his own');
    first.close();
    assert.ok(await eventually(async () => (await forwardOut(a, path)) !== undefined));
    for (const c of [owner, a, b, bob]) c.end();
  });

  it('lists every record of a folder, written out one by one', async () => {
    const bob = await login('bob');
    const names = ['a', 'b', 'c', 'd', 'e'];
    for (const name of names) {
      const r = await exec(
        bob,
        command({ op: 'publish', dir: '.l', role: 'client', name }),
        JSON.stringify({ name, pad: 'x'.repeat(15_000) }),
      );
      assert.equal(r.code, 0, r.stderr);
    }
    const list = await exec(bob, command({ op: 'list', dir: '.l', role: 'client' }));
    const records = parseListReply(list.stdout).map(
      (t) => (JSON.parse(t) as { name: string }).name,
    );
    assert.deepEqual(records, names);
    bob.end();
  });
});

describe('embedded rendezvous: files per account', { timeout: 120_000 }, () => {
  let lab: EmbeddedLab;
  before(async () => {
    lab = await startEmbeddedLab({ limits: { maxEntriesPerAccount: 10 } });
  });
  after(async () => {
    await lab?.stop();
  });

  it('keeps ten files and folders per account: a new record past that is refused', async () => {
    const a = await lab.login({ user: 'alice', key: 'alice' });
    const bob = await lab.login({ user: 'bob', key: 'bob' });
    const publish = (client: ssh2.Client, name: string, dir = '.q') =>
      exec(client, command({ op: 'publish', dir, role: 'server', name }), `{"name":"${name}"}`);
    // .q and .q/servers are two; eight records make ten.
    for (let i = 0; i < 8; i++) assert.equal((await publish(a, `r${i}`)).code, 0);
    const over = await publish(a, 'r8');
    assert.equal(over.code, 1);
    assert.match(over.stderr, /reached its limit of 10 files and folders/);
    assert.equal(existsSync(join(lab.home('alice'), '.q', 'servers', 'r8.json')), false);
    assert.equal((await publish(a, 'r3')).code, 0, 'replacing a record takes no place');
    const hello = await exec(a, command({ op: 'hello', dir: '.other', role: 'server', name: 'x' }));
    assert.equal(hello.code, 1, 'a new rendezvous folder is refused too');
    assert.equal((await publish(bob, 'r8')).code, 0, 'bob has his own quota');
    a.end();
    bob.end();
  });
});
