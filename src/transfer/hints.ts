// What a user can do about a per-file failure, by code. Sentences come from whichever side found the
// problem (often the peer, over the wire, without a hint); the hint is added on the client, which is
// where the user is.

import { isRcppError, RcppError, type ErrorCode } from '../errors.js';

const HINTS: Partial<Record<ErrorCode, string>> = {
  FILE_EXISTS: 'Add --force to replace it.',
  FILE_NOT_FOUND: 'Check the name; --filelist shows what the server has.',
  IS_A_DIRECTORY: 'Choose another destination folder, or rename the folder first.',
  NOT_A_FILE: 'Only regular files and folders are transferred.',
  PATH_REFUSED:
    'Name a file or folder inside the shared folder with a relative path, like photos/2024.',
  DISK_FULL: 'Free some space, then run the command again; it resumes from the partial file.',
  PERMISSION_DENIED: 'Check the permissions of the folder the file comes from or goes to.',
  INTEGRITY_MISMATCH: 'Run the command again; the file is sent again from the start.',
  SOURCE_CHANGED: 'Run the command again once the file is no longer being written.',
  BUSY: 'Another transfer is using this file or the server is full; try again in a moment.',
  IO_ERROR: 'Run the command again; if it keeps failing, check the disk.',
  CONNECTION_LOST: 'Run the command again; transfers resume from where they stopped.',
  TIMEOUT: 'Run the command again; transfers resume from where they stopped.',
};

export function hintFor(code: ErrorCode): string {
  return HINTS[code] ?? '';
}

/** The error with a hint: its own when it has one, else the one for its code. */
export function withHint(err: unknown): RcppError {
  const e = isRcppError(err) ? err : new RcppError('INTERNAL', String(err), '', { cause: err });
  if (e.hint) return e;
  return new RcppError(e.code, e.message, hintFor(e.code), { cause: e.cause });
}
