// Child processes for tests: spawn (optionally inside a network namespace), collect output, wait for
// exit with a bounded timeout, and kill by PID at teardown (SIGTERM, then SIGKILL after a grace).
// `ip netns exec NS cmd` execs cmd in place, so the PID we track is the real process.
// Nothing here kills by name: only PIDs we spawned, their descendants, or PIDs the kernel lists as
// living inside a namespace the caller created (`ip netns pids NS`).
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';

export const IP = '/usr/sbin/ip';

export interface SpawnOptions {
  /** Run inside this network namespace (`ip netns exec NS ...`). */
  netns?: string;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Written to stdin, which is then closed. Leave undefined to keep stdin open (a pipe). */
  input?: string;
}

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface RunResult extends ExitInfo {
  stdout: string;
  stderr: string;
}

export interface ProcessHandle {
  readonly pid: number;
  /** The command line, for messages. */
  readonly command: string;
  readonly child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves when the process has exited (never rejects). */
  readonly exited: Promise<ExitInfo>;
  hasExited(): boolean;
  /** Waits for exit; rejects after timeoutMs with the output so far in the message. */
  waitExit(timeoutMs: number): Promise<ExitInfo>;
  /** Resolves with the first match of `pattern` in stdout+stderr; rejects on timeout or exit. */
  waitForOutput(pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray>;
  /** SIGTERM, then SIGKILL after graceMs. Idempotent; resolves when the process is gone. */
  kill(graceMs?: number): Promise<ExitInfo>;
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The promise's value, or undefined after ms (the timer is cleared either way). */
async function within<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<undefined>((r) => (timer = setTimeout(() => r(undefined), ms))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

function signalPid(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}

export function spawnProcess(cmd: string, args: string[], opts: SpawnOptions = {}): ProcessHandle {
  const [file, argv] = opts.netns ? [IP, ['netns', 'exec', opts.netns, cmd, ...args]] : [cmd, args];
  const child = spawn(file, argv, {
    cwd: opts.cwd,
    env: opts.env ?? process.env,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const command = [opts.netns ? `[${opts.netns}]` : '', cmd, ...args].join(' ').trim();
  if (child.pid === undefined) {
    // spawn failed synchronously-ish (ENOENT is reported via 'error'); give a dead handle
    child.on('error', () => undefined);
    throw new Error(`could not spawn ${command}`);
  }
  const pid = child.pid;
  let out = '';
  let err = '';
  let done: ExitInfo | undefined;
  const waiters = new Set<() => void>();
  child.stdout?.setEncoding('utf8').on('data', (s: string) => {
    out += s;
    for (const w of waiters) w();
  });
  child.stderr?.setEncoding('utf8').on('data', (s: string) => {
    err += s;
    for (const w of waiters) w();
  });
  child.stdin?.on('error', () => undefined);
  if (opts.input !== undefined) child.stdin?.end(opts.input);
  const exited = new Promise<ExitInfo>((resolve) => {
    child.on('error', (e) => {
      err += `spawn error: ${e.message}\n`;
      done = { code: -1, signal: null };
      resolve(done);
    });
    // 'close' waits for stdio to drain, but a grandchild that inherited our pipes (an sshd session)
    // can hold them open: resolve on 'exit' plus a short bounded drain instead
    let closed = false;
    child.on('close', () => {
      closed = true;
    });
    child.on('exit', (code, signal) => {
      done = { code, signal };
      if (closed) return resolve(done);
      const info = done;
      const timer = setTimeout(() => resolve(info), 200);
      child.once('close', () => {
        clearTimeout(timer);
        resolve(info);
      });
    });
  });
  void exited.then(() => {
    for (const w of waiters) w();
  });

  let killing: Promise<ExitInfo> | undefined;
  const handle: ProcessHandle = {
    pid,
    command,
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    hasExited: () => done !== undefined,
    async waitExit(timeoutMs) {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () =>
            reject(
              new Error(
                `${command} did not exit within ${timeoutMs} ms\nstdout: ${out}\nstderr: ${err}`,
              ),
            ),
          timeoutMs,
        );
      });
      try {
        return await Promise.race([exited, timeout]);
      } finally {
        clearTimeout(timer);
      }
    },
    waitForOutput(pattern, timeoutMs) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          const m = (out + err).match(pattern);
          if (m) finish(() => resolve(m));
          else if (done)
            finish(() =>
              reject(new Error(`${command} exited before printing ${pattern}\n${out}${err}`)),
            );
        };
        const timer = setTimeout(
          () =>
            finish(() =>
              reject(new Error(`${command}: no ${pattern} within ${timeoutMs} ms\n${out}${err}`)),
            ),
          timeoutMs,
        );
        const finish = (f: () => void): void => {
          clearTimeout(timer);
          waiters.delete(check);
          f();
        };
        waiters.add(check);
        check();
      });
    },
    kill(graceMs = 2000) {
      killing ??= (async () => {
        if (done) return done;
        signalPid(pid, 'SIGTERM');
        const first = await within(exited, graceMs);
        if (first) return first;
        signalPid(pid, 'SIGKILL');
        const second = await within(exited, 5000);
        if (!second) throw new Error(`${command} (pid ${pid}) survived SIGKILL for 5 s`);
        return second;
      })();
      return killing;
    },
  };
  return handle;
}

