// `rcpp2p --configure` (the wizard) driven through a real pseudo-terminal: tmux runs the CLI in a
// detached session, the test types with send-keys and reads the screen with capture-pane. The
// rendezvous is a real OpenSSH sshd on loopback. HOME is a temp folder with its own ~/.ssh (the
// authorised key, a decoy key, a config with a Host alias), so no real user file is read or written.
// The sshd sets HOME for its sessions to a temp folder too, so rcpp2p's folder on the rendezvous
// account lands there.
import assert from 'node:assert/strict';
import { copyFile, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { hasCommand, hasSshd, skipUnless } from '../helpers/capability.js';
import { runChecked, runCommand } from '../helpers/processes.js';
import { BASE_ENV, escapeRegExp as escape, Terminal, TMUX } from '../helpers/tmux.js';
import { SSH_KEYGEN, startSshd, type SshdFixture } from '../helpers/sshd.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

const skip = skipUnless(
  hasSshd(),
  hasCommand(TMUX, 'Debian package tmux, to give the wizard a real terminal'),
  hasCommand(SSH_KEYGEN, 'Debian package openssh-client'),
);

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => resolve(typeof addr === 'object' && addr ? addr.port : 0));
    });
  });
}

/** `ssh-keygen -lf FILE` -> 'SHA256:...' */
async function fingerprintOf(file: string): Promise<string> {
  const out = await runChecked(SSH_KEYGEN, ['-lf', file]);
  const fp = out.split(' ')[1] ?? '';
  assert.ok(fp.startsWith('SHA256:'), out);
  return fp;
}

