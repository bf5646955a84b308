// rcpp2p --addclient: publish this client's record (its certificate fingerprint) on the rendezvous,
// so file servers in the account accept it, and show which file servers it can reach.
import { joinRendezvous } from '../../link/join-rendezvous.js';
import { describeAge, selfRecord } from '../../rendezvous/peer-record.js';
import { loadPeer, requireName, type CommandContext } from '../context.js';

export async function addClientCommand(ctx: CommandContext): Promise<number> {
  const peer = await loadPeer(ctx);
  const clientName = requireName(peer.config, 'clientName');
  const joined = await joinRendezvous(
    {
      rendezvous: peer.rendezvous,
      auth: peer.auth,
      localPort: peer.config.port,
      portFallback: 'any',
      signal: ctx.signal,
      onProgress: ctx.view.onProgress,
    },
    { role: 'client', name: clientName },
  );
  try {
    const previous = joined.record;
    const record = selfRecord(
      { role: 'client', name: clientName, fingerprint: peer.identity.fingerprint },
      joined.self,
    );
    await joined.directory.publish(record, ctx.signal);
    ctx.view.onProgress({ type: 'record:published', name: clientName, role: 'client' });
    if (previous && previous.fingerprint !== record.fingerprint) {
      ctx.view.onProgress({
        type: 'note',
        text: `Replaced an earlier client ${clientName} with identity ${previous.fingerprint}; this one is ${record.fingerprint}.`,
      });
    }
    const servers = await joined.directory.list('server', ctx.signal);
    ctx.view.emitJson({
      op: 'addclient',
      ok: true,
      client: clientName,
      fingerprint: record.fingerprint,
      servers: servers.map((s) => ({
        name: s.name,
        online: s.online === true,
        lastSeen: s.lastSeen,
      })),
    });
    ctx.view.print(`Client ${clientName} is registered (identity ${record.fingerprint}).`);
    if (servers.length === 0) {
      ctx.view.print('No file servers are registered on this rendezvous yet.');
    } else {
      ctx.view.print('File servers on this rendezvous:');
      const now = Date.now();
      for (const s of servers) {
        ctx.view.print(
          `  ${s.name}  ${s.online === true ? 'online' : `offline, last seen ${describeAge(s.lastSeen, now)}`}`,
        );
      }
    }
    return 0;
  } finally {
    await joined.session.close();
  }
}
