// rcpp2p send / receive on loopback (no root): a real OpenSSH sshd as the rendezvous (and the
// embedded one for the basic case), two peers configured by the real `rcpp2p --configure --yes`,
// sender and receiver as real processes. What the user relies on: the files arrive intact, a
// mistyped code fails at the receiver and costs nothing, a code works once, the receiver's files
// are kept unless --force, an offer rewritten by another account member is refused, and a peer
// that guesses the code cannot get the files and ends the send.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openLink } from '../../src/link/open-link.js';
import { loadConfig } from '../../src/config/config.js';
import { KnownPeers } from '../../src/secure/known-peers.js';
import { generateIdentity } from '../../src/secure/identity.js';
import { isRcppError } from '../../src/errors.js';
import { hasSshd, skipUnless } from '../helpers/capability.js';
import {
  startLoopbackRendezvous,
  type LoopbackKind,
  type LoopbackRendezvous,
} from '../helpers/index-peers.js';
import { RCPP2P_BIN } from '../helpers/lab-peers.js';
import { ProcessTracker, type ProcessHandle, type RunResult } from '../helpers/processes.js';

interface Peers {
  root: string;
  rv: LoopbackRendezvous;
  processes: ProcessTracker;
  /** Runs rcpp2p as peer `who` (alice sends, bob receives) in `cwd`. */
  run(who: 'alice' | 'bob', args: string[], cwd?: string): Promise<RunResult>;
  spawn(who: 'alice' | 'bob', args: string[], cwd?: string): ProcessHandle;
  config(who: 'alice' | 'bob'): string;
  stop(): Promise<void>;
}

