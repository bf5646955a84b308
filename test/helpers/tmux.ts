// A real pseudo-terminal for CLI tests: a private tmux server (its own socket and config) runs each
// command in a detached session of a chosen size; the test types with send-keys and reads the screen
// with capture-pane. Sessions stay after the command exits, and the shell around it prints
// "[exited with N at SECONDS]" so the test reads the exit status and the moment of exit.
import assert from 'node:assert/strict';
import { rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runChecked, runCommand } from './processes.js';

export const TMUX = '/usr/bin/tmux';
const PROMPT_MS = 15_000;

/** The environment of the tmux server and so of every pane: nothing from the user's session. */
export const BASE_ENV = {
  PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
  LANG: 'C.UTF-8',
  TERM: 'xterm-256color',
};

/** The shell's last line; a Ctrl-C the terminal echoed ("^C") may come first on it. */
export const EXITED = /^(?:\^C)*\[exited with (\d+) at (\d+\.\d+)\]$/m;

export function exitStatusOn(screen: string): number | undefined {
  const m = EXITED.exec(screen);
  return m ? Number(m[1]) : undefined;
}

export const escapeRegExp = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

export class Terminal {
  private constructor(
    readonly socket: string,
    private readonly conf: string,
  ) {}

  /** A tmux server of our own; `dir` holds its config. Close it with close(). */
  static async open(dir: string, name: string): Promise<Terminal> {
    const conf = join(dir, 'tmux.conf');
    await writeFile(
      conf,
      'set-option -g remain-on-exit on\nset-option -g status off\nset-option -g history-limit 10000\n',
    );
    return new Terminal(join(tmpdir(), `rcpp2p-${name}-${process.pid}.sock`), conf);
  }

  async tmux(args: string[]): Promise<string> {
    return runChecked(TMUX, ['-S', this.socket, '-f', this.conf, ...args], {
      env: { ...BASE_ENV, HOME: tmpdir() },
    });
  }

  /**
   * Runs argv in a new session through `sh`, which prints the exit status and the time when it
   * ends: tmux 3.3a sometimes leaves an exited pane process unreaped (no #{pane_dead_status}), the
   * shell never does. The shell traps SIGINT (a trap, unlike an ignore, is not inherited), so a
   * Ctrl-C reaches the CLI and the shell lives on to print how it ended.
   */
  async start(
    session: string,
    env: Record<string, string>,
    argv: string[],
    size: { columns?: number; rows?: number; cwd?: string } = {},
  ): Promise<void> {
    const vars = Object.entries(env).flatMap(([k, v]) => ['-e', `${k}=${v}`]);
    const shell = [
      '/bin/sh',
      '-c',
      'trap : INT; "$@"; echo "[exited with $? at $(date +%s.%N)]"',
      'sh',
    ];
    await this.tmux([
      'new-session',
      '-d',
      '-s',
      session,
      '-x',
      String(size.columns ?? 200),
      '-y',
      String(size.rows ?? 60),
      ...(size.cwd ? ['-c', size.cwd] : []),
      ...vars,
      ...shell,
      ...argv,
    ]);
  }

  /** The screen and its scrollback, lines joined where the terminal wrapped them. */
  async screen(session: string): Promise<string> {
    const text = await this.tmux(['capture-pane', '-p', '-J', '-S', '-', '-t', session]);
    return trimLines(text);
  }

  /** The screen as it is, one row per line, no joining: to check what fits the width. */
  async rows(session: string): Promise<string[]> {
    const text = await this.tmux(['capture-pane', '-p', '-S', '-', '-t', session]);
    return trimLines(text).split('\n');
  }

  /** Polls the screen until `pattern` shows, for at most `ms`; fails with the screen. */
  async waitFor(session: string, pattern: RegExp, ms = PROMPT_MS): Promise<RegExpMatchArray> {
    const deadline = Date.now() + ms;
    for (;;) {
      const text = await this.screen(session);
      const m = text.match(pattern);
      if (m) return m;
      const exited = exitStatusOn(text) !== undefined; // then this screen is the final one
      if (exited || Date.now() > deadline) {
        const why = exited ? 'before the CLI exited' : `within ${ms} ms`;
        assert.fail(`${pattern} did not show ${why}. The screen:\n${text}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** The CLI's exit status and the time it exited (ms since the epoch), once it has exited. */
  async waitExit(session: string, ms = PROMPT_MS): Promise<number> {
    return (await this.waitExitAt(session, ms)).code;
  }

  async waitExitAt(session: string, ms = PROMPT_MS): Promise<{ code: number; atMs: number }> {
    const m = await this.waitFor(session, EXITED, ms);
    return { code: Number(m[1]), atMs: Number(m[2]) * 1000 };
  }

  async type(session: string, text: string): Promise<void> {
    await this.tmux(['send-keys', '-t', session, '-l', '--', text]);
  }

  async keys(session: string, ...keys: string[]): Promise<void> {
    for (const key of keys) await this.tmux(['send-keys', '-t', session, key]);
  }

  /** Clears the current answer (readline's Ctrl-U), types a new one and presses Enter. */
  async answer(session: string, text: string): Promise<void> {
    await this.keys(session, 'C-u');
    if (text !== '') await this.type(session, text);
    await this.keys(session, 'Enter');
  }

  async kill(session: string): Promise<void> {
    await runCommand(TMUX, ['-S', this.socket, 'kill-session', '-t', session], { env: BASE_ENV });
  }

  async close(): Promise<void> {
    await runCommand(TMUX, ['-S', this.socket, 'kill-server'], { env: BASE_ENV });
    await rm(this.socket, { force: true });
  }
}

function trimLines(text: string): string {
  return text
    .split('\n')
    .map((l) => l.trimEnd())
    .join('\n');
}
