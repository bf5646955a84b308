// known_hosts matching, table-tested with setups people have, and checked against OpenSSH's own
// ssh-keygen (hashing with -H, lookups with -F, fingerprints with -l) where it is installed.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  checkHostKey,
  formatKnownHostsLine,
  hostKeyAlgorithmsFor,
  hostString,
  keyTypeOfBlob,
  knownTypesFor,
  matchingEntries,
  parseKnownHosts,
  sshFingerprint,
  wildcardMatch,
  type HostKeyCheck,
} from '../../../src/rendezvous/known-hosts.js';
import { isRcppError } from '../../../src/errors.js';
import { hasCommand, skipUnless } from '../../helpers/capability.js';

const SSH_KEYGEN = '/usr/bin/ssh-keygen';

function sshString(data: Buffer | string): Buffer {
  const bytes = typeof data === 'string' ? Buffer.from(data) : data;
  const len = Buffer.alloc(4);
  len.writeUInt32BE(bytes.length);
  return Buffer.concat([len, bytes]);
}

/** A real Ed25519 public key blob as ssh sends it. */
function ed25519(): Buffer {
  const jwk = generateKeyPairSync('ed25519').publicKey.export({ format: 'jwk' });
  return Buffer.concat([
    sshString('ssh-ed25519'),
    sshString(Buffer.from(jwk.x ?? '', 'base64url')),
  ]);
}

/** A real ECDSA P-256 public key blob. */
function ecdsa(): Buffer {
  const raw = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({
    type: 'spki',
    format: 'der',
  });
  const point = raw.subarray(raw.length - 65); // uncompressed point at the end of the SPKI
  return Buffer.concat([sshString('ecdsa-sha2-nistp256'), sshString('nistp256'), sshString(point)]);
}

const b64 = (blob: Buffer): string => blob.toString('base64');
const key = (blob: Buffer): { type: string; blob: Buffer } => ({ type: keyTypeOfBlob(blob), blob });

// Keys of the hosts in the table below.
const VM = ed25519();
const RENDEZVOUS_OLD = ed25519();
const RENDEZVOUS_NEW = ed25519();
const NAS_ECDSA = ecdsa();
const NAS_ED25519 = ed25519();
const WILDCARD = ed25519();
const LAB = ed25519();
const STOLEN = ed25519();
const CA = ed25519();
const V6 = ed25519();
const V6_ECDSA = ecdsa();
const BUILDER_OLD = ed25519();
const BUILDER_NEW = ed25519();
const ROUTER = ed25519();

// A known_hosts a developer could have, line by line (line numbers matter in the table).
const TABLE = [
  '# VirtualBox VM with sshd forwarded to port 2222', //                                      1
  `[192.168.56.10]:2222 ssh-ed25519 ${b64(VM)}`, //                                             2
  '', //                                                                                       3
  `rendezvous.example.org,203.0.113.7 ssh-ed25519 ${b64(RENDEZVOUS_OLD)} old key, since rotated`, // 4
  `nas.home.arpa ecdsa-sha2-nistp256 ${b64(NAS_ECDSA)}`, //                                     5
  `*.example.net ssh-ed25519 ${b64(WILDCARD)}`, //                                              6
  `*.lab.example.net,!secret.lab.example.net ssh-ed25519 ${b64(LAB)}`, //                       7
  `@revoked * ssh-ed25519 ${b64(STOLEN)} laptop stolen 2024-03`, //                              8
  `mirror.example.org ssh-ed25519 ${b64(STOLEN)}`, //                                           9
  `@cert-authority *.example.com ssh-ed25519 ${b64(CA)}`, //                                    10
  `[2001:db8::1]:2222 ssh-ed25519 ${b64(V6)}`, //                                               11
  `2001:db8::1 ecdsa-sha2-nistp256 ${b64(V6_ECDSA)}`, //                                        12
  `builder?.example.org ssh-ed25519 ${b64(BUILDER_OLD)}`, //                                    13
  `builder1.example.org ssh-ed25519 ${b64(BUILDER_NEW)}`, //                                    14
  `[router.home.arpa]:22 ssh-ed25519 ${b64(ROUTER)}`, //                                        15
].join('\n');

interface Case {
  setup: string;
  host: string;
  port: number;
  key: Buffer;
  want: HostKeyCheck;
}

