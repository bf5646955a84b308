// TCP hole punching by simultaneous open: connect() from our punching port to the peer's external
// address while the peer does the same toward ours. Each side's outgoing SYN opens its own NAT for
// the other's SYN; the two SYNs cross and both sockets connect (RFC 5128 section 3.4). We never
// listen on the punching port, so nothing is reachable there but the peer we are punching to.
import type net from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import { abortError, RcppError } from '../errors.js';
import { logger } from '../log.js';
import { connectFrom } from '../net/tcp.js';
import type { Endpoint } from '../peer.js';
import { attemptTimeout, DEFAULT_PUNCH_PLAN, nextPunchStep, type PunchPlan } from './punch-plan.js';

const log = logger('punch');

export interface PunchOptions {
  localPort: number;
  remote: Endpoint;
  signal: AbortSignal;
  plan?: PunchPlan;
  now?: () => number;
}

/** Resolves with the connected socket, or rejects with NO_PATH when the plan gives up. */
export async function punch(opts: PunchOptions): Promise<net.Socket> {
  const plan = opts.plan ?? DEFAULT_PUNCH_PLAN;
  const now = opts.now ?? Date.now;
  const started = now();
  const target = `${opts.remote.ip}:${opts.remote.port}`;
  let lastCode: string | undefined;
  for (let attempt = 1; ; attempt++) {
    if (opts.signal.aborted) throw abortError(opts.signal);
    const elapsed = now() - started;
    try {
      const socket = await connectFrom({
        remote: opts.remote,
        localPort: opts.localPort,
        signal: opts.signal,
        timeoutMs: attemptTimeout(plan, elapsed),
      });
      log(
        `punched ${opts.localPort} -> ${target} on attempt ${attempt} after ${now() - started} ms`,
      );
      return socket;
    } catch (err) {
      if (opts.signal.aborted) throw abortError(opts.signal);
      lastCode = (err as NodeJS.ErrnoException).code;
      const step = nextPunchStep(plan, lastCode, now() - started);
      log(
        `attempt ${attempt} ${opts.localPort} -> ${target}: ${lastCode ?? String(err)}, ${step.kind}`,
      );
      if (step.kind === 'give-up') break;
      if (step.delayMs > 0) {
        try {
          await delay(step.delayMs, undefined, { signal: opts.signal });
        } catch {
          throw abortError(opts.signal);
        }
      }
    }
  }
  throw new RcppError(
    'NO_PATH',
    `Hole punching to ${target} did not connect within ${plan.deadlineMs / 1000} s (last error ${lastCode ?? 'none'}).`,
  );
}
