// Turns a path plan into running contenders for the path race: punches, plain connects to a
// public peer's listener, accepts on our own listener, and (client side) the relay channel.
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { connectFrom, socketFamily } from '../net/tcp.js';
import { familyOf, formatEndpoint } from '../peer.js';
import type { Candidate, Contender } from '../nat/path-race.js';
import type { PublicListener } from '../nat/public-listener.js';
import { punch } from '../nat/punch.js';
import type { PunchPlan } from '../nat/punch-plan.js';
import type { PathStep } from './path-plan.js';

export interface ContenderContext {
  localPort: number;
  listener: PublicListener | undefined;
  /** Opens the relay channel through the rendezvous (client side only). */
  openRelay?: (signal: AbortSignal) => Promise<Duplex>;
  punchPlan?: PunchPlan;
}

const CONNECT_TIMEOUT_MS = 3000;

export function toContenders(steps: PathStep[], ctx: ContenderContext): Contender[] {
  return steps.flatMap((step): Contender[] => {
    switch (step.method) {
      case 'punch':
      case 'connect': {
        const remote = formatEndpoint(step.remote);
        // A punch is a simultaneous open from our punching port; a connect dials a listener from
        // any port. Either way one socket comes out.
        const dial = (signal: AbortSignal): Promise<Socket> =>
          step.method === 'punch'
            ? punch({
                localPort: ctx.localPort,
                remote: step.remote,
                signal,
                ...(ctx.punchPlan && { plan: ctx.punchPlan }),
              })
            : connectFrom({
                remote: step.remote,
                localPort: 0,
                signal,
                timeoutMs: CONNECT_TIMEOUT_MS,
              });
        return [
          {
            path: step.path,
            remote,
            delayMs: step.delayMs ?? 0,
            async run(signal, offer) {
              const socket = await dial(signal);
              offer({
                path: step.path,
                reason: step.reason,
                remote,
                family: familyOf(step.remote.ip),
                stream: socket,
              });
            },
          },
        ];
      }
      case 'accept': {
        const listener = ctx.listener;
        if (!listener) return [];
        return [
          {
            path: step.path,
            remote: `our port ${listener.port}`,
            delayMs: step.delayMs ?? 0,
            run(signal, offer) {
              return listener.serve(signal, (socket) => {
                const family = socketFamily(socket);
                const address = (socket.remoteAddress ?? '?').replace(/^::ffff:/, '');
                const candidate: Candidate = {
                  path: step.path,
                  reason: step.reason,
                  remote: formatEndpoint({ ip: address, port: socket.remotePort ?? 0 }),
                  family,
                  stream: socket,
                };
                offer(candidate);
              });
            },
          },
        ];
      }
      case 'relay': {
        const openRelay = ctx.openRelay;
        if (!openRelay) return [];
        return [
          {
            path: 'relay',
            remote: 'the rendezvous relay',
            delayMs: step.delayMs,
            async run(signal, offer) {
              const stream = await openRelay(signal);
              offer({ path: 'relay', reason: step.reason, remote: 'the rendezvous host', stream });
            },
          },
        ];
      }
    }
  });
}
