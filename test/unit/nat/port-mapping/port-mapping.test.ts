// The port-mapping lifecycle with a scripted router and a fake clock: map, renew at half the lease,
// follow a changed external port, lapse and come back, remove on close (once), never wait on a
// silent network, refuse mappings that cannot help.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { FindResult } from '../../../../src/nat/port-mapping/find-gateway.js';
import type {
  GatewayClient,
  Mapping,
  MapRequest,
} from '../../../../src/nat/port-mapping/gateway-client.js';
import {
  startPortMapping,
  type Clock,
  type PortMappingOptions,
} from '../../../../src/nat/port-mapping/port-mapping.js';
import type { ProgressEvent } from '../../../../src/progress.js';

class FakeClock implements Clock {
  t = 1_000_000;
  private timers: { at: number; fn: () => void }[] = [];
  now(): number {
    return this.t;
  }
  setTimeout(fn: () => void, ms: number): unknown {
    const timer = { at: this.t + ms, fn };
    this.timers.push(timer);
    return timer;
  }
  clearTimeout(handle: unknown): void {
    this.timers = this.timers.filter((t) => t !== handle);
  }
  /** Moves time on, firing due timers in order, letting promises settle after each. */
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    for (;;) {
      const due = this.timers.filter((t) => t.at <= end).sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      this.timers = this.timers.filter((t) => t !== due);
      this.t = due.at;
      due.fn();
      await settle();
    }
    this.t = end;
    await settle();
  }
  pending(): number[] {
    return this.timers.map((t) => t.at - this.t).sort((a, b) => a - b);
  }
}

async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
}

type Answer = (request: MapRequest) => Mapping | Error;

/** A router that answers map requests from a script (the last answer repeats). */
function scriptedRouter(answers: Answer[], externalIp?: string) {
  const calls: string[] = [];
  const ok =
    (port: number, ip = '203.0.113.21', lifetimeSeconds = 3600): Answer =>
    (r) => ({
      protocol: 'pcp',
      gateway: '198.18.1.1',
      internalIp: '198.18.1.2',
      internalPort: r.internalPort,
      external: { ip, port },
      lifetimeSeconds,
    });
  let n = 0;
  const client: GatewayClient = {
    protocol: 'pcp',
    address: '198.18.1.1',
    describe: 'PCP',
    externalIp,
    map(request) {
      calls.push(`map ${request.internalPort} hint ${request.externalPortHint}`);
      const answer = (answers[Math.min(n++, answers.length - 1)] ?? ok(request.internalPort))(
        request,
      );
      return answer instanceof Error ? Promise.reject(answer) : Promise.resolve(answer);
    },
    unmap(mapping) {
      calls.push(`unmap ${mapping.external.port}`);
      return Promise.resolve();
    },
  };
  return { client, calls, ok };
}

function harness(opts: Partial<PortMappingOptions> & { client?: GatewayClient; none?: boolean }) {
  const clock = new FakeClock();
  const events: ProgressEvent[] = [];
  const changes: (string | undefined)[] = [];
  const found: FindResult = opts.none
    ? { ok: false, reasons: ['nothing answers on 198.18.1.1 UDP port 5351'] }
    : { ok: true, client: opts.client as GatewayClient };
  const pm = startPortMapping({
    internalPort: 40001,
    lifetimeSeconds: 3600,
    clock,
    onProgress: (e) => events.push(e),
    find: (f) => {
      if (found.ok) f.onAnswer?.('pcp');
      return Promise.resolve(found);
    },
    ...opts,
  });
  pm.onChange((m) => changes.push(m && `${m.external.ip}:${m.external.port}`));
  return { pm, clock, events, changes, types: () => events.map((e) => e.type) };
}

