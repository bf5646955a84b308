// When to send the next SYN of a hole punch, and when to give up. Pure, so it is table-tested
// against the NAT behaviours measured in the lab (../shared/NAT-FACTS.md, docs/nat-lab.md):
// - a NAT that silently drops an early SYN: keep our SYN_SENT socket alive, the peer's SYN will
//   cross it (true simultaneous open), and re-send about once a second;
// - a NAT or host that answers an early SYN with RST: our connect() fails at once; try again soon,
//   by then the peer's own SYN has usually opened its side;
// - ICMP unreachable, or the port pair still held from a previous connection: back off a little.

export interface PunchPlan {
  /** How long one connect() may wait for the handshake before a fresh SYN replaces it. */
  attemptTimeoutMs: number;
  /** Pause after a refused attempt (RST). */
  refusedRetryMs: number;
  /** Pause after any other failure. */
  otherRetryMs: number;
  /** Give up this long after the first SYN. */
  deadlineMs: number;
}

export const DEFAULT_PUNCH_PLAN: PunchPlan = {
  attemptTimeoutMs: 1000,
  refusedRetryMs: 100,
  otherRetryMs: 250,
  deadlineMs: 8000,
};

export type PunchStep = { kind: 'retry'; delayMs: number } | { kind: 'give-up' };

/** What to do after a failed attempt, given the error code and the time spent so far. */
export function nextPunchStep(
  plan: PunchPlan,
  errorCode: string | undefined,
  elapsedMs: number,
): PunchStep {
  let delayMs: number;
  switch (errorCode) {
    case 'ETIMEDOUT':
      delayMs = 0;
      break;
    case 'ECONNREFUSED':
    case 'ECONNRESET':
      delayMs = plan.refusedRetryMs;
      break;
    default:
      delayMs = plan.otherRetryMs;
  }
  if (elapsedMs + delayMs >= plan.deadlineMs) return { kind: 'give-up' };
  return { kind: 'retry', delayMs };
}

/** The timeout of the next attempt: never past the deadline. */
export function attemptTimeout(plan: PunchPlan, elapsedMs: number): number {
  return Math.max(1, Math.min(plan.attemptTimeoutMs, plan.deadlineMs - elapsedMs));
}
