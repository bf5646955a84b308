// What reaches the embedded rendezvous's console from people who cannot even log in: their user name
// must not carry terminal escapes onto it (security review 2, finding 4c), and their refused attempts
// must not flood it.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { startEmbeddedLab } from '../../helpers/embedded-rendezvous.js';

// eslint-disable-next-line no-control-regex -- the point is to find control characters
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]/;

describe('embedded rendezvous: console lines', { timeout: 120_000 }, () => {
  it('shows a hostile user name escaped, with no control character reaching the console', async () => {
    const lab = await startEmbeddedLab();
    try {
      const user = 'x\x1b]0;owned\x07\x1b[2J\rpeer logged in from 10.0.0.5:4242\u202e\x9b';
      await lab.refusedLogin({
        user,
        authHandler: [{ type: 'password', username: user, password: 'nope' }],
      });
      const line = await lab.waitForEvent(/refused login of/);
      assert.equal(
        line,
        'refused login of "x\\u001b]0;owned\\u0007\\u001b[2J\\u000dpeer logged in from 10.0.0.5:4242' +
          '\\u202e\\u009b" from 127.0.0.1 (password)',
      );
      for (const event of lab.events) assert.doesNotMatch(event, UNSAFE, event);
    } finally {
      await lab.stop();
    }
  });

  it('shows five refusals per source per window and counts the rest in one summary line', async () => {
    // A frozen clock keeps every attempt in one window; the window's timer still ends it.
    const lab = await startEmbeddedLab({ now: () => 0, consoleWindowMs: 300 });
    try {
      const stranger = {
        type: 'publickey' as const,
        username: 'alice',
        key: lab.parsedKey('stranger'),
      };
      for (let i = 0; i < 3; i++) {
        await lab.refusedLogin({
          user: 'alice',
          authHandler: Array.from({ length: 6 }, () => stranger),
        });
      }
      // 18 refused attempts and 3 "closed the connection" lines: 5 shown, 16 summed up.
      await lab.waitForEvent(/^16 more refused logins and connections from 1 address in the last/);
      assert.equal(lab.events.filter((e) => /^refused login of/.test(e)).length, 5);
    } finally {
      await lab.stop();
    }
  });
});
