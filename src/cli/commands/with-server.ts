// The client commands' common shape: connect to a file server, speak the transfer protocol over
// the authenticated stream, and close both cleanly whatever happens.
import type { Link } from '../../link/link.js';
import { openLink } from '../../link/open-link.js';
import { FileClient } from '../../transfer/file-client.js';
import { loadPeer, requireName, type CommandContext, type Peer } from '../context.js';

export interface ServerConnection {
  peer: Peer;
  link: Link;
  client: FileClient;
}

export async function withServer<T>(
  ctx: CommandContext,
  serverName: string,
  run: (conn: ServerConnection) => Promise<T>,
): Promise<T> {
  const peer = await loadPeer(ctx);
  const clientName = requireName(peer.config, 'clientName');
  const link = await openLink({
    rendezvous: peer.rendezvous,
    auth: peer.auth,
    // A fresh local port for every client command. Reusing the configured one would meet the last
    // connection's leftovers: both routers keep a closed entry for that exact port pair for about
    // 10 s, which lets the server's first SYNs through to our host before we punch, and our kernel
    // answers them with RST (measured in the NAT lab: back-to-back commands fell back to the
    // relay). The configured port stays the file server's, so a machine can run both roles.
    localPort: 0,
    clientName,
    identity: peer.identity,
    trust: peer.trust,
    serverName,
    signal: ctx.signal,
    onProgress: ctx.view.onProgress,
  });
  try {
    const client = await FileClient.open(link.stream, {
      clientName,
      signal: ctx.signal,
      serverFingerprint: link.peerFingerprint,
    });
    try {
      return await run({ peer, link, client });
    } finally {
      await client.close().catch(() => {});
    }
  } finally {
    await link.close();
  }
}
