// rcpp2p --forget-peer NAME: remove what known_peers remembers of a peer, so that its next
// connection is a first contact again (after the peer was set up anew). Like ssh-keygen -R.
import { knownPeersPathFor, KnownPeers } from '../../secure/known-peers.js';
import { checkPeerName } from '../../peer.js';
import type { CommandContext } from '../context.js';

export async function forgetPeerCommand(ctx: CommandContext, name: string): Promise<number> {
  checkPeerName(name, 'peer name');
  const trust = await KnownPeers.load(knownPeersPathFor(ctx.configPath));
  const removed = await trust.forget(name);
  ctx.view.emitJson({
    op: 'forget-peer',
    ok: true,
    name,
    removed: removed.map((p) => ({ role: p.role, fingerprint: p.fingerprint })),
  });
  if (removed.length === 0) {
    ctx.view.print(`${trust.file} remembers no peer named ${name}; nothing to forget.`);
    return 0;
  }
  for (const p of removed) {
    ctx.view.print(
      `Forgot ${p.role === 'server' ? 'file server' : 'client'} ${name} (identity ${p.fingerprint}).`,
    );
  }
  ctx.view.print(`The next connection with ${name} remembers the identity it proves then.`);
  return 0;
}
