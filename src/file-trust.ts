// Whether a file that decides whom we trust (the config, the identity key) could have been changed by
// someone else. Like ssh's StrictModes: refused when the file is not ours (or root's), or when group or
// other users can write it or the folder holding it (a folder with the sticky bit, like /tmp, lets
// others add files but not replace ours).

import type { Stats } from 'node:fs';
import { stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { RcppError } from './errors.js';

/** Throws CONFIG_INVALID when others could have written `file`; `what` names it ("The configuration"). */
export async function refuseIfOthersCanWrite(file: string, what: string): Promise<void> {
  if (process.platform === 'win32') return;
  let st: Stats;
  let dir: Stats;
  try {
    [st, dir] = await Promise.all([stat(file), stat(dirname(file))]);
  } catch {
    return; // a missing file is the caller's to report
  }
  const uid = process.getuid?.() ?? 0;
  const octal = (mode: number): string => (mode & 0o7777).toString(8).padStart(4, '0');
  if (st.uid !== uid && st.uid !== 0) {
    throw new RcppError(
      'CONFIG_INVALID',
      `${what} ${file} belongs to another user (uid ${st.uid}); rcpp2p only uses its own.`,
      `Create it again as this user, or run: chown ${uid} ${file}`,
    );
  }
  if ((st.mode & 0o022) !== 0) {
    throw new RcppError(
      'CONFIG_INVALID',
      `${what} ${file} can be changed by other users (permissions ${octal(st.mode)}); rcpp2p refuses to trust it.`,
      `Run: chmod go-w ${file}`,
    );
  }
  if ((dir.mode & 0o022) !== 0 && (dir.mode & 0o1000) === 0) {
    const folder = dirname(file);
    throw new RcppError(
      'CONFIG_INVALID',
      `The folder ${folder} holding ${file} can be changed by other users (permissions ${octal(dir.mode)}), so they could replace it; rcpp2p refuses to trust it.`,
      `Run: chmod go-w ${folder}`,
    );
  }
}