const CASES: Case[] = [
  {
    setup: 'VM on port 2222, known as [ip]:2222',
    host: '192.168.56.10',
    port: 2222,
    key: VM,
    want: { status: 'match', line: 2 },
  },
  {
    setup: 'the same VM on port 22 is another host',
    host: '192.168.56.10',
    port: 22,
    key: VM,
    want: { status: 'unknown', knownTypes: [] },
  },
  {
    setup: 'the same VM on another port',
    host: '192.168.56.10',
    port: 2200,
    key: VM,
    want: { status: 'unknown', knownTypes: [] },
  },
  {
    setup: 'rendezvous reinstalled: same key type, new key',
    host: 'rendezvous.example.org',
    port: 22,
    key: RENDEZVOUS_NEW,
    want: {
      status: 'mismatch',
      line: 4,
      knownType: 'ssh-ed25519',
      knownFingerprint: sshFingerprint(RENDEZVOUS_OLD),
    },
  },
  {
    setup: 'rendezvous reached by its IP (second pattern of the line)',
    host: '203.0.113.7',
    port: 22,
    key: RENDEZVOUS_NEW,
    want: {
      status: 'mismatch',
      line: 4,
      knownType: 'ssh-ed25519',
      knownFingerprint: sshFingerprint(RENDEZVOUS_OLD),
    },
  },
  {
    setup: 'old rendezvous key still matches',
    host: 'rendezvous.example.org',
    port: 22,
    key: RENDEZVOUS_OLD,
    want: { status: 'match', line: 4 },
  },
  {
    setup: 'host names are case-insensitive',
    host: 'Rendezvous.EXAMPLE.org',
    port: 22,
    key: RENDEZVOUS_OLD,
    want: { status: 'match', line: 4 },
  },
  {
    setup: 'NAS known only by its ECDSA key offers Ed25519',
    host: 'nas.home.arpa',
    port: 22,
    key: NAS_ED25519,
    want: { status: 'unknown', knownTypes: ['ecdsa-sha2-nistp256'] },
  },
  {
    setup: 'NAS with its ECDSA key',
    host: 'nas.home.arpa',
    port: 22,
    key: NAS_ECDSA,
    want: { status: 'match', line: 5 },
  },
  {
    setup: 'wildcard *.example.net',
    host: 'files.example.net',
    port: 22,
    key: WILDCARD,
    want: { status: 'match', line: 6 },
  },
  {
    setup: 'wildcard does not cover the bare domain',
    host: 'example.net',
    port: 22,
    key: WILDCARD,
    want: { status: 'unknown', knownTypes: [] },
  },
  {
    setup: 'wildcard does not cover other ports',
    host: 'files.example.net',
    port: 2222,
    key: WILDCARD,
    want: { status: 'unknown', knownTypes: [] },
  },
  {
    setup: 'lab host under *.lab.example.net',
    host: 'ci.lab.example.net',
    port: 22,
    key: LAB,
    want: { status: 'match', line: 7 },
  },
  {
    setup: 'negated pattern excludes secret.lab.example.net (only *.example.net remains)',
    host: 'secret.lab.example.net',
    port: 22,
    key: LAB,
    want: {
      status: 'mismatch',
      line: 6,
      knownType: 'ssh-ed25519',
      knownFingerprint: sshFingerprint(WILDCARD),
    },
  },
  {
    setup: '@revoked key wins even where a line lists it',
    host: 'mirror.example.org',
    port: 22,
    key: STOLEN,
    want: { status: 'revoked', line: 8 },
  },
  {
    setup: '@revoked * applies to any host',
    host: 'anything.invalid',
    port: 2222,
    key: STOLEN,
    want: { status: 'revoked', line: 8 },
  },
  {
    setup: '@cert-authority key is not a host key',
    host: 'www.example.com',
    port: 22,
    key: CA,
    want: { status: 'unknown', knownTypes: [] },
  },
  {
    setup: 'IPv6 literal on port 2222',
    host: '2001:db8::1',
    port: 2222,
    key: V6,
    want: { status: 'match', line: 11 },
  },
  {
    setup: 'IPv6 literal given in brackets',
    host: '[2001:db8::1]',
    port: 2222,
    key: V6,
    want: { status: 'match', line: 11 },
  },
  {
    setup: 'IPv6 literal on port 22 is known with ECDSA only',
    host: '2001:db8::1',
    port: 22,
    key: V6,
    want: { status: 'unknown', knownTypes: ['ecdsa-sha2-nistp256'] },
  },
  {
    setup: 'a matching key wins over an older line for the same host',
    host: 'builder1.example.org',
    port: 22,
    key: BUILDER_NEW,
    want: { status: 'match', line: 14 },
  },
  {
    setup: '? matches one character',
    host: 'builder2.example.org',
    port: 22,
    key: BUILDER_OLD,
    want: { status: 'match', line: 13 },
  },
  {
    setup: '? does not match two characters',
    host: 'builder10.example.org',
    port: 22,
    key: BUILDER_OLD,
    want: { status: 'unknown', knownTypes: [] },
  },
  {
    setup: '[host]:22 is the same as host',
    host: 'router.home.arpa',
    port: 22,
    key: ROUTER,
    want: { status: 'match', line: 15 },
  },
];

