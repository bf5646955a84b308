// Asking for passwords and passphrases: on the terminal without echo, or one line from stdin with
// --password-stdin (scripts). Never from argv or the environment, never written anywhere.
import { createInterface } from 'node:readline';
import { RcppError } from '../errors.js';
import type { Ask } from '../rendezvous/ssh-auth.js';

export interface PromptIo {
  stdin: NodeJS.ReadableStream & { isTTY?: boolean; setRawMode?: (raw: boolean) => unknown };
  stderr: NodeJS.WritableStream;
  /** Read secrets from stdin lines instead of the terminal. */
  passwordStdin: boolean;
}

export function makeAsk(io: PromptIo): Ask {
  let stdinLines: AsyncIterator<string> | undefined;
  return async (question, { secret, retry }) => {
    if (io.passwordStdin) {
      // one answer per question: a wrong one is final (reading a second line would take the
      // answer meant for the next question)
      if (retry) throw retry.failure;
      stdinLines ??= createInterface({ input: io.stdin, terminal: false })[Symbol.asyncIterator]();
      const next = await stdinLines.next();
      if (next.done) {
        throw new RcppError(
          'AUTH_FAILED',
          `rcpp2p needed an answer to "${question}" but stdin ended.`,
        );
      }
      return next.value;
    }
    if (!io.stdin.isTTY) {
      throw new RcppError(
        'AUTH_FAILED',
        `rcpp2p needs an answer to "${question}" but has no terminal to ask on.`,
        'Use --password-stdin to pass it on standard input, or log in with a key (rcpp2p --configure).',
      );
    }
    if (retry) io.stderr.write(`${retry.notice}\n`);
    return secret ? readHidden(question, io) : readVisible(question, io);
  };
}

function readVisible(question: string, io: PromptIo): Promise<string> {
  const rl = createInterface({ input: io.stdin, output: io.stderr, terminal: true });
  return new Promise((resolve) => {
    rl.question(`${question} `, (answer) => {
      rl.close();
      resolve(answer);
    });
  });
}

/** Reads one line in raw mode, echoing nothing; Ctrl-C aborts. */
function readHidden(question: string, io: PromptIo): Promise<string> {
  const stdin = io.stdin;
  io.stderr.write(`${question} `);
  return new Promise((resolve, reject) => {
    let answer = '';
    stdin.setRawMode?.(true);
    stdin.resume();
    const onData = (data: Buffer | string): void => {
      for (const ch of data.toString('utf8')) {
        if (ch === '\r' || ch === '\n') {
          done();
          resolve(answer);
          return;
        }
        if (ch === '\u0003') {
          done();
          reject(new RcppError('ABORTED', 'Stopped.'));
          return;
        }
        if (ch === '\u007f' || ch === '\b') answer = answer.slice(0, -1);
        else if (ch >= ' ') answer += ch;
      }
    };
    const done = (): void => {
      stdin.off('data', onData);
      stdin.setRawMode?.(false);
      stdin.pause();
      io.stderr.write('\n');
    };
    stdin.on('data', onData);
  });
}
