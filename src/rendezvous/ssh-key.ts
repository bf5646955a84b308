// One parsed SSH key from ssh2's parser. ssh2 returns an array for text holding several keys (its
// types do not say so); we only ever want the first, and `undefined` for anything unreadable.
import ssh2 from 'ssh2';
import type { ParsedKey } from 'ssh2';

export function parseSshKey(
  data: Buffer | string,
  passphrase?: Buffer | string,
): ParsedKey | undefined {
  const parsed = ssh2.utils.parseKey(data, passphrase) as ParsedKey | ParsedKey[] | Error;
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  return key === undefined || key instanceof Error ? undefined : key;
}