describe("known_hosts: checkHostKey on a developer's file", () => {
  for (const c of CASES) {
    it(c.setup, () => {
      assert.deepEqual(checkHostKey(TABLE, c.host, c.port, key(c.key)), c.want);
    });
  }

  it('gives the same answers with CRLF line endings (a file edited on Windows)', () => {
    const crlf = TABLE.replace(/\n/g, '\r\n');
    for (const c of CASES)
      assert.deepEqual(checkHostKey(crlf, c.host, c.port, key(c.key)), c.want, c.setup);
  });

  it('skips very long and binary garbage lines, reports them, and still finds the rest', () => {
    const garbage = [
      'A'.repeat(100_000),
      `garbage ${randomBytes(3000)
        .toString('latin1')
        .replace(/[\r\n]/g, '.')}`,
      `host.example ssh-ed25519 ${'x'.repeat(50_000)}`,
      TABLE,
    ].join('\n');
    const parsed = parseKnownHosts(garbage);
    assert.ok(parsed.malformed.length >= 3, JSON.stringify(parsed.malformed.slice(0, 5)));
    assert.ok(parsed.malformed.some((m) => m.line === 1));
    for (const c of CASES) {
      const want = 'line' in c.want ? { ...c.want, line: c.want.line + 3 } : c.want;
      assert.deepEqual(checkHostKey(garbage, c.host, c.port, key(c.key)), want, c.setup);
    }
  });

  it('an empty or comment-only file knows nobody', () => {
    assert.deepEqual(checkHostKey('', 'a', 22, key(VM)), { status: 'unknown', knownTypes: [] });
    assert.deepEqual(checkHostKey('# nothing\n\n   \n', 'a', 22, key(VM)), {
      status: 'unknown',
      knownTypes: [],
    });
  });
});

