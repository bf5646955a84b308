// Adding a host key the user has just accepted to a known_hosts file, the way ssh(1) does on a first
// connection: one plain line appended; the folder and file created owner-only when missing.
import { appendFile, mkdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { fsError } from '../errors.js';
import { formatKnownHostsLine } from './known-hosts.js';

export async function appendKnownHost(
  file: string,
  host: string,
  port: number,
  keyType: string,
  blob: Buffer,
): Promise<void> {
  try {
    await mkdir(dirname(file), { recursive: true, mode: 0o700 });
    const before = await readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return '';
      throw err;
    });
    const separator = before.length > 0 && !before.endsWith('\n') ? '\n' : '';
    await appendFile(file, separator + formatKnownHostsLine(host, port, keyType, blob) + '\n', {
      mode: 0o600,
    });
  } catch (err) {
    throw fsError(err, file);
  }
}
