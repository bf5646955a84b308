// One port mapping on the home router for as long as its owner needs it: the file server's punch
// port while it serves, a client's listener for one command. Finds a router (every protocol at
// once, bounded), maps one TCP port with a bounded lease, renews it at half the lease, and removes
// it on close(), which is idempotent and waits for a router request in flight (it may have
// created the mapping) before removing. Progress events say what was mapped, renewed and removed.
//
//   searching --a router answered---------------------------> mapping
//   searching | mapping --no router, refused, cannot help----> unavailable
//   mapping --granted----------------------------------------> mapped --half lease--> (renew) mapped
//   mapped --renewals failed until the lease ran out---------> lapsed --retry--------> mapped
//   mapped --reject(reason): the rendezvous sees us elsewhere-> unavailable (mapping removed)
//   any --close()----------------------------------------------> closed (mapping removed)
//
// A mapping whose external address is not an Internet address (private, 100.64.0.0/10) is never
// offered: another NAT above the router would drop what it lets in.
import { deadline } from '../../deadline.js';
import { RcppError } from '../../errors.js';
import { logger } from '../../log.js';
import {
  formatEndpoint,
  PORT_MAPPING_PROTOCOLS,
  sameEndpoint,
  type PortMappingProtocol,
} from '../../peer.js';
import type { OnProgress } from '../../progress.js';
import { findGateway, type FindGatewayOptions, type FindResult } from './find-gateway.js';
import type { GatewayClient, Mapping, MapRequest } from './gateway-client.js';
import { judgeExternalAddress } from './judge.js';

const log = logger('portmap');

