// The exec transport's two shell loops (commands.ts `watch` and `ask`) run by real shells on this
// machine, without SSH: dash (Debian's /bin/sh), BusyBox sh (OpenWrt's, and most routers' and NAS
// boxes') and bash in POSIX mode (/bin/sh on some distributions). What the SSH transport adds on
// top is tested in signaling-transports.test.ts.
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { renderRendezvousCommand, type RendezvousOp } from '../../src/rendezvous/commands.js';
import { skipUnless, type Capability } from '../helpers/capability.js';

interface Shell {
  name: string;
  argv: string[];
}

const BUSYBOX = ['/usr/bin/busybox', '/bin/busybox'].find((p) => existsSync(p));
const SHELLS: (Shell & { cap: Capability })[] = [
  { name: 'dash', argv: ['/usr/bin/dash'], cap: present('/usr/bin/dash', 'dash') },
  {
    name: 'BusyBox sh',
    argv: [BUSYBOX ?? '/usr/bin/busybox', 'sh'],
    cap: present(BUSYBOX ?? '/usr/bin/busybox', 'busybox'),
  },
  {
    name: 'bash --posix',
    argv: ['/usr/bin/bash', '--posix'],
    cap: present('/usr/bin/bash', 'bash'),
  },
];

function present(path: string, pkg: string): Capability {
  const ok = existsSync(path);
  return { ok, reason: ok ? '' : `needs ${path} (Debian package ${pkg})` };
}

const SERVER = 'ASUS';
const WID = '0123456789abcdef';
const CID = 'fedcba9876543210';
const CLIENT = 'LAPTOP';

/** The script inside a template's /bin/sh -c '...' (templates hold no single quote inside). */
function scriptOf(op: RendezvousOp): string {
  const command = renderRendezvousCommand(op);
  const match = /^\/bin\/sh -c '(.*)'$/s.exec(command);
  assert.ok(match?.[1], command);
  return match[1];
}

/** A running loop: its stdout lines as they come, its stdin, its exit. */
interface Loop {
  proc: ChildProcessWithoutNullStreams;
  lines: string[];
  exited: Promise<number | null>;
  /** Waits (bounded) for a line matching `pattern`, returns it. */
  line(pattern: RegExp, ms?: number): Promise<string>;
}

