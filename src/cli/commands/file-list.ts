// rcpp2p --filelist SERVER [FOLDER]: the server's files with sizes and times, folders first.
import { checkPeerName } from '../../peer.js';
import type { ListEntry } from '../../transfer/file-client.js';
import type { CommandContext } from '../context.js';
import { formatBytes, formatTime } from '../format.js';
import { withServer } from './with-server.js';

export async function fileListCommand(
  ctx: CommandContext,
  serverName: string,
  folder: string,
): Promise<number> {
  checkPeerName(serverName, 'file-server name');
  const started = Date.now();
  return withServer(ctx, serverName, async ({ link, client }) => {
    const entries = await client.list(folder, { signal: ctx.signal });
    ctx.view.emitJson({
      op: 'filelist',
      ok: true,
      server: serverName,
      folder,
      entries,
      path: link.path,
      family: link.family,
      setupMs: link.setupMs,
      totalMs: Date.now() - started,
    });
    printTable(ctx, serverName, folder, entries);
    return 0;
  });
}

function printTable(
  ctx: CommandContext,
  serverName: string,
  folder: string,
  entries: ListEntry[],
): void {
  const sorted = [...entries].sort((a, b) =>
    a.kind === b.kind ? a.path.localeCompare(b.path) : a.kind === 'dir' ? -1 : 1,
  );
  const where = folder ? `${serverName}:${folder}` : serverName;
  if (sorted.length === 0) {
    ctx.view.print(`${where} is empty.`);
    return;
  }
  ctx.view.print(`Files on ${where}:`);
  const sizes = sorted.map((e) => (e.kind === 'dir' ? '<DIR>' : formatBytes(e.size)));
  const width = Math.max(...sizes.map((s) => s.length));
  sorted.forEach((e, i) => {
    const name = e.kind === 'dir' ? `${e.path}/` : e.path;
    ctx.view.print(`  ${formatTime(e.mtimeMs)}  ${(sizes[i] ?? '').padStart(width)}  ${name}`);
  });
  const files = sorted.filter((e) => e.kind === 'file');
  const total = files.reduce((sum, e) => sum + e.size, 0);
  ctx.view.print(`${files.length} file${files.length === 1 ? '' : 's'}, ${formatBytes(total)}.`);
}
