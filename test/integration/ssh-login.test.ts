// Every way rcpp2p logs in to an OpenSSH rendezvous, against a real sshd on loopback: a key held by
// ssh-agent, an encrypted key (right passphrase on the third try; three wrong ones refused), a
// local port that is taken (a client takes another one, a file server stops), and a host key that
// known_hosts marks @revoked.
import assert from 'node:assert/strict';
import { appendFile, readFile, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { isRcppError } from '../../src/errors.js';
import { RendezvousDirectory } from '../../src/rendezvous/directory.js';
import { resolveSshAuth, type Ask } from '../../src/rendezvous/ssh-auth.js';
import {
  RendezvousSession,
  type RendezvousSessionOptions,
} from '../../src/rendezvous/ssh-session.js';
import type { SshAuth } from '../../src/rendezvous/ssh-auth.js';
import { hasCommand, hasSshd, skipUnless } from '../helpers/capability.js';
import { runChecked, spawnProcess, type ProcessHandle } from '../helpers/processes.js';
import { SSH_KEYGEN, startSshd, type SshdFixture } from '../helpers/sshd.js';

const SSH_AGENT = '/usr/bin/ssh-agent';
const SSH_ADD = '/usr/bin/ssh-add';
const skip = skipUnless(hasSshd(), hasCommand(SSH_AGENT, 'Debian package openssh-client'));
const NEVER = new AbortController().signal;

function options(fx: SshdFixture, auth: SshAuth, extra: Partial<RendezvousSessionOptions> = {}) {
  return {
    host: fx.host,
    port: fx.port,
    user: fx.user,
    auth,
    knownHostsFile: fx.knownHostsFile,
    localPort: 0,
    portFallback: 'any',
    keepaliveSeconds: 15,
    readyTimeoutMs: 10_000,
    signal: NEVER,
    ...extra,
  } satisfies RendezvousSessionOptions;
}

/** Logs in, runs the hello command, and returns what the rendezvous saw. */
async function hello(opts: RendezvousSessionOptions, dir: string): Promise<{ localPort: number }> {
  const session = await RendezvousSession.open(opts);
  try {
    const reply = await new RendezvousDirectory(session, dir).hello('server', 'NOBODY', NEVER);
    assert.equal(reply.observed.port, session.localPort);
    return { localPort: session.localPort };
  } finally {
    await session.close();
  }
}

/** An `ask` that answers from a list and records the questions (and retry notices) it got. */
function answers(list: string[]): Ask & { asked: string[] } {
  const asked: string[] = [];
  const ask = (question: string, opts: { retry?: { notice: string } }): Promise<string> => {
    asked.push(opts.retry ? `${opts.retry.notice} ${question}` : question);
    return Promise.resolve(list.shift() ?? '');
  };
  return Object.assign(ask, { asked });
}

describe('logging in to an OpenSSH rendezvous', { skip }, () => {
  let fx: SshdFixture;
  let encryptedKey: string;
  before(async () => {
    fx = await startSshd({ listenAddress: '127.0.0.1' });
    encryptedKey = join(fx.dir, 'id_encrypted');
    await runChecked(SSH_KEYGEN, [
      '-q',
      '-t',
      'ed25519',
      '-N',
      'open sesame',
      '-C',
      'encrypted',
      '-f',
      encryptedKey,
    ]);
    await appendFile(join(fx.dir, 'authorized_keys'), await readFile(`${encryptedKey}.pub`));
  });
  after(async () => {
    await fx?.stop();
  });

  it('with a key held by ssh-agent', async () => {
    const socket = join(fx.dir, 'agent.sock');
    const agent: ProcessHandle = spawnProcess(SSH_AGENT, ['-D', '-a', socket]);
    try {
      const env = { ...process.env, SSH_AUTH_SOCK: socket };
      for (let tries = 0; ; tries++) {
        try {
          await runChecked(SSH_ADD, ['-q', fx.clientKeyFile], { env });
          break;
        } catch (err) {
          if (tries > 50) throw err; // the agent is not listening yet
          await new Promise((r) => setTimeout(r, 50));
        }
      }
      const auth = await resolveSshAuth({ method: 'agent' }, answers([]), env);
      assert.equal(auth.method, 'agent');
      await hello(options(fx, auth), fx.rendezvousDir);
    } finally {
      await agent.kill(500);
    }
  });

  it('with an encrypted key: a wrong passphrase is asked again, and the right one logs in', async () => {
    const ask = answers(['wrong', 'also wrong', 'open sesame']);
    const auth = await resolveSshAuth({ method: 'key', identityFile: encryptedKey }, ask);
    assert.deepEqual(ask.asked, [
      `Passphrase for ${encryptedKey}:`,
      `Wrong passphrase, try again. Passphrase for ${encryptedKey}:`,
      `Wrong passphrase, try again. Passphrase for ${encryptedKey}:`,
    ]);
    await hello(options(fx, auth), fx.rendezvousDir);
  });

  it('with an encrypted key: three wrong passphrases end with a sentence naming the key', async () => {
    await assert.rejects(
      resolveSshAuth(
        { method: 'key', identityFile: encryptedKey },
        answers(['a', 'b', 'c', 'open sesame']),
      ),
      (err: unknown) =>
        isRcppError(err) &&
        err.code === 'AUTH_FAILED' &&
        err.message.includes(encryptedKey) &&
        /passphrase/i.test(err.message),
    );
  });

  it('a client whose local port is taken logs in from another; a file server stops with PORT_IN_USE', async () => {
    const holder = net.createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    const taken = (holder.address() as net.AddressInfo).port;
    try {
      const auth = await resolveSshAuth(
        { method: 'key', identityFile: fx.clientKeyFile },
        answers([]),
      );
      const client = await hello(
        options(fx, auth, { localPort: taken, portFallback: 'any' }),
        fx.rendezvousDir,
      );
      assert.notEqual(client.localPort, taken);
      await assert.rejects(
        hello(options(fx, auth, { localPort: taken, portFallback: 'fail' }), fx.rendezvousDir),
        (err: unknown) => isRcppError(err) && err.code === 'PORT_IN_USE',
      );
    } finally {
      holder.close();
    }
  });

  it('a host key that known_hosts marks @revoked is refused, even though another line trusts it', async () => {
    const revokedFile = join(fx.dir, 'known_hosts_revoked');
    const trusted = await readFile(fx.knownHostsFile, 'utf8');
    await writeFile(revokedFile, `${trusted}@revoked * ${fx.hostPublicKey}\n`);
    const auth = await resolveSshAuth(
      { method: 'key', identityFile: fx.clientKeyFile },
      answers([]),
    );
    await assert.rejects(
      hello(options(fx, auth, { knownHostsFile: revokedFile }), fx.rendezvousDir),
      (err: unknown) =>
        isRcppError(err) && err.code === 'HOST_KEY_REVOKED' && /@revoked/.test(err.message),
    );
  });
});
