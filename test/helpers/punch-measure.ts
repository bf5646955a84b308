// Measures TCP simultaneous open through the NAT lab with punch-probe.js on both hosts, and prints
// a markdown table (progress goes to stderr). Needs root. Every lab is closed, also on failure.
//   node dist/test/helpers/punch-measure.js [--trials 20] [--intervals 100,200,500] [--skews 0]
//        [--pairs drop/drop,drop/rst,...,sameLan] [--mode plain|hold] [--deadline 6000] [--item6]
// Pairs are server/client NAT kinds; sameLan = both behind one 'drop' router, punching to the
// private address. Skew > 0 starts the client later, < 0 the server.
// mode plain: each side is told the peer's publicIp:localPort up front (port-preserving guess).
// mode hold:  each side first logs in to the rendezvous sshd from its punch port, learns its
//             external ip:port from $SSH_CLIENT, keeps the session open while punching (rcpp2p's plan).
import { parseArgs } from 'node:util';
import { createLab, PUNCH_PROBE, RENDEZVOUS_IP, type Lab, type NatKind } from './nat-lab.js';
import type { ProcessHandle } from './processes.js';

interface SideResult {
  ok: boolean;
  startAt: number;
  connectedAt?: number;
  attempts: number;
  errors: Record<string, number>;
}

interface Trial {
  ok: boolean;
  half: boolean;
  ms?: number;
  attempts: number;
  errors: Record<string, number>;
}

const DEFAULT_PAIRS = [
  'drop/drop',
  'drop/rst',
  'rst/rst',
  'public/drop',
  'drop/public',
  'symmetric/drop',
  'symmetric/symmetric',
  'sameLan',
];

let nextPort = 20_000;

function log(msg: string): void {
  process.stderr.write(`${msg}\n`);
}

function lastJson(p: ProcessHandle, event: string): Record<string, unknown> | undefined {
  for (const line of p.stdout().trim().split('\n').reverse()) {
    try {
      const obj = JSON.parse(line) as Record<string, unknown>;
      if (obj['event'] === event) return obj;
    } catch {
      // not JSON
    }
  }
  return undefined;
}

function probeArgs(lab: Lab, name: string, localPort: number, common: string[], hold: boolean) {
  const rv = lab.rendezvous;
  const observe = hold
    ? ['--observe', `${RENDEZVOUS_IP}:22`, '--user', rv.user, '--key', rv.clientKeyFile]
    : [];
  return [
    PUNCH_PROBE,
    '--name',
    name,
    '--local-port',
    String(localPort),
    ...common,
    ...observe,
    ...(hold ? ['--host-key', rv.hostPublicKey] : []),
  ];
}

async function trial(
  lab: Lab,
  sameLan: boolean,
  intervalMs: number,
  skewMs: number,
  deadlineMs: number,
  hold: boolean,
): Promise<Trial> {
  await lab.flushConntrack('server');
  if (!sameLan) await lab.flushConntrack('client');
  const ports = { server: nextPort++, client: nextPort++ };
  if (nextPort > 29_990) nextPort = 20_000;
  const { server, client } = lab.hosts;
  const delayOf = { server: Math.max(0, -skewMs), client: Math.max(0, skewMs) };
  const common = ['--interval', String(intervalMs), '--deadline', String(deadlineMs)];
  const target = (who: 'server' | 'client'): string => {
    const h = lab.hosts[who];
    return `${sameLan ? h.ip : h.publicIp}:${ports[who]}`;
  };
  const procs: ProcessHandle[] = [];
  try {
    if (!hold) {
      const startAt = Date.now() + 400;
      for (const [me, peer] of [
        ['server', 'client'],
        ['client', 'server'],
      ] as const) {
        const args = probeArgs(lab, me, ports[me], common, false);
        args.push('--peer', target(peer), '--start-at', String(startAt + delayOf[me]));
        procs.push(lab.spawn(me, process.execPath, args));
      }
    } else {
      for (const me of ['server', 'client'] as const) {
        procs.push(lab.spawn(me, process.execPath, probeArgs(lab, me, ports[me], common, true)));
      }
      const observed = await Promise.all(
        procs.map(async (p) => {
          await p.waitForOutput(/"event":"observed"/, 20_000);
          const o = lastJson(p, 'observed');
          return `${String(o?.['ip'])}:${String(o?.['port'])}`;
        }),
      );
      const startAt = Date.now() + 200;
      const peerOf = {
        server: sameLan ? `${client.ip}:${ports.client}` : (observed[1] as string),
        client: sameLan ? `${server.ip}:${ports.server}` : (observed[0] as string),
      };
      procs.forEach((p, i) => {
        const me = i === 0 ? 'server' : 'client';
        p.child.stdin?.end(
          `${JSON.stringify({ peer: peerOf[me], startAt: startAt + delayOf[me] })}\n`,
        );
      });
    }
    await Promise.all(procs.map((p) => p.waitExit(deadlineMs + Math.abs(skewMs) + 20_000)));
  } finally {
    await Promise.all(procs.map((p) => p.kill(500)));
  }
  const sides = procs.map((p) => lastJson(p, 'result') as unknown as SideResult | undefined);
  const errors: Record<string, number> = {};
  let attempts = 0;
  for (const s of sides) {
    attempts += s?.attempts ?? 0;
    for (const [k, n] of Object.entries(s?.errors ?? {})) errors[k] = (errors[k] ?? 0) + n;
  }
  const [a, b] = sides;
  if (!a || !b) {
    const why = procs.map((p) => p.stdout() + p.stderr()).join(' | ');
    return {
      ok: false,
      half: false,
      attempts,
      errors: { ...errors, [`probe: ${why.slice(0, 200)}`]: 1 },
    };
  }
  const ok = a.ok && b.ok;
  const ms =
    ok && a.connectedAt && b.connectedAt
      ? Math.max(0, Math.max(a.connectedAt, b.connectedAt) - Math.max(a.startAt, b.startAt))
      : undefined;
  return { ok, half: a.ok !== b.ok, ms, attempts, errors };
}

