// The embedded rendezvous's limits before login, like sshd's: failed attempts per connection
// (MaxAuthTries), a grace time to log in (LoginGraceTime), caps on connections that have not logged
// in, globally and per source address (MaxStartups), a per-source back-off for password guessing,
// and a cap on connections per account. Real ssh2 clients and bare TCP sockets on loopback; other
// source addresses are 127.0.0.2 and 127.0.0.3.
import assert from 'node:assert/strict';
import type net from 'node:net';
import { after, before, describe, it } from 'node:test';
import type ssh2 from 'ssh2';
import type { AnyAuthMethod } from 'ssh2';
import {
  ALICE_PASSWORD,
  closed,
  command,
  eventually,
  exec,
  rawConnect,
  startEmbeddedLab,
  type EmbeddedLab,
} from '../../helpers/embedded-rendezvous.js';

const HELLO = command({ op: 'hello', dir: '.rcpp2p', role: 'client', name: 'probe' });
const password = (pw: string): AnyAuthMethod => ({
  type: 'password',
  username: 'alice',
  password: pw,
});
const wrong = (n: number): AnyAuthMethod[] =>
  Array.from({ length: n }, (_, i) => password(`wrong guess ${i}`));

describe('embedded rendezvous: failed logins per connection', { timeout: 120_000 }, () => {
  let lab: EmbeddedLab;
  before(async () => {
    lab = await startEmbeddedLab({ limits: { passwordBurstPerSource: 1000 } });
  });
  after(async () => {
    await lab?.stop();
  });

  it('lets in the right password after five wrong ones and the none probe', async () => {
    const client = await lab.login({
      user: 'alice',
      authHandler: [{ type: 'none', username: 'alice' }, ...wrong(5), password(ALICE_PASSWORD)],
    });
    client.end();
  });

  it('closes the connection after six wrong passwords: a seventh, right one never counts', async () => {
    await lab.refusedLogin({ user: 'alice', authHandler: [...wrong(6), password(ALICE_PASSWORD)] });
  });

  it('counts unknown keys as failures too', async () => {
    const stranger = {
      type: 'publickey' as const,
      username: 'alice',
      key: lab.parsedKey('stranger'),
    };
    await lab.refusedLogin({
      user: 'alice',
      authHandler: [...Array.from({ length: 6 }, () => stranger), password(ALICE_PASSWORD)],
    });
  });
});

