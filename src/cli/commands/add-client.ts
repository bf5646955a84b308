// rcpp2p --addclient: publish this client's record (its certificate fingerprint) on the rendezvous,
// so file servers in the account accept it, and show which file servers it can reach.
// When another machine already registered the name (another fingerprint), replacing it would lock
// that machine out: in a terminal the user is asked; otherwise (or with --yes) it takes --replace.
import { RcppError } from '../../errors.js';
import { joinRendezvous } from '../../link/join-rendezvous.js';
import { describeAge, selfRecord, type PeerRecord } from '../../rendezvous/peer-record.js';
import { loadPeer, requireName, type CommandContext } from '../context.js';
import { escapeControls } from '../safe-text.js';

export interface AddClientFlags {
  /** Take over a name another machine registered. */
  replace: boolean;
  /** Ask nothing (scripts). */
  yes: boolean;
}

export async function addClientCommand(
  ctx: CommandContext,
  flags: AddClientFlags = { replace: false, yes: false },
): Promise<number> {
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
    if (previous && previous.fingerprint !== peer.identity.fingerprint && !flags.replace) {
      await confirmReplace(ctx, flags, previous, peer.identity.fingerprint);
    }
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

async function confirmReplace(
  ctx: CommandContext,
  flags: AddClientFlags,
  previous: PeerRecord,
  ours: string,
): Promise<void> {
  const name = previous.name;
  const theirs = `identity ${escapeControls(previous.fingerprint)}, last seen ${describeAge(previous.lastSeen, Date.now())}`;
  const interactive =
    !flags.yes && !ctx.json && ctx.io.stdin.isTTY === true && ctx.io.stderr.isTTY === true;
  if (!interactive) {
    throw new RcppError(
      'NAME_IN_USE',
      `Another machine registered the client name ${name} (${theirs}); this machine is ${ours}.`,
      'Choose another client name with rcpp2p --configure, or add --replace to take the name over (the other machine can then no longer connect).',
    );
  }
  ctx.io.stderr.write(
    `Another machine registered the client name ${name} (${theirs}).\n` +
      `If you replace it, file servers accept only this machine (${ours}) under that name.\n`,
  );
  const answer = await ctx.ask(`Replace the client ${name}? (y/N)`, { secret: false });
  if (!/^y(es)?$/i.test(answer.trim())) {
    throw new RcppError(
      'NAME_IN_USE',
      `Kept the client ${name} the other machine registered; nothing was changed.`,
      'Choose another client name with rcpp2p --configure.',
    );
  }
}
