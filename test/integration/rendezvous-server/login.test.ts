// Who may log in to the embedded rendezvous: real ssh2 clients (and OpenSSH's ssh) on loopback try
// every login method with right and wrong credentials. Each refusal here pins one check of
// src/rendezvous-server; removing the check makes its test fail.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { ParsedKey } from 'ssh2';
import { hasCommand, skipUnless } from '../../helpers/capability.js';
import {
  ALICE_PASSWORD,
  command,
  exec,
  startEmbeddedLab,
  type EmbeddedLab,
} from '../../helpers/embedded-rendezvous.js';
import { SSH } from '../../helpers/sshd.js';

const HELLO = command({ op: 'hello', dir: '.rcpp2p', role: 'client', name: 'probe' });

/** Alice's real key whose signatures are random bytes: the server must check them. */
function badSigner(key: ParsedKey): ParsedKey {
  const forged = Object.create(key) as ParsedKey;
  forged.sign = () => randomBytes(64);
  return forged;
}

describe('embedded rendezvous: who may log in', { timeout: 120_000 }, () => {
  let lab: EmbeddedLab;
  before(async () => {
    lab = await startEmbeddedLab();
  });
  after(async () => {
    await lab?.stop();
  });

  it('lets alice in with her own key and runs a rendezvous command', async () => {
    const client = await lab.login({ user: 'alice', key: 'alice' });
    try {
      const r = await exec(client, HELLO);
      assert.equal(r.code, 0);
      assert.match(r.stdout, /^rcpp2p 1\nssh-client 127\.0\.0\.1 \d+ \d+\n/);
    } finally {
      client.end();
    }
  });

  it('refuses a public key that alice never authorised', async () => {
    await lab.refusedLogin({
      user: 'alice',
      authHandler: [{ type: 'publickey', username: 'alice', key: lab.parsedKey('stranger') }],
    });
    await lab.waitForEvent(/refused login of "?alice"? from 127\.0\.0\.1 \(publickey\)/);
  });

  it("refuses alice's own key when the signature does not verify", async () => {
    await lab.refusedLogin({
      user: 'alice',
      authHandler: [
        { type: 'publickey', username: 'alice', key: badSigner(lab.parsedKey('alice')) },
      ],
    });
  });

  it('refuses a user without an account, even with a key some account authorised', async () => {
    await lab.refusedLogin({
      user: 'mallory',
      authHandler: [{ type: 'publickey', username: 'mallory', key: lab.parsedKey('alice') }],
    });
    await lab.refusedLogin({
      user: 'mallory',
      authHandler: [{ type: 'password', username: 'mallory', password: ALICE_PASSWORD }],
    });
  });

  it("refuses bob's key for alice's account", async () => {
    await lab.refusedLogin({
      user: 'alice',
      authHandler: [{ type: 'publickey', username: 'alice', key: lab.parsedKey('bob') }],
    });
  });

  it('lets alice in with her password', async () => {
    const client = await lab.login({
      user: 'alice',
      authHandler: [{ type: 'password', username: 'alice', password: ALICE_PASSWORD }],
    });
    client.end();
  });

  it('refuses a wrong password, and a password for a key-only account', async () => {
    await lab.refusedLogin({
      user: 'alice',
      authHandler: [{ type: 'password', username: 'alice', password: `${ALICE_PASSWORD}!` }],
    });
    await lab.refusedLogin({
      user: 'bob',
      authHandler: [{ type: 'password', username: 'bob', password: '' }],
    });
  });

  it('lets alice in through keyboard-interactive with her password, and refuses a wrong answer', async () => {
    const interactive = (answer: string) => [
      {
        type: 'keyboard-interactive' as const,
        username: 'alice',
        prompt: (
          _name: string,
          _instructions: string,
          _lang: string,
          prompts: unknown[],
          finish: (answers: string[]) => void,
        ) => finish(prompts.map(() => answer)),
      },
    ];
    const client = await lab.login({ user: 'alice', authHandler: interactive(ALICE_PASSWORD) });
    client.end();
    await lab.refusedLogin({ user: 'alice', authHandler: interactive('wrong horse') });
  });

  describe(
    "with OpenSSH's ssh client",
    { skip: skipUnless(hasCommand(SSH, 'openssh-client')) },
    () => {
      it('logs in with the authorised key and refuses a stranger', async () => {
        const ok = await lab.ssh('alice', 'alice', [HELLO]);
        assert.equal(ok.code, 0, ok.stderr);
        assert.match(ok.stdout, /^rcpp2p 1\n/);
        const refused = await lab.ssh('alice', 'stranger', [HELLO]);
        assert.equal(refused.code, 255);
        assert.match(refused.stderr, /Permission denied/);
      });
    },
  );
});
