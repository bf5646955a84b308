// rcpp2p (no mode): run this peer's file server until Ctrl-C, serving its working directory to the
// clients registered on the rendezvous.
import { stat } from 'node:fs/promises';
import { RcppError } from '../../errors.js';
import { serveRendezvous } from '../../link/serve-rendezvous.js';
import { FileServer } from '../../transfer/file-server.js';
import { loadPeer, requireName, type CommandContext } from '../context.js';

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
  const fileServer = new FileServer({ workDir, serverName, onProgress: ctx.view.onProgress });
  ctx.view.onProgress({ type: 'server:listening', name: serverName, workDir });
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
      onLink: (link) =>
        fileServer.serve(
          link.stream,
          { name: link.peer, fingerprint: link.peerFingerprint },
          { signal: ctx.signal },
        ),
    });
  } finally {
    await fileServer.close();
  }
  ctx.view.onProgress({ type: 'note', text: `File server ${serverName} stopped.` });
  return 0;
}