async function setup(kind: LoopbackKind): Promise<Peers> {
  const root = await mkdtemp(join(tmpdir(), 'rcpp2p-send-'));
  const processes = new ProcessTracker();
  const env = { ...process.env, RCPP2P_DEBUG: process.env['RCPP2P_DEBUG'] ?? '' };
  const rv = await startLoopbackRendezvous(kind, root);
  const config = (who: string): string => join(root, `${who}.json`);
  const peers: Peers = {
    root,
    rv,
    processes,
    config,
    run: (who, args, cwd = root) =>
      processes.run(process.execPath, [RCPP2P_BIN, '--config', config(who), ...args], {
        env,
        cwd,
        timeoutMs: 60_000,
      }),
    spawn: (who, args, cwd = root) =>
      processes.spawn(process.execPath, [RCPP2P_BIN, '--config', config(who), ...args], {
        env,
        cwd,
      }),
    async stop() {
      await processes.killAll();
      await rv.stop();
      await rm(root, { recursive: true, force: true });
    },
  };
  for (const who of ['alice', 'bob'] as const) {
    const r = await processes.run(
      process.execPath,
      [
        RCPP2P_BIN,
        '--configure',
        '--yes',
        '--config',
        config(who),
        '--rendezvous',
        rv.target,
        '--identity',
        rv.keyFile,
        '--known-hosts',
        rv.knownHostsFile,
        '--rendezvous-dir',
        rv.dir,
        '--client-name',
        who,
        '--port',
        String(20_000 + Math.floor(Math.random() * 20_000)),
      ],
      { env, timeoutMs: 30_000 },
    );
    if (r.code !== 0) throw new Error(`configure ${who} failed: ${r.stdout}${r.stderr}`);
  }
  return peers;
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Starts `send FILES` as alice; resolves with the process and the code it printed. */
async function startSend(
  peers: Peers,
  files: string[],
  cwd: string,
): Promise<{ sender: ProcessHandle; code: string }> {
  const sender = peers.spawn('alice', ['send', ...files], cwd);
  const m = await sender.waitForOutput(/Code: (\d+-[a-z]+-[a-z]+)/, 30_000);
  return { sender, code: m[1]! };
}

/** The code with one letter of its last word changed (still a well-formed code). */
function mistyped(code: string): string {
  const last = code.at(-1) === 'a' ? 'e' : 'a';
  return code.slice(0, -1) + last;
}

async function outbox(root: string): Promise<{ dir: string; files: Map<string, string> }> {
  const dir = join(root, 'outbox');
  await mkdir(join(dir, 'album', 'day 2'), { recursive: true });
  const files = new Map<string, Buffer>([
    ['video.bin', randomBytes(3 * 1024 * 1024 + 17)],
    ['album/a.jpg', randomBytes(40_000)],
    ['album/day 2/b.jpg', randomBytes(1)],
  ]);
  for (const [name, data] of files) await writeFile(join(dir, name), data);
  return { dir, files: new Map([...files].map(([n, d]) => [n, sha256(d)])) };
}

describe('send and receive through an OpenSSH rendezvous', { skip: skipUnless(hasSshd()) }, () => {
  let peers: Peers;
  let box: { dir: string; files: Map<string, string> };
  before(async () => {
    peers = await setup('openssh');
    box = await outbox(peers.root);
  });
  after(() => peers?.stop());

  it('a file and a folder arrive intact, a mistyped code is refused first, and the code then works once', async () => {
    const { sender, code } = await startSend(peers, ['video.bin', 'album'], box.dir);
    const inbox = join(peers.root, 'inbox-1');
    await mkdir(inbox);

    const typo = await peers.run('bob', ['receive', mistyped(code)], inbox);
    assert.equal(typo.code, 4, typo.stderr);
    assert.match(typo.stderr, /a word is mistyped/);
    assert.equal(sender.hasExited(), false, 'a mistyped code does not end the send');

    const got = await peers.run('bob', ['receive', code.replace(/-/g, ' ').toUpperCase()], inbox);
    assert.equal(got.code, 0, got.stdout + got.stderr);
    assert.match(got.stdout, /Received 3 files/);
    for (const [name, digest] of box.files) {
      assert.equal(sha256(await readFile(join(inbox, name))), digest, name);
    }
    const sent = await sender.waitExit(20_000);
    assert.equal(sent.code, 0, sender.stdout() + sender.stderr());
    assert.match(sender.stdout() + sender.stderr(), /Receiver bob connected/);

    const again = await peers.run('bob', ['receive', code], inbox);
    assert.equal(again.code, 4);
    assert.match(again.stderr, /Nothing is being sent under code/);
  });

  it("keeps the receiver's own file unless --force, and replaces it with --force", async () => {
    const inbox = join(peers.root, 'inbox-2');
    await mkdir(inbox);
    const mine = Buffer.from('my own notes\n');
    await writeFile(join(inbox, 'video.bin'), mine);

    const first = await startSend(peers, ['video.bin'], box.dir);
    const kept = await peers.run('bob', ['receive', first.code], inbox);
    assert.equal(kept.code, 5, kept.stdout + kept.stderr);
    assert.match(kept.stdout + kept.stderr, /exists/);
    assert.deepEqual(await readFile(join(inbox, 'video.bin')), mine);
    await first.sender.waitExit(20_000);

    const second = await startSend(peers, ['video.bin'], box.dir);
    const forced = await peers.run('bob', ['receive', second.code, '--force'], inbox);
    assert.equal(forced.code, 0, forced.stdout + forced.stderr);
    assert.equal(sha256(await readFile(join(inbox, 'video.bin'))), box.files.get('video.bin'));
    await second.sender.waitExit(20_000);
  });

  it('a receiver killed mid-transfer resumes from its partial file when the sender sends again', async () => {
    const big = randomBytes(256 * 1024 * 1024);
    await writeFile(join(box.dir, 'huge.bin'), big);
    const inbox = join(peers.root, 'inbox-resume');
    await mkdir(inbox);
    const first = await startSend(peers, ['huge.bin'], box.dir);
    const receiver = peers.spawn('bob', ['receive', first.code], inbox);
    // kill -9 once a part of the file is on disk (in the partial file, never in huge.bin)
    const partialSize = async (): Promise<number> => {
      for (const name of await readdir(inbox)) {
        if (name.endsWith('.rcpp2p-partial')) return (await stat(join(inbox, name))).size;
      }
      return 0;
    };
    for (let i = 0; i < 1500 && (await partialSize()) < 16 * 1024 * 1024; i++) {
      if (receiver.hasExited()) break;
      await new Promise((r) => setTimeout(r, 10));
    }
    process.kill(receiver.pid, 'SIGKILL');
    await receiver.exited;
    const kept = await partialSize();
    assert.ok(kept > 0 && kept < big.length, `a partial file of ${kept} bytes was left`);
    assert.equal(existsSync(join(inbox, 'huge.bin')), false, 'no half file under the real name');
    const cut = await first.sender.waitExit(30_000);
    assert.notEqual(cut.code, 0, 'the sender says the transfer did not finish');

    const second = await startSend(peers, ['huge.bin'], box.dir);
    const r = await peers.run('bob', ['receive', second.code], inbox);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout + r.stderr, /Resuming huge\.bin from /);
    assert.equal(sha256(await readFile(join(inbox, 'huge.bin'))), sha256(big));
    assert.equal((await second.sender.waitExit(20_000)).code, 0);
    await rm(join(box.dir, 'huge.bin'));
  });

  it('an offer rewritten by another account member (its fingerprint swapped) is refused, and nothing arrives', async () => {
    const { sender, code } = await startSend(peers, ['video.bin'], box.dir);
    const recordFile = join(
      dirname(peers.rv.indexesDir),
      'servers',
      `send-${code.split('-')[0]!}.json`,
    );
    const record = JSON.parse(await readFile(recordFile, 'utf8')) as { fingerprint: string };
    record.fingerprint = generateIdentity('mallory').fingerprint;
    await writeFile(recordFile, JSON.stringify(record));

    const inbox = join(peers.root, 'inbox-3');
    await mkdir(inbox);
    const r = await peers.run('bob', ['receive', code], inbox);
    assert.equal(r.code, 4, r.stdout + r.stderr);
    assert.match(r.stderr, /someone else in the rendezvous account made that offer/);
    assert.equal((await import('node:fs')).readdirSync(inbox).length, 0);
    await sender.kill(5000);
  });

  it('a peer that guesses the code is refused, and three guesses end the send', async () => {
    const { sender, code } = await startSend(peers, ['video.bin'], box.dir);
    const nameplate = code.split('-')[0]!;
    const config = await loadConfig(peers.config('bob'));
    const [user, hostPort] = peers.rv.target.split('@') as [string, string];
    const port = Number(hostPort.split(':')[1]);
    const guesser = generateIdentity('guesser');
    for (let guess = 1; guess <= 3; guess++) {
      const attempt = openLink({
        rendezvous: {
          host: '127.0.0.1',
          port,
          user,
          dir: config.rendezvous.dir,
          knownHostsFile: peers.rv.knownHostsFile,
          keepaliveSeconds: 15,
        },
        auth: {
          method: 'key',
          path: peers.rv.keyFile,
          privateKey: await readFile(peers.rv.keyFile),
        },
        localPort: 0,
        clientName: 'guesser',
        identity: guesser,
        trust: await KnownPeers.load(join(peers.root, 'guesser_known_peers')),
        serverName: `send-${nameplate}`,
        signal: AbortSignal.timeout(30_000),
        introduction: {
          checkSender: () => {}, // the guesser cannot check the offer; it tries anyway
          introduce: () => ({ fingerprint: guesser.fingerprint, proof: 'ab'.repeat(32) }),
        },
      });
      await assert.rejects(attempt, (err: unknown) => {
        assert.ok(isRcppError(err), String(err));
        if (guess < 3) assert.match(err.message, /does not know this send code/);
        return true;
      });
    }
    const ended = await sender.waitExit(20_000);
    assert.equal(ended.code, 4, sender.stdout() + sender.stderr());
    assert.match(
      sender.stderr(),
      /Send cancelled: 3 peers tried to receive it without knowing the code/,
    );

    const inbox = join(peers.root, 'inbox-4');
    await mkdir(inbox);
    const late = await peers.run('bob', ['receive', code], inbox);
    assert.equal(late.code, 4, 'the real receiver finds the send gone after the guessing');
  });
});

describe('send and receive through the embedded rendezvous', () => {
  let peers: Peers;
  before(async () => {
    peers = await setup('embedded');
  });
  after(() => peers?.stop());

  it('a file arrives intact and both sides exit 0', async () => {
    const dir = join(peers.root, 'out');
    await mkdir(dir);
    const data = randomBytes(200_000);
    await writeFile(join(dir, 'report.pdf'), data);
    const { sender, code } = await startSend(peers, ['report.pdf'], dir);
    // a send waits like a file server, but it is not one: --servers leaves it out
    const servers = await peers.run('bob', ['servers', '--json']);
    assert.equal(servers.code, 0, servers.stdout + servers.stderr);
    assert.doesNotMatch(servers.stdout + servers.stderr, /send-\d/);
    const inbox = join(peers.root, 'in');
    await mkdir(inbox);
    const got = await peers.run('bob', ['--receive', code, '--to', inbox]);
    assert.equal(got.code, 0, got.stdout + got.stderr);
    assert.deepEqual(await readFile(join(inbox, 'report.pdf')), data);
    assert.equal((await sender.waitExit(20_000)).code, 0);
  });
});
