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
});
