// rcpp2p --search PATTERN [--server NAME]: files on the rendezvous's file servers whose path
// matches, answered from the indexes they publish: no file server is contacted, so files on
// offline servers are found too (marked offline). A damaged index is one line and is skipped.
import { RcppError } from '../../errors.js';
import { decodeIndex } from '../../index/index-file.js';
import { compilePattern, type PathMatcher } from '../../index/match.js';
import { checkPeerName } from '../../peer.js';
import { MAX_INDEX_BYTES, type IndexListing } from '../../rendezvous/commands.js';
import type { CommandContext } from '../context.js';
import { formatBytes, formatTime } from '../format.js';
import {
  describeStatus,
  onRendezvous,
  serverStatus,
  type RendezvousView,
} from './on-rendezvous.js';

/** Hits printed in human mode; --json prints them all. */
const SHOWN_HITS = 500;
/** Paths longer than this push their line's size and date to the right. */
const PATH_COLUMN = 60;
/** Indexes read at once (OpenSSH allows 10 channels per connection by default). */
const READ_CONCURRENCY = 4;

interface Hit {
  server: string;
  online: boolean;
  path: string;
  size: number;
  mtimeMs: number;
}

export async function searchCommand(
  ctx: CommandContext,
  pattern: string,
  serverName: string | undefined,
): Promise<number> {
  const match = compilePattern(pattern);
  if (serverName !== undefined) checkPeerName(serverName, 'file-server name');
  return onRendezvous(ctx, async (view) => {
    const started = Date.now();
    const listings = view.listings.filter((l) => serverName === undefined || l.name === serverName);
    if (listings.length === 0) throw noIndex(serverName, view);
    const now = Date.now();
    const online = (name: string): boolean => serverStatus(view.records.get(name), now).online;
    const hits: Hit[] = [];
    let searched = 0;
    await eachLimited(listings, READ_CONCURRENCY, async (listing) => {
      const found = await searchOne(ctx, view, listing, match);
      if (found === undefined) return;
      searched++;
      for (const e of found)
        hits.push({ server: listing.name, online: online(listing.name), ...e });
    });
    hits.sort((a, b) => a.server.localeCompare(b.server, 'en') || (a.path < b.path ? -1 : 1));
    for (const hit of hits) {
      ctx.view.emitJson({
        server: hit.server,
        online: hit.online,
        file: hit.path,
        bytes: hit.size,
        mtime: new Date(hit.mtimeMs).toISOString(),
      });
    }
    printHits(ctx, view, pattern, hits, { searched, ms: Date.now() - started, now });
    return 0;
  });
}

/** The matching entries of one server's index, or undefined when it could not be read. */
async function searchOne(
  ctx: CommandContext,
  view: RendezvousView,
  listing: IndexListing,
  match: PathMatcher,
): Promise<{ path: string; size: number; mtimeMs: number }[] | undefined> {
  const note = (text: string): void => ctx.view.onProgress({ type: 'note', text });
  const tooLarge = (limit: number): void =>
    note(
      `The index of ${listing.name} on the rendezvous is larger than ${formatBytes(limit)}, ` +
        'more than rcpp2p reads; it is left out.',
    );
  if (listing.bytes > MAX_INDEX_BYTES) {
    tooLarge(MAX_INDEX_BYTES);
    return undefined;
  }
  const stored = await view.indexes.read(listing.name, ctx.signal);
  switch (stored.kind) {
    case 'none':
      return undefined; // removed since the list was read
    case 'too-large':
      tooLarge(stored.limit);
      return undefined;
    case 'index':
      try {
        const content = await decodeIndex(stored.bytes, listing.name);
        return content.entries.filter((e) => match(e.path));
      } catch (err) {
        note((err as Error).message);
        return undefined;
      }
  }
}

function printHits(
  ctx: CommandContext,
  view: RendezvousView,
  pattern: string,
  hits: Hit[],
  run: { searched: number; ms: number; now: number },
): void {
  const servers = new Set(hits.map((h) => h.server));
  const offline = [...servers].filter((s) => !hits.find((h) => h.server === s)?.online);
  const shown = hits.slice(0, SHOWN_HITS);
  const width = (values: string[], max = Infinity): number =>
    Math.min(max, Math.max(0, ...values.map((v) => v.length)));
  const nameWidth = width(shown.map((h) => h.server));
  const pathWidth = width(
    shown.map((h) => h.path),
    PATH_COLUMN,
  );
  const sizes = shown.map((h) => formatBytes(h.size));
  const sizeWidth = width(sizes);
  shown.forEach((h, i) => {
    const state = h.online ? '' : '  (offline)';
    ctx.view.print(
      `  ${h.server.padEnd(nameWidth)}  ${h.path.padEnd(pathWidth)}  ${sizes[i]!.padStart(sizeWidth)}  ${formatTime(h.mtimeMs)}${state}`,
    );
  });
  if (hits.length > shown.length) {
    ctx.view.print(
      `  ... and ${hits.length - shown.length} more (narrow the pattern, or add --json for all).`,
    );
  }
  const indexes = `${run.searched} index${run.searched === 1 ? '' : 'es'}`;
  const took = `${(run.ms / 1000).toFixed(2)} s`;
  if (hits.length === 0) {
    ctx.view.print(`No file matches "${pattern}" (searched ${indexes} in ${took}).`);
    return;
  }
  ctx.view.print(
    `Found ${hits.length} file${hits.length === 1 ? '' : 's'} matching "${pattern}" on ` +
      `${servers.size} server${servers.size === 1 ? '' : 's'} (searched ${indexes} in ${took})` +
      (offline.length > 0
        ? `; ${offline.join(', ')} ${offline.length === 1 ? 'is' : 'are'} offline.`
        : '.'),
  );
  const only = hits.length === 1 ? hits[0] : undefined;
  if (only) {
    const status = serverStatus(view.records.get(only.server), run.now);
    ctx.view.print(
      only.online
        ? `Fetch it with: rcpp2p --get ${only.server} ${shellWord(only.path)}`
        : `Fetch it once ${only.server} is back (${describeStatus(status, run.now)}): rcpp2p --get ${only.server} ${shellWord(only.path)}`,
    );
  }
}

function noIndex(serverName: string | undefined, view: RendezvousView): RcppError {
  if (serverName === undefined) {
    return new RcppError(
      'PEER_UNKNOWN',
      'No file server on the rendezvous publishes an index to search.',
      'On a file server: rcpp2p --configure --publish-index yes, then restart it.',
    );
  }
  return new RcppError(
    'PEER_UNKNOWN',
    view.records.has(serverName)
      ? `File server ${serverName} publishes no index to search.`
      : `No file server named ${serverName} is on the rendezvous.`,
    view.records.has(serverName)
      ? `List its files with rcpp2p --filelist ${serverName}, or turn its index on there: rcpp2p --configure --publish-index yes.`
      : 'See the file servers with rcpp2p --servers.',
  );
}

/** A path as one word for a POSIX shell: bare when it is plain, else in single quotes. */
export function shellWord(path: string): string {
  if (/^[A-Za-z0-9._/+@%=:,-]+$/.test(path) && !path.startsWith('-')) return path;
  const quoted = `'${path.replace(/'/g, `'\\''`)}'`;
  return path.startsWith('-') ? `./${quoted}` : quoted;
}

async function eachLimited<T>(
  items: readonly T[],
  limit: number,
  work: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await work(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
