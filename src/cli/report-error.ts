// The one place that turns any failure into what the user reads and the exit code scripts see.
import { isRcppError, RcppError, type ErrorCode } from '../errors.js';

export const EXIT = {
  ok: 0,
  failure: 1,
  usage: 2,
  rendezvous: 3,
  peer: 4,
  file: 5,
  interrupted: 130,
} as const;

const EXIT_BY_CODE: Partial<Record<ErrorCode, number>> = {
  USAGE: EXIT.usage,
  CONFIG_MISSING: EXIT.usage,
  CONFIG_INVALID: EXIT.usage,
  PORT_IN_USE: EXIT.usage,
  RENDEZVOUS_UNREACHABLE: EXIT.rendezvous,
  RENDEZVOUS_TIMEOUT: EXIT.rendezvous,
  RENDEZVOUS_REFUSED: EXIT.rendezvous,
  HOST_KEY_UNKNOWN: EXIT.rendezvous,
  HOST_KEY_MISMATCH: EXIT.rendezvous,
  HOST_KEY_REVOKED: EXIT.rendezvous,
  AUTH_FAILED: EXIT.rendezvous,
  PEER_UNKNOWN: EXIT.peer,
  PEER_OFFLINE: EXIT.peer,
  PEER_NOT_ANSWERING: EXIT.peer,
  PEER_REFUSED: EXIT.peer,
  PEER_IDENTITY_MISMATCH: EXIT.peer,
  PEER_IDENTITY_CHANGED: EXIT.peer,
  NAME_IN_USE: EXIT.peer,
  NO_PATH: EXIT.peer,
  FILE_NOT_FOUND: EXIT.file,
  FILE_EXISTS: EXIT.file,
  NOT_A_FILE: EXIT.file,
  IS_A_DIRECTORY: EXIT.file,
  PATH_REFUSED: EXIT.file,
  DISK_FULL: EXIT.file,
  PERMISSION_DENIED: EXIT.file,
  INTEGRITY_MISMATCH: EXIT.file,
  SOURCE_CHANGED: EXIT.file,
  ABORTED: EXIT.interrupted,
};

/** Hints for codes whose thrower could not know what the user should do. */
const DEFAULT_HINTS: Partial<Record<ErrorCode, string>> = {
  CONNECTION_LOST: 'Run the same command again: finished files are kept and a partial one resumes.',
  TIMEOUT: 'Check both machines are online and run the command again.',
  PROTOCOL_ERROR: 'Make sure both peers run the same rcpp2p version.',
  INTERNAL: 'This is a bug in rcpp2p; run again with RCPP2P_DEBUG=* and report the output.',
};

export function exitCodeFor(code: ErrorCode): number {
  return EXIT_BY_CODE[code] ?? EXIT.failure;
}

export function toRcppError(err: unknown): RcppError {
  if (isRcppError(err)) return err;
  const e = err as NodeJS.ErrnoException | undefined;
  if (e?.code === 'ECONNRESET' || e?.code === 'EPIPE') {
    return new RcppError('CONNECTION_LOST', 'The connection to the other peer was cut.', '', {
      cause: err,
    });
  }
  return new RcppError('INTERNAL', `Unexpected error: ${e?.message ?? String(err)}`, '', {
    cause: err,
  });
}

export interface ErrorReport {
  lines: string[];
  exitCode: number;
  json: { code: ErrorCode; message: string; hint: string };
}

export function reportError(err: unknown): ErrorReport {
  const e = toRcppError(err);
  const hint = e.hint || DEFAULT_HINTS[e.code] || '';
  const lines = [`Error: ${e.message}`];
  if (hint) lines.push(hint);
  if (
    e.code === 'INTERNAL' &&
    e.cause instanceof Error &&
    e.cause.stack &&
    process.env['RCPP2P_DEBUG']
  ) {
    lines.push(e.cause.stack);
  }
  return { lines, exitCode: exitCodeFor(e.code), json: { code: e.code, message: e.message, hint } };
}
