import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { planPaths, type PathStep, type SelfView } from '../../../src/link/path-plan.js';
import type { SignalAddresses } from '../../../src/rendezvous/signaling.js';

const homeNat = (ip: string, lan: string, port: number): SignalAddresses => ({
  external: { ip, port },
  local: [{ ip: lan, port }],
  nat: 'port-preserving',
});

const client = (p: SignalAddresses): SelfView => ({
  ...p,
  role: 'client',
  localPort: p.external.port,
});
const server = (p: SignalAddresses): SelfView => ({
  ...p,
  role: 'server',
  localPort: p.external.port,
});

function summary(steps: PathStep[]): string[] {
  return steps.map((s) =>
    s.method === 'relay'
      ? `relay after ${s.delayMs}`
      : s.method === 'accept'
        ? `${s.path} accept`
        : `${s.path} ${s.method} ${s.remote.ip}:${s.remote.port}`,
  );
}

describe('path plan', () => {
  const asus = homeNat('203.0.113.21', '198.18.1.2', 40001);
  const laptop = homeNat('203.0.113.22', '198.18.2.2', 40002);

  it('two home routers that keep ports: punch to each other, relay as a late fallback', () => {
    assert.deepEqual(summary(planPaths(client(laptop), asus)), [
      'direct punch 203.0.113.21:40001',
      'relay after 1500',
    ]);
    assert.deepEqual(summary(planPaths(server(asus), laptop)), ['direct punch 203.0.113.22:40002']);
  });

  it('both behind the same router (no hairpinning): punch to the private address', () => {
    const sameRouterLaptop = homeNat('203.0.113.21', '198.18.1.3', 40002);
    assert.deepEqual(summary(planPaths(client(sameRouterLaptop), asus)), [
      'lan punch 198.18.1.2:40001',
      'relay after 1500',
    ]);
    assert.deepEqual(summary(planPaths(server(asus), sameRouterLaptop)), [
      'lan punch 198.18.1.3:40002',
    ]);
  });

  it('behind the same router with the server listening on the LAN: the client also dials it', () => {
    const sameRouterLaptop = homeNat('203.0.113.21', '198.18.1.3', 40002);
    const asusListening: SignalAddresses = { ...asus, lanPort: 45123 };
    assert.deepEqual(summary(planPaths(client(sameRouterLaptop), asusListening)), [
      'lan punch 198.18.1.2:40001',
      'lan connect 198.18.1.2:45123',
      'relay after 1500',
    ]);
    assert.deepEqual(summary(planPaths(server(asusListening), sameRouterLaptop)), [
      'lan punch 198.18.1.3:40002',
      'lan accept',
    ]);
    // a LAN port offered by a peer behind another router is ignored
    assert.deepEqual(summary(planPaths(client(laptop), asusListening)), [
      'direct punch 203.0.113.21:40001',
      'relay after 1500',
    ]);
  });

  it('two peers on one machine (loopback): one LAN punch and one dial, nothing twice', () => {
    const onLoopback = (port: number): SignalAddresses => ({
      external: { ip: '127.0.0.1', port },
      local: [{ ip: '127.0.0.1', port }],
      nat: 'public',
    });
    const srv: SignalAddresses = {
      ...onLoopback(40001),
      listen: { ip: '127.0.0.1', port: 45000 },
      lanPort: 45000,
    };
    const steps = planPaths(client(onLoopback(40002)), srv);
    assert.deepEqual(summary(steps), [
      'lan punch 127.0.0.1:40001',
      'lan connect 127.0.0.1:45000',
      'relay after 1500',
    ]);
    assert.equal(steps[0]?.reason, 'both peers are on this machine');
    assert.deepEqual(summary(planPaths(server(srv), onLoopback(40002))), [
      'lan punch 127.0.0.1:40002',
      'lan accept',
    ]);
  });

  it('a public server (a VPS) listening: the client dials it directly, and still punches', () => {
    const vps: SignalAddresses = {
      external: { ip: '203.0.113.31', port: 40001 },
      local: [{ ip: '203.0.113.31', port: 40001 }],
      nat: 'public',
      listen: { ip: '203.0.113.31', port: 45555 },
    };
    assert.deepEqual(summary(planPaths(client(laptop), vps)), [
      'direct punch 203.0.113.31:40001',
      'direct connect 203.0.113.31:45555',
      'relay after 1500',
    ]);
    assert.deepEqual(summary(planPaths(server(vps), laptop)), [
      'direct punch 203.0.113.22:40002',
      'direct accept',
    ]);
  });

  it('a public client and a NATed server: the server connects back (reversed, as Napster did)', () => {
    const publicLaptop: SignalAddresses = {
      external: { ip: '203.0.113.32', port: 40002 },
      local: [{ ip: '203.0.113.32', port: 40002 }],
      nat: 'public',
      listen: { ip: '203.0.113.32', port: 46666 },
    };
    assert.deepEqual(summary(planPaths(server(asus), publicLaptop)), [
      'direct punch 203.0.113.32:40002',
      'reversed connect 203.0.113.32:46666',
    ]);
    assert.deepEqual(summary(planPaths(client(publicLaptop), asus)), [
      'direct punch 203.0.113.21:40001',
      'reversed accept',
      'relay after 1500',
    ]);
  });

  it('a carrier-grade or symmetric NAT that changes ports: relay soon, and say why', () => {
    const cgnat: SignalAddresses = {
      ...laptop,
      external: { ip: '203.0.113.22', port: 61234 },
      nat: 'port-changing',
    };
    const steps = planPaths(client(cgnat), asus);
    assert.deepEqual(summary(steps), ['direct punch 203.0.113.21:40001', 'relay after 300']);
    const relay = steps.find((s) => s.method === 'relay');
    assert.match(relay?.reason ?? '', /this peer’s NAT changes ports/);
  });

  it('two peers on one machine (the demo on loopback): LAN and direct both tried', () => {
    const a: SignalAddresses = {
      external: { ip: '127.0.0.1', port: 40001 },
      local: [{ ip: '10.0.0.5', port: 40001 }],
      nat: 'public',
    };
    const b: SignalAddresses = {
      external: { ip: '127.0.0.1', port: 40002 },
      local: [{ ip: '10.0.0.5', port: 40002 }],
      nat: 'public',
    };
    assert.deepEqual(summary(planPaths(client(b), a)), [
      'lan punch 10.0.0.5:40001',
      'direct punch 127.0.0.1:40001',
      'relay after 1500',
    ]);
  });

  describe('IPv6 and dual stack', () => {
    /** A home with a port-changing IPv4 NAT and native IPv6 behind a stateful firewall. */
    const dualHome = (v4: string, v6: string, lan4: string, port: number): SignalAddresses => ({
      external: { ip: v6, port },
      nat: 'public',
      local: [
        { ip: lan4, port },
        { ip: v6, port },
      ],
      other: { external: { ip: v4, port: 61000 + (port % 1000) }, nat: 'port-changing' },
    });
    const asus6 = dualHome('203.0.113.21', '2001:db8:1::2', '198.18.1.2', 40001);
    const laptop6 = dualHome('203.0.113.22', '2001:db8:2::2', '198.18.2.2', 40002);

    it('both dual-stack behind symmetric IPv4 NATs: punch over IPv6 first, IPv4 a moment later, relay late', () => {
      const steps = planPaths(client(laptop6), asus6);
      assert.deepEqual(summary(steps), [
        'direct punch 2001:db8:1::2:40001',
        'direct punch 203.0.113.21:61001',
        'relay after 1500',
      ]);
      assert.equal(steps[0]?.reason, 'simultaneous open over IPv6, no NAT on either side');
      assert.equal(steps[1]?.method === 'punch' && steps[1].delayMs, 100);
      assert.match(steps[1]?.reason ?? '', /over IPv4/);
      assert.deepEqual(summary(planPaths(server(asus6), laptop6)), [
        'direct punch 2001:db8:2::2:40002',
        'direct punch 203.0.113.22:61002',
      ]);
    });

    it('one side IPv4-only behind an easy NAT, the other dual-stack: direct over IPv4, no IPv6 attempt', () => {
      const asusDual: SignalAddresses = {
        ...asus,
        local: [...asus.local, { ip: '2001:db8:1::2', port: 40001 }],
        other: { external: { ip: '2001:db8:1::2', port: 40001 }, nat: 'public' },
      };
      const steps = planPaths(client(laptop), asusDual);
      assert.deepEqual(summary(steps), ['direct punch 203.0.113.21:40001', 'relay after 1500']);
      assert.equal(steps[0]?.reason, 'simultaneous open through both NATs');
    });

    it('an IPv6-only client and a dual-stack server: direct over IPv6 only', () => {
      const phone: SignalAddresses = {
        external: { ip: '2001:db8:2::2', port: 40002 },
        nat: 'public',
        local: [{ ip: '2001:db8:2::2', port: 40002 }],
      };
      assert.deepEqual(summary(planPaths(client(phone), asus6)), [
        'direct punch 2001:db8:1::2:40001',
        'relay after 1500',
      ]);
    });

    it('an IPv6 peer listening (no NAT there) is also dialled over IPv6', () => {
      const asusListening: SignalAddresses = {
        ...asus6,
        listen: { ip: '2001:db8:1::2', port: 45000 },
      };
      assert.deepEqual(summary(planPaths(client(laptop6), asusListening)), [
        'direct punch 2001:db8:1::2:40001',
        'direct connect 2001:db8:1::2:45000',
        'direct punch 203.0.113.21:61001',
        'relay after 1500',
      ]);
    });

    it('two IPv6 peers on one LAN (same /64): LAN punch to the global address', () => {
      const a: SignalAddresses = {
        external: { ip: '2001:db8:1::2', port: 40001 },
        nat: 'public',
        local: [{ ip: '2001:db8:1::2', port: 40001 }],
        lanPort: 45123,
      };
      const b: SignalAddresses = {
        external: { ip: '2001:db8:1:0:1::3', port: 40002 },
        nat: 'public',
        local: [{ ip: '2001:db8:1:0:1::3', port: 40002 }],
      };
      const steps = planPaths(client(b), a);
      assert.deepEqual(summary(steps), [
        'lan punch 2001:db8:1::2:40001',
        'lan connect 2001:db8:1::2:45123',
        'relay after 1500',
      ]);
      assert.match(steps[0]?.reason ?? '', /same LAN over IPv6/);
    });

    it('no family in common: only the relay, and it says why', () => {
      const phone: SignalAddresses = {
        external: { ip: '2001:db8:2::2', port: 40002 },
        nat: 'public',
        local: [],
      };
      const steps = planPaths(client(phone), asus);
      assert.deepEqual(summary(steps), ['relay after 1500']);
      assert.match(steps[0]?.reason ?? '', /no address family in common/);
    });
  });
});