export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** Real time; timers do not keep the process alive (the owner's close() ends the mapping). */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms).unref(),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

export interface PortMappingOptions {
  /** The local TCP port to map, or how to get one once a router answered (a client's listener). */
  internalPort: number | ((signal: AbortSignal) => Promise<number>);
  /** The lease asked for, in seconds. */
  lifetimeSeconds: number;
  /** Protocols allowed (default all three; preference PCP, NAT-PMP, UPnP). */
  protocols?: readonly PortMappingProtocol[];
  /** Bound on finding a router; default 2 s. */
  findTimeoutMs?: number;
  onProgress?: OnProgress;
  /** Tests: how routers are found, and time. */
  find?: (opts: FindGatewayOptions) => Promise<FindResult>;
  clock?: Clock;
}

export type PortMappingState =
  | { s: 'searching' }
  | { s: 'mapping'; protocol: PortMappingProtocol }
  | { s: 'mapped'; client: GatewayClient; mapping: Mapping; expiresAt: number }
  | { s: 'lapsed'; client: GatewayClient; request: MapRequest; last: Mapping }
  | { s: 'unavailable'; reason: string }
  | { s: 'closed' };

export interface PortMapping {
  readonly state: PortMappingState;
  /** The mapping in force now, if any. */
  current(): Mapping | undefined;
  /**
   * The mapping as soon as it is known: at once when mapped or when nothing answered yet (never
   * waits on silence); when a router answered and the mapping is on its way, up to `waitMs`.
   */
  settled(waitMs: number, signal: AbortSignal): Promise<Mapping | undefined>;
  /** Called with the mapping in force whenever it appears, changes or goes away. */
  onChange(listener: (mapping: Mapping | undefined) => void): () => void;
  /** The mapping cannot help (the rendezvous sees us elsewhere): say why, remove it. */
  reject(reason: string): Promise<void>;
  /** Stops renewing and removes the mapping from the router. Idempotent. */
  close(): Promise<void>;
}

const FIND_TIMEOUT_MS = 2000;
/** One router request (with its retransmissions) at most. */
const REQUEST_TIMEOUT_MS = 3000;
const REMOVE_TIMEOUT_MS = 2000;
/** After a failed renewal: try again after a quarter of what is left, but not sooner than this. */
const MIN_RENEW_RETRY_MS = 5000;
/** A lapsed mapping is asked for again this often. */
const LAPSED_RETRY_MS = 60_000;

export function startPortMapping(opts: PortMappingOptions): PortMapping {
  return new Lifecycle(opts);
}

class Lifecycle implements PortMapping {
  private st: PortMappingState = { s: 'searching' };
  /** Aborted by close(): stops the search and the timers (router requests finish on their own). */
  private readonly life = new AbortController();
  private readonly listeners = new Set<(mapping: Mapping | undefined) => void>();
  private readonly waiters = new Set<() => void>();
  private timer: unknown;
  /** The router request in flight, if any (close waits for it). */
  private inFlight: Promise<void> = Promise.resolve();
  private closing: Promise<void> | undefined;
  private readonly clock: Clock;
  private readonly protocols: readonly PortMappingProtocol[];

  constructor(private readonly opts: PortMappingOptions) {
    this.clock = opts.clock ?? systemClock;
    this.protocols = opts.protocols ?? PORT_MAPPING_PROTOCOLS;
    this.inFlight = this.begin().catch((err: unknown) => {
      log(`port mapping stopped: ${(err as Error).message}`);
      this.to({ s: 'unavailable', reason: (err as Error).message });
    });
  }

  get state(): PortMappingState {
    return this.st;
  }

  current(): Mapping | undefined {
    return this.st.s === 'mapped' ? this.st.mapping : undefined;
  }

  settled(waitMs: number, signal: AbortSignal): Promise<Mapping | undefined> {
    if (this.st.s !== 'mapping') return Promise.resolve(this.current());
    return new Promise((resolve) => {
      const done = (): void => {
        if (this.st.s === 'mapping' && !signal.aborted) return;
        this.clock.clearTimeout(timer);
        this.waiters.delete(done);
        signal.removeEventListener('abort', done);
        resolve(this.current());
      };
      const timer = this.clock.setTimeout(() => {
        this.waiters.delete(done);
        signal.removeEventListener('abort', done);
        resolve(this.current());
      }, waitMs);
      this.waiters.add(done);
      signal.addEventListener('abort', done, { once: true });
    });
  }

  onChange(listener: (mapping: Mapping | undefined) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async reject(reason: string): Promise<void> {
    const st = this.st;
    if (st.s !== 'mapped' && st.s !== 'lapsed') return;
    this.opts.onProgress?.({ type: 'portmap:unusable', protocol: st.client.protocol, reason });
    this.clock.clearTimeout(this.timer);
    this.to({ s: 'unavailable', reason });
    await this.inFlight;
    await this.remove(st.client, st.s === 'mapped' ? st.mapping : st.last);
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      this.life.abort(new RcppError('ABORTED', 'The port mapping was closed.'));
      this.clock.clearTimeout(this.timer);
      await this.inFlight;
      const st = this.st;
      this.to({ s: 'closed' });
      if (st.s === 'mapped') await this.remove(st.client, st.mapping);
      if (st.s === 'lapsed') await this.remove(st.client, st.last);
    })();
    return this.closing;
  }

  /** The one place the state changes: wakes waiters, tells listeners when the mapping changed. */
  private to(next: PortMappingState): void {
    if (this.st.s === 'closed') return;
    const before = this.current();
    this.st = next;
    const after = this.current();
    for (const wake of [...this.waiters]) wake();
    if (before !== after && !(before && after && sameEndpoint(before.external, after.external))) {
      for (const listener of this.listeners) listener(after);
    }
  }

  private async begin(): Promise<void> {
    const found = await this.find();
    if (found === undefined || this.life.signal.aborted) return;
    const client = found;
    if (client.externalIp !== undefined) {
      const verdict = judgeExternalAddress(client.externalIp);
      if (!verdict.usable) {
        this.opts.onProgress?.({
          type: 'portmap:unusable',
          protocol: client.protocol,
          reason: verdict.reason,
        });
        this.to({ s: 'unavailable', reason: verdict.reason });
        return;
      }
    }
    const internalPort =
      typeof this.opts.internalPort === 'number'
        ? this.opts.internalPort
        : await this.opts.internalPort(this.life.signal);
    if (this.life.signal.aborted) return;
    const request: MapRequest = {
      internalPort,
      externalPortHint: internalPort,
      lifetimeSeconds: this.opts.lifetimeSeconds,
    };
    await this.map(client, request, 'first');
  }

  private async find(): Promise<GatewayClient | undefined> {
    const limit = this.opts.findTimeoutMs ?? FIND_TIMEOUT_MS;
    const bound = deadline(
      this.life.signal,
      limit,
      () => new RcppError('TIMEOUT', `no router answered within ${(limit / 1000).toFixed(1)} s`),
    );
    let result: FindResult;
    try {
      result = await (this.opts.find ?? findGateway)({
        protocols: this.protocols,
        signal: bound.signal,
        onAnswer: (protocol) => {
          if (this.st.s === 'searching') this.to({ s: 'mapping', protocol });
        },
      });
    } catch (err) {
      if (this.life.signal.aborted) return undefined;
      result = { ok: false, reasons: [(err as Error).message] };
    } finally {
      bound.clear();
    }
    if (result.ok) return result.client;
    const message = result.reasons.join('; ') || 'no router answered';
    log(`no router maps ports: ${message}`);
    if (this.st.s === 'mapping') {
      this.opts.onProgress?.({
        type: 'portmap:failed',
        stage: 'map',
        protocol: this.st.protocol,
        message,
      });
    } else {
      this.opts.onProgress?.({ type: 'portmap:unavailable', message });
    }
    this.to({ s: 'unavailable', reason: message });
    return undefined;
  }

  /** One mapping request; `why` says whether it is the first, a renewal or a retry after lapsing. */
  private async map(
    client: GatewayClient,
    request: MapRequest,
    why: 'first' | 'renew' | 'retry',
  ): Promise<void> {
    const bound = deadline(
      new AbortController().signal,
      REQUEST_TIMEOUT_MS,
      () => new RcppError('TIMEOUT', `${client.describe} did not answer in time`),
    );
    let mapping: Mapping;
    try {
      mapping = await client.map(request, bound.signal);
    } catch (err) {
      this.mapFailed(client, request, why, (err as Error).message);
      return;
    } finally {
      bound.clear();
    }
    const previous = this.st.s === 'mapped' ? this.st.mapping : undefined;
    const verdict = judgeExternalAddress(mapping.external.ip);
    if (!verdict.usable) {
      this.opts.onProgress?.({
        type: 'portmap:unusable',
        protocol: client.protocol,
        reason: verdict.reason,
      });
      this.to({ s: 'unavailable', reason: verdict.reason });
      await this.remove(client, mapping);
      return;
    }
    // Rejected while the request was out: reject() removes it. (Closed while it was out: close()
    // waits for this request, then removes what the state below holds.)
    if (this.st.s === 'unavailable') return;
    const expiresAt = this.clock.now() + mapping.lifetimeSeconds * 1000;
    const changed = previous !== undefined && !sameEndpoint(previous.external, mapping.external);
    this.to({ s: 'mapped', client, mapping, expiresAt });
    if (why === 'renew' && !changed) {
      this.opts.onProgress?.({
        type: 'portmap:renewed',
        protocol: client.protocol,
        external: mapping.external,
        lifetimeSeconds: mapping.lifetimeSeconds,
      });
    } else {
      this.opts.onProgress?.({
        type: 'portmap:mapped',
        protocol: client.protocol,
        via: client.describe,
        gateway: client.address,
        internal: { ip: mapping.internalIp, port: mapping.internalPort },
        external: mapping.external,
        lifetimeSeconds: mapping.lifetimeSeconds,
        changed,
      });
    }
    this.schedule(Math.max(1, (mapping.lifetimeSeconds * 1000) / 2), () => this.renew());
  }

  private mapFailed(
    client: GatewayClient,
    request: MapRequest,
    why: 'first' | 'renew' | 'retry',
    message: string,
  ): void {
    log(`${why} mapping via ${client.describe} failed: ${message}`);
    const st = this.st;
    if (st.s === 'closed') return;
    if (why === 'first') {
      this.opts.onProgress?.({
        type: 'portmap:failed',
        stage: 'map',
        protocol: client.protocol,
        message,
      });
      this.to({ s: 'unavailable', reason: message });
      return;
    }
    if (st.s === 'mapped') {
      const left = st.expiresAt - this.clock.now();
      if (left > MIN_RENEW_RETRY_MS) {
        this.schedule(Math.max(MIN_RENEW_RETRY_MS, left / 4), () => this.renew());
        return;
      }
      this.opts.onProgress?.({
        type: 'portmap:failed',
        stage: 'renew',
        protocol: client.protocol,
        message: `${formatEndpoint(st.mapping.external)} lapsed: ${message}`,
      });
      this.to({ s: 'lapsed', client, request, last: st.mapping });
    }
    this.schedule(LAPSED_RETRY_MS, () => this.retry());
  }

  private renew(): void {
    const st = this.st;
    if (st.s !== 'mapped') return;
    const request: MapRequest = {
      internalPort: st.mapping.internalPort,
      externalPortHint: st.mapping.external.port,
      lifetimeSeconds: this.opts.lifetimeSeconds,
    };
    this.run(() => this.map(st.client, request, 'renew'));
  }

  private retry(): void {
    const st = this.st;
    if (st.s !== 'lapsed') return;
    this.run(() => this.map(st.client, st.request, 'retry'));
  }

  private run(op: () => Promise<void>): void {
    this.inFlight = this.inFlight.then(op).catch((err: unknown) => {
      log(`port mapping request failed: ${(err as Error).message}`);
    });
  }

  private schedule(ms: number, fn: () => void): void {
    this.clock.clearTimeout(this.timer);
    if (this.life.signal.aborted) return;
    this.timer = this.clock.setTimeout(fn, ms);
  }

  private async remove(client: GatewayClient, mapping: Mapping): Promise<void> {
    const bound = deadline(
      new AbortController().signal,
      REMOVE_TIMEOUT_MS,
      () => new RcppError('TIMEOUT', `${client.describe} did not confirm the removal in time`),
    );
    try {
      await client.unmap(mapping, bound.signal);
      this.opts.onProgress?.({
        type: 'portmap:removed',
        protocol: client.protocol,
        external: mapping.external,
      });
    } catch (err) {
      this.opts.onProgress?.({
        type: 'portmap:failed',
        stage: 'remove',
        protocol: client.protocol,
        message: `${formatEndpoint(mapping.external)}: ${(err as Error).message}`,
      });
    } finally {
      bound.clear();
    }
  }
}
