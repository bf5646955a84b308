// Prints the embedded rendezvous's resident memory under the memory attacks of security review 2
// (finding 6), at the review's sizes, for one build of rcpp2p:
//   node dist/test/helpers/rendezvous-memory-report.js [path/to/bin/rcpp2p.js]
// Each attack runs against a fresh rendezvous process; figures are VmRSS at rest and the VmHWM peak
// during the attack, in MiB. Bounded: every loop has a fixed count.
import { join } from 'node:path';
import type ssh2 from 'ssh2';
import {
  offerSockets,
  parallelLists,
  publishRecords,
  sleep,
  stalledRelays,
  startRendezvousProcess,
  unreadLists,
  type RendezvousProcess,
} from './rendezvous-memory.js';

const bin = process.argv[2] ?? join(import.meta.dirname, '..', '..', '..', 'bin', 'rcpp2p.js');
const RECORDS = Number(process.env['RECORDS'] ?? 2000);
const LISTS = Number(process.env['LISTS'] ?? 24);
const SOCKETS = Number(process.env['SOCKETS'] ?? 20_000);
const RELAYS = Number(process.env['RELAYS'] ?? 64);
/** Connections for the lists: at most 6 channels on each (the embedded one allows 10). */
const LIST_CONNECTIONS = Math.max(4, Math.ceil(LISTS / 6));

async function measure(
  name: string,
  attack: (rv: RendezvousProcess) => Promise<string>,
): Promise<void> {
  const rv = await startRendezvousProcess(bin);
  try {
    const idle = rv.memory().rssMiB;
    rv.resetPeak();
    const what = await attack(rv);
    const { peakMiB, rssMiB } = rv.memory();
    console.log(
      `${name}: at rest ${idle} MiB, peak ${peakMiB} MiB (+${peakMiB - idle}), after ${rssMiB} MiB; ${what}`,
    );
  } finally {
    await rv.stop();
  }
}

/** One after another: the rendezvous takes only a few logins at once from one address. */
async function connections(rv: RendezvousProcess, n: number): Promise<ssh2.Client[]> {
  const clients: ssh2.Client[] = [];
  for (let i = 0; i < n; i++) clients.push(await rv.connect());
  return clients;
}

console.log(`embedded rendezvous memory under attack, ${bin}`);
await measure(`records (${RECORDS} x 16 KB) then ${LISTS} parallel lists`, async (rv) => {
  const clients = await connections(rv, LIST_CONNECTIONS);
  const published = await publishRecords(clients.slice(0, 4), RECORDS, 16_000, 8);
  const afterRecords = rv.memory();
  const sizes = await parallelLists(clients, LISTS);
  for (const c of clients) c.end();
  return (
    `${published.accepted} records accepted, ${published.refused} refused; after publishing: peak ` +
    `${afterRecords.peakMiB} MiB, rss ${afterRecords.rssMiB} MiB; lists returned ` +
    `${(Math.max(...sizes) / 1048576).toFixed(1)} MiB each`
  );
});
await measure(`records then ${LISTS} parallel lists nobody reads`, async (rv) => {
  const clients = await connections(rv, LIST_CONNECTIONS);
  await publishRecords(clients.slice(0, 4), RECORDS, 16_000, 8);
  const before = rv.memory().rssMiB;
  rv.resetPeak();
  const channels = await unreadLists(clients, LISTS);
  await sleep(3000); // let the rendezvous write what it will
  const held = rv.memory().peakMiB;
  for (const c of clients) c.end();
  return (
    `${channels.length} lists open and unread: rss ${before} MiB before them, ` +
    `peak ${held} MiB (+${held - before}) while they were held`
  );
});
await measure(`${SOCKETS} socket offers of ~8 KB paths`, async (rv) => {
  const [client] = await connections(rv, 1);
  const offers = await offerSockets(client!, SOCKETS, 8000);
  client!.end();
  return `${offers.accepted} accepted, ${offers.refused} refused`;
});
await measure(`${SOCKETS} socket offers of short paths`, async (rv) => {
  const [client] = await connections(rv, 1);
  const offers = await offerSockets(client!, SOCKETS, 40);
  client!.end();
  return `${offers.accepted} accepted, ${offers.refused} refused`;
});
await measure(`${RELAYS} relayed channels the receiving side never reads`, async (rv) => {
  const [owner, ...clients] = await connections(rv, 1 + Math.ceil(RELAYS / 8));
  const opened = await stalledRelays(owner!, clients, RELAYS, 64 * 1024 * 1024);
  await sleep(5000); // let the senders fill what the rendezvous lets them
  const held = rv.memory().peakMiB;
  for (const c of [owner!, ...clients]) c.end();
  return `${opened} channels opened; peak ${held} MiB while they were held`;
});
