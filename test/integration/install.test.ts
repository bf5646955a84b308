// The README's install route, followed to the letter by a new non-root user on a fresh copy of the
// repository: `npm ci` (which builds dist/ through the prepare script), `npx rcpp2p`, `npm install -g
// --prefix ~/.local .`, then `rcpp2p --version` and `rcpp2p --demo` from ~/.local/bin. And `npm pack`
// ships what a published package needs: the tarball runs on its own files.
//
// As root it makes a throwaway user with a home in a temp folder, runs every step as that user with
// runuser and an empty environment (no root config, no proxy), and removes the user at the end.
// npm reads packages from a copy of root's npm cache (filled by the `npm ci` that set up this
// repository); its proxy is a closed loopback port, so nothing leaves this machine.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { chmod, chown, copyFile, cp, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { VERSION } from '../../src/version.js';
import { hasCommand, isRoot, skipUnless } from '../helpers/capability.js';
import { killPids, runChecked, runCommand, type RunResult } from '../helpers/processes.js';

const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const GIT = '/usr/bin/git';
const RUNUSER = '/usr/sbin/runuser';
const USERADD = '/usr/sbin/useradd';
const USERDEL = '/usr/sbin/userdel';
const NPM_CACHE = join(homedir(), '.npm', '_cacache');
const NPM_MS = 8 * 60_000;

const skip = skipUnless(
  isRoot(),
  hasCommand(USERADD, 'Debian package passwd, to make a throwaway user'),
  hasCommand(RUNUSER, 'Debian package util-linux'),
  hasCommand(GIT, 'Debian package git, to list the files of a fresh clone'),
  {
    ok: existsSync(NPM_CACHE),
    reason: `needs ${NPM_CACHE} (run npm ci as root first, as .ci/run does)`,
  },
);

describe('install as a non-root user from a fresh clone (README "Install")', { skip }, () => {
  const user = `rcpp2p-inst${process.pid % 100000}`;
  let root: string;
  let home: string;
  let clone: string;
  let uid = -1;
  let gid = -1;

  /** Runs argv as the user, in an environment that has nothing of ours. */
  async function asUser(argv: string[], cwd: string, timeoutMs = NPM_MS): Promise<RunResult> {
    const env = [
      `HOME=${home}`,
      `USER=${user}`,
      `PATH=${join(home, '.local', 'bin')}:${dirname(process.execPath)}:/usr/local/bin:/usr/bin:/bin`,
      `npm_config_cache=${join(home, '.npm')}`,
      // any request that would leave the machine goes to a closed loopback port instead
      'npm_config_proxy=http://127.0.0.1:9/',
      'npm_config_https_proxy=http://127.0.0.1:9/',
      'npm_config_prefer_offline=true',
      'npm_config_update_notifier=false',
      'npm_config_fund=false',
      'npm_config_audit=false',
    ];
    return runCommand(RUNUSER, ['-u', user, '--', '/usr/bin/env', '-i', ...env, ...argv], {
      cwd,
      timeoutMs,
    });
  }

  async function ok(argv: string[], cwd: string): Promise<RunResult> {
    const r = await asUser(argv, cwd);
    assert.equal(r.code, 0, `${argv.join(' ')} exited ${r.code}\n${r.stdout}\n${r.stderr}`);
    return r;
  }

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'rcpp2p-install-'));
    await chmod(root, 0o755);
    home = join(root, 'home');
    await runChecked(USERADD, [
      '--no-create-home',
      '--home-dir',
      home,
      '--shell',
      '/bin/sh',
      '--user-group',
      user,
    ]);
    uid = Number(await runChecked('/usr/bin/id', ['-u', user]));
    gid = Number(await runChecked('/usr/bin/id', ['-g', user]));
    await mkdir(home, { mode: 0o700 });
    // a fresh clone: the files git knows (tracked, and new ones not ignored), no node_modules or dist
    clone = join(home, 'rcpp2p');
    const listed = await runChecked(GIT, [
      '-C',
      REPO,
      'ls-files',
      '-z',
      '-c',
      '-o',
      '--exclude-standard',
    ]);
    for (const file of new Set(listed.split('\0').filter(Boolean))) {
      if (!existsSync(join(REPO, file))) continue; // deleted in the work tree
      await mkdir(dirname(join(clone, file)), { recursive: true });
      await copyFile(join(REPO, file), join(clone, file));
    }
    await cp(NPM_CACHE, join(home, '.npm', '_cacache'), { recursive: true });
    await runChecked('/usr/bin/chown', ['-R', `${uid}:${gid}`, home]);
    await chown(home, uid, gid);
  });

  after(async () => {
    if (uid >= 0) {
      const ps = await runCommand('/usr/bin/pgrep', ['-u', String(uid)]);
      await killPids(ps.stdout.split('\n').filter(Boolean).map(Number));
    }
    await runCommand(USERDEL, [user]);
    if (root) await rm(root, { recursive: true, force: true });
  });

  it('npm ci installs and builds; npx rcpp2p runs inside the clone', async () => {
    await ok(['npm', 'ci'], clone);
    assert.ok(existsSync(join(clone, 'dist', 'src', 'cli', 'main.js')), 'prepare built dist/');
    const r = await ok(['npx', 'rcpp2p', '--version'], clone);
    assert.equal(r.stdout, `${VERSION}\n`);
  });

  it('npm install -g --prefix ~/.local . puts rcpp2p on the PATH; --version and --demo work', async () => {
    await ok(['npm', 'install', '-g', '--prefix', join(home, '.local'), '.'], clone);
    const bin = join(home, '.local', 'bin', 'rcpp2p');
    assert.ok(existsSync(bin), `${bin} exists`);
    const version = await ok(['rcpp2p', '--version'], home);
    assert.equal(version.stdout, `${VERSION}\n`);
    const demo = await ok(['rcpp2p', '--demo'], home);
    assert.match(demo.stderr, /^The demo worked: /m);
    assert.match(demo.stderr, /photo\.jpg 100% \[=+\] 6\.00 MiB .* Complete\./);
  });

  it('npm pack ships bin/ and dist/src/ (no sources or tests), and the packed files run', async () => {
    const packed = await ok(['npm', 'pack', '--json'], clone);
    const [info] = JSON.parse(packed.stdout.slice(packed.stdout.indexOf('['))) as {
      filename: string;
      files: { path: string }[];
    }[];
    assert.ok(info);
    const files = info.files.map((f) => f.path);
    for (const needed of ['package.json', 'README.md', 'bin/rcpp2p.js', 'dist/src/cli/main.js']) {
      assert.ok(files.includes(needed), `${needed} is in the package`);
    }
    const strays = files.filter((f) => /^(src|test|bench|dist\/test|dist\/bench)\//.test(f));
    assert.deepEqual(strays, [], 'no sources, tests or benchmarks');
    const manifest = JSON.parse(await readFile(join(clone, 'package.json'), 'utf8')) as {
      engines?: { node?: string };
    };
    assert.equal(manifest.engines?.node, '>=20.12');
    // the packed files, with the dependencies npm would install beside them
    const unpacked = join(home, 'unpacked');
    await ok(['mkdir', unpacked], home);
    await ok(['tar', '-xzf', join(clone, info.filename), '-C', unpacked], home);
    await ok(
      ['ln', '-s', join(clone, 'node_modules'), join(unpacked, 'package', 'node_modules')],
      home,
    );
    const r = await ok(['node', join(unpacked, 'package', 'bin', 'rcpp2p.js'), '--version'], home);
    assert.equal(r.stdout, `${VERSION}\n`);
  });
});
