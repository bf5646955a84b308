import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { lanEndpoints } from '../../../src/nat/nat-kind.js';

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