describe('known_hosts: parsing', () => {
  it('reads markers, patterns, key types and comments', () => {
    const { entries, malformed } = parseKnownHosts(TABLE);
    assert.deepEqual(malformed, []);
    assert.equal(entries.length, 13);
    const revoked = entries.find((e) => e.line === 8);
    assert.equal(revoked?.marker, 'revoked');
    assert.equal(revoked?.hosts, '*');
    assert.equal(revoked?.comment, 'laptop stolen 2024-03');
    assert.equal(entries.find((e) => e.line === 10)?.marker, 'cert-authority');
    assert.equal(entries.find((e) => e.line === 5)?.keyType, 'ecdsa-sha2-nistp256');
    assert.equal(entries.find((e) => e.line === 4)?.comment, 'old key, since rotated');
  });

  it('counts malformed lines with a reason and skips them', () => {
    const text = [
      `@bogus host ssh-ed25519 ${b64(VM)}`,
      'lonely.example.org ssh-ed25519',
      `typo.example.org ssh-rsa ${b64(VM)}`,
      'notbase64.example.org ssh-ed25519 !!!!',
      `|1|c2hvcnQ=|c2hvcnQ= ssh-ed25519 ${b64(VM)}`,
      `ok.example.org ssh-ed25519 ${b64(VM)}`,
      '1024 35 1234567890 old-rsa1.example.org',
    ].join('\n');
    const { entries, malformed } = parseKnownHosts(text);
    assert.deepEqual(
      entries.map((e) => e.line),
      [6],
    );
    assert.deepEqual(
      malformed.map((m) => m.line),
      [1, 2, 3, 4, 5, 7],
    );
    assert.match(malformed[0]?.reason ?? '', /unknown marker @bogus/);
    assert.match(malformed[2]?.reason ?? '', /key type ssh-rsa but the key is ssh-ed25519/);
  });

  it('knownTypesFor lists the types for a host in file order; ssh-rsa maps to rsa-sha2 algorithms', () => {
    const text = `${TABLE}\nnas.home.arpa ssh-ed25519 ${b64(NAS_ED25519)}\n`;
    assert.deepEqual(knownTypesFor(text, 'nas.home.arpa', 22), [
      'ecdsa-sha2-nistp256',
      'ssh-ed25519',
    ]);
    assert.deepEqual(knownTypesFor(TABLE, 'unknown.example.org', 22), []);
    // @revoked and @cert-authority lines are no reason to prefer a type
    assert.deepEqual(knownTypesFor(TABLE, 'www.example.com', 22), []);
    assert.deepEqual(hostKeyAlgorithmsFor(['ssh-rsa', 'ssh-ed25519', 'ssh-rsa']), [
      'rsa-sha2-512',
      'rsa-sha2-256',
      'ssh-ed25519',
    ]);
  });

  it('wildcardMatch follows OpenSSH match_pattern', () => {
    const table: [string, string, boolean][] = [
      ['a.example.net', '*.example.net', true],
      ['example.net', '*.example.net', false],
      ['a.b.example.net', '*.example.net', true],
      ['host1', 'host?', true],
      ['host', 'host?', false],
      ['anything', '*', true],
      ['', '*', true],
      ['abc', 'a*c', true],
      ['abcbc', 'a*bc', true],
      ['abcbd', 'a*bc', false],
      ['[10.0.0.1]:2222', '[10.0.0.*]:2222', true],
    ];
    for (const [text, pattern, want] of table)
      assert.equal(wildcardMatch(text, pattern), want, `${text} ~ ${pattern}`);
  });
});

describe('known_hosts: formatting and fingerprints', () => {
  it('writes host for port 22 and [host]:port otherwise, and reads it back', () => {
    assert.equal(
      formatKnownHostsLine('Rendezvous.example.org', 22, 'ssh-ed25519', VM),
      `rendezvous.example.org ssh-ed25519 ${b64(VM)}`,
    );
    assert.equal(
      formatKnownHostsLine('192.168.56.10', 2222, 'ssh-ed25519', VM),
      `[192.168.56.10]:2222 ssh-ed25519 ${b64(VM)}`,
    );
    assert.equal(
      formatKnownHostsLine('2001:db8::1', 2222, 'ssh-ed25519', VM),
      `[2001:db8::1]:2222 ssh-ed25519 ${b64(VM)}`,
    );
    assert.equal(hostString('2001:db8::1', 22), '2001:db8::1');
    const line = formatKnownHostsLine('10.0.0.5', 2022, 'ssh-ed25519', VM);
    assert.deepEqual(checkHostKey(`${line}\n`, '10.0.0.5', 2022, key(VM)), {
      status: 'match',
      line: 1,
    });
  });

  it('sshFingerprint is SHA256: + unpadded base64', () => {
    const want = `SHA256:${createHash('sha256').update(VM).digest('base64').replace(/=+$/, '')}`;
    assert.equal(sshFingerprint(VM), want);
    assert.match(sshFingerprint(VM), /^SHA256:[A-Za-z0-9+/]{43}$/);
  });

  it('keyTypeOfBlob reads the leading SSH string and refuses garbage', () => {
    assert.equal(keyTypeOfBlob(VM), 'ssh-ed25519');
    assert.equal(keyTypeOfBlob(NAS_ECDSA), 'ecdsa-sha2-nistp256');
    for (const bad of [
      Buffer.alloc(0),
      Buffer.from([0, 0, 0, 200, 1]),
      Buffer.from([0, 0, 0, 0]),
    ]) {
      assert.throws(
        () => keyTypeOfBlob(bad),
        (err: unknown) => isRcppError(err) && err.code === 'PROTOCOL_ERROR',
      );
    }
  });
});

const skipKeygen = skipUnless(hasCommand(SSH_KEYGEN, 'Debian package openssh-client'));

