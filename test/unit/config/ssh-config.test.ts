import assert from 'node:assert/strict';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { sshHostAlias } from '../../../src/config/ssh-config.js';

const CONFIG = `
# defaults before any Host apply to every host
IdentityFile ~/.ssh/default_key

Host rv rendezvous
    HostName 203.0.113.10
    User peer
    Port 2222

Host *.example.net !secret.example.net
    User net-user

Host nas?
    HostName %h.home.arpa
    User = admin

Match host rv
    User match-should-not-apply

Host rv
    User second-value-loses
`;

describe('ssh_config Host aliases', () => {
  const cases: [string, string, ReturnType<typeof sshHostAlias>][] = [
    [
      'an alias named on a Host line, with the defaults above it',
      'rv',
      {
        identityFile: join(homedir(), '.ssh/default_key'),
        hostName: '203.0.113.10',
        user: 'peer',
        port: '2222',
      },
    ],
    [
      'the second name on the same Host line',
      'rendezvous',
      {
        identityFile: join(homedir(), '.ssh/default_key'),
        hostName: '203.0.113.10',
        user: 'peer',
        port: '2222',
      },
    ],
    ['a name only a wildcard covers is not an alias', 'files.example.net', undefined],
    ['a name no Host line mentions', 'elsewhere', undefined],
  ];
  for (const [what, alias, want] of cases) {
    it(what, () => assert.deepEqual(sshHostAlias(CONFIG, alias), want));
  }

  it('Host names compare case-insensitively, as ssh lowercases them', () => {
    assert.equal(sshHostAlias(CONFIG, 'RV')?.hostName, '203.0.113.10');
  });

  it('the first value wins, and Match blocks are skipped', () => {
    assert.equal(sshHostAlias(CONFIG, 'rv')?.user, 'peer');
  });

  it('a wildcard Host adds its values to an alias it covers, unless negated', () => {
    const text = 'Host a.example.net\n  Port 2200\n' + CONFIG;
    assert.equal(sshHostAlias(text, 'a.example.net')?.user, 'net-user');
    const secret = 'Host secret.example.net\n  Port 2200\n' + CONFIG;
    assert.equal(sshHostAlias(secret, 'secret.example.net')?.user, undefined);
  });

  it('? matches one character, and %h in HostName is the alias', () => {
    const text = 'Host nas1\n' + CONFIG;
    assert.deepEqual(sshHostAlias(text, 'nas1'), {
      identityFile: join(homedir(), '.ssh/default_key'),
      hostName: 'nas1.home.arpa',
      user: 'admin',
    });
  });
});
