// The sshd fixture against the system OpenSSH client: key login with strict host key checking,
// $SSH_CLIENT as the rendezvous sees it, and AllowStreamLocalForwarding on and off.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { hasCommand, hasSshd, skipUnless } from '../helpers/capability.js';
import { spawnProcess, runCommand, pidAlive } from '../helpers/processes.js';
import { SSH, sshClientArgs, startSshd } from '../helpers/sshd.js';

const skip = skipUnless(hasSshd(), hasCommand(SSH, 'Debian package openssh-client'));

describe('sshd fixture', { skip }, () => {
  it('logs in with the generated key and strict known_hosts, and shows $SSH_CLIENT', async (t) => {
    const fx = await startSshd({ listenAddress: '127.0.0.1' });
    t.after(() => fx.stop());
    assert.ok(fx.port > 0 && fx.port !== 22);
    assert.match(fx.hostPublicKey, /^ssh-ed25519 AAAA\S+$/);
    assert.ok(existsSync(fx.rendezvousDir));

    const r = await runCommand(SSH, [...sshClientArgs(fx), 'echo "$SSH_CLIENT"; echo "$USER"'], {
      timeoutMs: 15_000,
    });
    assert.equal(r.code, 0, r.stderr + fx.logText());
    const [client, user] = r.stdout.trim().split('\n');
    assert.match(client ?? '', /^127\.0\.0\.1 \d+ \d+$/);
    assert.equal(client?.split(' ')[2], String(fx.port));
    assert.equal(user, fx.user);
    assert.match(fx.logText(), /Accepted publickey for/);
  });

  it('refuses a host key that is not in known_hosts', async (t) => {
    const fx = await startSshd({ listenAddress: '127.0.0.1' });
    t.after(() => fx.stop());
    const args = sshClientArgs({ ...fx, knownHostsFile: '/dev/null' });
    const r = await runCommand(SSH, [...args, 'true'], { timeoutMs: 15_000 });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /Host key verification failed/);
  });

  it('forwards a Unix socket when allowed and refuses it when AllowStreamLocalForwarding is no', async (t) => {
    // a local TCP target the remote Unix socket forward would lead to
    const target = createServer((s) => s.end('hi\n'));
    await new Promise<void>((resolve) => target.listen(0, '127.0.0.1', resolve));
    t.after(() => new Promise<void>((resolve) => target.close(() => resolve())));
    const targetPort = (target.address() as { port: number }).port;

    for (const allow of [true, false]) {
      const fx = await startSshd({ listenAddress: '127.0.0.1', allowStreamLocalForwarding: allow });
      try {
        const sock = join(fx.rendezvousDir, 'x.sock');
        const fwd = spawnProcess(SSH, [
          ...sshClientArgs(fx).slice(0, -1),
          '-N',
          '-o',
          'ExitOnForwardFailure=yes',
          '-R',
          `${sock}:127.0.0.1:${targetPort}`,
          fx.host,
        ]);
        try {
          if (allow) {
            // the socket appears once sshd has bound it; the client stays up
            const deadline = Date.now() + 10_000;
            while (!existsSync(sock) && Date.now() < deadline && !fwd.hasExited()) {
              await new Promise((r) => setTimeout(r, 50));
            }
            assert.ok(existsSync(sock), `no forwarded socket: ${fwd.stderr()}${fx.logText()}`);
            assert.ok(pidAlive(fwd.pid));
          } else {
            const exit = await fwd.waitExit(15_000);
            assert.notEqual(exit.code, 0);
            assert.match(fwd.stderr(), /remote port forwarding failed/);
            assert.ok(!existsSync(sock));
          }
        } finally {
          await fwd.kill(1000);
        }
      } finally {
        await fx.stop();
      }
    }
  });

  it('stop() is idempotent and kills sshd and its sessions by PID', async () => {
    const fx = await startSshd({ listenAddress: '127.0.0.1' });
    const session = spawnProcess(SSH, [...sshClientArgs(fx), 'sleep 60']);
    try {
      const deadline = Date.now() + 10_000;
      while (!/Accepted publickey/.test(fx.logText()) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.match(fx.logText(), /Accepted publickey/, 'the session logged in before sshd stops');
      await Promise.all([fx.stop(), fx.stop()]);
      await fx.stop();
      assert.ok(!pidAlive(fx.pid));
      // the session's sshd child died with it, so the client sees the connection close
      await session.waitExit(10_000);
      assert.ok(!existsSync(fx.dir));
    } finally {
      await session.kill(500);
    }
  });
});