function pct(sorted: number[], p: number): number | undefined {
  if (sorted.length === 0) return undefined;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

function row(
  label: string,
  intervalMs: number,
  skewMs: number,
  mode: string,
  trials: Trial[],
): string {
  const ok = trials.filter((t) => t.ok);
  const times = ok.map((t) => t.ms ?? 0).sort((x, y) => x - y);
  const errors: Record<string, number> = {};
  for (const t of trials)
    for (const [k, n] of Object.entries(t.errors)) errors[k] = (errors[k] ?? 0) + n;
  const top = Object.entries(errors)
    .sort((x, y) => y[1] - x[1])
    .slice(0, 3)
    .map(([k, n]) => `${k}×${n}`)
    .join(', ');
  const half = trials.filter((t) => t.half).length;
  const fmt = (n: number | undefined): string => (n === undefined ? '–' : String(n));
  return `| ${label} | ${intervalMs} | ${skewMs} | ${mode} | ${ok.length}/${trials.length}${half ? ` (${half} one-sided)` : ''} | ${fmt(pct(times, 0.5))} | ${fmt(pct(times, 0.9))} | ${fmt(times[times.length - 1])} | ${top} |`;
}

async function item6(): Promise<void> {
  const lab = await createLab({ server: 'drop', client: 'drop' });
  try {
    await lab.startAddressEcho('stranger', 7);
    const rv = lab.rendezvous;
    const p = lab.spawn('server', process.execPath, [
      PUNCH_PROBE,
      '--local-port',
      '30001',
      '--observe',
      `${RENDEZVOUS_IP}:22`,
      '--user',
      rv.user,
      '--key',
      rv.clientKeyFile,
      '--host-key',
      rv.hostPublicKey,
      '--listen-check',
      '--peer',
      '203.0.113.66:7',
    ]);
    await p.waitExit(30_000);
    console.log('observed:', JSON.stringify(lastJson(p, 'observed')));
    console.log(
      'listen-check:',
      JSON.stringify(lastJson(p, 'listen-check') ?? p.stdout() + p.stderr()),
    );
  } finally {
    await lab.close();
  }
}

async function main(): Promise<void> {
  const { values: v } = parseArgs({
    options: {
      trials: { type: 'string', default: '20' },
      intervals: { type: 'string', default: '100,200,500' },
      skews: { type: 'string', default: '0' },
      pairs: { type: 'string', default: DEFAULT_PAIRS.join(',') },
      mode: { type: 'string', default: 'plain' },
      deadline: { type: 'string', default: '6000' },
      item6: { type: 'boolean', default: false },
    },
  });
  if (v.item6) return item6();
  const trials = Number(v.trials);
  const hold = v.mode === 'hold';
  console.log(
    '| pair (server/client) | interval ms | skew ms | mode | success | median ms | p90 ms | max ms | errors seen (top 3) |',
  );
  console.log('|---|---|---|---|---|---|---|---|---|');
  for (const pair of v.pairs.split(',')) {
    const sameLan = pair === 'sameLan';
    const [server, client] = (sameLan ? ['drop', 'drop'] : pair.split('/')) as [NatKind, NatKind];
    const t0 = Date.now();
    const lab = await createLab({ server, client, sameLan });
    log(`# ${pair}: lab built in ${lab.buildMs} ms`);
    try {
      for (const interval of v.intervals.split(',').map(Number)) {
        for (const skew of v.skews.split(',').map(Number)) {
          const results: Trial[] = [];
          for (let i = 0; i < trials; i++) {
            results.push(await trial(lab, sameLan, interval, skew, Number(v.deadline), hold));
            log(
              `#   ${pair} ${interval}ms skew ${skew}: trial ${i + 1} ${results[i]?.ok ? 'ok' : 'FAIL'} ${results[i]?.ms ?? ''}`,
            );
          }
          console.log(row(pair, interval, skew, v.mode, results));
        }
      }
    } finally {
      const c0 = Date.now();
      await lab.close();
      log(`# ${pair}: lab closed in ${Date.now() - c0} ms (total ${Date.now() - t0} ms)`);
    }
  }
}

main().then(
  () => process.exit(0),
  (err: Error) => {
    console.error(err);
    process.exit(1);
  },
);
