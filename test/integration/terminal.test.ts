// Everyday use in a real terminal (tmux): what the progress display shows for a multi-file put and
// in a 50-column terminal, Ctrl-C during a get (stops within a second, leaves one clean line after
// the bar, keeps the partial file, and the next run resumes it), a second Ctrl-C, and --addclient
// asking before it takes a name another machine registered. Two real rcpp2p peers meet on the
// embedded rendezvous on loopback (test/helpers/cli-lab.ts); no root needed.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { link, open, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { hasCommand, skipUnless } from '../helpers/capability.js';
import { CliLab, RCPP2P, type PeerSetup } from '../helpers/cli-lab.js';
import { Terminal, TMUX } from '../helpers/tmux.js';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;
const HUGE = 'huge.bin';
const LONG_NAME = 'a very long file name for the holiday video 2024.mp4';
const TRIES = 10;
const STOP_MS = 1000;
/** The long name shortened in its middle, then the percentage, on one 50-column row. */
const NARROW_LINE = /^a v[^…]*…[^…]*\.mp4 +\d+% .*$/m;
/** The get's bar once bytes flow: at least 1%. */
const MOVING = /^huge\.bin +[1-9]\d*% \[/m;

const skip = skipUnless(hasCommand(TMUX, 'Debian package tmux, for a real terminal'));

/** A file of real, varied bytes (not sparse): a random 8 MiB block, each copy stamped with its index. */
async function writeData(path: string, size: number): Promise<void> {
  const block = randomBytes(8 * MiB);
  const fh = await open(path, 'w');
  try {
    for (let at = 0, n = 0; at < size; at += block.length, n++) {
      block.writeUInt32BE(n, 0);
      await fh.write(block, 0, Math.min(block.length, size - at));
    }
  } finally {
    await fh.close();
  }
}

/** [name, size] of every "Complete." line, sorted by name. */
function sizesByFile(text: string): string[][] {
  return [...text.matchAll(/^(\S+) 100% \[=+\] (\S+ \S+) (?:\S+ \S+\/s|-) Complete\.$/gm)]
    .map((m) => [m[1] ?? '', m[2] ?? ''])
    .sort((a, b) => (a[0] ?? '').localeCompare(b[0] ?? ''));
}

async function sha256(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

describe('rcpp2p in a terminal: progress, Ctrl-C, questions', { skip }, () => {
  let lab: CliLab;
  let term: Terminal;
  let server: PeerSetup;
  let client: PeerSetup;

  before(async () => {
    lab = await CliLab.start('terminal');
    term = await Terminal.open(lab.root, 'terminal');
    server = await lab.configure('server', 'ASUS');
    client = await lab.configure('client', 'LAPTOP');
    const added = await lab.run(['--addclient', '--config', client.config]);
    assert.equal(added.code, 0, added.stderr);
    await writeData(join(server.dir, HUGE), GiB);
    await link(join(server.dir, HUGE), join(server.dir, LONG_NAME));
    await writeData(join(client.dir, 'f1.dat'), 100 * 1024);
    await writeData(join(client.dir, 'f2.dat'), 200_000);
    await writeData(join(client.dir, 'big.bin'), 20 * MiB);
    await lab.serve(server);
  });

  after(async () => {
    await term?.close();
    await lab?.close();
  });

  /** Runs rcpp2p as the client in a new session of the given width. */
  const client$ = (session: string, args: string[], columns = 100): Promise<void> =>
    term.start(
      session,
      { HOME: lab.home },
      [process.execPath, RCPP2P, '--config', client.config, ...args],
      {
        columns,
        cwd: client.dir,
      },
    );

  it('a multi-file put shows every file with its own size, and a summary', async () => {
    await client$('put', ['put', 'ASUS', 'f1.dat', 'f2.dat', 'big.bin', '--to', 'mixed']);
    assert.equal(await term.waitExit('put', 60_000), 0, await term.screen('put'));
    const screen = await term.screen('put');
    // one line per file, each with its own size (files may be confirmed in any order), then the sum
    const block = new RegExp(
      '^((?:mixed/\\S+ 100% \\[=+\\] \\S+ \\S+ (?:\\S+ \\S+/s|-) Complete\\.\n){3})' +
        '3 of 3 files transferred, 20\\.29 MiB in \\S+ s \\(\\S+ \\S+/s\\)\\.\n\\[exited with 0 ',
      'm',
    ).exec(screen);
    assert.ok(block, screen);
    assert.deepEqual(sizesByFile(block[1] ?? ''), [
      ['mixed/big.bin', '20.00 MiB'],
      ['mixed/f1.dat', '100.00 KiB'],
      ['mixed/f2.dat', '195.31 KiB'],
    ]);
    for (const f of ['f1.dat', 'f2.dat', 'big.bin']) {
      assert.equal(await sha256(join(server.dir, 'mixed', f)), await sha256(join(client.dir, f)));
    }
  });

  it('without a terminal the same put writes one line per file, the last one included', async () => {
    const r = await lab.run(
      ['--config', client.config, 'put', 'ASUS', 'f1.dat', 'f2.dat', 'big.bin', '--to', 'logged'],
      {
        cwd: client.dir,
      },
    );
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(sizesByFile(r.stderr), [
      ['logged/big.bin', '20.00 MiB'],
      ['logged/f1.dat', '100.00 KiB'],
      ['logged/f2.dat', '195.31 KiB'],
    ]);
  });

  it('a 50-column terminal: the live line keeps its percentage, the name is shortened with "…"', async () => {
    await client$('narrow', ['get', 'ASUS', LONG_NAME], 50);
    // the live line, as the terminal shows it (autowrap is off while it draws: too long would be cut)
    const live = await term.waitFor('narrow', NARROW_LINE, 30_000);
    assert.ok(live[0].length <= 50, live[0]);
    await term.keys('narrow', 'C-c');
    assert.equal(await term.waitExit('narrow', 30_000), 130, await term.screen('narrow'));
    const rows = await term.rows('narrow');
    const frozen = rows.findIndex((r) => NARROW_LINE.test(r));
    assert.ok(frozen >= 0, rows.join('\n'));
    assert.match(rows[frozen + 1] ?? '', /^Stopping\. Run the same command again to resume;/);
    const narrowPartial = await partialOf(client.dir, LONG_NAME);
    if (narrowPartial) await rm(narrowPartial, { force: true });
  });

  it(`Ctrl-C during a get stops within ${STOP_MS} ms (${TRIES} tries), one clean line after the bar, the partial kept`, async () => {
    const outcomes: string[] = [];
    let good = 0;
    for (let i = 1; i <= TRIES; i++) {
      for (const name of await readdir(client.dir)) {
        if (name.startsWith(HUGE)) await rm(join(client.dir, name), { force: true });
      }
      const s = `stop${i}`;
      await client$(s, ['get', 'ASUS', HUGE]);
      await term.waitFor(s, MOVING, 30_000);
      const pressed = Date.now();
      await term.keys(s, 'C-c');
      const { code, atMs } = await term.waitExitAt(s, 60_000);
      const screen = await term.screen(s);
      const partialFile = await partialOf(client.dir, HUGE);
      const partial = partialFile ? await stat(partialFile).catch(() => undefined) : undefined;
      const problems = [
        code !== 130 && `exit ${code}`,
        atMs - pressed > STOP_MS && 'too slow',
        // the bar line, ended; one line saying what happens; nothing drawn after it
        !/^huge\.bin +\d+% \[[= ]+\] \S+ \S+\/1\.00 GiB .*\nStopping\. Run the same command again to resume; press Ctrl-C again to quit at once\.\n\[exited with /m.test(
          screen,
        ) && `screen:\n${screen.trimEnd()}`,
        /^Error:/m.test(screen) && 'an error line',
        !partial?.isFile() && 'no partial file',
        existsSync(join(client.dir, HUGE)) && 'the whole file arrived',
      ].filter(Boolean);
      if (problems.length === 0) good++;
      outcomes.push(
        `try ${i}: stopped ${atMs - pressed} ms after Ctrl-C${problems.length ? `; ${problems.join('; ')}` : ''}`,
      );
      await term.kill(s);
    }
    if (existsSync(join(client.dir, HUGE))) await rm(join(client.dir, HUGE)); // for the resume test
    assert.equal(
      good,
      TRIES,
      `${good} of ${TRIES} tries stopped cleanly within ${STOP_MS} ms:\n${outcomes.join('\n')}`,
    );
  });

  it('the next run resumes the partial file and ends with the right bytes', async () => {
    const partial = await partialOf(client.dir, HUGE);
    const kept = partial ? ((await stat(partial).catch(() => undefined))?.size ?? 0) : 0;
    assert.ok(kept > 0, 'a partial file from the last Ctrl-C try (none: that try ran to the end)');
    await client$('resume', ['get', 'ASUS', HUGE]);
    assert.equal(await term.waitExit('resume', 120_000), 0, await term.screen('resume'));
    const screen = await term.screen('resume');
    assert.match(screen, /^Resuming huge\.bin from \S+ \S+ of 1\.00 GiB\.$/m);
    assert.match(screen, /^huge\.bin 100% \[=+\] 1\.00 GiB \S+ \S+\/s Complete\.$/m);
    assert.equal(await sha256(join(client.dir, HUGE)), await sha256(join(server.dir, HUGE)));
    await rm(join(client.dir, HUGE));
  });

  it('--addclient asks before it takes a name another machine registered', async () => {
    const phone1 = await lab.configure('client', 'PHONE', { machine: 'phone1' });
    const phone2 = await lab.configure('client', 'PHONE', { machine: 'phone2' });
    assert.equal((await lab.run(['--addclient', '--config', phone1.config])).code, 0);
    const ask = async (s: string, answer: string): Promise<string> => {
      await term.start(s, { HOME: lab.home }, [
        process.execPath,
        RCPP2P,
        '--addclient',
        '--config',
        phone2.config,
      ]);
      await term.waitFor(
        s,
        /^Another machine registered the client name PHONE \(identity SHA256:\S+, last seen .*\)\.$/m,
      );
      await term.waitFor(s, /^Replace the client PHONE\? \(y\/N\)/m);
      await term.type(s, answer);
      await term.keys(s, 'Enter');
      await term.waitExit(s, 30_000);
      return term.screen(s);
    };
    const no = await ask('keep', 'n');
    assert.match(
      no,
      /^Error: Kept the client PHONE the other machine registered; nothing was changed\.$/m,
    );
    assert.match(no, /^\[exited with 4 /m);
    const yes = await ask('take', 'y');
    assert.match(
      yes,
      /^Replaced an earlier client PHONE with identity SHA256:\S+; this one is SHA256:\S+\.$/m,
    );
    assert.match(yes, /^Client PHONE is registered \(identity SHA256:\S+\)\.$/m);
    assert.match(yes, /^\[exited with 0 /m);
  });
});

/** The partial file of `name` in `dir`: `<name>.<peer tag>.rcpp2p-partial` (safe-path.ts). */
async function partialOf(dir: string, name: string): Promise<string | undefined> {
  const found = (await readdir(dir)).find(
    (n) => n.startsWith(`${name}.`) && n.endsWith('.rcpp2p-partial'),
  );
  return found === undefined ? undefined : join(dir, found);
}
