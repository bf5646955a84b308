// Which path a connection from this peer to a file server would likely take, from the two records
// alone (for `--servers`): the path plan both sides would race (path-plan.ts), read as a forecast.
// Pure. It is a guess: a NAT that answers stray SYNs with RST, or a firewall, can still send a
// "direct" forecast to the relay; only a real connection tells.
import { familyOf, type PathKind } from '../peer.js';
import type { PeerRecord } from '../rendezvous/peer-record.js';
import type { SignalAddresses } from '../rendezvous/signaling.js';
import { familyViews, planPaths, type PathStep, type SelfView } from './path-plan.js';

export interface LikelyPath {
  path: PathKind;
  /** Why, in words: "simultaneous open through both NATs". */
  reason: string;
}

/** Undefined when the record says too little (an old record, or one never published online). */
export function likelyPath(self: SelfView, server: PeerRecord): LikelyPath | undefined {
  if (server.signaling?.via === 'records') {
    return {
      path: 'periodic',
      reason: `the file server reads connection requests every ${server.pollSeconds ?? 10} s (periodic mode, the last resort)`,
    };
  }
  const forecast = planned(self, server);
  // Over a remote command (a host that forwards nothing) there is no relay to fall back on.
  if (forecast?.path === 'relay' && server.signaling?.via === 'exec') {
    return {
      path: 'relay',
      reason: `${forecast.reason}; but this rendezvous host allows no forwarding, so there is no relay`,
    };
  }
  return forecast;
}

function planned(self: SelfView, server: PeerRecord): LikelyPath | undefined {
  if (server.external === undefined || server.nat === undefined) return undefined;
  const peer: SignalAddresses = {
    external: server.external,
    local: server.local ?? [],
    nat: server.nat,
    ...(server.other && { other: server.other }),
    ...(server.mapped && { mapped: server.mapped }),
  };
  const steps = planPaths({ ...self, role: 'client' }, peer);
  const first = steps.find(
    (s): s is Exclude<PathStep, { method: 'relay' }> => s.method !== 'relay',
  );
  const relay = steps.find((s) => s.method === 'relay');
  const portChanging = portChangingSides(self, peer);
  if (first?.path === 'direct' && portChanging !== undefined && first.method === 'punch') {
    const remote = first.remote;
    if (familyOf(remote.ip) === 4) {
      return {
        path: 'relay',
        reason: `${portChanging}, so a punch to the published port rarely works`,
      };
    }
  }
  if (first) return { path: first.path, reason: first.reason };
  return { path: 'relay', reason: relay?.reason ?? 'no direct path' };
}

/** "the server's NAT changes ports" when an IPv4 NAT on the way gives each destination a new port. */
function portChangingSides(self: SelfView, peer: SignalAddresses): string | undefined {
  const mine = familyViews(self).get(4)?.nat === 'port-changing';
  const theirs = familyViews(peer).get(4)?.nat === 'port-changing';
  if (mine && theirs) return 'both NATs change ports';
  if (mine) return 'the NAT in front of this peer changes ports';
  if (theirs) return "the server's NAT changes ports";
  return undefined;
}
