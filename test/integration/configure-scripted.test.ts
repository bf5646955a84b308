// Scripted set-up against real rendezvous servers: `rcpp2p --configure --yes` with
// --trust-host-key (the fingerprint the embedded rendezvous prints, or that ssh-keyscan | ssh-keygen
// -lf prints for OpenSSH) and --test-login, and `--addclient` when another machine holds the name.
// The known_hosts lines rcpp2p writes are checked by OpenSSH's own tools.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { hasCommand, hasSshd, skipUnless } from '../helpers/capability.js';
import { ACCOUNT, CliLab, RCPP2P } from '../helpers/cli-lab.js';
import { runChecked, runCommand } from '../helpers/processes.js';
import { SSH, SSH_KEYGEN, startSshd, type SshdFixture } from '../helpers/sshd.js';
import { escapeRegExp as escape } from '../helpers/tmux.js';

const SSH_KEYSCAN = '/usr/bin/ssh-keyscan';
const tools = hasCommand(SSH_KEYGEN, 'Debian package openssh-client');

describe('--configure --yes with the embedded rendezvous', { skip: skipUnless(tools) }, () => {
  let lab: CliLab;
  let knownHosts: string;
  before(async () => {
    lab = await CliLab.start('configure');
    knownHosts = join(lab.home, '.ssh', 'known_hosts');
  });
  after(async () => {
    await lab?.close();
  });

  const configureArgs = (config: string, ...extra: string[]): string[] => [
    '--configure',
    '--yes',
    '--config',
    config,
    '--rendezvous',
    `${ACCOUNT}@127.0.0.1:${lab.rendezvous.port}`,
    '--identity',
    lab.keyFile,
    '--client-name',
    'LAPTOP',
    ...extra,
  ];

  it('a wrong --trust-host-key is refused with both fingerprints; nothing trusted or saved', async () => {
    const config = join(lab.root, 'wrong', 'config.json');
    const other = 'SHA256:' + 'A'.repeat(43);
    const r = await lab.run(configureArgs(config, '--trust-host-key', other));
    assert.equal(r.code, 3, r.stderr);
    assert.match(
      r.stderr,
      new RegExp(
        `^Error: The rendezvous \\[127\\.0\\.0\\.1\\]:${lab.rendezvous.port} offered the host key ssh-ed25519 ${escape(lab.rendezvous.hostKey.fingerprint)}, not ${other} as --trust-host-key says; it was not trusted\\.$`,
        'm',
      ),
    );
    assert.match(r.stderr, /Nothing was saved\.$/m);
    assert.equal(existsSync(knownHosts), false);
    assert.equal(existsSync(config), false);
  });

  it('--test-login meets an unknown host key: exit 3, the hint names --trust-host-key', async () => {
    const config = join(lab.root, 'unknown', 'config.json');
    const r = await lab.run(configureArgs(config, '--test-login'));
    assert.equal(r.code, 3, r.stderr);
    assert.match(
      r.stderr,
      /^Error: The host key of \[127\.0\.0\.1\]:\d+ \(ssh-ed25519 SHA256:\S+\) is not in /m,
    );
    assert.match(
      r.stderr,
      /add --trust-host-key SHA256:\.\.\., or run rcpp2p --config \S+ --configure to be asked\. Nothing was saved\.$/m,
    );
    assert.equal(existsSync(config), false);
  });

  it('the fingerprint rcpp2p --rendezvous-server prints is trusted, written as OpenSSH writes it, and logs in', async () => {
    // a second embedded rendezvous as its own process, set up the README's way
    const state = join(lab.root, 'rv2');
    const pub = `${lab.keyFile}.pub`;
    const added = await lab.run([
      '--rendezvous-server',
      '--state',
      state,
      '--add-account',
      ACCOUNT,
      '--authorized-key',
      pub,
    ]);
    assert.equal(added.code, 0, added.stderr);
    const rv = lab.procs.spawn(
      process.execPath,
      [RCPP2P, '--rendezvous-server', '--state', state, '--listen', '127.0.0.1:0'],
      { env: lab.env },
    );
    const [, port] = await rv.waitForOutput(/listening on 127\.0\.0\.1:(\d+)/, 20_000);
    const [, fingerprint] = await rv.waitForOutput(
      /^Set up a peer that trusts it with: rcpp2p --configure --trust-host-key (SHA256:[A-Za-z0-9+/]{43})$/m,
      20_000,
    );
    const config = join(lab.root, 'printed', 'config.json');
    const r = await lab.run([
      '--configure',
      '--yes',
      '--config',
      config,
      '--rendezvous',
      `${ACCOUNT}@127.0.0.1:${port}`,
      '--identity',
      lab.keyFile,
      '--client-name',
      'PRINTED',
      '--trust-host-key',
      fingerprint ?? '',
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stderr,
      new RegExp(
        `^Added \\[127\\.0\\.0\\.1\\]:${port} \\(ssh-ed25519 ${escape(fingerprint ?? '')}\\) to ${escape(knownHosts)}\\.$`,
        'm',
      ),
    );
    assert.match(r.stderr, /^Login works\.$/m);
    // OpenSSH finds the line under [host]:port and computes the same fingerprint
    const found = await runChecked(SSH_KEYGEN, [
      '-F',
      `[127.0.0.1]:${port}`,
      '-f',
      knownHosts,
      '-l',
    ]);
    assert.match(
      found,
      new RegExp(`^\\[127\\.0\\.0\\.1\\]:${port} ED25519 ${escape(fingerprint ?? '')}$`, 'm'),
    );
    // and the next command needs no more trust
    const addclient = await lab.run(['--addclient', '--config', config]);
    assert.equal(addclient.code, 0, addclient.stderr);
    await rv.kill();
  });
});

describe(
  '--addclient when another machine registered the name',
  { skip: skipUnless(tools) },
  () => {
    let lab: CliLab;
    before(async () => {
      lab = await CliLab.start('addclient');
    });
    after(async () => {
      await lab?.close();
    });

    it('is refused without a terminal, taken over with --replace, and the first machine is then told', async () => {
      const first = await lab.configure('client', 'LAPTOP', { machine: 'first' });
      const second = await lab.configure('client', 'LAPTOP', { machine: 'second' });
      const one = await lab.run(['--addclient', '--config', first.config]);
      assert.equal(one.code, 0, one.stderr);
      const fp1 = /identity (SHA256:\S+)\)/.exec(one.stdout)?.[1] ?? '';
      assert.ok(fp1);
      const again = await lab.run(['--addclient', '--config', first.config]);
      assert.equal(again.code, 0, 'the same machine again: no question');

      for (const extra of [[], ['--yes']]) {
        const refused = await lab.run(['--addclient', '--config', second.config, ...extra]);
        assert.equal(refused.code, 4, refused.stderr);
        assert.match(
          refused.stderr,
          new RegExp(
            `^Error: Another machine registered the client name LAPTOP \\(identity ${escape(fp1)}, last seen [^)]+\\); this machine is SHA256:\\S+\\.$`,
            'm',
          ),
        );
        assert.match(
          refused.stderr,
          new RegExp(
            `^Choose another client name with rcpp2p --config ${escape(second.config)} --configure, or add --replace to take the name over`,
            'm',
          ),
        );
      }
      const replaced = await lab.run(['--addclient', '--config', second.config, '--replace']);
      assert.equal(replaced.code, 0, replaced.stderr);
      assert.match(
        replaced.stderr,
        new RegExp(
          `^Replaced an earlier client LAPTOP with identity ${escape(fp1)}; this one is SHA256:\\S+\\.$`,
          'm',
        ),
      );
      const firstAgain = await lab.run(['--addclient', '--config', first.config]);
      assert.equal(firstAgain.code, 4, 'now the first machine is the one asked to choose');
    });
  },
);

