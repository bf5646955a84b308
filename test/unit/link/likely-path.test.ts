// The path --servers forecasts from two records, as a table of real setups.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { likelyPath } from '../../../src/link/likely-path.js';
import type { SelfView } from '../../../src/link/path-plan.js';
import type { PeerRecord } from '../../../src/rendezvous/peer-record.js';
import type { NatKind } from '../../../src/peer.js';

const laptop = (nat: NatKind = 'port-preserving', ip = '203.0.113.22'): SelfView => ({
  role: 'client',
  localPort: 51000,
  external: { ip, port: nat === 'port-changing' ? 61234 : 51000 },
  local: [{ ip: '198.18.2.2', port: 51000 }],
  nat,
});

const server = (over: Partial<PeerRecord> = {}): PeerRecord => ({
  v: 1,
  role: 'server',
  name: 'ASUS',
  fingerprint: 'SHA256:' + 'A'.repeat(43),
  lastSeen: '2024-06-01T12:00:00.000Z',
  software: 'test',
  external: { ip: '203.0.113.21', port: 40001 },
  local: [{ ip: '198.18.1.2', port: 40001 }],
  nat: 'port-preserving',
  online: true,
  signaling: { via: 'socket' },
  ...over,
});

describe('likely path for --servers', () => {
  const cases: [string, SelfView, PeerRecord, string | undefined][] = [
    [
      'two home routers that keep ports',
      laptop(),
      server(),
      'direct: simultaneous open through both NATs',
    ],
    [
      'both behind the same router',
      laptop('port-preserving', '203.0.113.21'),
      server(),
      'lan: both peers are behind the same router (203.0.113.21)',
    ],
    [
      'the server behind a carrier NAT that changes ports',
      laptop(),
      server({ nat: 'port-changing' }),
      "relay: the server's NAT changes ports, so a punch to the published port rarely works",
    ],
    [
      'this laptop behind a NAT that changes ports',
      laptop('port-changing'),
      server(),
      'relay: the NAT in front of this peer changes ports, so a punch to the published port rarely works',
    ],
    [
      'both NATs change ports',
      laptop('port-changing'),
      server({ nat: 'port-changing' }),
      'relay: both NATs change ports, so a punch to the published port rarely works',
    ],
    [
      'same router, even when it changes ports: the LAN path does not cross it',
      laptop('port-changing', '203.0.113.21'),
      server({ nat: 'port-changing' }),
      'lan: both peers are behind the same router (203.0.113.21)',
    ],
    [
      'a server with a public address',
      laptop(),
      server({ nat: 'public', external: { ip: '203.0.113.31', port: 40001 } }),
      'direct: simultaneous open (the server is publicly reachable)',
    ],
    [
      'dual stack: IPv6 passes where the IPv4 NAT changes ports',
      {
        ...laptop('port-changing'),
        other: { external: { ip: '2001:db8:2::2', port: 51000 }, nat: 'public' },
      },
      server({
        nat: 'port-changing',
        other: { external: { ip: '2001:db8:1::2', port: 40001 }, nat: 'public' },
      }),
      'direct: simultaneous open over IPv6, no NAT on either side',
    ],
    [
      'a server behind a NAT that changes ports, with a port opened on its router by UPnP',
      laptop(),
      server({
        nat: 'port-changing',
        mapped: { protocol: 'upnp', external: { ip: '203.0.113.21', port: 40001 } },
      }),
      'direct: port 40001 opened on the server’s router by UPnP',
    ],
    [
      'a rendezvous that forwards nothing (remote-command signaling): no relay for a changing NAT',
      laptop('port-changing'),
      server({ signaling: { via: 'exec' } }),
      'relay: the NAT in front of this peer changes ports, so a punch to the published port rarely works; but this rendezvous host allows no forwarding, so there is no relay',
    ],
    [
      'a file server in periodic mode (the last resort)',
      laptop(),
      server({ signaling: { via: 'records' }, pollSeconds: 5 }),
      'periodic: the file server reads connection requests every 5 s (periodic mode, the last resort)',
    ],
    [
      'a record without addresses (never published online)',
      laptop(),
      server({ external: undefined, nat: undefined }),
      undefined,
    ],
  ];
  for (const [setup, self, record, expected] of cases) {
    it(setup, () => {
      const guess = likelyPath(self, record);
      assert.equal(guess && `${guess.path}: ${guess.reason}`, expected);
    });
  }
});
