// What --servers and --search share: one login to the rendezvous (from a fresh port, so the NAT
// kind seen is what a client command would meet), the file servers' records and the index list.
// Nothing connects to a file server.
import { joinRendezvous, type Joined } from '../../link/join-rendezvous.js';
import type { SelfView } from '../../link/path-plan.js';
import type { IndexListing } from '../../rendezvous/commands.js';
import { RendezvousIndexes } from '../../rendezvous/index-store.js';
import { describeAge, type PeerRecord } from '../../rendezvous/peer-record.js';
import { loadPeer, type CommandContext } from '../context.js';

/**
 * A record that says online but was not refreshed for this long belongs to a server that did not
 * stop cleanly (killed, crashed, asleep): servers republish every minute.
 */
export const STALE_AFTER_MS = 5 * 60_000;

export interface RendezvousView {
  joined: Joined;
  self: SelfView;
  indexes: RendezvousIndexes;
  /** File-server records by name (damaged ones are left out). */
  records: Map<string, PeerRecord>;
  /** The index list: name, size and summary line of each. */
  listings: IndexListing[];
}

export async function onRendezvous<T>(
  ctx: CommandContext,
  run: (view: RendezvousView) => Promise<T>,
): Promise<T> {
  const peer = await loadPeer(ctx);
  const joined = await joinRendezvous(
    {
      rendezvous: peer.rendezvous,
      auth: peer.auth,
      localPort: 0,
      portFallback: 'any',
      signal: ctx.signal,
      onProgress: ctx.view.onProgress,
    },
    // The lookup only fills in a record we do not use; any name of this peer does.
    { role: 'client', name: peer.config.clientName ?? peer.config.serverName ?? 'none' },
  );
  try {
    const indexes = new RendezvousIndexes(joined.session, joined.directory.dir);
    const records = new Map(
      (await joined.directory.list('server', ctx.signal)).map((r) => [r.name, r]),
    );
    const reply = await indexes.list(ctx.signal);
    for (const problem of reply.damaged) ctx.view.onProgress({ type: 'note', text: problem });
    const self: SelfView = { ...joined.self, role: 'client' };
    return await run({ joined, self, indexes, records, listings: reply.indexes });
  } finally {
    await joined.session.close();
  }
}

export type ServerStatus =
  | { online: true }
  | { online: false; lastSeen: string | undefined; why: 'stopped' | 'stale' | 'no record' };

/** Online, or offline and why, from a record (a stale "online" is offline). */
export function serverStatus(record: PeerRecord | undefined, now: number): ServerStatus {
  if (record === undefined) return { online: false, lastSeen: undefined, why: 'no record' };
  if (record.online !== true) return { online: false, lastSeen: record.lastSeen, why: 'stopped' };
  if (now - Date.parse(record.lastSeen) > STALE_AFTER_MS) {
    return { online: false, lastSeen: record.lastSeen, why: 'stale' };
  }
  return { online: true };
}

export function describeStatus(status: ServerStatus, now: number): string {
  if (status.online) return 'online';
  if (status.lastSeen === undefined) return 'offline';
  const seen = `last seen ${describeAge(status.lastSeen, now)}`;
  return status.why === 'stale' ? `offline? (no sign of life, ${seen})` : `offline, ${seen}`;
}
