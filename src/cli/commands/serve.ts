// rcpp2p (no mode): run this peer's file server until Ctrl-C, serving its working directory to the
// clients registered on the rendezvous, and (with publishIndex) keeping an index of that folder on
// the rendezvous for --servers and --search.
import { stat } from 'node:fs/promises';
import { RcppError } from '../../errors.js';
import { IndexPublisher, type IndexEvent } from '../../index/publisher.js';
import type { Joined } from '../../link/join-rendezvous.js';
import { serveRendezvous } from '../../link/serve-rendezvous.js';
import { MAX_INDEX_BYTES } from '../../rendezvous/commands.js';
import { RendezvousIndexes } from '../../rendezvous/index-store.js';
import { FileServer } from '../../transfer/file-server.js';
import { loadPeer, requireName, type CommandContext } from '../context.js';
import { formatBytes, formatSeconds } from '../format.js';

export async function serveCommand(
  ctx: CommandContext,
  opts: { periodic: boolean },
): Promise<number> {
  const peer = await loadPeer(ctx);
  const serverName = requireName(peer.config, 'serverName');
  const workDir = peer.config.workDir;
  if (workDir === undefined) {
    throw new RcppError(
      'CONFIG_INVALID',
      'This peer has no working directory to serve.',
      'Run rcpp2p --configure and set one.',
    );
  }
  const dir = await stat(workDir).catch(() => undefined);
  if (!dir?.isDirectory()) {
    throw new RcppError(
      'FILE_NOT_FOUND',
      `The working directory ${workDir} does not exist.`,
      'Create it, or change it with rcpp2p --configure.',
    );
  }
  const said = new Set<string>();
  const fileServer = new FileServer({ workDir, serverName, onProgress: ctx.view.onProgress });
  const index =
    peer.config.publishIndex === true
      ? new IndexPublisher({
          workDir,
          serverName,
          maxBytes: MAX_INDEX_BYTES,
          onEvent: (event) => {
            const text = describeIndexEvent(event);
            if (text === undefined) return;
            // Rescans repeat themselves (every minute or more): say each problem once.
            if (event.type !== 'index:published') {
              if (said.has(text)) return;
              said.add(text);
            }
            ctx.view.onProgress({ type: 'note', text });
          },
        })
      : undefined;
  /** Each rendezvous session gets the index (or, without publishIndex, loses an old one). */
  const onSession = (joined: Joined, signal: AbortSignal): void => {
    const indexes = new RendezvousIndexes(joined.session, joined.directory.dir);
    if (index) {
      index.attach((data, s) => indexes.publish(serverName, data, s), signal);
      return;
    }
    indexes.remove(serverName, signal).catch(() => {});
  };
  ctx.view.onProgress({ type: 'server:listening', name: serverName, workDir });
  index?.start();
  try {
    await serveRendezvous({
      rendezvous: peer.rendezvous,
      auth: peer.auth,
      localPort: peer.config.port,
      serverName,
      identity: peer.identity,
      trust: peer.trust,
      ...(peer.config.allowClients !== undefined && { clientPolicy: peer.config.allowClients }),
      pollSeconds: peer.config.pollSeconds,
      signal: ctx.signal,
      onProgress: ctx.view.onProgress,
      forcePeriodic: opts.periodic,
      portMapping: peer.portMapping,
      onLink: (link) =>
        fileServer.serve(
          link.stream,
          { name: link.peer, fingerprint: link.peerFingerprint },
          { signal: ctx.signal },
        ),
      onSession,
    });
  } finally {
    await index?.close();
    await fileServer.close();
  }
  ctx.view.onProgress({ type: 'note', text: `File server ${serverName} stopped.` });
  return 0;
}

/** The server's log line for an index event (scans that change nothing say nothing). */
function describeIndexEvent(e: IndexEvent): string | undefined {
  switch (e.type) {
    case 'index:scanned':
      return e.problems > 0
        ? `Index: ${e.problems} name${e.problems === 1 ? '' : 's'} cannot be sent (control characters, too long...) and ${e.problems === 1 ? 'is' : 'are'} left out.`
        : undefined;
    case 'index:published': {
      const s = e.summary;
      const files = `${s.files.toLocaleString('en-US')} file${s.files === 1 ? '' : 's'}`;
      return (
        `Index published: ${files}, ${formatBytes(s.bytes)} ` +
        `(${formatBytes(e.indexBytes)} on the rendezvous; scan ${formatSeconds(e.buildMs)}, upload ${formatSeconds(e.uploadMs)}).` +
        (s.truncated
          ? ' The folder holds more files than an index lists; --search finds only these.'
          : '')
      );
    }
    case 'index:publish-failed':
      return `Index not published: ${e.message} It is sent again at the next change or reconnection.`;
    case 'index:scan-failed':
      return `Index: the shared folder could not be scanned: ${e.message}`;
    case 'index:watch-limited':
      return (
        `Index: watching ${e.coverage.watched} of ${e.coverage.folders} folders for changes; ` +
        'changes in the others are found by a periodic rescan.'
      );
  }
}