describe(
  '--configure --yes with OpenSSH',
  { skip: skipUnless(hasSshd(), tools, hasCommand(SSH_KEYSCAN, 'Debian package openssh-client')) },
  () => {
    let fx: SshdFixture;
    let lab: CliLab;
    before(async () => {
      fx = await startSshd({ listenAddress: '127.0.0.1' });
      lab = await CliLab.start('configure-openssh');
    });
    after(async () => {
      await lab?.close();
      await fx?.stop();
    });

    it('trusts the fingerprint ssh-keyscan | ssh-keygen -lf prints; ssh then accepts the line rcpp2p wrote', async () => {
      const scan = await runChecked(SSH_KEYSCAN, [
        '-p',
        String(fx.port),
        '-t',
        'ed25519',
        '127.0.0.1',
      ]);
      const keyscanFile = join(lab.root, 'keyscan');
      await writeFile(keyscanFile, scan);
      const fingerprint = (await runChecked(SSH_KEYGEN, ['-lf', keyscanFile])).split(' ')[1] ?? '';
      assert.match(fingerprint, /^SHA256:/);
      const knownHosts = join(lab.root, 'openssh', 'known_hosts');
      await mkdir(join(lab.root, 'openssh'), { recursive: true });
      const config = join(lab.root, 'openssh', 'config.json');
      const r = await lab.run([
        '--configure',
        '--yes',
        '--config',
        config,
        '--rendezvous',
        `${fx.user}@127.0.0.1:${fx.port}`,
        '--identity',
        fx.clientKeyFile,
        '--known-hosts',
        knownHosts,
        '--client-name',
        'LAPTOP',
        '--rendezvous-dir',
        fx.rendezvousDir,
        '--trust-host-key',
        fingerprint,
      ]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /^Login works\.$/m);
      const ssh = await runCommand(
        SSH,
        [
          '-o',
          'BatchMode=yes',
          '-o',
          'StrictHostKeyChecking=yes',
          '-o',
          `UserKnownHostsFile=${knownHosts}`,
          '-o',
          'GlobalKnownHostsFile=/dev/null',
          '-i',
          fx.clientKeyFile,
          '-p',
          String(fx.port),
          `${fx.user}@127.0.0.1`,
          'true',
        ],
        { env: lab.env },
      );
      assert.equal(ssh.code, 0, `ssh refused the line rcpp2p wrote: ${ssh.stderr}`);
    });

    it('--test-login with a known host key logs in once; with a key the account does not take, exit 3 and nothing saved', async () => {
      const good = join(lab.root, 'login-ok', 'config.json');
      const base = [
        '--configure',
        '--yes',
        '--rendezvous',
        `${fx.user}@127.0.0.1:${fx.port}`,
        '--known-hosts',
        fx.knownHostsFile,
        '--client-name',
        'LAPTOP',
        '--rendezvous-dir',
        fx.rendezvousDir,
        '--test-login',
      ];
      const ok = await lab.run([...base, '--config', good, '--identity', fx.clientKeyFile]);
      assert.equal(ok.code, 0, ok.stderr);
      assert.match(ok.stderr, /^Login works\.$/m);
      assert.ok(existsSync(good));

      const bad = join(lab.root, 'login-bad', 'config.json');
      const refused = await lab.run([...base, '--config', bad, '--identity', lab.keyFile]);
      assert.equal(refused.code, 3, refused.stderr);
      assert.match(refused.stderr, new RegExp(`refused the login for user ${escape(fx.user)}`));
      assert.match(refused.stderr, /Nothing was saved\.$/m);
      assert.equal(existsSync(bad), false);
    });
  },
);
