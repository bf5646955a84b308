// Memory attacks of one logged-in account on the embedded rendezvous (security review 2, finding 6),
// against the real CLI (`rcpp2p --rendezvous-server`) in a child process whose resident memory we
// read from /proc: many records, many parallel `list`s (read, and left unread), many socket offers.
// Used by test/integration/rendezvous-server/memory.test.ts (bounded sizes) and by
// rendezvous-memory-report.ts (the review's sizes, for before/after figures).
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import type { ClientChannel } from 'ssh2';
import { renderRendezvousCommand } from '../../src/rendezvous/commands.js';
import { runChecked, spawnProcess, type ProcessHandle } from './processes.js';
import { generateSshKeyPair } from '../../src/rendezvous/ssh-key.js';

export interface RendezvousProcess {
  port: number;
  pid: number;
  /** Logs in as the account `other` (key only) on a new connection. */
  connect(): Promise<ssh2.Client>;
  /** Resident memory now and its peak since the last resetPeak(), in MiB. */
  memory(): { rssMiB: number; peakMiB: number };
  /** Starts a new peak measurement (echo 5 > /proc/PID/clear_refs). */
  resetPeak(): void;
  output(): string;
  stop(): Promise<void>;
}

/**
 * Starts `node bin --rendezvous-server` with one account, `other`. `prepare` may put files in its
 * home (state/home/other) before the rendezvous starts.
 */
