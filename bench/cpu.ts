// CPU time of processes, from /proc/PID/stat (Linux): user and system seconds.
//
// A process's own time is fields 14-15 (utime, stime); the time of the children it has waited for is
// fields 16-17 (cutime, cstime). Summing all four over a process and its living descendants, before
// and after some work, gives the CPU the whole tree spent on it: a child that exits in between moves
// its time into its parent's cutime/cstime, so nothing is lost or counted twice (unless the child
// is reaped outside the tree). For processes this one spawns and waits for, `reapedChildren()`
// reads our own cutime/cstime.
import { readFileSync } from 'node:fs';
import { descendantPids } from '../test/helpers/processes.js';

/** Clock ticks per second of /proc/PID/stat times (sysconf(_SC_CLK_TCK), 100 on Linux). */
const TICKS = 100;

export interface Cpu {
  user: number;
  sys: number;
}

export const NO_CPU: Cpu = { user: 0, sys: 0 };

export function plus(a: Cpu, b: Cpu): Cpu {
  return { user: a.user + b.user, sys: a.sys + b.sys };
}

export function minus(a: Cpu, b: Cpu): Cpu {
  return { user: a.user - b.user, sys: a.sys - b.sys };
}

function stat(pid: number | 'self'): { own: Cpu; children: Cpu } | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined; // gone meanwhile
  }
  // Fields after the ")" that closes the command name start at field 3 (state).
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const n = (field: number): number => Number(f[field - 3]) / TICKS;
  return { own: { user: n(14), sys: n(15) }, children: { user: n(16), sys: n(17) } };
}

/** CPU of a process and every living descendant, waited-for children included. */
export function treeCpu(pid: number): Cpu {
  let sum = NO_CPU;
  for (const p of [pid, ...descendantPids(pid)]) {
    const s = stat(p);
    if (s) sum = plus(sum, plus(s.own, s.children));
  }
  return sum;
}

/** CPU of the children this process has waited for (it adds up as they exit). */
export function reapedChildrenCpu(): Cpu {
  return stat('self')?.children ?? NO_CPU;
}

/** CPU of this process itself (threads included). */
export function ownCpu(): Cpu {
  const u = process.cpuUsage();
  return { user: u.user / 1e6, sys: u.system / 1e6 };
}
