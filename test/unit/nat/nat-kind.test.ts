import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { describeNat, lanEndpoints, sameSite } from '../../../src/nat/nat-kind.js';

describe('LAN endpoints', () => {
  const ips = ['127.0.0.1', '198.18.1.2', '10.0.0.5'];
  it('offers the non-loopback addresses with our port', () => {
    assert.deepEqual(lanEndpoints(40001, ips, { ip: '203.0.113.21', port: 40001 }), [
      { ip: '198.18.1.2', port: 40001 },
      { ip: '10.0.0.5', port: 40001 },
    ]);
  });
  it('offers only loopback when the rendezvous saw us on loopback (peers on one machine)', () => {
    assert.deepEqual(lanEndpoints(40001, ips, { ip: '127.0.0.1', port: 40001 }), [
      { ip: '127.0.0.1', port: 40001 },
    ]);
  });
});

describe('same site', () => {
  const at = (ip: string): { ip: string; port: number } => ({ ip, port: 40001 });
  it('IPv4: the same external address (one router)', () => {
    assert.equal(sameSite(at('203.0.113.21'), at('203.0.113.21')), true);
    assert.equal(sameSite(at('203.0.113.21'), at('203.0.113.22')), false);
  });
  it('IPv6: the same /64, however the addresses are written', () => {
    assert.equal(sameSite(at('2001:db8:1::2'), at('2001:db8:1:0:1::3')), true);
    assert.equal(sameSite(at('2001:0db8:0001:0000::2'), at('2001:db8:1::9')), true);
    assert.equal(sameSite(at('2001:db8:1::2'), at('2001:db8:2::2')), false);
    assert.equal(sameSite(at('2001:db8:1::2'), at('203.0.113.21')), false);
  });
  it('the NAT words never call an IPv6 address without NAT publicly reachable', () => {
    assert.equal(describeNat('public', 6), 'no NAT');
    assert.equal(describeNat('public', 4), 'publicly reachable, no NAT');
  });
});
