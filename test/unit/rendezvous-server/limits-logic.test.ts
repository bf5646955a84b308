// The embedded rendezvous's pure bookkeeping, table-tested with a fake clock: console lines anyone
// can cause, the per-source password back-off, what counts as one source, and the socket registry.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { sourceOf } from '../../../src/rendezvous-server/admission.js';
import { consoleSafe, LimitedLines } from '../../../src/rendezvous-server/console-lines.js';
import { Forwardings } from '../../../src/rendezvous-server/forwardings.js';
import { PasswordBackoff } from '../../../src/rendezvous-server/password-backoff.js';

describe('console lines', () => {
  it('turns terminal escapes, C1 controls and bidi overrides into U+FFFD', () => {
    const hostile = 'x\x1b]0;owned\x07\x1b[2J\rpeer logged in \x9b31m \u202eevil\u2066';
    const safe = consoleSafe(hostile);
    // eslint-disable-next-line no-control-regex -- looking for control characters
    assert.doesNotMatch(safe, /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/);
    assert.equal(safe.length, hostile.length);
  });

  it('shows five lines per source and thirty in all per window, then one summary', () => {
    let now = 0;
    const shown: string[] = [];
    const lines = new LimitedLines((t) => shown.push(t), {
      what: 'refused logins',
      windowMs: 60_000,
      now: () => now,
    });
    for (let i = 0; i < 8; i++) lines.line('198.51.100.7', `refused ${i}`);
    assert.deepEqual(shown, ['refused 0', 'refused 1', 'refused 2', 'refused 3', 'refused 4']);
    for (let s = 0; s < 10; s++) for (let i = 0; i < 5; i++) lines.line(`203.0.113.${s}`, 'x');
    assert.equal(shown.length, 30, 'thirty lines in all per window');
    now = 60_000;
    lines.line('198.51.100.7', 'next window');
    assert.deepEqual(shown.slice(30), [
      '28 more refused logins from 6 addresses in the last 60 s were not shown.',
      'next window',
    ]);
    lines.close();
    assert.equal(shown.length, 32, 'nothing left to summarise');
  });

  it('says at close what it left out', () => {
    const shown: string[] = [];
    const lines = new LimitedLines((t) => shown.push(t), {
      what: 'logins',
      perSource: 1,
      now: () => 5_000,
    });
    lines.line('a', 'one');
    lines.line('a', 'two');
    lines.close();
    assert.deepEqual(shown, [
      'one',
      '1 more logins from 1 address in the last 1 s were not shown.',
    ]);
  });
});

describe('password back-off per source', () => {
  it('allows a burst of wrong passwords, then one per refill interval', () => {
    let now = 0;
    const backoff = new PasswordBackoff({ burst: 3, refillMs: 10_000, now: () => now });
    assert.deepEqual(
      [1, 2, 3, 4].map(() => backoff.take('192.0.2.1')),
      [true, true, true, false],
    );
    assert.equal(backoff.waitMs('192.0.2.1'), 10_000);
    assert.equal(backoff.take('192.0.2.2'), true, 'another source has its own tries');
    now = 9_999;
    assert.equal(backoff.take('192.0.2.1'), false);
    now = 10_000;
    assert.equal(backoff.take('192.0.2.1'), true);
    assert.equal(backoff.take('192.0.2.1'), false);
  });

  it('gives the try back for a right password, so only wrong ones count', () => {
    const backoff = new PasswordBackoff({ burst: 2, refillMs: 60_000, now: () => 0 });
    for (let i = 0; i < 10; i++) {
      assert.equal(backoff.take('192.0.2.1'), true);
      backoff.refund('192.0.2.1');
    }
  });

  it('forgets full buckets first when it remembers too many sources', () => {
    let now = 0;
    const backoff = new PasswordBackoff({ burst: 1, refillMs: 1_000, now: () => now });
    backoff.take('guesser');
    now = 500;
    for (let i = 0; i < 9000; i++) {
      backoff.take(`10.0.${i >> 8}.${i & 255}`);
      backoff.refund(`10.0.${i >> 8}.${i & 255}`);
    }
    assert.equal(backoff.take('guesser'), false, 'the guesser is still waiting');
  });
});

