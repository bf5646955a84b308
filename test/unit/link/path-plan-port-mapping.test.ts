// The path plan when a router maps a port (UPnP, NAT-PMP, PCP), for the setups of the NAT lab: a
// mapped endpoint is dialled like a public peer's listener, and both sides agree on who listens.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { planPaths, type PathStep, type SelfView } from '../../../src/link/path-plan.js';
import type { MappedEndpoint } from '../../../src/peer.js';
import type { SignalAddresses } from '../../../src/rendezvous/signaling.js';

const site = (
  ip: string,
  lan: string,
  port: number,
  nat: SignalAddresses['nat'],
  externalPort = port,
): SignalAddresses => ({ external: { ip, port: externalPort }, local: [{ ip: lan, port }], nat });
const as = (role: 'client' | 'server', p: SignalAddresses, localPort: number): SelfView => ({
  ...p,
  role,
  localPort,
});
const summary = (steps: PathStep[]): string[] =>
  steps.map((s) =>
    s.method === 'relay'
      ? `relay after ${s.delayMs}`
      : s.method === 'accept'
        ? `${s.path} accept`
        : `${s.path} ${s.method} ${s.remote.ip}:${s.remote.port}`,
  );
const upnp = (ip: string, port: number): MappedEndpoint => ({
  protocol: 'upnp',
  external: { ip, port },
});

describe('path plan with port mapping', () => {
  // ASUS behind a NAT that changes ports: the rendezvous saw 52011 for its punch port 40001.
  const asusSymmetric = site('203.0.113.21', '198.18.1.2', 40001, 'port-changing', 52011);
  const laptopSymmetric = site('203.0.113.22', '198.18.2.2', 45002, 'port-changing', 61000);

  it('symmetric/symmetric, UPnP on the server’s router: the client dials the mapped port', () => {
    const asus = { ...asusSymmetric, mapped: upnp('203.0.113.21', 40001) };
    const clientSteps = planPaths(as('client', laptopSymmetric, 45002), asus);
    assert.deepEqual(summary(clientSteps), [
      'direct connect 203.0.113.21:40001',
      'relay after 1500',
    ]);
    assert.equal(clientSteps[0]?.reason, 'port 40001 opened on the server’s router by UPnP');
    const serverSteps = planPaths(as('server', asus, 40001), laptopSymmetric);
    assert.deepEqual(summary(serverSteps), ['direct accept']);
    assert.equal(serverSteps[0]?.reason, 'port 40001 opened on your router by UPnP');
  });

  it('symmetric/symmetric, a mapping only on the client’s router: the server connects back', () => {
    const laptop: SignalAddresses = {
      ...laptopSymmetric,
      mapped: { protocol: 'natpmp', external: { ip: '203.0.113.22', port: 47777 } },
    };
    const clientSteps = planPaths(as('client', laptop, 45002), asusSymmetric);
    assert.deepEqual(summary(clientSteps), [
      'direct punch 203.0.113.21:52011',
      'reversed accept',
      'relay after 1500',
    ]);
    assert.equal(clientSteps[1]?.reason, 'port 47777 opened on your router by NAT-PMP');
    const serverSteps = planPaths(as('server', asusSymmetric, 40001), laptop);
    assert.deepEqual(summary(serverSteps), [
      'direct punch 203.0.113.22:61000',
      'reversed connect 203.0.113.22:47777',
    ]);
    assert.equal(serverSteps[1]?.reason, 'port 47777 opened on the client’s router by NAT-PMP');
  });

  it('RST/RST with PCP on the server’s router: a plain connect, no punch into the listener', () => {
    const asusRst = site('203.0.113.21', '198.18.1.2', 40001, 'port-preserving');
    const laptopRst = site('203.0.113.22', '198.18.2.2', 45002, 'port-preserving');
    const asus: SignalAddresses = {
      ...asusRst,
      mapped: { protocol: 'pcp', external: { ip: '203.0.113.21', port: 40001 } },
    };
    assert.deepEqual(summary(planPaths(as('client', laptopRst, 45002), asus)), [
      'direct connect 203.0.113.21:40001',
      'relay after 1500',
    ]);
    assert.deepEqual(summary(planPaths(as('server', asus, 40001), laptopRst)), ['direct accept']);
  });

  it('both routers map: each side dials the other’s mapping; the server still does not punch', () => {
    const asus = { ...asusSymmetric, mapped: upnp('203.0.113.21', 40001) };
    const laptop = { ...laptopSymmetric, mapped: upnp('203.0.113.22', 47777) };
    assert.deepEqual(summary(planPaths(as('client', laptop, 45002), asus)), [
      'direct connect 203.0.113.21:40001',
      'reversed accept',
      'relay after 1500',
    ]);
    assert.deepEqual(summary(planPaths(as('server', asus, 40001), laptop)), [
      'reversed connect 203.0.113.22:47777',
      'direct accept',
    ]);
  });

  it('behind the same router a mapping is ignored (no hairpinning): LAN as before', () => {
    const asus = {
      ...site('203.0.113.21', '198.18.1.2', 40001, 'port-preserving'),
      mapped: upnp('203.0.113.21', 40001),
    };
    const neighbour = site('203.0.113.21', '198.18.1.3', 45002, 'port-preserving');
    assert.deepEqual(summary(planPaths(as('client', neighbour, 45002), asus)), [
      'lan punch 198.18.1.2:40001',
      'relay after 1500',
    ]);
    assert.deepEqual(summary(planPaths(as('server', asus, 40001), neighbour)), [
      'lan punch 198.18.1.3:45002',
    ]);
  });

  it('no mapping anywhere: the plan is what it was (symmetric client: relay after 0.3 s)', () => {
    const asus = site('203.0.113.21', '198.18.1.2', 40001, 'port-preserving');
    assert.deepEqual(summary(planPaths(as('client', laptopSymmetric, 45002), asus)), [
      'direct punch 203.0.113.21:40001',
      'relay after 300',
    ]);
  });
});
