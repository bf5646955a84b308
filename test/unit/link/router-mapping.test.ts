// Which mapping a peer offers for a rendezvous session: the router's mapping only when the
// rendezvous sees us at the router's external IPv4 address (judged in the IPv4 view of a
// dual-stack peer), none for a peer reachable without a NAT, and a contradicted one rejected.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { SelfAddresses } from '../../../src/link/join-rendezvous.js';
import { usableMapping } from '../../../src/link/router-mapping.js';
import type { Mapping } from '../../../src/nat/port-mapping/gateway-client.js';
import type { PortMapping } from '../../../src/nat/port-mapping/port-mapping.js';

function fakeMapping(): PortMapping & { rejected: string[] } {
  const rejected: string[] = [];
  return {
    rejected,
    state: { s: 'searching' },
    current: () => undefined,
    settled: () => Promise.resolve(undefined),
    onChange: () => () => {},
    reject: (reason) => {
      rejected.push(reason);
      return Promise.resolve();
    },
    close: () => Promise.resolve(),
  };
}

const upnp = (ip: string, port = 40001): Mapping => ({
  protocol: 'upnp',
  gateway: '198.18.1.1',
  internalIp: '198.18.1.2',
  internalPort: 40001,
  external: { ip, port },
  lifetimeSeconds: 3600,
});

const behindNat = (ip: string): SelfAddresses => ({
  localPort: 40001,
  external: { ip, port: 52011 },
  local: [{ ip: '198.18.1.2', port: 40001 }],
  nat: 'port-changing',
});

describe('the mapping a peer offers', () => {
  it('a symmetric NAT whose router maps on the address the rendezvous sees: offered', async () => {
    const pm = fakeMapping();
    assert.deepEqual(await usableMapping(pm, upnp('203.0.113.21'), behindNat('203.0.113.21')), {
      protocol: 'upnp',
      external: { ip: '203.0.113.21', port: 40001 },
    });
    assert.deepEqual(pm.rejected, []);
  });

  it('a router behind another NAT (its address is not what the rendezvous sees): rejected, said why', async () => {
    const pm = fakeMapping();
    assert.equal(
      await usableMapping(pm, upnp('203.0.113.99'), behindNat('203.0.113.21')),
      undefined,
    );
    assert.equal(pm.rejected.length, 1);
    assert.match(pm.rejected[0] ?? '', /not the address the rendezvous sees \(203\.0\.113\.21\)/);
  });

  it('a dual-stack peer logged in over IPv6: judged against what it learned over IPv4', async () => {
    const pm = fakeMapping();
    const self: SelfAddresses = {
      localPort: 40001,
      external: { ip: '2001:db8:1::2', port: 40001 },
      local: [],
      nat: 'public',
      other: { external: { ip: '203.0.113.21', port: 52011 }, nat: 'port-changing' },
    };
    assert.equal((await usableMapping(pm, upnp('203.0.113.21'), self))?.external.port, 40001);
    assert.equal(
      await usableMapping(pm, upnp('203.0.113.99'), self),
      undefined,
      'another IPv4 address',
    );
    const v6Only: SelfAddresses = { ...self, other: undefined };
    assert.equal(await usableMapping(pm, upnp('203.0.113.21'), v6Only), undefined, 'no IPv4 view');
  });

  it('a host that is public over IPv4 offers no mapping, and nothing is said', async () => {
    const pm = fakeMapping();
    const self: SelfAddresses = { ...behindNat('203.0.113.31'), nat: 'public' };
    assert.equal(await usableMapping(pm, upnp('203.0.113.31'), self), undefined);
    assert.deepEqual(pm.rejected, []);
  });

  it('no mapping (yet): nothing offered', async () => {
    assert.equal(
      await usableMapping(fakeMapping(), undefined, behindNat('203.0.113.21')),
      undefined,
    );
  });
});
