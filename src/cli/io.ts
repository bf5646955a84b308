// The process streams the CLI talks to, passed in so tests can run commands in-process.
export interface CliIo {
  stdin: NodeJS.ReadableStream & { isTTY?: boolean; setRawMode?: (raw: boolean) => unknown };
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  env: NodeJS.ProcessEnv;
  cwd: string;
  /** Ends the process at once (a second Ctrl-C); process.exit when not given. */
  exit?: (code: number) => void;
  /** Where SIGINT and SIGTERM arrive; the process when not given. */
  signals?: Pick<NodeJS.EventEmitter, 'on' | 'off'>;
}

export function processIo(): CliIo {
  return {
    stdin: process.stdin,
    stdout: process.stdout,
    stderr: process.stderr,
    env: process.env,
    cwd: process.cwd(),
  };
}