describe('the exec transport loops in real shells', () => {
  let home: string;
  let dir: string;
  let folder: string;
  const running: Loop[] = [];

  function start(shell: Shell, op: RendezvousOp, env: NodeJS.ProcessEnv = {}): Loop {
    const [file = '', ...args] = shell.argv;
    const proc = spawn(file, [...args, '-c', scriptOf(op)], {
      cwd: home,
      env: { PATH: process.env['PATH'], HOME: home, ...env },
    });
    const lines: string[] = [];
    let partial = '';
    const waiters = new Set<() => void>();
    proc.stdout.setEncoding('utf8').on('data', (text: string) => {
      const parts = (partial + text).split('\n');
      partial = parts.pop() ?? '';
      lines.push(...parts);
      for (const w of waiters) w();
    });
    proc.stderr.resume();
    proc.stdin.on('error', () => {});
    const exited = new Promise<number | null>((resolve) => proc.once('exit', (c) => resolve(c)));
    const loop: Loop = {
      proc,
      lines,
      exited,
      line(pattern, ms = 10_000) {
        return new Promise((resolve, reject) => {
          const check = (): boolean => {
            const found = lines.find((l) => pattern.test(l));
            if (found === undefined) return false;
            clearTimeout(timer);
            waiters.delete(onData);
            resolve(found);
            return true;
          };
          const onData = (): void => void check();
          const timer = setTimeout(() => {
            waiters.delete(onData);
            reject(new Error(`no line like ${pattern} in ${ms} ms; got ${JSON.stringify(lines)}`));
          }, ms);
          if (!check()) waiters.add(onData);
        });
      },
    };
    running.push(loop);
    return loop;
  }

  const watch = (shell: Shell, wid = WID, env?: NodeJS.ProcessEnv): Loop =>
    start(shell, { op: 'watch', dir, name: SERVER, wid }, env);
  const ask = (shell: Shell, first: number, cid = CID, env?: NodeJS.ProcessEnv): Loop =>
    start(shell, { op: 'ask', dir, name: SERVER, cid, first, client: CLIENT }, env);
  const files = async (): Promise<string[]> => (await readdir(folder).catch(() => [])).sort();

  before(async () => {
    home = await mkdtemp(join(tmpdir(), 'rcpp2p-loops-'));
    await chmod(home, 0o700);
  });
  afterEach(async () => {
    for (const loop of running.splice(0)) {
      if (loop.proc.exitCode === null && loop.proc.signalCode === null) {
        loop.proc.kill('SIGKILL'); // by its PID
        await loop.exited;
      }
    }
  });
  after(async () => {
    await rm(home, { recursive: true, force: true });
  });

  for (const shell of SHELLS) {
    describe(shell.name, { skip: skipUnless(shell.cap) }, () => {
      before(async () => {
        dir = join(home, shell.name.replace(/\W+/g, '-'));
        folder = join(dir, 'signals', SERVER);
        await rm(dir, { recursive: true, force: true });
      });

      it('a conversation: the request comes with its open line, the answer goes back, then the end; nothing is left', async () => {
        const watcher = watch(shell);
        await watcher.line(/^rcpp2p watch 1$/);
        assert.deepEqual(await files(), [`w.${WID}`]);
        const client = ask(shell, 2);
        await client.line(/^rcpp2p ask 1$/);
        client.proc.stdin.write('{"t":"open","v":1,"kind":"signal"}\n{"t":"request","n":1}\n');
        // both lines are one part: the server sees them in the same look
        await watcher.line(/^up fedcba9876543210 1 \{"t":"request","n":1\}$/);
        assert.deepEqual(watcher.lines.slice(1, 3), [
          `up ${CID} 1 {"t":"open","v":1,"kind":"signal"}`,
          `up ${CID} 1 {"t":"request","n":1}`,
        ]);
        watcher.proc.stdin.write(`down ${CID} 1 {"t":"accept","n":2}\n`);
        await client.line(/^\{"t":"accept","n":2\}$/);
        client.proc.stdin.end('{"t":"chosen"}\n');
        await watcher.line(new RegExp(`^end ${CID}$`));
        assert.ok(watcher.lines.includes(`up ${CID} 2 {"t":"chosen"}`), watcher.lines.join('\n'));
        assert.equal(await client.exited, 0);
        assert.deepEqual(await files(), [`w.${WID}`]);
        // the end of its stdin (the SSH session's end) stops the watcher, and its mark goes
        watcher.proc.stdin.end();
        assert.equal(await watcher.exited, 0);
        assert.deepEqual(await files(), []);
      });

      it('lines keep their backslashes and quotes; a final part ends the ask', async () => {
        const watcher = watch(shell);
        await watcher.line(/^rcpp2p watch 1$/);
        const client = ask(shell, 1);
        await client.line(/^rcpp2p ask 1$/);
        const tricky = String.raw`{"t":"open","x":"a\\nb \"q\" \u0007 $HOME *"}`;
        client.proc.stdin.write(`${tricky}\n`);
        await watcher.line(/^up /);
        assert.equal(watcher.lines[1], `up ${CID} 1 ${tricky}`);
        watcher.proc.stdin.write(`down ${CID} 1 ${tricky}\nfin ${CID} 2\n`);
        await client.line(/^\{/);
        assert.equal(client.lines[1], tricky);
        assert.equal(await client.exited, 0, 'the final part ended the ask');
        await watcher.line(new RegExp(`^end ${CID}$`));
      });

      it("the client's record goes ahead of its first part, when it has one", async () => {
        const record = '{"v":1,"role":"client","name":"LAPTOP","x":"a\\\\b"}';
        await mkdir(join(dir, 'clients'), { recursive: true });
        // (as a record without the newline publish adds)
        await writeFile(join(dir, 'clients', `${CLIENT}.json`), record);
        try {
          const watcher = watch(shell);
          await watcher.line(/^rcpp2p watch 1$/);
          const client = ask(shell, 2);
          await client.line(/^rcpp2p ask 1$/);
          client.proc.stdin.write('{"t":"open"}\n{"t":"request"}\n');
          await watcher.line(/"request"/);
          assert.deepEqual(watcher.lines.slice(1, 4), [
            `up ${CID} 1 record ${record}`,
            `up ${CID} 1 {"t":"open"}`,
            `up ${CID} 1 {"t":"request"}`,
          ]);
        } finally {
          await rm(join(dir, 'clients'), { recursive: true, force: true });
        }
      });

      it('an ask with no watcher says so and ends at once', async () => {
        await rm(folder, { recursive: true, force: true });
        const client = ask(shell, 2);
        await client.line(/^rcpp2p ask 1 no-watcher$/);
        assert.equal(await client.exited, 0);
      });

      it('a second watcher takes the folder over, and the first one stops', async () => {
        const first = watch(shell);
        await first.line(/^rcpp2p watch 1$/);
        const second = watch(shell, 'aaaaaaaaaaaaaaaa');
        await second.line(/^rcpp2p watch 1$/);
        assert.equal(await first.exited, 0);
        assert.deepEqual(await files(), ['w.aaaaaaaaaaaaaaaa']);
        second.proc.stdin.end();
        await second.exited;
      });

      it('parts on stdin that are not well formed are ignored, and no file lands outside', async () => {
        const watcher = watch(shell);
        await watcher.line(/^rcpp2p watch 1$/);
        watcher.proc.stdin.write(
          [
            '',
            'down ../../x 1 {}',
            `down ${CID} ../1 {}`,
            `rm ${CID} 1 -rf`,
            `down ${CID.toUpperCase()} 1 {}`,
            `down ${CID} 1 {"ok":true}`,
            '',
          ].join('\n'),
        );
        const deadline = Date.now() + 5000;
        while (!(await files()).includes(`${CID}.1.down`) && Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, 50));
        }
        assert.deepEqual(await files(), [`${CID}.1.down`, `w.${WID}`]);
        assert.deepEqual((await readdir(dir)).sort(), ['signals']);
        watcher.proc.stdin.end();
        await watcher.exited;
        await rm(join(folder, `${CID}.1.down`));
      });

      it('where sleep takes whole seconds only, both loops fall back to 1 s and still work', async () => {
        // a sleep like some old systems': fractions are an error
        const bin = join(home, 'bin');
        await rm(bin, { recursive: true, force: true });
        await mkdir(bin);
        await writeFile(
          join(bin, 'sleep'),
          '#!/bin/sh\ncase "$1" in *.*) echo "sleep: invalid time interval" >&2; exit 1;; esac\nexec /bin/sleep "$@"\n',
          { mode: 0o755 },
        );
        const env = { PATH: `${bin}:${process.env['PATH'] ?? ''}` };
        const watcher = watch(shell, WID, env);
        await watcher.line(/^rcpp2p watch 1$/);
        const client = ask(shell, 1, CID, env);
        await client.line(/^rcpp2p ask 1$/);
        client.proc.stdin.write('{"t":"open","v":1,"kind":"ping"}\n');
        await watcher.line(/^up /, 5000);
        watcher.proc.stdin.write(`down ${CID} 1 {"t":"pong"}\nfin ${CID} 2\n`);
        await client.line(/^\{"t":"pong"\}$/, 5000);
        assert.equal(await client.exited, 0);
        watcher.proc.stdin.end();
        await watcher.exited;
      });
    });
  }
});