describe('port mapping lifecycle', () => {
  it('maps the punch port, renews at half the lease (not before), removes once on close', async () => {
    const router = scriptedRouter([]);
    const h = harness({ client: router.client });
    await settle();
    assert.deepEqual(router.calls, ['map 40001 hint 40001']);
    assert.equal(h.pm.current()?.external.port, 40001);
    assert.deepEqual(h.changes, ['203.0.113.21:40001']);
    assert.deepEqual(h.types(), ['portmap:mapped']);
    assert.deepEqual(h.clock.pending(), [1_800_000]);

    await h.clock.advance(1_799_999);
    assert.equal(router.calls.length, 1, 'no renewal before half the lease');
    await h.clock.advance(1);
    assert.deepEqual(router.calls.slice(1), ['map 40001 hint 40001']);
    assert.deepEqual(h.types(), ['portmap:mapped', 'portmap:renewed']);
    assert.deepEqual(h.changes, ['203.0.113.21:40001'], 'a renewal that changes nothing is quiet');

    await Promise.all([h.pm.close(), h.pm.close()]);
    await h.pm.close();
    assert.deepEqual(router.calls.slice(2), ['unmap 40001']);
    assert.deepEqual(h.types().slice(2), ['portmap:removed']);
    assert.deepEqual(h.changes, ['203.0.113.21:40001', undefined]);
    assert.deepEqual(h.clock.pending(), [], 'no renewal left after close');
  });

  it('a renewal that brings another external port (router reboot) republishes', async () => {
    const base = scriptedRouter([]);
    const router = scriptedRouter([base.ok(40001), base.ok(40077)]);
    const h = harness({ client: router.client });
    await settle();
    await h.clock.advance(1_800_000);
    assert.deepEqual(router.calls, ['map 40001 hint 40001', 'map 40001 hint 40001']);
    assert.deepEqual(h.changes, ['203.0.113.21:40001', '203.0.113.21:40077']);
    const last = h.events.at(-1);
    assert.ok(last?.type === 'portmap:mapped' && last.changed);
  });

  it('failed renewals retry, then the mapping lapses, then comes back', async () => {
    const base = scriptedRouter([]);
    const down = (): Error => new Error('198.18.1.1 did not answer on UDP port 5351');
    const router = scriptedRouter([
      base.ok(40001, undefined, 60),
      ...Array<Answer>(6).fill(down),
      base.ok(40001),
    ]);
    const h = harness({ client: router.client, lifetimeSeconds: 60 });
    await settle();
    await h.clock.advance(30_000); // renewal at half: fails, 30 s left -> retry in 7.5 s
    assert.equal(router.calls.length, 2);
    assert.deepEqual(h.clock.pending(), [7_500]);
    await h.clock.advance(7_500); // fails, 22.5 s left -> retry in 5.6 s
    await h.clock.advance(22_500); // fails every 5 s until less than 5 s are left: lapsed
    assert.equal(router.calls.length, 7);
    assert.equal(h.pm.current(), undefined);
    assert.deepEqual(h.changes, ['203.0.113.21:40001', undefined]);
    const failed = h.events.find((e) => e.type === 'portmap:failed');
    assert.match(failed?.type === 'portmap:failed' ? failed.message : '', /lapsed/);
    await h.clock.advance(60_000);
    assert.equal(h.pm.current()?.external.port, 40001);
    assert.deepEqual(h.changes, ['203.0.113.21:40001', undefined, '203.0.113.21:40001']);
    await h.pm.close();
  });

  it('no router answers: says so once, and settled() does not wait', async () => {
    const h = harness({ none: true });
    await settle();
    assert.deepEqual(h.types(), ['portmap:unavailable']);
    assert.equal(h.pm.state.s, 'unavailable');
    assert.equal(await h.pm.settled(10_000, new AbortController().signal), undefined);
    await h.pm.close();
    assert.deepEqual(h.types(), ['portmap:unavailable']);
  });

  it('a router whose own external address is private is not asked to map', async () => {
    const router = scriptedRouter([], '192.168.1.20');
    const h = harness({ client: router.client });
    await settle();
    assert.deepEqual(router.calls, []);
    assert.deepEqual(h.types(), ['portmap:unusable']);
    const e = h.events[0];
    assert.match(e?.type === 'portmap:unusable' ? e.reason : '', /double NAT/);
  });

  it('a PCP mapping on a carrier-grade address is removed at once', async () => {
    const base = scriptedRouter([]);
    const router = scriptedRouter([base.ok(40001, '100.64.7.9')]);
    const h = harness({ client: router.client });
    await settle();
    assert.deepEqual(router.calls, ['map 40001 hint 40001', 'unmap 40001']);
    assert.deepEqual(h.types(), ['portmap:unusable', 'portmap:removed']);
    assert.deepEqual(h.changes, []);
    assert.equal(h.pm.current(), undefined);
  });

  it('the rendezvous sees us elsewhere: reject() says why and removes the mapping', async () => {
    const router = scriptedRouter([]);
    const h = harness({ client: router.client });
    await settle();
    await h.pm.reject('another NAT sits above the router');
    assert.deepEqual(router.calls, ['map 40001 hint 40001', 'unmap 40001']);
    assert.deepEqual(h.types(), ['portmap:mapped', 'portmap:unusable', 'portmap:removed']);
    assert.equal(h.pm.current(), undefined);
    await h.pm.close();
    assert.equal(router.calls.length, 2, 'nothing left to remove');
  });

  it('settled(): nothing yet answered -> at once; a router answered -> waits for its mapping', async () => {
    let answer: ((r: FindResult) => void) | undefined;
    let told: ((p: 'pcp') => void) | undefined;
    const router = scriptedRouter([]);
    const h = harness({
      find: (f) => {
        told = () => f.onAnswer?.('pcp');
        return new Promise((resolve) => (answer = resolve));
      },
    });
    await settle();
    assert.equal(h.pm.state.s, 'searching');
    assert.equal(await h.pm.settled(5000, new AbortController().signal), undefined);
    told?.('pcp');
    assert.equal(h.pm.state.s, 'mapping');
    const waiting = h.pm.settled(5000, new AbortController().signal);
    answer?.({ ok: true, client: router.client });
    assert.equal((await waiting)?.external.port, 40001);
    await h.pm.close();
  });

  it('settled() gives up after its wait when the router is slow', async () => {
    const h = harness({
      find: (f) => {
        f.onAnswer?.('upnp');
        return new Promise(() => {});
      },
    });
    await settle();
    const waiting = h.pm.settled(300, new AbortController().signal);
    await h.clock.advance(300);
    assert.equal(await waiting, undefined);
  });

  it('close() during the first request waits for it, then removes what it made', async () => {
    let grant: (() => void) | undefined;
    const base = scriptedRouter([]);
    const calls: string[] = [];
    const client: GatewayClient = {
      ...base.client,
      map: (r) =>
        new Promise((resolve) => {
          calls.push('map');
          grant = () => resolve(base.ok(r.internalPort)(r) as Mapping);
        }),
      unmap: () => {
        calls.push('unmap');
        return Promise.resolve();
      },
    };
    const h = harness({ client });
    await settle();
    const closing = h.pm.close();
    await settle();
    assert.deepEqual(calls, ['map'], 'close waits for the router');
    grant?.();
    await closing;
    assert.deepEqual(calls, ['map', 'unmap']);
    assert.equal(h.pm.state.s, 'closed');
    assert.deepEqual(h.clock.pending(), []);
  });

  it('a search that never ends is cut at findTimeoutMs', async () => {
    const events: ProgressEvent[] = [];
    const pm = startPortMapping({
      internalPort: 40001,
      lifetimeSeconds: 60,
      findTimeoutMs: 30,
      onProgress: (e) => events.push(e),
      find: (f) =>
        new Promise((_resolve, reject) =>
          f.signal.addEventListener('abort', () => reject(f.signal.reason as Error)),
        ),
    });
    while (pm.state.s === 'searching') await new Promise((r) => setTimeout(r, 5));
    assert.equal(pm.state.s, 'unavailable');
    const e = events[0];
    assert.match(e?.type === 'portmap:unavailable' ? e.message : '', /within 0\.0 s|within/);
    await pm.close();
  });

  it('a client’s port comes from its callback, asked only once a router answered', async () => {
    const router = scriptedRouter([]);
    let asked = 0;
    const h = harness({
      client: router.client,
      internalPort: () => {
        asked++;
        return Promise.resolve(45678);
      },
    });
    await settle();
    assert.equal(asked, 1);
    assert.deepEqual(router.calls, ['map 45678 hint 45678']);
    await h.pm.close();
    const none = harness({ none: true, internalPort: () => Promise.resolve(asked++) });
    await settle();
    assert.equal(asked, 1, 'no router, no listener');
    await none.pm.close();
  });
});
