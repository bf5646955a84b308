// The config schema: defaults, one sentence per wrong field, no secrets, and a 0600 file written
// atomically into a 0700 folder.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CONFIG_DEFAULTS,
  loadConfig,
  parseRendezvous,
  saveConfig,
  validateConfig,
  type Config,
} from '../../../src/config/config.js';
import { isRcppError, type ErrorCode } from '../../../src/errors.js';

const HOME = '/home/ann';

function isError(code: ErrorCode, pattern?: RegExp) {
  return (err: unknown): boolean => {
    assert.ok(isRcppError(err), `not an RcppError: ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (pattern) assert.match(err.message, pattern);
    assert.match(err.message, /^[A-Z/"].*\.$/s, 'a sentence');
    return true;
  };
}

const FULL: Config = {
  version: 1,
  rendezvous: { host: 'rendezvous.example.org', port: 2222, user: 'ann', dir: '.rcpp2p' },
  auth: { method: 'key', identityFile: '/home/ann/.ssh/id_ed25519' },
  knownHostsFile: '/home/ann/.ssh/known_hosts',
  serverName: 'ASUS',
  clientName: 'laptop',
  port: 41234,
  workDir: '/srv/share',
  pollSeconds: 10,
  keepaliveSeconds: 15,
  publishIndex: true,
};

/** The smallest config a user could write by hand. */
const MINIMAL = {
  rendezvous: { host: 'rendezvous.example.org', user: 'ann' },
  auth: { method: 'agent' },
  port: 41234,
};

describe('config validation', () => {
  it('accepts a full config unchanged', () => {
    assert.deepEqual(validateConfig(structuredClone(FULL), 'c', HOME), FULL);
  });

  it('fills in defaults for a minimal hand-written config', () => {
    assert.deepEqual(validateConfig(MINIMAL, 'c', HOME), {
      version: 1,
      rendezvous: {
        host: 'rendezvous.example.org',
        port: 22,
        user: 'ann',
        dir: CONFIG_DEFAULTS.rendezvousDir,
      },
      auth: { method: 'agent' },
      knownHostsFile: '/home/ann/.ssh/known_hosts',
      port: 41234,
      pollSeconds: 10,
      keepaliveSeconds: 15,
    });
  });

  it('expands ~/ in paths', () => {
    const c = validateConfig(
      {
        ...MINIMAL,
        auth: { method: 'key', identityFile: '~/.ssh/id_ed25519' },
        knownHostsFile: '~/kh',
        workDir: '~/share',
      },
      'c',
      HOME,
    );
    assert.deepEqual(c.auth, { method: 'key', identityFile: '/home/ann/.ssh/id_ed25519' });
    assert.equal(c.knownHostsFile, '/home/ann/kh');
    assert.equal(c.workDir, '/home/ann/share');
  });

  it('names the field and the problem for every kind of mistake', () => {
    const table: [string, unknown, RegExp][] = [
      ['not an object', [], /the configuration must be an object/],
      [
        'publishIndex as a word',
        { ...MINIMAL, publishIndex: 'yes' },
        /publishIndex must be true or false/,
      ],
      [
        'newer version',
        { ...MINIMAL, version: 2 },
        /version is 2, but this rcpp2p reads version 1/,
      ],
      ['rendezvous missing', { ...MINIMAL, rendezvous: undefined }, /rendezvous is missing/],
      ['host missing', { ...MINIMAL, rendezvous: { user: 'ann' } }, /rendezvous\.host is missing/],
      [
        'host with a space',
        { ...MINIMAL, rendezvous: { host: 'a b', user: 'ann' } },
        /rendezvous\.host "a b" is not a host name/,
      ],
      [
        'host like an option',
        { ...MINIMAL, rendezvous: { host: '-oProxyCommand=x', user: 'ann' } },
        /rendezvous\.host/,
      ],
      [
        'user empty',
        { ...MINIMAL, rendezvous: { host: 'h', user: '' } },
        /rendezvous\.user must be a non-empty string/,
      ],
      [
        'user with shell characters',
        { ...MINIMAL, rendezvous: { host: 'h', user: 'ann;rm' } },
        /rendezvous\.user "ann;rm"/,
      ],
      [
        'rendezvous port 0',
        { ...MINIMAL, rendezvous: { host: 'h', user: 'a', port: 0 } },
        /rendezvous\.port must be a whole number from 1 to 65535 \(it is 0\)/,
      ],
      [
        'rendezvous port as text',
        { ...MINIMAL, rendezvous: { host: 'h', user: 'a', port: '22' } },
        /rendezvous\.port must be a whole number/,
      ],
      [
        'rendezvous dir escaping',
        { ...MINIMAL, rendezvous: { host: 'h', user: 'a', dir: '../x' } },
        /rendezvous\.dir "\.\.\/x"/,
      ],
      [
        'rendezvous dir with a space',
        { ...MINIMAL, rendezvous: { host: 'h', user: 'a', dir: 'my dir' } },
        /rendezvous\.dir/,
      ],
      [
        'unknown rendezvous field',
        { ...MINIMAL, rendezvous: { host: 'h', user: 'a', hots: 'x' } },
        /rendezvous\.hots is not a setting rcpp2p knows/,
      ],
      ['auth missing', { ...MINIMAL, auth: undefined }, /auth is missing/],
      [
        'unknown auth method',
        { ...MINIMAL, auth: { method: 'kerberos' } },
        /auth\.method is "kerberos"; use "key", "agent" or "password"/,
      ],
      ['auth method missing', { ...MINIMAL, auth: {} }, /auth\.method is missing/],
      [
        'key without a file',
        { ...MINIMAL, auth: { method: 'key' } },
        /auth\.identityFile is missing/,
      ],
      [
        'key file relative',
        { ...MINIMAL, auth: { method: 'key', identityFile: 'id_ed25519' } },
        /auth\.identityFile must be an absolute path/,
      ],
      [
        'agent with extra field',
        { ...MINIMAL, auth: { method: 'agent', socket: '/x' } },
        /auth\.socket is not a setting/,
      ],
      [
        'local port below 1024',
        { ...MINIMAL, port: 80 },
        /port must be a whole number from 1024 to 65535 \(it is 80\)/,
      ],
      [
        'local port too high',
        { ...MINIMAL, port: 70000 },
        /port must be a whole number from 1024 to 65535/,
      ],
      ['local port fractional', { ...MINIMAL, port: 4123.5 }, /port must be a whole number/],
      ['local port missing', { ...MINIMAL, port: undefined }, /port is missing/],
      [
        'relative workDir',
        { ...MINIMAL, workDir: 'share' },
        /workDir must be an absolute path or start with ~\/ \(it is "share"\)/,
      ],
      [
        'bad server name',
        { ...MINIMAL, serverName: 'my server' },
        /serverName "my server" is not a valid name/,
      ],
      ['bad client name', { ...MINIMAL, clientName: '-x' }, /clientName "-x" is not a valid name/],
      ['name too long', { ...MINIMAL, clientName: 'x'.repeat(65) }, /clientName/],
      [
        'poll every 0 s',
        { ...MINIMAL, pollSeconds: 0 },
        /pollSeconds must be a whole number from 1 to 3600/,
      ],
      [
        'keepalive negative',
        { ...MINIMAL, keepaliveSeconds: -1 },
        /keepaliveSeconds must be a whole number from 0 to 3600/,
      ],
      [
        'typo at the top',
        { ...MINIMAL, pollSecond: 5 },
        /pollSecond is not a setting rcpp2p knows/,
      ],
      [
        'relative known_hosts',
        { ...MINIMAL, knownHostsFile: 'known_hosts' },
        /knownHostsFile must be an absolute path/,
      ],
    ];
    for (const [setup, raw, pattern] of table) {
      assert.throws(
        () => validateConfig(raw, '/x/config.json', HOME),
        isError('CONFIG_INVALID', pattern),
        setup,
      );
    }
  });

  it('names the file in the sentence and says how to fix it', () => {
    assert.throws(
      () => validateConfig({ ...MINIMAL, port: 1 }, '/home/ann/.config/rcpp2p/config.json', HOME),
      (err: unknown) =>
        isRcppError(err) &&
        err.message.startsWith('/home/ann/.config/rcpp2p/config.json: port') &&
        /--configure/.test(err.hint),
    );
  });

  it('refuses any field named like a password or passphrase, without echoing it', () => {
    const table: [string, unknown][] = [
      ['password in auth', { ...MINIMAL, auth: { method: 'password', password: 'hunter2' } }],
      [
        'passphrase for the key',
        { ...MINIMAL, auth: { method: 'key', identityFile: '/k', passphrase: 'hunter2' } },
      ],
      ['password at the top', { ...MINIMAL, Password: 'hunter2' }],
      [
        'deep inside',
        { ...MINIMAL, rendezvous: { host: 'h', user: 'a', extra: { sshPasswd: 'hunter2' } } },
      ],
    ];
    for (const [setup, raw] of table) {
      assert.throws(
        () => validateConfig(raw, '/x/config.json', HOME),
        (err: unknown) => {
          assert.ok(isError('CONFIG_INVALID', /never keeps passwords or passphrases/)(err));
          assert.ok(isRcppError(err) && !err.message.includes('hunter2'));
          return true;
        },
        setup,
      );
    }
    // the method name "password" is fine: the password is asked for at each run
    assert.deepEqual(validateConfig({ ...MINIMAL, auth: { method: 'password' } }, 'c', HOME).auth, {
      method: 'password',
    });
  });
});

describe('parseRendezvous', () => {
  it('reads the forms people type', () => {
    const table: [string, { user: string; host: string; port: number }][] = [
      ['ann@rendezvous.example.org', { user: 'ann', host: 'rendezvous.example.org', port: 22 }],
      [
        'ann@rendezvous.example.org:2222',
        { user: 'ann', host: 'rendezvous.example.org', port: 2222 },
      ],
      ['pi@192.168.1.20', { user: 'pi', host: '192.168.1.20', port: 22 }],
      ['ann@[2001:db8::1]:2222', { user: 'ann', host: '2001:db8::1', port: 2222 }],
      ['ann@[2001:db8::1]', { user: 'ann', host: '2001:db8::1', port: 22 }],
      ['ann@2001:db8::1', { user: 'ann', host: '2001:db8::1', port: 22 }],
      [
        'ann@corp.example@bastion.example.org',
        { user: 'ann@corp.example', host: 'bastion.example.org', port: 22 },
      ],
    ];
    for (const [input, want] of table) assert.deepEqual(parseRendezvous(input), want, input);
  });

  it('explains what is wrong with bad input', () => {
    const table: [string, RegExp][] = [
      ['rendezvous.example.org', /does not name an account/],
      ['@host', /does not name an account/],
      ['ann@', /does not name a host/],
      ['ann@host:0', /bad port "0"/],
      ['ann@host:99999', /bad port "99999"/],
      ['ann@host:ssh', /bad port "ssh"/],
      ['ann@[2001:db8::1]:', /bad port ""/],
      ['ann@host name', /does not name a host/],
      ['a;b@host', /user name rcpp2p does not accept/],
    ];
    for (const [input, pattern] of table) {
      assert.throws(() => parseRendezvous(input), isError('USAGE', pattern), input);
    }
  });
});

describe('config file', () => {
  let dir = '';
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'rcpp2p-config-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('round-trips through save and load, 0600 in a new 0700 folder, with no temp file left', async () => {
    const file = join(dir, 'new', 'rcpp2p', 'config.json');
    await saveConfig(file, FULL, HOME);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.equal(statSync(join(dir, 'new', 'rcpp2p')).mode & 0o777, 0o700);
    assert.equal(statSync(join(dir, 'new')).mode & 0o777, 0o700);
    assert.deepEqual(readdirSync(join(dir, 'new', 'rcpp2p')), ['config.json']);
    assert.deepEqual(await loadConfig(file, HOME), FULL);
    assert.ok(readFileSync(file, 'utf8').endsWith('}\n'));
  });

  it('replaces an existing file atomically and keeps 0600', async () => {
    const file = join(dir, 'replace.json');
    writeFileSync(file, '{}', { mode: 0o644 });
    await saveConfig(file, { ...FULL, pollSeconds: 30 }, HOME);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.equal((await loadConfig(file, HOME)).pollSeconds, 30);
    assert.deepEqual(
      readdirSync(dir).filter((n) => n.includes('replace.json') && n !== 'replace.json'),
      [],
    );
  });

  it('refuses to save an invalid config and leaves the old file alone', async () => {
    const file = join(dir, 'keep.json');
    await saveConfig(file, FULL, HOME);
    const before = readFileSync(file, 'utf8');
    await assert.rejects(
      saveConfig(file, { ...FULL, port: 1 }, HOME),
      isError('CONFIG_INVALID', /port/),
    );
    assert.equal(readFileSync(file, 'utf8'), before);
  });

  it('says to run --configure when there is no config', async () => {
    await assert.rejects(loadConfig(join(dir, 'missing.json'), HOME), (err: unknown) => {
      assert.ok(isError('CONFIG_MISSING', /There is no configuration at .*missing\.json/)(err));
      assert.ok(isRcppError(err) && /rcpp2p --configure/.test(err.hint));
      return true;
    });
  });

  it('points at the line and column of a JSON syntax error', async () => {
    const file = join(dir, 'broken.json');
    writeFileSync(file, '{\n  "port": 41234,\n  "auth": { "method": "agent" }\n  "x": 1\n}\n');
    await assert.rejects(
      loadConfig(file, HOME),
      isError('CONFIG_INVALID', /broken\.json is not valid JSON \(line 4, column 3: /),
    );
    writeFileSync(file, '{"port": ');
    await assert.rejects(
      loadConfig(file, HOME),
      isError('CONFIG_INVALID', /broken\.json is not valid JSON/),
    );
  });

  it('refuses a hand-edited file that holds a password', async () => {
    const file = join(dir, 'secret.json');
    writeFileSync(
      file,
      JSON.stringify({ ...MINIMAL, auth: { method: 'password', password: 'hunter2' } }),
    );
    await assert.rejects(
      loadConfig(file, HOME),
      isError('CONFIG_INVALID', /secret\.json has a field named "password"/),
    );
  });
});
