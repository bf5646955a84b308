import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { classifyNat } from '../../../src/nat/nat-kind.js';
import { attemptTimeout, DEFAULT_PUNCH_PLAN, nextPunchStep } from '../../../src/nat/punch-plan.js';

describe('punch plan', () => {
  const plan = DEFAULT_PUNCH_PLAN;
  const cases: {
    setup: string;
    code: string | undefined;
    elapsed: number;
    expected: ReturnType<typeof nextPunchStep>;
  }[] = [
    {
      setup: 'RFC 5382 router dropped our early SYN; our attempt timed out',
      code: 'ETIMEDOUT',
      elapsed: 1000,
      expected: { kind: 'retry', delayMs: 0 },
    },
    {
      setup: 'RST-answering router refused our early SYN',
      code: 'ECONNREFUSED',
      elapsed: 20,
      expected: { kind: 'retry', delayMs: 100 },
    },
    {
      setup: 'public peer host not yet in SYN_SENT answered RST',
      code: 'ECONNREFUSED',
      elapsed: 350,
      expected: { kind: 'retry', delayMs: 100 },
    },
    {
      setup: 'ICMP host unreachable from a router',
      code: 'EHOSTUNREACH',
      elapsed: 100,
      expected: { kind: 'retry', delayMs: 250 },
    },
    {
      setup: 'port pair still held from a previous connection',
      code: 'EADDRNOTAVAIL',
      elapsed: 0,
      expected: { kind: 'retry', delayMs: 250 },
    },
    {
      setup: 'deadline reached after many refusals',
      code: 'ECONNREFUSED',
      elapsed: 7950,
      expected: { kind: 'give-up' },
    },
    {
      setup: 'deadline reached while waiting for SYNs',
      code: 'ETIMEDOUT',
      elapsed: 8000,
      expected: { kind: 'give-up' },
    },
  ];
  for (const c of cases) {
    it(c.setup, () => {
      assert.deepEqual(nextPunchStep(plan, c.code, c.elapsed), c.expected);
    });
  }

  it('never lets an attempt run past the deadline', () => {
    assert.equal(attemptTimeout(plan, 0), 1000);
    assert.equal(attemptTimeout(plan, 7600), 400);
    assert.equal(attemptTimeout(plan, 9000), 1);
  });
});

describe('NAT kind from one observation', () => {
  const cases: {
    setup: string;
    local: number;
    observed: { ip: string; port: number };
    ips: string[];
    expected: string;
  }[] = [
    {
      setup: 'home router that keeps ports (Linux masquerade)',
      local: 40002,
      observed: { ip: '203.0.113.22', port: 40002 },
      ips: ['127.0.0.1', '198.18.2.2'],
      expected: 'port-preserving',
    },
    {
      setup: 'symmetric or carrier-grade NAT',
      local: 40002,
      observed: { ip: '203.0.113.22', port: 51871 },
      ips: ['127.0.0.1', '198.18.2.2'],
      expected: 'port-changing',
    },
    {
      setup: 'VPS with a public address',
      local: 40001,
      observed: { ip: '203.0.113.31', port: 40001 },
      ips: ['127.0.0.1', '203.0.113.31'],
      expected: 'public',
    },
    {
      setup: 'peers on one machine over loopback',
      local: 40001,
      observed: { ip: '127.0.0.1', port: 40001 },
      ips: ['127.0.0.1', '10.0.0.5'],
      expected: 'public',
    },
  ];
  for (const c of cases) {
    it(c.setup, () => {
      assert.equal(classifyNat(c.local, c.observed, c.ips), c.expected);
    });
  }
});
