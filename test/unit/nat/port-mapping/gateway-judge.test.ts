// Where the router is (the default route in /proc/net/route) and whether a mapping on it can help
// (its external address must be an Internet address, and the one the rendezvous sees).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseDefaultGateway } from '../../../../src/nat/port-mapping/gateway.js';
import {
  ipv4Scope,
  judgeExternalAddress,
  judgeMapping,
} from '../../../../src/nat/port-mapping/judge.js';

const HEADER =
  'Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n';

describe('default gateway from /proc/net/route', () => {
  it('a NAT lab LAN host: default via 198.18.1.1', () => {
    const table =
      HEADER +
      'eth0\t00000000\t010112C6\t0003\t0\t0\t0\t00000000\t0\t0\t0\n' +
      'eth0\t000112C6\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n';
    assert.equal(parseDefaultGateway(table), '198.18.1.1');
  });

  it('a laptop on Wi-Fi and Ethernet: the lower metric wins', () => {
    const table =
      HEADER +
      'wlan0\t00000000\t0101A8C0\t0003\t0\t0\t600\t00000000\t0\t0\t0\n' +
      'eth0\t00000000\t01B2A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n';
    assert.equal(parseDefaultGateway(table), '192.168.178.1');
  });

  it('no default route (a host on the lab Internet), a down route, a route without gateway', () => {
    assert.equal(parseDefaultGateway(HEADER), undefined);
    assert.equal(
      parseDefaultGateway(HEADER + 'eth0\t00000000\t010112C6\t0002\t0\t0\t0\t00000000\t0\t0\t0\n'),
      undefined,
    );
    assert.equal(
      parseDefaultGateway(HEADER + 'tun0\t00000000\t00000000\t0001\t0\t0\t0\t00000000\t0\t0\t0\n'),
      undefined,
    );
  });

  it('garbage lines are skipped', () => {
    assert.equal(parseDefaultGateway('nonsense\n\n\tx y z\n'), undefined);
    assert.equal(
      parseDefaultGateway(HEADER + 'eth0\t00000000\tZZZZZZZZ\t0003\t0\t0\t0\t00000000\t0\t0\t0\n'),
      undefined,
    );
  });
});

describe('can a mapping help?', () => {
  const scopes: [string, ReturnType<typeof ipv4Scope>][] = [
    ['203.0.113.21', 'public'], // the lab's Internet (documentation range) counts as public
    ['8.8.8.8', 'public'],
    ['10.1.2.3', 'private'],
    ['172.31.255.255', 'private'],
    ['172.32.0.1', 'public'],
    ['192.168.0.1', 'private'],
    ['100.64.0.1', 'carrier-grade'],
    ['100.127.255.254', 'carrier-grade'],
    ['100.128.0.1', 'public'],
    ['198.18.1.1', 'reserved'],
    ['169.254.1.1', 'link-local'],
    ['127.0.0.1', 'loopback'],
    ['0.0.0.0', 'unspecified'],
    ['224.0.0.1', 'reserved'],
    ['2001:db8::1', 'reserved'],
  ];
  for (const [ip, scope] of scopes) {
    it(`${ip} is ${scope}`, () => assert.equal(ipv4Scope(ip), scope));
  }

  it('a router behind the provider’s carrier-grade NAT: says so', () => {
    const v = judgeExternalAddress('100.72.13.5');
    assert.equal(v.usable, false);
    assert.match(
      v.usable ? '' : v.reason,
      /100\.64\.0\.0\/10: the Internet provider's carrier-grade NAT/,
    );
  });

  it('a router behind another router (double NAT): says so', () => {
    const v = judgeExternalAddress('192.168.1.20');
    assert.match(v.usable ? '' : v.reason, /private: another router sits above it \(double NAT\)/);
  });

  it('a router without an external address', () => {
    const v = judgeExternalAddress('0.0.0.0');
    assert.match(v.usable ? '' : v.reason, /no external address/);
  });

  it('a mapping on the address the rendezvous sees helps', () => {
    assert.deepEqual(
      judgeMapping({ ip: '203.0.113.21', port: 40001 }, { ip: '203.0.113.21', port: 51234 }),
      { usable: true },
    );
  });

  it('a public router address that is not what the rendezvous sees: another NAT above it', () => {
    const v = judgeMapping(
      { ip: '203.0.113.99', port: 40001 },
      { ip: '203.0.113.21', port: 40001 },
    );
    assert.match(
      v.usable ? '' : v.reason,
      /203\.0\.113\.99 is not the address the rendezvous sees \(203\.0\.113\.21\)/,
    );
  });
});