// A lab of its own: refusal lines are rate-limited per source, so earlier refusals could hide one.
describe('embedded rendezvous: the none probe', { timeout: 120_000 }, () => {
  let lab: EmbeddedLab;
  before(async () => {
    lab = await startEmbeddedLab();
  });
  after(async () => {
    await lab?.stop();
  });

  it('does not print the none probe ssh2 sends before a key login', async () => {
    const before = lab.events.length;
    const client = await lab.login({ user: 'alice', key: 'alice' }); // ssh2 sends "none" first
    client.end();
    await lab.waitForEvent(/alice logged in/);
    assert.deepEqual(
      lab.events.slice(before).filter((e) => /refused/.test(e)),
      [],
    );
  });

  it("does not print the none probe OpenSSH's ssh sends", async () => {
    const before = lab.events.length;
    const r = await lab.ssh('alice', 'alice', [HELLO]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(
      lab.events.slice(before).filter((e) => /refused/.test(e)),
      [],
    );
  });
});

describe('embedded rendezvous: login grace time', { timeout: 120_000 }, () => {
  let lab: EmbeddedLab;
  const sockets: net.Socket[] = [];
  before(async () => {
    lab = await startEmbeddedLab({ limits: { loginGraceMs: 500 } });
  });
  after(async () => {
    for (const s of sockets) s.destroy();
    await lab?.stop();
  });

  it('closes a connection that never logs in, and keeps one that did', async () => {
    const alice = await lab.login({ user: 'alice', key: 'alice' });
    const silent = await rawConnect(lab.port);
    sockets.push(silent.socket);
    assert.equal(silent.verdict, 'accepted');
    // A client that finishes the key exchange and then never answers the login prompt.
    const stuck = lab
      .login({ user: 'alice', authHandler: () => undefined, readyTimeoutMs: 60_000 })
      .then(
        () => 'logged in',
        (err: Error) => err.message,
      );
    await closed(silent.socket);
    assert.doesNotMatch(await stuck, /logged in|Timed out/);
    await lab.waitForEvent(/closed the connection from 127\.0\.0\.1: no login within 0\.5 s/);
    // alice logged in before the silent socket was opened, so she is older than the grace time.
    assert.equal((await exec(alice, HELLO)).code, 0);
    alice.end();
  });
});

describe('embedded rendezvous: connections waiting to log in', { timeout: 120_000 }, () => {
  let lab: EmbeddedLab;
  const sockets: net.Socket[] = [];
  const raw = async (from: string): Promise<string> => {
    const r = await rawConnect(lab.port, from);
    sockets.push(r.socket);
    return r.verdict;
  };
  before(async () => {
    lab = await startEmbeddedLab({
      limits: { maxUnauthenticated: 4, maxUnauthenticatedPerSource: 2 },
    });
  });
  after(async () => {
    for (const s of sockets) s.destroy();
    await lab?.stop();
  });

  it('refuses past two per source and four in all, and never drops a logged-in user', async () => {
    const alice = await lab.login({ user: 'alice', key: 'alice' });
    assert.equal(await raw('127.0.0.1'), 'accepted');
    assert.equal(await raw('127.0.0.1'), 'accepted');
    assert.equal(await raw('127.0.0.1'), 'refused', 'a third from one source');
    assert.equal(await raw('127.0.0.2'), 'accepted');
    assert.equal(await raw('127.0.0.2'), 'accepted');
    assert.equal(await raw('127.0.0.3'), 'refused', 'a fifth in all');
    await lab.waitForEvent(/refused a connection from 127\.0\.0\.3: 4 connections are waiting/);
    assert.equal((await exec(alice, HELLO)).code, 0, 'alice is still served');
    alice.end();
  });

  it('counts a connection only until it has logged in', async () => {
    for (const s of sockets.splice(0)) s.destroy();
    // The rendezvous sees the closes a moment later.
    assert.ok(await eventually(async () => (await raw('127.0.0.3')) === 'accepted'));
    for (const s of sockets.splice(0)) s.destroy();
    const logged: ssh2.Client[] = [];
    for (let i = 0; i < 3; i++) logged.push(await lab.login({ user: 'bob', key: 'bob' }));
    assert.equal(await raw('127.0.0.1'), 'accepted');
    assert.equal(await raw('127.0.0.1'), 'accepted');
    for (const c of logged) c.end();
  });
});

describe('embedded rendezvous: password back-off per source', { timeout: 120_000 }, () => {
  let lab: EmbeddedLab;
  before(async () => {
    lab = await startEmbeddedLab({
      limits: { passwordBurstPerSource: 3, passwordRefillMs: 3_600_000 },
    });
  });
  after(async () => {
    await lab?.stop();
  });

  it('after three wrong passwords from a source, refuses even the right one from there', async () => {
    await lab.refusedLogin({ user: 'alice', authHandler: wrong(3) });
    await lab.refusedLogin({ user: 'alice', authHandler: [password(ALICE_PASSWORD)] });
    await lab.waitForEvent(
      /too many wrong passwords from there; the next try is possible in \d+ s/,
    );
  });

  it('still lets key logins from that source, and passwords from another source, in', async () => {
    (await lab.login({ user: 'alice', key: 'alice' })).end();
    const other = await lab.login({
      user: 'alice',
      localAddress: '127.0.0.2',
      authHandler: [password(ALICE_PASSWORD)],
    });
    other.end();
  });
});

describe('embedded rendezvous: connections per account', { timeout: 120_000 }, () => {
  let lab: EmbeddedLab;
  before(async () => {
    lab = await startEmbeddedLab({ limits: { maxConnectionsPerAccount: 2 } });
  });
  after(async () => {
    await lab?.stop();
  });

  it('refuses a third connection of alice, not bob, and takes her again after one left', async () => {
    const first = await lab.login({ user: 'alice', key: 'alice' });
    const second = await lab.login({ user: 'alice', key: 'alice' });
    await lab.refusedLogin({ user: 'alice', key: 'alice' });
    await lab.waitForEvent(/refused login of alice from 127\.0\.0\.1: the account already has 2/);
    const bob = await lab.login({ user: 'bob', key: 'bob' });
    first.end();
    await closed(first);
    let third: ssh2.Client | undefined;
    assert.ok(
      await eventually(async () => {
        third = await lab.login({ user: 'alice', key: 'alice' }).catch(() => undefined);
        return third !== undefined;
      }),
    );
    for (const c of [second, bob, third]) c?.end();
  });
});