export async function startRendezvousProcess(
  bin: string,
  prepare?: (home: string) => Promise<void>,
): Promise<RendezvousProcess> {
  const dir = await mkdtemp(join(tmpdir(), 'rcpp2p-rv-memory-'));
  const state = join(dir, 'state');
  const pair = generateSshKeyPair();
  await writeFile(join(dir, 'key.pub'), `${pair.public}\n`);
  await runChecked(process.execPath, [
    ...[bin, '--rendezvous-server', '--state', state],
    ...['--add-account', 'other', '--authorized-key', join(dir, 'key.pub')],
  ]);
  let proc: ProcessHandle | undefined;
  try {
    await prepare?.(join(state, 'home', 'other'));
    proc = spawnProcess(process.execPath, [
      ...[bin, '--rendezvous-server', '--state', state, '--listen', '127.0.0.1:0'],
    ]);
    const [, port = ''] = await proc.waitForOutput(/listening on 127\.0\.0\.1:(\d+)/, 20_000);
    const [, hostKey = ''] = await proc.waitForOutput(/host key: ssh-ed25519 (\S+)/, 20_000);
    const blob = Buffer.from(hostKey, 'base64');
    const running = proc;
    const status = (field: string): number =>
      Math.round(
        Number(
          new RegExp(`${field}:\\s+(\\d+)`).exec(
            readFileSync(`/proc/${running.pid}/status`, 'utf8'),
          )?.[1],
        ) / 1024,
      );
    return {
      port: Number(port),
      pid: running.pid,
      connect: () =>
        new Promise((resolve, reject) => {
          const client = new ssh2.Client();
          client.once('ready', () => resolve(client));
          client.on('error', reject);
          client.connect({
            host: '127.0.0.1',
            port: Number(port),
            username: 'other',
            privateKey: pair.private,
            hostVerifier: (key: Buffer) => key.equals(blob),
            strictVendor: false,
            readyTimeout: 30_000,
          });
        }),
      memory: () => ({ rssMiB: status('VmRSS'), peakMiB: status('VmHWM') }),
      resetPeak: () => writeFileSync(`/proc/${running.pid}/clear_refs`, '5'),
      output: () => running.stdout() + running.stderr(),
      async stop() {
        await running.kill(2000);
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await proc?.kill(500);
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

export interface ExecOutcome {
  code: number | undefined;
  bytes: number;
}

/** Runs a command; `read: false` never reads its output (the channel stays open until closed). */
export function run(
  client: ssh2.Client,
  command: string,
  stdin = '',
  read = true,
): Promise<ExecOutcome & { channel?: ClientChannel }> {
  return new Promise((resolve) => {
    client.exec(command, (err, channel) => {
      if (err) {
        resolve({ code: undefined, bytes: 0 });
        return;
      }
      let bytes = 0;
      let code: number | undefined;
      channel.on('exit', (c: number | null) => (code = c ?? undefined));
      channel.stderr.resume();
      channel.on('error', () => {});
      if (read) {
        channel.on('data', (d: Buffer) => (bytes += d.length));
        channel.on('close', () => resolve({ code, bytes }));
      } else {
        channel.pause();
        resolve({ code, bytes, channel });
      }
      channel.end(stdin);
    });
  });
}

/** Publishes `count` records of `padBytes` under new names, `parallel` at a time per connection. */
export async function publishRecords(
  clients: ssh2.Client[],
  count: number,
  padBytes: number,
  parallel: number,
): Promise<{ accepted: number; refused: number }> {
  const pad = 'x'.repeat(padBytes);
  let next = 0;
  let accepted = 0;
  let refused = 0;
  await Promise.all(
    clients.flatMap((client) =>
      Array.from({ length: parallel }, async () => {
        for (let k = next++; k < count; k = next++) {
          const name = `c${k}`;
          const r = await run(
            client,
            renderRendezvousCommand({ op: 'publish', dir: '.rcpp2p', role: 'client', name }),
            JSON.stringify({ v: 1, role: 'client', name, pad }) + '\n',
          );
          if (r.code === 0) accepted++;
          else refused++;
        }
      }),
    ),
  );
  return { accepted, refused };
}

const LIST = renderRendezvousCommand({ op: 'list', dir: '.rcpp2p', role: 'client' });

/** `count` parallel lists spread over the connections, read to the end: bytes each returned. */
export async function parallelLists(clients: ssh2.Client[], count: number): Promise<number[]> {
  const outcomes = await Promise.all(
    Array.from({ length: count }, (_, k) => run(clients[k % clients.length] as ssh2.Client, LIST)),
  );
  return outcomes.map((o) => o.bytes);
}

/** `count` parallel lists nobody reads; resolves with their channels once all have started. */
export async function unreadLists(clients: ssh2.Client[], count: number): Promise<ClientChannel[]> {
  const outcomes = await Promise.all(
    Array.from({ length: count }, (_, k) =>
      run(clients[k % clients.length] as ssh2.Client, LIST, '', false),
    ),
  );
  return outcomes.flatMap((o) => (o.channel ? [o.channel] : []));
}

/** Offers `count` sockets with paths of about `pathBytes` on one connection. */
export async function offerSockets(
  client: ssh2.Client,
  count: number,
  pathBytes: number,
): Promise<{ accepted: number; refused: number }> {
  const pad = 'p'.repeat(Math.max(1, pathBytes - 16));
  let accepted = 0;
  let refused = 0;
  for (let k = 0; k < count; k += 500) {
    await Promise.all(
      Array.from(
        { length: Math.min(500, count - k) },
        (_, j) =>
          new Promise<void>((done) =>
            client.openssh_forwardInStreamLocal(`s/${pad}/${k + j}.sock`, (err) => {
              if (err) refused++;
              else accepted++;
              done();
            }),
          ),
      ),
    );
  }
  return { accepted, refused };
}

/**
 * Relays that one side never reads: `owner` offers a socket and pauses every channel to it; each of
 * `count` channels (spread over `clients`) is written to as fast as the SSH window allows until
 * `bytesEach` were written or the write stalls. Resolves with how many channels were opened.
 */
export async function stalledRelays(
  owner: ssh2.Client,
  clients: ssh2.Client[],
  count: number,
  bytesEach: number,
): Promise<number> {
  const path = `.rcpp2p/sockets/stall-${Date.now()}.sock`;
  owner.on('unix connection', (_info, accept) => accept().pause());
  await new Promise<void>((resolve, reject) =>
    owner.openssh_forwardInStreamLocal(path, (err) => (err ? reject(err) : resolve())),
  );
  const chunk = Buffer.alloc(32 * 1024);
  const opened = await Promise.all(
    Array.from(
      { length: count },
      (_, k) =>
        new Promise<boolean>((resolve) => {
          const client = clients[k % clients.length] as ssh2.Client;
          client.openssh_forwardOutStreamLocal(path, (err, channel) => {
            if (err) {
              resolve(false);
              return;
            }
            channel.on('error', () => {});
            let written = 0;
            const pump = (): void => {
              while (written < bytesEach) {
                written += chunk.length;
                if (!channel.write(chunk)) {
                  channel.once('drain', pump);
                  return;
                }
              }
            };
            pump();
            resolve(true);
          });
        }),
    ),
  );
  return opened.filter(Boolean).length;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