/** Runs a command to completion within timeoutMs (killed by PID after that) and returns its output. */
export async function runCommand(
  cmd: string,
  args: string[],
  opts: SpawnOptions & { timeoutMs?: number } = {},
): Promise<RunResult> {
  const p = spawnProcess(cmd, args, { ...opts, input: opts.input ?? '' });
  const timeoutMs = opts.timeoutMs ?? 15_000;
  try {
    const info = await p.waitExit(timeoutMs);
    return { ...info, stdout: p.stdout(), stderr: p.stderr() };
  } catch (err) {
    await p.kill(500);
    throw err;
  }
}

/** Like runCommand, but throws (with stderr) unless the exit code is 0. */
export async function runChecked(
  cmd: string,
  args: string[],
  opts: SpawnOptions & { timeoutMs?: number } = {},
): Promise<string> {
  const r = await runCommand(cmd, args, opts);
  if (r.code !== 0) {
    const where = opts.netns ? ` (in ${opts.netns})` : '';
    throw new Error(
      `${cmd} ${args.join(' ')}${where} exited with ${r.code ?? r.signal}: ${r.stderr.trim()}`,
    );
  }
  return r.stdout;
}

/** PIDs whose parent chain leads to `pid` (read from /proc; Linux only). */
export function descendantPids(pid: number): number[] {
  const parentOf = new Map<number, number>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      // field 4 (ppid) follows the ")" that closes the command name
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      parentOf.set(Number(name), ppid);
    } catch {
      // raced with an exit
    }
  }
  const result: number[] = [];
  const frontier = [pid];
  for (let guard = 0; frontier.length > 0 && guard < 100_000; guard++) {
    const p = frontier.pop() as number;
    for (const [child, parent] of parentOf) {
      if (parent === p) {
        result.push(child);
        frontier.push(child);
      }
    }
  }
  return result;
}

/** True while a process with this PID exists (and is not a zombie). */
export function pidAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/** SIGTERM these PIDs, wait up to graceMs for them to go, SIGKILL the rest (bounded). */
export async function killPids(pids: number[], graceMs = 1000): Promise<void> {
  if (pids.length === 0) return;
  for (const pid of pids) signalPid(pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline && pids.some(pidAlive)) await delay(25);
  for (const pid of pids.filter(pidAlive)) signalPid(pid, 'SIGKILL');
  const hardDeadline = Date.now() + 3000;
  while (Date.now() < hardDeadline && pids.some(pidAlive)) await delay(25);
}

/**
 * Tracks the processes of one fixture so teardown can kill every one of them by PID.
 */
export class ProcessTracker {
  readonly #handles = new Set<ProcessHandle>();

  spawn(cmd: string, args: string[], opts: SpawnOptions = {}): ProcessHandle {
    const h = spawnProcess(cmd, args, opts);
    this.#handles.add(h);
    void h.exited.then(() => this.#handles.delete(h));
    return h;
  }

  async run(
    cmd: string,
    args: string[],
    opts: SpawnOptions & { timeoutMs?: number } = {},
  ): Promise<RunResult> {
    const h = this.spawn(cmd, args, { ...opts, input: opts.input ?? '' });
    try {
      const info = await h.waitExit(opts.timeoutMs ?? 15_000);
      return { ...info, stdout: h.stdout(), stderr: h.stderr() };
    } catch (err) {
      await h.kill(500);
      throw err;
    }
  }

  /** PIDs still running. */
  pids(): number[] {
    return [...this.#handles].filter((h) => !h.hasExited()).map((h) => h.pid);
  }

  /** Kills every tracked process (and its descendants) by PID; resolves when all are gone. */
  async killAll(graceMs = 2000): Promise<void> {
    const handles = [...this.#handles];
    const descendants = handles.flatMap((h) => (h.hasExited() ? [] : descendantPids(h.pid)));
    await Promise.allSettled(handles.map((h) => h.kill(graceMs)));
    await killPids(descendants.filter(pidAlive), graceMs);
  }

  /** Synchronous last resort for process 'exit': SIGKILL every tracked PID. */
  killAllSync(): void {
    for (const h of this.#handles) if (!h.hasExited()) signalPid(h.pid, 'SIGKILL');
  }
}
