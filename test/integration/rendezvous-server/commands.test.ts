// What a logged-in account can make the embedded rendezvous do: rcpp2p's own commands on its own home
// folder, within size limits, and nothing else (no shell, no terminal, no other commands, no TCP
// forwarding). Real ssh2 clients and OpenSSH's ssh on loopback.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type ssh2 from 'ssh2';
import { hasCommand, skipUnless } from '../../helpers/capability.js';
import {
  command,
  exec,
  randomName,
  startEmbeddedLab,
  type EmbeddedLab,
} from '../../helpers/embedded-rendezvous.js';
import { SSH } from '../../helpers/sshd.js';

const RECORD_LIMIT = 16 * 1024;

/** Writes up to `total` bytes of stdin to a publish, as fast as the channel takes them. */
function pushStdin(
  client: ssh2.Client,
  cmd: string,
  total: number,
): Promise<{ written: number; code: number | undefined; stderr: string }> {
  return new Promise((resolve, reject) => {
    client.exec(cmd, (err, channel) => {
      if (err) {
        reject(err);
        return;
      }
      let written = 0;
      let closed = false;
      let code: number | undefined;
      let stderr = '';
      channel.on('exit', (c: number | null) => (code = c ?? undefined));
      channel.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      channel.on('error', () => {});
      channel.resume(); // a client channel closes only after its output was read
      channel.on('close', () => {
        closed = true;
        resolve({ written, code, stderr });
      });
      const chunk = Buffer.alloc(64 * 1024, 0x61);
      const pump = (): void => {
        while (!closed && written < total) {
          written += chunk.length;
          if (!channel.write(chunk)) {
            channel.once('drain', pump);
            return;
          }
        }
        if (!closed) channel.end();
      };
      pump();
    });
  });
}

describe('embedded rendezvous: commands and their limits', { timeout: 120_000 }, () => {
  let lab: EmbeddedLab;
  let alice: ssh2.Client;
  before(async () => {
    lab = await startEmbeddedLab();
    alice = await lab.login({ user: 'alice', key: 'alice' });
  });
  after(async () => {
    alice?.end();
    await lab?.stop();
  });

  const publish = (name: string, dir = '.rcpp2p'): string =>
    command({ op: 'publish', dir, role: 'client', name });
  const recordFile = (name: string): string =>
    join(lab.home('alice'), '.rcpp2p', 'clients', `${name}.json`);

  it('publishes a record of exactly the size limit and refuses one byte more', async () => {
    const fits = randomName();
    const ok = await exec(alice, publish(fits), Buffer.alloc(RECORD_LIMIT, 0x62));
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal((await readFile(recordFile(fits))).length, RECORD_LIMIT);

    const big = randomName();
    const refused = await exec(alice, publish(big), Buffer.alloc(RECORD_LIMIT + 1, 0x62));
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /too large/);
    assert.equal(existsSync(recordFile(big)), false);
  });

  it(
    'stops reading input at the limit: a client pushing megabytes is cut off early',
    { timeout: 20_000 },
    async () => {
      const name = randomName();
      const total = 64 * 1024 * 1024;
      const r = await pushStdin(alice, publish(name), total);
      assert.ok(r.written < total, `the rendezvous took all ${r.written} bytes`);
      assert.notEqual(r.code, 0);
      assert.equal(existsSync(recordFile(name)), false);
    },
  );

  it('answers any other command with exit code 127 and runs nothing', async () => {
    const marker = join(lab.dir, 'should-not-exist');
    for (const cmd of [
      `touch ${marker}`,
      'id; cat /etc/passwd',
      `${publish('x')}; touch ${marker}`,
      command({ op: 'list', dir: '.rcpp2p', role: 'client' }).replace('echo end', 'id'),
    ]) {
      const r = await exec(alice, cmd);
      assert.equal(r.code, 127, cmd);
      assert.equal(r.stdout, '');
      assert.match(r.stderr, /rcpp2p's own commands only/);
    }
    assert.equal(existsSync(marker), false);
  });

  it('refuses a shell, a terminal and the sftp subsystem', async () => {
    const shell = await new Promise<string>((resolve) =>
      alice.shell(false, (err, ch) => {
        ch?.close();
        resolve(err ? 'refused' : 'opened');
      }),
    );
    assert.equal(shell, 'refused');
    const pty = await new Promise<string>((resolve) =>
      alice.exec(
        command({ op: 'list', dir: '.rcpp2p', role: 'server' }),
        { pty: true },
        (err, ch) => {
          ch?.close();
          resolve(err ? 'refused' : 'opened');
        },
      ),
    );
    assert.equal(pty, 'refused');
    const sftp = await new Promise<string>((resolve) =>
      alice.sftp((err, s) => {
        s?.end();
        resolve(err ? 'refused' : 'opened');
      }),
    );
    assert.equal(sftp, 'refused');
  });

  it('refuses TCP port forwarding both ways', async () => {
    const out = await new Promise<string>((resolve) =>
      alice.forwardOut('127.0.0.1', 0, '127.0.0.1', lab.port, (err, ch) => {
        ch?.close();
        resolve(err ? 'refused' : 'opened');
      }),
    );
    assert.equal(out, 'refused');
    const listen = await new Promise<string>((resolve) =>
      alice.forwardIn('127.0.0.1', 0, (err) => resolve(err ? 'refused' : 'listening')),
    );
    assert.equal(listen, 'refused');
  });

  it("refuses a rendezvous folder outside the account's home, and creates nothing there", async () => {
    const outside = join(lab.dir, 'outside');
    const absolute = await exec(
      alice,
      command({ op: 'hello', dir: outside, role: 'server', name: 'x' }),
    );
    assert.equal(absolute.code, 1);
    assert.match(absolute.stderr, /outside the account's home/);
    const published = await exec(alice, publish('x', outside), '{}');
    assert.equal(published.code, 1);
    assert.equal(existsSync(outside), false);
    const bobs = await exec(
      alice,
      command({ op: 'list', dir: join(lab.home('bob'), '.rcpp2p'), role: 'client' }),
    );
    assert.equal(bobs.code, 1);
    // `..` never even parses as a rendezvous command.
    const dotdot = await exec(
      alice,
      command({ op: 'list', dir: '.rcpp2p', role: 'client' }).replace('.rcpp2p', '../bob/.rcpp2p'),
    );
    assert.equal(dotdot.code, 127);
    // An absolute folder inside the home is fine.
    const inside = await exec(
      alice,
      command({ op: 'hello', dir: join(lab.home('alice'), 'abs'), role: 'server', name: 'x' }),
    );
    assert.equal(inside.code, 0, inside.stderr);
  });

  describe(
    "with OpenSSH's ssh client",
    { skip: skipUnless(hasCommand(SSH, 'openssh-client')) },
    () => {
      it('gets exit code 127 for a command, and no terminal or shell', async () => {
        const foreign = await lab.ssh('alice', 'alice', ['id']);
        assert.equal(foreign.code, 127);
        assert.match(foreign.stderr, /rcpp2p's own commands only/);
        const shell = await lab.ssh('alice', 'alice', ['-tt']);
        assert.notEqual(shell.code, 0);
        assert.match(shell.stderr, /PTY allocation request failed|shell request failed/);
      });
    },
  );
});
