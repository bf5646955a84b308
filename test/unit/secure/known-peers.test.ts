import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  checkPeer,
  formatKnownPeers,
  KnownPeers,
  knownPeersPathFor,
  parseKnownPeers,
} from '../../../src/secure/known-peers.js';

const A = 'SHA256:' + 'A'.repeat(43);
const B = 'SHA256:' + 'B'.repeat(43);

describe('known_peers', () => {
  it('parses role, name, fingerprint and time; skips comments and damaged lines', () => {
    const peers = parseKnownPeers(
      [
        '# comment',
        `server ASUS ${A} 2026-12-01T10:00:00.000Z`,
        'server bad name SHA256:x',
        `gateway NAS ${A} 2026-12-01T10:00:00.000Z`,
        `client LAPTOP ${B} 2026-12-01T11:00:00.000Z`,
        '',
      ].join('\n'),
    );
    assert.deepEqual(
      peers.map((p) => [p.role, p.name, p.fingerprint, p.line]),
      [
        ['server', 'ASUS', A, 2],
        ['client', 'LAPTOP', B, 5],
      ],
    );
    assert.deepEqual(
      parseKnownPeers(formatKnownPeers(peers)).map((p) => p.name),
      ['ASUS', 'LAPTOP'],
    );
  });

  it('says known, new or changed, per role', () => {
    const peers = parseKnownPeers(`server ASUS ${A} t\n`);
    assert.equal(checkPeer(peers, 'server', 'ASUS', A).status, 'known');
    assert.equal(checkPeer(peers, 'server', 'ASUS', B).status, 'changed');
    assert.equal(checkPeer(peers, 'server', 'NAS', B).status, 'new');
    assert.equal(
      checkPeer(peers, 'client', 'ASUS', B).status,
      'new',
      'a client named ASUS is another peer',
    );
  });

  it('lives beside the config', () => {
    assert.equal(
      knownPeersPathFor('/h/.config/rcpp2p/config.json'),
      '/h/.config/rcpp2p/config.known_peers',
    );
  });

  it('remembers once (the first identity stays), forgets by name, keeps other writers’ lines, owner-only', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'rcpp2p-known-peers-'));
    try {
      const file = join(dir, 'sub', 'config.known_peers');
      const trust = await KnownPeers.load(file);
      await trust.remember('server', 'ASUS', A);
      await trust.remember('server', 'ASUS', B);
      assert.equal(trust.check('server', 'ASUS', A).status, 'known');
      assert.equal((await stat(file)).mode & 0o777, 0o600);
      // another process adds a line meanwhile
      await writeFile(file, (await readFile(file, 'utf8')) + `client LAPTOP ${B} t\n`);
      await trust.remember('server', 'NAS', B);
      const text = await readFile(file, 'utf8');
      assert.match(text, /^client LAPTOP /m);
      assert.match(text, /^server NAS /m);
      assert.deepEqual(
        (await trust.forget('ASUS')).map((p) => p.fingerprint),
        [A],
      );
      assert.equal(trust.check('server', 'ASUS', B).status, 'new');
      assert.doesNotMatch(await readFile(file, 'utf8'), /ASUS/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