describe('what counts as one source address', () => {
  const cases: [string, string, string][] = [
    ['an IPv4 address is its own source', '198.51.100.7', '198.51.100.7'],
    ['an IPv6 address counts as its /64', '2001:db8:1:2:aaaa::1', '2001:db8:1:2::/64'],
    [
      'another host in the same /64 is the same source',
      '2001:db8:1:2:ffff:1:2:3',
      '2001:db8:1:2::/64',
    ],
    ['leading zeros and :: spelled differently', '2001:0db8:0001:0002::', '2001:db8:1:2::/64'],
    ['a short form with :: early', '2001:db8::5', '2001:db8:0:0::/64'],
    ['loopback', '::1', '0:0:0:0::/64'],
    ['an embedded IPv4 tail', '64:ff9b::192.0.2.1', '64:ff9b:0:0::/64'],
    ['a zone index is ignored', 'fe80::1%eth0', 'fe80:0:0:0::/64'],
  ];
  for (const [name, ip, source] of cases) {
    it(name, () => assert.equal(sourceOf(ip), source));
  }
});

describe('offered Unix sockets', () => {
  const limits = { maxForwardingsPerConnection: 2, maxForwardingsPerAccount: 3 };
  const conn = (): object => ({});

  it('keeps a name for the connection that offered it', () => {
    const f = new Forwardings<object>(limits);
    const [a, b] = [conn(), conn()];
    assert.deepEqual(f.offer('alice', '/h/s.sock', a), { ok: true });
    assert.deepEqual(f.offer('alice', '/h/s.sock', a), { ok: true }, 'offering again is fine');
    assert.deepEqual(f.offer('alice', '/h/s.sock', b), { ok: false, why: 'taken' });
    assert.equal(f.find('alice', '/h/s.sock')?.owner, a);
    assert.equal(f.cancel('alice', '/h/s.sock', b), false);
    assert.equal(f.find('alice', '/h/s.sock')?.owner, a);
    assert.equal(f.cancel('alice', '/h/s.sock', a), true);
    assert.equal(f.find('alice', '/h/s.sock'), undefined);
  });

  it('names sockets per account: the same path is two sockets for two accounts', () => {
    const f = new Forwardings<object>(limits);
    const [a, b] = [conn(), conn()];
    assert.deepEqual(f.offer('alice', '/shared/s.sock', a), { ok: true });
    assert.equal(f.find('bob', '/shared/s.sock'), undefined);
    assert.deepEqual(f.offer('bob', '/shared/s.sock', b), { ok: true });
    assert.equal(f.find('alice', '/shared/s.sock')?.owner, a);
    f.unlink('bob', '/shared/s.sock');
    assert.equal(f.find('alice', '/shared/s.sock')?.owner, a);
  });

  it('limits offers per connection and per account, and frees them when the owner goes', () => {
    const f = new Forwardings<object>(limits);
    const [a, b, c] = [conn(), conn(), conn()];
    assert.deepEqual(f.offer('alice', '/1', a), { ok: true });
    assert.deepEqual(f.offer('alice', '/2', a), { ok: true });
    assert.deepEqual(f.offer('alice', '/3', a), { ok: false, why: 'connection-quota' });
    assert.deepEqual(f.offer('alice', '/3', b), { ok: true });
    assert.deepEqual(f.offer('alice', '/4', b), { ok: false, why: 'account-quota' });
    assert.deepEqual(f.offer('bob', '/4', c), { ok: true }, 'other accounts have their own');
    f.dropOwner(a);
    assert.equal(f.find('alice', '/1'), undefined);
    assert.deepEqual(f.offer('alice', '/4', b), { ok: true });
  });

  it('remembers the path as its owner spelled it', () => {
    const f = new Forwardings<object>(limits);
    const a = conn();
    f.offer('alice', '/home/alice/.rcpp2p/sockets/s.sock', a, '.rcpp2p/sockets/s.sock');
    assert.equal(
      f.find('alice', '/home/alice/.rcpp2p/sockets/s.sock')?.asOffered,
      '.rcpp2p/sockets/s.sock',
    );
  });
});
