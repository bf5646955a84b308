// rcpp2p --rendezvous-server as a user runs it (the real CLI in a child process): a port already in
// use, state files other users could change (like sshd's StrictModes), and account passwords
// (at least 12 characters, typed twice).
import assert from 'node:assert/strict';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import ssh2 from 'ssh2';
import { accountsPath } from '../../../src/rendezvous-server/accounts.js';
import { startRendezvousServer } from '../../../src/rendezvous-server/server.js';
import { runCommand, type RunResult } from '../../helpers/processes.js';
import { generateSshKeyPair } from '../../../src/rendezvous/ssh-key.js';

const BIN = join(import.meta.dirname, '..', '..', '..', '..', 'bin', 'rcpp2p.js');
const USAGE_EXIT = 2;

function rcpp2p(args: string[], input = ''): Promise<RunResult> {
  return runCommand(process.execPath, [BIN, '--rendezvous-server', ...args], {
    input,
    timeoutMs: 30_000,
    env: { ...process.env, RCPP2P_DEBUG: '' },
  });
}

/** Logs in with a password; true when the rendezvous accepted it. */
function passwordLogin(port: number, user: string, password: string): Promise<boolean> {
  return new Promise((resolve) => {
    const client = new ssh2.Client();
    client.on('ready', () => {
      client.end();
      resolve(true);
    });
    client.on('error', () => resolve(false));
    client.connect({
      host: '127.0.0.1',
      port,
      username: user,
      password,
      hostVerifier: () => true,
      readyTimeout: 20_000,
    });
  });
}

describe('rcpp2p --rendezvous-server', { timeout: 120_000 }, () => {
  let dir: string;
  let n = 0;
  const newState = (): string => join(dir, `state${n++}`);
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rcpp2p-rv-cli-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('says so in a sentence when the port is already in use, with the usage exit code', async () => {
    const holder = net.createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    const { port } = holder.address() as net.AddressInfo;
    try {
      const r = await rcpp2p(['--state', newState(), '--listen', `127.0.0.1:${port}`]);
      assert.equal(r.code, USAGE_EXIT, r.stderr);
      assert.equal(
        r.stderr.trim(),
        `Error: Port ${port} on 127.0.0.1 is already in use; is another rendezvous running?\n` +
          'Pick another with --listen HOST:PORT.',
      );
    } finally {
      holder.close();
    }
  });

  it('adds an account with a password of twelve characters typed twice', async () => {
    const state = newState();
    const add = await rcpp2p(
      ['--state', state, '--add-account', 'carol', '--account-password', '--password-stdin'],
      'twelve chars\ntwelve chars\n',
    );
    assert.equal(add.code, 0, add.stderr);
    const rv = await startRendezvousServer({ stateDir: state, host: '127.0.0.1', port: 0 });
    try {
      assert.equal(await passwordLogin(rv.port, 'carol', 'twelve chars'), true);
      assert.equal(await passwordLogin(rv.port, 'carol', 'twelve chars!'), false);
    } finally {
      await rv.close();
    }
  });

  it('refuses a password shorter than twelve characters', async () => {
    const r = await rcpp2p(
      ['--state', newState(), '--add-account', 'carol', '--account-password', '--password-stdin'],
      'eleven char\neleven char\n',
    );
    assert.equal(r.code, USAGE_EXIT);
    assert.match(r.stderr, /That password has 11 characters; a rendezvous password needs 12 to/);
  });

  it('refuses two passwords that differ, and changes nothing', async () => {
    const state = newState();
    const r = await rcpp2p(
      ['--state', state, '--add-account', 'carol', '--account-password', '--password-stdin'],
      'correct horse battery\ncorrect horse batterx\n',
    );
    assert.equal(r.code, USAGE_EXIT);
    assert.match(r.stderr, /The two passwords differ, so nothing was changed\./);
    const rv = await startRendezvousServer({ stateDir: state, host: '127.0.0.1', port: 0 });
    try {
      assert.equal(await passwordLogin(rv.port, 'carol', 'correct horse battery'), false);
    } finally {
      await rv.close();
    }
  });

  describe('refuses state other users could change', () => {
    const keyLine = generateSshKeyPair().public;
    const prepared = async (): Promise<string> => {
      const state = newState();
      const keyFile = join(dir, `key${n}.pub`);
      await writeFile(keyFile, `${keyLine}\n`);
      const add = await rcpp2p([
        '--state',
        state,
        '--add-account',
        'dave',
        '--authorized-key',
        keyFile,
      ]);
      assert.equal(add.code, 0, add.stderr);
      const start = await startRendezvousServer({ stateDir: state, host: '127.0.0.1', port: 0 });
      await start.close(); // makes the host key
      return state;
    };
    const cases: [string, (state: string) => string, number, RegExp][] = [
      [
        'an accounts file others can write',
        (state) => accountsPath(state),
        0o666,
        /will not use the rendezvous accounts file .*accounts\.json: other users can change it \(mode 0666\)\.\nMake it yours and private: chmod 600 /,
      ],
      [
        'an accounts file the group can write',
        (state) => accountsPath(state),
        0o620,
        /accounts file .*: other users can change it \(mode 0620\)/,
      ],
      [
        'a host key others can read',
        (state) => join(state, 'host_ed25519'),
        0o644,
        /will not use the rendezvous host key .*host_ed25519: other users can read it \(mode 0644\)\.\nMake it yours and private: chmod 600 /,
      ],
      [
        'a host key others can write',
        (state) => join(state, 'host_ed25519'),
        0o602,
        /host key .*: other users can change it \(mode 0602\)/,
      ],
      [
        'a state folder others can write',
        (state) => state,
        0o777,
        /will not use the rendezvous state folder .*: other users can change it \(mode 0777\)\.\nMake it yours and private: chmod 700 /,
      ],
    ];
    for (const [name, path, mode, message] of cases) {
      it(name, async () => {
        const state = await prepared();
        await chmod(path(state), mode);
        const r = await rcpp2p(['--state', state, '--listen', '127.0.0.1:0']);
        assert.equal(r.code, USAGE_EXIT, r.stderr);
        assert.match(r.stderr, message);
      });
    }

    it('stops taking logins when the accounts file becomes writable while it runs', async () => {
      const state = await prepared();
      const lines: string[] = [];
      const rv = await startRendezvousServer({
        stateDir: state,
        host: '127.0.0.1',
        port: 0,
        onEvent: (t) => lines.push(t),
      });
      try {
        await chmod(accountsPath(state), 0o666);
        assert.equal(await passwordLogin(rv.port, 'dave', 'anything at all'), false);
        assert.ok(
          lines.some((l) =>
            /cannot check logins: rcpp2p will not use the rendezvous accounts file/.test(l),
          ),
          lines.join('\n'),
        );
      } finally {
        await rv.close();
      }
    });
  });
});
