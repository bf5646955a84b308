// One account against the memory every account shares (security review 2, finding 6), on the real
// CLI with its default limits in a child process whose memory we read from /proc: a full quota of
// 16 KB records, 24 lists of all of them that nobody reads, and thousands of socket offers. The
// refusals are exact; the memory bound is wide (measured: about +20 MiB; before the fix the lists
// alone took +190 MiB and reading them +1.4 GiB). Figures at the review's sizes:
// node dist/test/helpers/rendezvous-memory-report.js
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type ssh2 from 'ssh2';
import { renderRendezvousCommand } from '../../../src/rendezvous/commands.js';
import {
  offerSockets,
  run,
  startRendezvousProcess,
  unreadLists,
  type RendezvousProcess,
} from '../../helpers/rendezvous-memory.js';

const BIN = join(import.meta.dirname, '..', '..', '..', '..', 'bin', 'rcpp2p.js');
const ENTRIES = 1024; // DEFAULT_LIMITS.maxEntriesPerAccount
const RECORD_BYTES = 16_000;

describe(
  'embedded rendezvous: one account cannot take the shared memory',
  { timeout: 300_000 },
  () => {
    let rv: RendezvousProcess;
    const clients: ssh2.Client[] = [];
    before(async () => {
      // .rcpp2p and its three folders, and records up to 4 short of the quota.
      rv = await startRendezvousProcess(BIN, async (home) => {
        const dir = join(home, '.rcpp2p');
        for (const sub of ['servers', 'clients', 'sockets'])
          await mkdir(join(dir, sub), { recursive: true, mode: 0o700 });
        const pad = 'x'.repeat(RECORD_BYTES);
        for (let i = 0; i < ENTRIES - 8; i++) {
          const name = `c${i}`;
          await writeFile(
            join(dir, 'clients', `${name}.json`),
            JSON.stringify({ v: 1, role: 'client', name, pad }) + '\n',
            { mode: 0o600 },
          );
        }
      });
      for (let i = 0; i < 4; i++) clients.push(await rv.connect());
    });
    after(async () => {
      for (const c of clients) c.end();
      await rv?.stop();
    });

    it('takes records up to the quota of 1024 files and folders and refuses the rest', async () => {
      const outcomes = [];
      for (let i = 0; i < 10; i++) {
        const name = `new${i}`;
        outcomes.push(
          await run(
            clients[0] as ssh2.Client,
            renderRendezvousCommand({ op: 'publish', dir: '.rcpp2p', role: 'client', name }),
            JSON.stringify({ v: 1, role: 'client', name }) + '\n',
          ),
        );
      }
      assert.deepEqual(
        outcomes.map((o) => o.code),
        [0, 0, 0, 0, 1, 1, 1, 1, 1, 1],
      );
    });

    it('keeps 24 unread lists of 16 MiB each from filling its memory', async () => {
      const before = rv.memory().rssMiB;
      rv.resetPeak();
      const channels = await unreadLists(clients, 24);
      assert.equal(channels.length, 24);
      // Each list fills the client's 2 MiB window and then must wait; wait for all of them...
      const windowFull = (c: { readableLength: number }): boolean =>
        c.readableLength >= 2 * 1024 * 1024 - 64 * 1024;
      for (let i = 0; i < 600 && !channels.every(windowFull); i++) {
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.ok(channels.every(windowFull), 'every list sent a window full');
      // ...and until the rendezvous's memory has stopped growing.
      let last = -1;
      for (let stable = 0, i = 0; stable < 5 && i < 100; i++) {
        await new Promise((r) => setTimeout(r, 100));
        const { peakMiB } = rv.memory();
        stable = peakMiB === last ? stable + 1 : 0;
        last = peakMiB;
      }
      const grew = rv.memory().peakMiB - before;
      console.log(`# 24 unread lists: rendezvous memory ${before} MiB, peak +${grew} MiB`);
      assert.ok(grew < 64, `the rendezvous grew by ${grew} MiB`);
      for (const c of channels) c.destroy();
    });

    it('refuses socket offers past 8 per connection and paths longer than 1 KB', async () => {
      const long = await offerSockets(clients[1] as ssh2.Client, 2000, 8000);
      assert.deepEqual(long, { accepted: 0, refused: 2000 });
      const short = await offerSockets(clients[2] as ssh2.Client, 100, 40);
      assert.deepEqual(short, { accepted: 8, refused: 92 });
    });
  },
);
