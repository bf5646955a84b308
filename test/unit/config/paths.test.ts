// Where the config, the identity and known_hosts live, for the environments people have.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  defaultConfigPath,
  defaultKnownHostsFile,
  expandHome,
  identityPathFor,
} from '../../../src/config/paths.js';

describe('config paths', () => {
  it('follows XDG_CONFIG_HOME when it is set to an absolute path', () => {
    const table: [string, NodeJS.ProcessEnv, string][] = [
      [
        'desktop session with XDG set',
        { XDG_CONFIG_HOME: '/home/ann/.config' },
        '/home/ann/.config/rcpp2p/config.json',
      ],
      ['custom XDG folder', { XDG_CONFIG_HOME: '/srv/cfg' }, '/srv/cfg/rcpp2p/config.json'],
      ['ssh login without XDG', {}, '/home/ann/.config/rcpp2p/config.json'],
      ['XDG set but empty', { XDG_CONFIG_HOME: '' }, '/home/ann/.config/rcpp2p/config.json'],
      [
        'XDG relative (invalid per the spec, ignored)',
        { XDG_CONFIG_HOME: 'cfg' },
        '/home/ann/.config/rcpp2p/config.json',
      ],
    ];
    for (const [setup, env, want] of table)
      assert.equal(defaultConfigPath(env, '/home/ann'), want, setup);
  });

  it('puts the identity beside the config', () => {
    assert.equal(identityPathFor('/x/y/config.json'), '/x/y/config.identity.pem');
    assert.equal(identityPathFor('/x/y/laptop.json'), '/x/y/laptop.identity.pem');
    assert.equal(identityPathFor('/x/y/settings'), '/x/y/settings.identity.pem');
    assert.equal(identityPathFor('rel/config.json'), 'rel/config.identity.pem');
  });

  it('defaults known_hosts to ~/.ssh/known_hosts', () => {
    assert.equal(defaultKnownHostsFile('/home/ann'), '/home/ann/.ssh/known_hosts');
    assert.equal(defaultKnownHostsFile('/root'), '/root/.ssh/known_hosts');
  });

  it('expands ~ and ~/ only', () => {
    assert.equal(expandHome('~', '/home/ann'), '/home/ann');
    assert.equal(expandHome('~/.ssh/id_ed25519', '/home/ann'), '/home/ann/.ssh/id_ed25519');
    assert.equal(expandHome('~bob/x', '/home/ann'), '~bob/x');
    assert.equal(expandHome('/etc/x', '/home/ann'), '/etc/x');
    assert.equal(expandHome('x/~/y', '/home/ann'), 'x/~/y');
  });
});
