// rcpp2p --servers: every file server on the rendezvous, online or not (and when last seen), its
// NAT, the path a connection from here would likely take, and what its index says it shares.
// Answered from the records and the index summaries: no file server is contacted.
import { describeNat } from '../../nat/nat-kind.js';
import { parseIndexSummary, type IndexSummary } from '../../index/index-file.js';
import { likelyPath, type LikelyPath } from '../../link/likely-path.js';
import { familyOf } from '../../peer.js';
import { MAX_INDEX_BYTES } from '../../rendezvous/commands.js';
import type { PeerRecord } from '../../rendezvous/peer-record.js';
import type { CommandContext } from '../context.js';
import { formatBytes } from '../format.js';
import {
  describeStatus,
  onRendezvous,
  serverStatus,
  type RendezvousView,
  type ServerStatus,
} from './on-rendezvous.js';

interface ServerRow {
  name: string;
  record: PeerRecord | undefined;
  status: ServerStatus;
  index: IndexSummary | undefined;
  path: LikelyPath | undefined;
}

export async function serversCommand(ctx: CommandContext): Promise<number> {
  return onRendezvous(ctx, (view) => {
    const rows = collectRows(ctx, view, Date.now());
    for (const row of rows) ctx.view.emitJson(jsonRow(row));
    printTable(ctx, view, rows, Date.now());
    return Promise.resolve(0);
  });
}

function collectRows(ctx: CommandContext, view: RendezvousView, now: number): ServerRow[] {
  const summaries = new Map<string, IndexSummary>();
  for (const listing of view.listings) {
    if (listing.bytes > MAX_INDEX_BYTES) {
      ctx.view.onProgress({
        type: 'note',
        text: `The index of ${listing.name} on the rendezvous is larger than ${formatBytes(MAX_INDEX_BYTES)}, more than rcpp2p reads; it is left out.`,
      });
      continue;
    }
    try {
      summaries.set(listing.name, parseIndexSummary(listing.summary, listing.name));
    } catch (err) {
      ctx.view.onProgress({ type: 'note', text: (err as Error).message });
    }
  }
  const names = [...new Set([...view.records.keys(), ...summaries.keys()])].sort((a, b) =>
    a.localeCompare(b, 'en'),
  );
  return names.map((name) => {
    const record = view.records.get(name);
    const index = summaries.get(name);
    const status = serverStatus(record, now);
    return {
      name,
      record,
      status:
        !status.online && status.lastSeen === undefined && index
          ? { ...status, lastSeen: index.at }
          : status,
      index,
      path: record && likelyPath(view.self, record),
    };
  });
}

function jsonRow(row: ServerRow): object {
  const nat = row.record?.nat;
  return {
    server: row.name,
    online: row.status.online,
    lastSeen: row.record?.lastSeen ?? row.index?.at ?? null,
    files: row.index?.files ?? null,
    bytes: row.index?.bytes ?? null,
    indexed: row.index !== undefined,
    ...(row.index?.truncated && { truncated: true }),
    nat: nat ?? null,
    likelyPath: row.path?.path ?? null,
    likelyPathReason: row.path?.reason ?? null,
  };
}

function printTable(
  ctx: CommandContext,
  view: RendezvousView,
  rows: ServerRow[],
  now: number,
): void {
  const self = view.joined.self;
  ctx.view.print(
    `File servers on the rendezvous (this peer: ${describeNat(self.nat, familyOf(self.external.ip))}):`,
  );
  if (rows.length === 0) {
    ctx.view.print('  none yet. Start rcpp2p (no arguments) on a file-server machine.');
    return;
  }
  const table = [
    ['SERVER', 'STATUS', 'FILES', 'SIZE', 'NAT', 'LIKELY PATH FROM HERE'],
    ...rows.map((r) => [
      r.name,
      describeStatus(r.status, now),
      r.index ? `${r.index.files.toLocaleString('en-US')}${r.index.truncated ? '+' : ''}` : '-',
      r.index ? formatBytes(r.index.bytes) : '-',
      r.record?.nat && r.record.external
        ? describeNat(r.record.nat, familyOf(r.record.external.ip))
        : '-',
      r.path ? `${r.path.path} (${r.path.reason})` : '-',
    ]),
  ];
  const widths = table[0]!.map((_, col) => Math.max(...table.map((line) => line[col]!.length)));
  const rightAligned = new Set([2, 3]);
  for (const line of table) {
    const cells = line.map((cell, col) =>
      col === line.length - 1
        ? cell
        : rightAligned.has(col)
          ? cell.padStart(widths[col]!)
          : cell.padEnd(widths[col]!),
    );
    ctx.view.print(`  ${cells.join('  ')}`);
  }
  const online = rows.filter((r) => r.status.online).length;
  const unindexed = rows.filter((r) => !r.index).length;
  ctx.view.print(
    `${online} of ${rows.length} file server${rows.length === 1 ? '' : 's'} online.` +
      (unindexed > 0
        ? ` ${unindexed} publish${unindexed === 1 ? 'es' : ''} no index (FILES "-": rcpp2p --configure --publish-index yes on ${unindexed === 1 ? 'it' : 'them'}).`
        : '') +
      (rows.some((r) => r.index?.truncated)
        ? ' "+": the folder holds more files than its index lists.'
        : ''),
  );
}
