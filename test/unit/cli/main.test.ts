// The command line in-process: commander with exitOverride and its output captured, main() with
// fake streams. Words and flags, help with examples and exit codes, and the sentences and exit codes
// of mistakes that need no network (a missing config, a key that is not there, a wrong passphrase).
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EventEmitter } from 'node:events';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { PassThrough, Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { main } from '../../../src/cli/main.js';
import { buildProgram, type Chosen } from '../../../src/cli/program.js';
import { makeAsk } from '../../../src/cli/prompt.js';
import type { CliIo } from '../../../src/cli/io.js';
import { resolveSshAuth } from '../../../src/rendezvous/ssh-auth.js';
import { generateSshKeyPair } from '../../../src/rendezvous/ssh-key.js';

class Capture extends Writable {
  text = '';
  override _write(chunk: Buffer | string, _e: BufferEncoding, done: () => void): void {
    this.text += chunk.toString();
    done();
  }
}

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rcpp2p-cli-unit-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

function io(input = ''): CliIo & { out: Capture; err: Capture } {
  const out = new Capture();
  const err = new Capture();
  const stdin = new PassThrough();
  stdin.end(input);
  return {
    stdin,
    stdout: out,
    stderr: err,
    // HOME and XDG point into the test folder: the default config is never a real one
    env: { HOME: dir, XDG_CONFIG_HOME: join(dir, 'xdg') },
    cwd: dir,
    out,
    err,
  };
}

async function run(args: string[], input = '') {
  const streams = io(input);
  const code = await main(['node', 'rcpp2p', ...args], streams);
  return { code, stdout: streams.out.text, stderr: streams.err.text };
}

function parse(args: string[]): { chosen: Chosen | undefined; opts: Record<string, unknown> } {
  let chosen: Chosen | undefined;
  const program = buildProgram(io(), (c) => (chosen = c));
  program.parse(['node', 'rcpp2p', ...args]);
  return { chosen, opts: program.opts() };
}

describe('rcpp2p words and flags', () => {
  const same: [string, string[], string[], Chosen][] = [
    [
      'get',
      ['get', 'ASUS', 'a.txt', 'b'],
      ['--get', 'ASUS', 'a.txt', 'b'],
      { mode: 'get', server: 'ASUS', files: ['a.txt', 'b'] },
    ],
    [
      'put',
      ['put', 'ASUS', 'up'],
      ['--put', 'ASUS', 'up'],
      { mode: 'put', server: 'ASUS', files: ['up'] },
    ],
    [
      'ls',
      ['ls', 'ASUS'],
      ['--filelist', 'ASUS'],
      { mode: 'filelist', server: 'ASUS', folder: '' },
    ],
    [
      'list FOLDER',
      ['list', 'ASUS', 'photos'],
      ['--filelist', 'ASUS', 'photos'],
      { mode: 'filelist', server: 'ASUS', folder: 'photos' },
    ],
    ['serve', ['serve'], [], { mode: 'serve' }],
    ['servers', ['servers'], ['--servers'], { mode: 'servers' }],
    ['search', ['search', '*.jpg'], ['--search', '*.jpg'], { mode: 'search', pattern: '*.jpg' }],
    [
      'send',
      ['send', 'a.pdf', 'photos'],
      ['--send', 'a.pdf', 'photos'],
      { mode: 'send', files: ['a.pdf', 'photos'] },
    ],
    [
      'receive',
      ['receive', '7-kobaru-tesimo'],
      ['--receive', '7-kobaru-tesimo'],
      { mode: 'receive', code: '7-kobaru-tesimo' },
    ],
  ];
  for (const [name, words, flags, expected] of same) {
    it(`"rcpp2p ${words.join(' ')}" is "rcpp2p ${flags.join(' ')}" (${name})`, () => {
      assert.deepEqual(parse(words).chosen, expected);
      assert.deepEqual(parse(flags).chosen, expected);
    });
  }

  it('--server narrows a search, and goes with nothing else', async () => {
    const { chosen, opts } = parse(['search', 'beach', '--server', 'NAS', '--json']);
    assert.deepEqual(chosen, { mode: 'search', pattern: 'beach' });
    assert.equal(opts['server'], 'NAS');
    const r = await run(['servers', '--server', 'NAS']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--server only goes with --search\./);
    const p = await run([
      '--configure',
      '--yes',
      '--rendezvous',
      'ann@rv.example.net',
      '--client-name',
      'LAPTOP',
      '--publish-index',
      'maybe',
    ]);
    assert.equal(p.code, 2);
    assert.match(p.stderr, /--publish-index takes yes or no, not "maybe"\./);
  });

  it('options after the word work as after the flag', () => {
    const { chosen, opts } = parse(['get', 'ASUS', 'a.txt', '--to', 'dl', '--force', '--json']);
    assert.deepEqual(chosen, { mode: 'get', server: 'ASUS', files: ['a.txt'] });
    assert.equal(opts['to'], 'dl');
    assert.equal(opts['force'], true);
    assert.equal(opts['json'], true);
    assert.equal(parse(['serve', '--periodic']).opts['periodic'], true);
  });

  it('help: examples and every exit code, from --help, -h and "help"', async () => {
    for (const args of [['--help'], ['-h'], ['help']]) {
      const r = await run(args);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^Usage: rcpp2p \[command\] \[options\]/);
      assert.match(r.stdout, /^Examples:\n {2}rcpp2p --configure /m);
      assert.match(r.stdout, /^ {2}rcpp2p get ASUS photos\/2024 notes\.txt /m);
      for (const [code, words] of [
        ['0', 'success'],
        ['1', 'anything else'],
        ['2', 'usage or configuration'],
        ['3', 'rendezvous'],
        ['4', 'peer'],
        ['5', 'file'],
        ['130', 'interrupted'],
      ]) {
        assert.match(r.stdout, new RegExp(`^ {2}${code} +${words}`, 'm'), `exit code ${code}`);
      }
      assert.match(r.stdout, /^ {2}get <SERVER> <FILE\.\.\.> +download/m);
      assert.match(r.stdout, /^ {2}ls\|list <SERVER> \[FOLDER\]/m);
    }
  });

  it('"help get" shows the get command and points to the common options', async () => {
    const r = await run(['help', 'get']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^Usage: rcpp2p get \[options\] <SERVER> <FILE\.\.\.>/);
    assert.match(r.stdout, /--to, --force, --json, --config/);
  });

  const mistakes: [string, string[], RegExp][] = [
    [
      'an unknown word',
      ['mail', 'x'],
      /^error: unknown command "mail"\.\nCommands: get, put, send, receive, ls \(list\), servers, search, serve, help/,
    ],
    [
      'a habit from other tools',
      ['upload', 'x'],
      /^error: unknown command "upload"\. Did you mean "rcpp2p put"\?/,
    ],
    ['download', ['download', 'ASUS', 'x'], /Did you mean "rcpp2p get"\?/],
    ['get without a file', ['get', 'ASUS'], /^error: missing required argument 'FILE'/],
    [
      '--get without a file',
      ['--get', 'ASUS'],
      /^error: use rcpp2p --get SERVER FILE \[FILE\.\.\.\]/,
    ],
    ['ls with two folders', ['ls', 'ASUS', 'a', 'b'], /^error: too many arguments for 'ls'/],
    [
      'a word and a flag mode',
      ['get', 'ASUS', 'x', '--put', 'ASUS', 'y'],
      /^error: "get" and --put are two commands; give one\./,
    ],
    ['two flag modes', ['--get', 'ASUS', 'x', '--addclient'], /cannot be used with option/],
    ['a typo', ['--gte', 'ASUS'], /^error: unknown option '--gte'\n\(Did you mean --get\?\)/],
  ];
  for (const [name, args, message] of mistakes) {
    it(`usage mistake, exit 2: ${name}`, async () => {
      const r = await run(args);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, message);
      assert.equal(r.stdout, '');
    });
  }

  const onlyWith: [string[], string][] = [
    [['--yes', 'ls', 'ASUS'], '--yes only goes with --configure or --addclient.'],
    [['--replace', '--get', 'ASUS', 'x'], '--replace only goes with --addclient.'],
    [
      ['--trust-host-key', 'SHA256:x', '--addclient'],
      '--trust-host-key only goes with --configure.',
    ],
    [['--test-login', 'serve'], '--test-login only goes with --configure.'],
  ];
  for (const [args, sentence] of onlyWith) {
    it(`an option without its mode is refused: ${args[0]}`, async () => {
      const r = await run(args);
      assert.equal(r.code, 2);
      assert.equal(r.stderr, `Error: ${sentence}\n`);
    });
  }
});