describe('rcpp2p --configure (wizard in a terminal, against OpenSSH)', { skip }, () => {
  let fx: SshdFixture;
  let root: string;
  let entry: string;
  let term: Terminal;
  let target: string;

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'rcpp2p-wizard-'));
    await mkdir(join(root, 'rvhome'), { mode: 0o700 });
    fx = await startSshd({
      listenAddress: '127.0.0.1',
      extraConfig: [`SetEnv HOME=${join(root, 'rvhome')}`],
    });
    target = `${fx.user}@127.0.0.1:${fx.port}`;
    // what bin/rcpp2p.js does, against the build this test file belongs to
    entry = join(root, 'rcpp2p.mjs');
    await writeFile(
      entry,
      `import { main } from ${JSON.stringify(pathToFileURL(MAIN).href)};\n` +
        'process.exitCode = await main(process.argv);\n',
    );
    term = await Terminal.open(root, 'wizard');
  });

  after(async () => {
    await term?.close();
    await fx?.stop();
    if (root && process.env['RCPP2P_KEEP_TEST_DIRS'] !== '1')
      await rm(root, { recursive: true, force: true });
  });

  /** A fresh HOME: ~/.ssh with a decoy key, the authorised key, and a Host alias; a share folder. */
  async function makeHome(name: string): Promise<{
    home: string;
    workKey: string;
    decoyKey: string;
    share: string;
    config: string;
  }> {
    const home = join(root, name, 'home');
    const ssh = join(home, '.ssh');
    await mkdir(ssh, { recursive: true, mode: 0o700 });
    const decoyKey = join(ssh, 'id_ed25519');
    await runChecked(SSH_KEYGEN, ['-q', '-t', 'ed25519', '-N', '', '-C', 'decoy', '-f', decoyKey]);
    const workKey = join(ssh, 'id_ed25519_work');
    await copyFile(fx.clientKeyFile, workKey);
    await writeFile(
      join(ssh, 'config'),
      [
        'Host *.example.invalid',
        '  User nobody',
        '',
        'Host rv-test',
        '  HostName 127.0.0.1',
        `  Port ${fx.port}`,
        `  User ${fx.user}`,
        '',
        'Host *',
        '  ServerAliveInterval 30',
        '',
      ].join('\n'),
      { mode: 0o600 },
    );
    const share = join(root, name, 'share');
    await mkdir(share);
    return { home, workKey, decoyKey, share, config: join(root, name, 'cfg', 'config.json') };
  }

  const wizard = (s: string, home: string, config: string): Promise<void> =>
    term.start(s, { HOME: home }, [process.execPath, entry, '--configure', '--config', config]);

  it('a first run with a Host alias, the found key and a new host key saves a 0600 config and a known_hosts line', async () => {
    const p = await makeHome('full');
    const s = 'full';
    await wizard(s, p.home, p.config);

    await term.waitFor(s, /^\? Rendezvous SSH account .*:$/m);
    await term.answer(s, 'rv-test');
    await term.waitFor(
      s,
      new RegExp(`Host rv-test is ${escape(target)} \\(from ~/\\.ssh/config\\)\\.`),
    );

    // both keys in ~/.ssh are offered; move to the authorised one and pick it
    await term.waitFor(s, /^\? How should this peer log in to the rendezvous\?$/m);
    await term.waitFor(s, new RegExp(`key ${escape(p.decoyKey)}$`, 'm'));
    await term.keys(s, 'Down');
    await term.waitFor(s, new RegExp(`[❯>] key ${escape(p.workKey)}$`, 'm'));
    await term.keys(s, 'Enter');
    await term.waitFor(s, new RegExp(`log in to the rendezvous\\? key ${escape(p.workKey)}$`, 'm'));

    await term.waitFor(s, /^\? File-server name of this machine/m);
    await term.answer(s, 'ASUS');
    await term.waitFor(s, /^\? Client name of this machine/m);
    await term.answer(s, 'LAPTOP');
    const suggested = Number(
      (await term.waitFor(s, /^\? Local TCP port to connect and punch from: \((\d+)\)$/m))[1],
    );
    assert.ok(suggested >= 20_000 && suggested < 60_000, `suggested port ${suggested}`);
    await term.answer(s, ''); // take the suggestion
    await term.waitFor(s, /^\? Working directory this file server shares:/m);
    await term.answer(s, p.share);
    await term.waitFor(s, /^\? Test the login to the rendezvous now\? \(Y\/n\)$/m);
    await term.answer(s, '');

    const shown = await term.waitFor(
      s,
      /The authenticity of host (\S+) can't be established\.\n(\S+) key fingerprint is (SHA256:[A-Za-z0-9+/]+)\./,
    );
    assert.equal(shown[1], `[127.0.0.1]:${fx.port}`);
    assert.equal(shown[2], 'ssh-ed25519');
    assert.equal(shown[3], await fingerprintOf(join(fx.dir, 'host_ed25519.pub')));
    await term.waitFor(s, /^\? Trust this key and add it to \S+known_hosts\? \(y\/N\)$/m);
    await term.answer(s, 'y');
    await term.waitFor(s, /^Login works\.$/m);
    assert.equal(await term.waitExit(s), 0, await term.screen(s));
    await term.waitFor(s, new RegExp(`^Saved ${escape(p.config)}\\.$`, 'm'));

    assert.equal((await stat(p.config)).mode & 0o777, 0o600);
    const saved = JSON.parse(await readFile(p.config, 'utf8')) as Record<string, unknown>;
    assert.deepEqual(saved, {
      version: 1,
      rendezvous: { host: '127.0.0.1', port: fx.port, user: fx.user, dir: '.rcpp2p' },
      auth: { method: 'key', identityFile: p.workKey },
      knownHostsFile: join(p.home, '.ssh', 'known_hosts'),
      serverName: 'ASUS',
      clientName: 'LAPTOP',
      port: suggested,
      workDir: p.share,
      pollSeconds: 10,
      keepaliveSeconds: 15,
    });
    assert.equal(
      await readFile(join(p.home, '.ssh', 'known_hosts'), 'utf8'),
      `[127.0.0.1]:${fx.port} ${fx.hostPublicKey}\n`,
    );
    // the login really happened, with the chosen key, and ran rcpp2p's first command there
    assert.match(
      fx.logText(),
      new RegExp(`Accepted publickey for ${fx.user} .*${escape(await fingerprintOf(p.workKey))}`),
    );
    assert.ok(existsSync(join(root, 'rvhome', '.rcpp2p', 'servers')));
  });

  it('a wrong answer gets a sentence saying what is wrong and is asked again; refusing the host key saves nothing', async () => {
    const p = await makeHome('bad');
    const s = 'bad';
    await wizard(s, p.home, p.config);
    const stillAsking = (question: string, problem: RegExp): Promise<RegExpMatchArray> =>
      term.waitFor(s, new RegExp(`^\\? ${escape(question)}.*\\n> ${problem.source}$`, 'm'));

    await term.waitFor(s, /^\? Rendezvous SSH account/m);
    await term.answer(s, 'nosuch');
    await stillAsking(
      'Rendezvous SSH account',
      /"nosuch" has no user@ and is not a Host in ~\/\.ssh\/config\. Write user@host, .*/,
    );
    await term.answer(s, `${fx.user}@`);
    await stillAsking('Rendezvous SSH account', /".*@" does not name a host\. .*/);
    await term.answer(s, `${fx.user}@127.0.0.1:99999`);
    await stillAsking(
      'Rendezvous SSH account',
      /.* has a bad port "99999" \(use 1 to 65535\)\. .*/,
    );
    await term.answer(s, target);
    await term.waitFor(s, new RegExp(`^✔ Rendezvous SSH account .*: ${escape(target)}$`, 'm'));

    await term.waitFor(s, /^\? How should this peer log in/m);
    await term.keys(s, 'Down', 'Down');
    await term.waitFor(s, /[❯>] another key file\.\.\.$/m);
    await term.keys(s, 'Enter');
    await term.waitFor(s, /^\? Path of the SSH private key:/m);
    await term.answer(s, join(p.home, '.ssh', 'nope'));
    await stillAsking('Path of the SSH private key', /\S+\/nope does not exist\./);
    await term.answer(s, `${p.decoyKey}.pub`);
    await stillAsking(
      'Path of the SSH private key',
      /\S+\.pub is a public key; give the private key beside it\./,
    );
    await term.answer(s, p.workKey);

    await term.waitFor(s, /^\? File-server name of this machine/m);
    await term.answer(s, 'my server');
    await stillAsking(
      'File-server name',
      /"my server" contains a space; names use letters, digits, "\.", "_" and "-" only\./,
    );
    await term.answer(s, '-asus');
    await stillAsking(
      'File-server name',
      /"-asus" starts with "-"; start it with a letter or digit\./,
    );
    await term.answer(s, 'ASUS');
    await term.waitFor(s, /^\? Client name of this machine/m);
    await term.answer(s, 'LAPTOP/2');
    await stillAsking('Client name', /"LAPTOP\/2" contains "\/"; names use .*/);
    await term.answer(s, '');

    await term.waitFor(s, /^\? Local TCP port/m);
    await term.answer(s, '80');
    await stillAsking(
      'Local TCP port',
      /Port 80 is below 1024, where ports are reserved for system services; give a port from 1024 to 65535\./,
    );
    await term.answer(s, '99999');
    await stillAsking(
      'Local TCP port',
      /Port 99999 is above 65535, the highest TCP port; give a port from 1024 to 65535\./,
    );
    await term.answer(s, 'http');
    await stillAsking('Local TCP port', /"http" is not a whole number; give a port .*/);
    const port = await freePort();
    await term.answer(s, String(port));

    await term.waitFor(s, /^\? Working directory this file server shares:/m);
    const missing = join(root, 'bad', 'missing');
    await term.answer(s, missing);
    await stillAsking(
      'Working directory',
      new RegExp(`${escape(missing)} does not exist; create the folder first, or give another\\.`),
    );
    await term.answer(s, p.workKey);
    await stillAsking(
      'Working directory',
      new RegExp(`${escape(p.workKey)} is a file, not a folder\\.`),
    );
    await term.answer(s, p.share);

    await term.waitFor(s, /^\? Test the login to the rendezvous now\?/m);
    await term.answer(s, '');
    await term.waitFor(s, /^\? Trust this key and add it to \S+known_hosts\? \(y\/N\)$/m);
    await term.answer(s, ''); // the default is no, like ssh
    await term.waitFor(
      s,
      new RegExp(
        `^Error: The host key of \\[127\\.0\\.0\\.1\\]:${fx.port} \\(ssh-ed25519 SHA256:\\S+\\) is not in \\S+known_hosts\\.$`,
        'm',
      ),
    );
    await term.waitFor(s, /^\? The login test failed\. What now\?/m);
    await term.keys(s, 'Down', 'Down');
    await term.waitFor(s, /[❯>] quit without saving$/m);
    await term.keys(s, 'Enter');
    assert.notEqual(await term.waitExit(s), 0);
    await term.waitFor(s, /^Error: Nothing was saved\.$/m);
    assert.equal(existsSync(p.config), false, 'no config was written');
    assert.equal(existsSync(join(p.home, '.ssh', 'known_hosts')), false, 'no host key was added');
  });

  it('re-running offers the saved values as defaults, and Enter keeps every one', async () => {
    const p = await makeHome('rerun');
    const s = 'rerun';
    const port = await freePort();
    const knownHosts = join(p.home, '.ssh', 'known_hosts');
    await copyFile(fx.knownHostsFile, knownHosts); // trusted on an earlier run
    const first = await runCommand(
      process.execPath,
      [
        entry,
        '--configure',
        '--yes',
        '--config',
        p.config,
        '--rendezvous',
        target,
        '--identity',
        p.workKey, // the second key in ~/.ssh: Enter on the first would pick the decoy
        '--server-name',
        'ASUS',
        '--client-name',
        'LAPTOP',
        '--port',
        String(port),
        '--dir',
        p.share,
        '--known-hosts',
        knownHosts,
      ],
      { env: { ...BASE_ENV, HOME: p.home } },
    );
    assert.equal(first.code, 0, first.stderr);
    const before = await readFile(p.config, 'utf8');

    await wizard(s, p.home, p.config);
    await term.waitFor(s, /Press Enter to keep the current value/);
    await term.waitFor(
      s,
      new RegExp(`^\\? Rendezvous SSH account .*: \\(${escape(target)}\\)$`, 'm'),
    );
    await term.answer(s, '');
    await term.waitFor(s, new RegExp(`^[❯>] key ${escape(p.workKey)}$`, 'm'));
    await term.keys(s, 'Enter');
    await term.waitFor(s, /^\? File-server name of this machine .*: \(ASUS\)$/m);
    await term.answer(s, '');
    await term.waitFor(s, /^\? Client name of this machine .*: \(LAPTOP\)$/m);
    await term.answer(s, '');
    await term.waitFor(s, new RegExp(`^\\? Local TCP port .*: \\(${port}\\)$`, 'm'));
    await term.answer(s, '');
    await term.waitFor(s, new RegExp(`^\\? Working directory .*: \\(${escape(p.share)}\\)$`, 'm'));
    await term.answer(s, '');
    await term.waitFor(s, /^\? Test the login to the rendezvous now\?/m);
    await term.answer(s, '');
    await term.waitFor(s, /^Login works\.$/m);
    assert.equal(await term.waitExit(s), 0, await term.screen(s));

    assert.doesNotMatch(
      await term.screen(s),
      /authenticity/,
      'a known host key is not asked about',
    );
    assert.equal(await readFile(p.config, 'utf8'), before);
    assert.equal((await stat(p.config)).mode & 0o777, 0o600);
  });

  it('without a terminal it refuses and points to --configure --yes', async () => {
    const p = await makeHome('notty');
    const r = await runCommand(process.execPath, [entry, '--configure', '--config', p.config], {
      env: { ...BASE_ENV, HOME: p.home },
      input: '',
    });
    assert.equal(r.code, 2, r.stderr);
    assert.match(
      r.stderr,
      /^Error: The configure wizard needs a terminal to ask its questions\.$/m,
    );
    // the advice names the config this peer was given
    assert.match(
      r.stderr,
      new RegExp(
        `For scripts use: rcpp2p --config ${escape(p.config)} --configure --yes --rendezvous user@host\\S* --identity KEY --trust-host-key SHA256:\\.\\.\\. `,
      ),
    );
    assert.equal(existsSync(p.config), false);
  });
});