describe('known_hosts: against OpenSSH ssh-keygen', { skip: skipKeygen }, () => {
  let dir = '';
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'rcpp2p-known-hosts-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('matches a Debian-style hashed file made by ssh-keygen -H', () => {
    const file = join(dir, 'hashed');
    const plain = [
      `rendezvous.example.org,203.0.113.7 ssh-ed25519 ${b64(RENDEZVOUS_OLD)}`,
      `[192.168.56.10]:2222 ssh-ed25519 ${b64(VM)}`,
      `[2001:db8::1]:2222 ssh-ed25519 ${b64(V6)}`,
      `nas.home.arpa ecdsa-sha2-nistp256 ${b64(NAS_ECDSA)}`,
    ].join('\n');
    writeFileSync(file, `${plain}\n`);
    execFileSync(SSH_KEYGEN, ['-H', '-f', file], { stdio: 'ignore' });
    const hashed = readFileSync(file, 'utf8');
    assert.ok(!hashed.includes('example.org') && !hashed.includes('192.168'), hashed);
    assert.match(hashed, /^\|1\|/m);
    const cases: [string, number, Buffer, HostKeyCheck['status']][] = [
      ['rendezvous.example.org', 22, RENDEZVOUS_OLD, 'match'],
      ['203.0.113.7', 22, RENDEZVOUS_OLD, 'match'],
      ['rendezvous.example.org', 22, RENDEZVOUS_NEW, 'mismatch'],
      ['192.168.56.10', 2222, VM, 'match'],
      ['192.168.56.10', 22, VM, 'unknown'],
      ['2001:db8::1', 2222, V6, 'match'],
      ['nas.home.arpa', 22, NAS_ECDSA, 'match'],
      ['other.example.org', 22, VM, 'unknown'],
    ];
    for (const [host, port, blob, status] of cases) {
      assert.equal(checkHostKey(hashed, host, port, key(blob)).status, status, `${host}:${port}`);
    }
    assert.deepEqual(checkHostKey(hashed, 'nas.home.arpa', 22, key(NAS_ED25519)), {
      status: 'unknown',
      knownTypes: ['ecdsa-sha2-nistp256'],
    });
  });

  it('finds the same lines as ssh-keygen -F for every host in the table', () => {
    const file = join(dir, 'table');
    writeFileSync(file, `${TABLE}\n`);
    const queries: [string, number][] = [
      ['192.168.56.10', 2222],
      ['192.168.56.10', 22],
      ['rendezvous.example.org', 22],
      ['203.0.113.7', 22],
      ['files.example.net', 22],
      ['files.example.net', 2222],
      ['ci.lab.example.net', 22],
      ['secret.lab.example.net', 22],
      ['mirror.example.org', 22],
      ['www.example.com', 22],
      ['2001:db8::1', 2222],
      ['2001:db8::1', 22],
      ['builder1.example.org', 22],
      ['builder10.example.org', 22],
    ];
    for (const [host, port] of queries) {
      const name = hostString(host, port);
      let out = '';
      try {
        out = execFileSync(SSH_KEYGEN, ['-F', name, '-f', file], {
          encoding: 'utf8',
          stdio: ['ignore', 'pipe', 'ignore'],
        });
      } catch (err) {
        out = String((err as { stdout?: string }).stdout ?? ''); // exit 1 when nothing is found
      }
      const theirs = [...out.matchAll(/found: line (\d+)/g)].map((m) => Number(m[1]));
      const ours = matchingEntries(TABLE, host, port).map((e) => e.line);
      assert.deepEqual(ours, theirs, name);
    }
  });

  it('computes the fingerprint ssh-keygen -l shows for a real key', () => {
    const keyFile = join(dir, 'id_ed25519');
    execFileSync(SSH_KEYGEN, ['-q', '-t', 'ed25519', '-N', '', '-f', keyFile], { stdio: 'ignore' });
    const pub = readFileSync(`${keyFile}.pub`, 'utf8').trim().split(' ');
    const blob = Buffer.from(pub[1] ?? '', 'base64');
    const listed = execFileSync(SSH_KEYGEN, ['-l', '-E', 'sha256', '-f', `${keyFile}.pub`], {
      encoding: 'utf8',
    });
    assert.equal(sshFingerprint(blob), listed.split(' ')[1]);
    assert.equal(keyTypeOfBlob(blob), pub[0]);
  });
});
