// The one error shape of rcpp2p: a stable code, a sentence for the user, and what to do about it.
// Library layers throw RcppError; only src/cli turns it into output and an exit code.

import { logger } from './log.js';

const fsLog = logger('fs');

export const ERROR_CODES = [
  // configuration and local input
  'CONFIG_MISSING',
  'CONFIG_INVALID',
  'USAGE',
  'PORT_IN_USE',
  // the rendezvous host
  'RENDEZVOUS_UNREACHABLE',
  'RENDEZVOUS_TIMEOUT',
  'RENDEZVOUS_REFUSED',
  'HOST_KEY_UNKNOWN',
  'HOST_KEY_MISMATCH',
  'HOST_KEY_REVOKED',
  'AUTH_FAILED',
  // peers
  'PEER_UNKNOWN',
  'PEER_OFFLINE',
  'PEER_NOT_ANSWERING',
  'PEER_REFUSED',
  'PEER_IDENTITY_MISMATCH',
  'PEER_IDENTITY_CHANGED',
  'NAME_IN_USE',
  'NO_PATH',
  // the transfer protocol
  'PROTOCOL_ERROR',
  'FRAME_TOO_LARGE',
  'VERSION_MISMATCH',
  'TIMEOUT',
  'CONNECTION_LOST',
  'BUSY',
  // files
  'FILE_NOT_FOUND',
  'FILE_EXISTS',
  'NOT_A_FILE',
  'IS_A_DIRECTORY',
  'PATH_REFUSED',
  'DISK_FULL',
  'PERMISSION_DENIED',
  'INTEGRITY_MISMATCH',
  'SOURCE_CHANGED',
  'IO_ERROR',
  // everything else
  'ABORTED',
  'INTERNAL',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && (ERROR_CODES as readonly string[]).includes(value);
}

export class RcppError extends Error {
  override readonly name = 'RcppError';
  readonly code: ErrorCode;
  /** What the user can do about it, one sentence; empty when there is nothing to add. */
  readonly hint: string;

  constructor(code: ErrorCode, message: string, hint = '', options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.hint = hint;
  }
}

export function isRcppError(err: unknown): err is RcppError {
  return err instanceof Error && err.name === 'RcppError' && isErrorCode((err as RcppError).code);
}

/** Turns an AbortSignal's reason into the error a caller should see. */
export function abortError(signal: AbortSignal): RcppError {
  const reason: unknown = signal.reason;
  if (isRcppError(reason)) return reason;
  if (reason instanceof Error && reason.name === 'TimeoutError') {
    return new RcppError('TIMEOUT', 'The operation timed out.', '', { cause: reason });
  }
  return new RcppError('ABORTED', 'Stopped.', '', { cause: reason });
}

/**
 * Maps a Node file-system error to an RcppError with a sentence naming `path` and nothing else: Node's
 * own message names the absolute path, and a file server sends these sentences to its clients. That
 * message goes to the debug log (RCPP2P_DEBUG=fs) and stays in `cause`.
 */
export function fsError(err: unknown, path: string): RcppError {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  fsLog(`${path}: ${(err as Error | undefined)?.message ?? String(err)}`);
  switch (code) {
    case 'ENOENT':
      return new RcppError('FILE_NOT_FOUND', `${path} does not exist.`, '', { cause: err });
    case 'EEXIST':
      return new RcppError('FILE_EXISTS', `${path} already exists.`, '', { cause: err });
    case 'EISDIR':
      return new RcppError('IS_A_DIRECTORY', `${path} is a folder.`, '', { cause: err });
    case 'ENOTDIR':
      return new RcppError('NOT_A_FILE', `${path} is not inside a folder.`, '', { cause: err });
    case 'ENOSPC':
    case 'EDQUOT':
      return new RcppError('DISK_FULL', `The disk holding ${path} is full.`, '', { cause: err });
    case 'EACCES':
    case 'EPERM':
    case 'EROFS':
      return new RcppError('PERMISSION_DENIED', `Permission denied for ${path}.`, '', {
        cause: err,
      });
    case 'ENAMETOOLONG':
      return new RcppError(
        'PATH_REFUSED',
        `${path} is too long for the file system that would hold it.`,
        '',
        { cause: err },
      );
    case 'ELOOP':
      return new RcppError('PATH_REFUSED', `${path} leads through too many symbolic links.`, '', {
        cause: err,
      });
    default:
      return new RcppError(
        'IO_ERROR',
        `Could not use ${path} (${typeof code === 'string' ? code : 'an unexpected error'}).`,
        '',
        { cause: err },
      );
  }
}