describe('advice names the --config the user gave', () => {
  it('no config at a custom path: the hint repeats --config', async () => {
    const config = join(dir, 'peers', 'laptop.json');
    const r = await run(['ls', 'ASUS', '--config', config]);
    assert.equal(r.code, 2);
    assert.equal(
      r.stderr,
      `Error: There is no configuration at ${config}.\nRun rcpp2p --config ${config} --configure to create one.\n`,
    );
  });

  it('a path with a space is quoted for the shell', async () => {
    const config = join(dir, 'my peers', 'laptop.json');
    const r = await run(['--get', 'ASUS', 'x', '--config', config]);
    assert.match(
      r.stderr,
      new RegExp(`^Run rcpp2p --config '${config}' --configure to create one\\.$`, 'm'),
    );
  });

  it('the default config: no --config in the hint', async () => {
    const r = await run(['ls', 'ASUS']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^Run rcpp2p --configure to create one\.$/m);
  });

  it('"Next" lines after --configure --yes carry --config too', async () => {
    const config = join(dir, 'next', 'config.json');
    const key = join(dir, 'next-key');
    await writeFile(key, generateSshKeyPair().private, { mode: 0o600 });
    const r = await run([
      '--configure',
      '--yes',
      '--config',
      config,
      '--rendezvous',
      'alice@127.0.0.1:2222',
      '--identity',
      key,
      '--client-name',
      'LAPTOP',
      '--server-name',
      'ASUS',
      '--dir',
      dir,
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stdout,
      new RegExp(
        `^Next on a client: rcpp2p --config ${config} --addclient, then rcpp2p --config ${config} --filelist SERVER\\.$`,
        'm',
      ),
    );
    assert.match(
      r.stdout,
      new RegExp(`^Next on the file server: rcpp2p --config ${config} \\(serves `, 'm'),
    );
  });
});

describe('--configure --yes checks what it can before saving', () => {
  const base = (config: string): string[] => [
    '--configure',
    '--yes',
    '--config',
    config,
    '--rendezvous',
    'alice@127.0.0.1:2222',
    '--client-name',
    'LAPTOP',
  ];

  it('a key file that does not exist: a sentence, exit 2, nothing saved', async () => {
    const config = join(dir, 'nokey', 'config.json');
    const r = await run([...base(config), '--identity', join(dir, 'nonexistent')]);
    assert.equal(r.code, 2);
    assert.match(
      r.stderr,
      new RegExp(
        `^Error: The SSH key for the rendezvous login cannot be used: ${dir}/nonexistent does not exist\\.$`,
        'm',
      ),
    );
    assert.match(r.stderr, /Nothing was saved\.$/m);
    await assert.rejects(() => import('node:fs/promises').then((fs) => fs.stat(config)));
  });

  it('a public key instead of the private one', async () => {
    const pub = join(dir, 'id.pub');
    await writeFile(pub, generateSshKeyPair().public + '\n');
    const r = await run([...base(join(dir, 'pub', 'config.json')), '--identity', pub]);
    assert.equal(r.code, 2);
    assert.match(
      r.stderr,
      /cannot be used: .*id\.pub is a public key; give the private key beside it\./,
    );
  });

  it('a malformed --trust-host-key', async () => {
    const key = join(dir, 'fp-key');
    await writeFile(key, generateSshKeyPair().private, { mode: 0o600 });
    const r = await run([
      ...base(join(dir, 'fp', 'config.json')),
      '--identity',
      key,
      '--trust-host-key',
      'AAAAC3Nza',
    ]);
    assert.equal(r.code, 2);
    assert.match(
      r.stderr,
      /^Error: --trust-host-key takes a key fingerprint like SHA256:AbC\.\.\. /m,
    );
    assert.match(r.stderr, /ssh-keyscan -p PORT HOST \| ssh-keygen -lf -/);
  });
});

describe('a wrong key passphrase is named as one', () => {
  const passphrase = 'correct horse';
  let config: string;
  let key: string;
  before(async () => {
    key = join(dir, 'encrypted_key');
    const pair = generateSshKeyPair({
      passphrase,
      cipher: 'aes256-ctr',
      rounds: 16,
    });
    await writeFile(key, pair.private, { mode: 0o600 });
    config = join(dir, 'pp', 'config.json');
    const r = await run([
      '--configure',
      '--yes',
      '--config',
      config,
      '--rendezvous',
      'alice@127.0.0.1:9',
      '--identity',
      key,
      '--client-name',
      'LAPTOP',
    ]);
    assert.equal(r.code, 0, r.stderr);
  });

  it('--password-stdin with a wrong passphrase: "Wrong passphrase", exit 3, no "stdin ended"', async () => {
    const r = await run(['ls', 'ASUS', '--config', config, '--password-stdin'], 'wrong\n');
    assert.equal(r.code, 3, r.stderr);
    assert.equal(
      r.stderr,
      `Error: Wrong passphrase for ${key}.\nCheck the passphrase with: ssh-keygen -y -f ${key}\n`,
    );
  });

  it('--password-stdin with nothing on stdin says so', async () => {
    const r = await run(['ls', 'ASUS', '--config', config, '--password-stdin'], '');
    assert.equal(r.code, 3);
    assert.match(r.stderr, /needed an answer to "Passphrase for .*" but stdin ended\./);
  });

  it('in a terminal: "Wrong passphrase, try again." between tries, then the key opens', async () => {
    const stdin = Object.assign(new PassThrough(), { isTTY: true, setRawMode: () => stdin });
    const stderr = new Capture();
    const ask = makeAsk({ stdin, stderr, passwordStdin: false });
    const auth = resolveSshAuth({ method: 'key', identityFile: key }, ask, {});
    stdin.write('wrong\r');
    await waitFor(() => stderr.text.includes('try again'));
    stdin.write(`${passphrase}\r`);
    const result = await auth;
    assert.equal(result.method, 'key');
    assert.equal(
      stderr.text,
      `Passphrase for ${key}: \nWrong passphrase, try again.\nPassphrase for ${key}: \n`,
    );
  });

  it('in a terminal: three wrong tries end with the count', async () => {
    const stdin = Object.assign(new PassThrough(), { isTTY: true, setRawMode: () => stdin });
    const stderr = new Capture();
    const auth = resolveSshAuth(
      { method: 'key', identityFile: key },
      makeAsk({ stdin, stderr, passwordStdin: false }),
      {},
    );
    const rejected = assert.rejects(auth, /Wrong passphrase for .* \(3 tries\)\./);
    for (let i = 1; i <= 3; i++) {
      await waitFor(() => stderr.text.split('Passphrase for').length - 1 === i);
      stdin.write('nope\r');
    }
    await rejected;
    assert.equal(stderr.text.match(/Wrong passphrase, try again\./g)?.length, 2);
  });
});

describe('Ctrl-C', () => {
  it('the first one says "Stopping" once and aborts the command; a second one exits 130 at once', async () => {
    // a rendezvous that accepts the connection and never answers: the command waits in the SSH login
    const held: Socket[] = [];
    const blackHole = createServer((s) => held.push(s));
    await new Promise<void>((r) => blackHole.listen(0, '127.0.0.1', r));
    const port = (blackHole.address() as AddressInfo).port;
    const key = join(dir, 'ctrlc-key');
    await writeFile(key, generateSshKeyPair().private, { mode: 0o600 });
    const config = join(dir, 'ctrlc', 'config.json');
    const made = await run([
      '--configure',
      '--yes',
      '--config',
      config,
      '--rendezvous',
      `alice@127.0.0.1:${port}`,
      '--identity',
      key,
      '--client-name',
      'LAPTOP',
    ]);
    assert.equal(made.code, 0, made.stderr);

    const streams = io();
    const signals = new EventEmitter();
    const exits: number[] = [];
    const running = main(['node', 'rcpp2p', 'ls', 'ASUS', '--config', config], {
      ...streams,
      signals,
      exit: (code) => exits.push(code),
    });
    try {
      await waitFor(() => held.length > 0);
      signals.emit('SIGINT');
      assert.match(streams.err.text, /^Stopping\.\.\. \(press Ctrl-C again to quit at once\)$/m);
      assert.deepEqual(exits, [], 'the first Ctrl-C lets the command stop by itself');
      signals.emit('SIGTERM');
      assert.deepEqual(exits, [130], 'the second one exits at once');
      assert.equal(streams.err.text.match(/Stopping/g)?.length, 1);
    } finally {
      for (const s of held) s.destroy();
      blackHole.close();
      await running;
    }
    assert.equal(signals.listenerCount('SIGINT'), 0, 'main removes its handlers');
  });
});

async function waitFor(condition: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  assert.ok(condition(), 'condition not met');
}
