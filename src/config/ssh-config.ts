// What ~/.ssh/config says about a Host alias, so the wizard can accept "rv" where ssh would.
import { wildcardMatch } from '../rendezvous/known-hosts.js';
import { expandHome } from './paths.js';

export interface SshHostSettings {
  hostName?: string;
  user?: string;
  port?: string;
  identityFile?: string;
}

/**
 * What ~/.ssh/config says for `alias`, as ssh reads it (first value wins, `Host` patterns with `*`,
 * `?` and `!`), or undefined when no `Host` line names it literally. `Match` blocks and `Include`
 * are not followed.
 */
export function sshHostAlias(text: string, alias: string): SshHostSettings | undefined {
  const found: SshHostSettings = {};
  let named = false;
  let applies = true; // lines before the first Host apply to every host
  const keys: Record<string, keyof SshHostSettings> = {
    hostname: 'hostName',
    user: 'user',
    port: 'port',
    identityfile: 'identityFile',
  };
  for (const raw of text.split(/\r?\n/)) {
    const m = /^\s*([A-Za-z]+)(?:\s*=\s*|\s+)(.*?)\s*$/.exec(raw);
    if (!m || raw.trimStart().startsWith('#')) continue;
    const keyword = (m[1] ?? '').toLowerCase();
    const args = (m[2] ?? '').match(/"[^"]*"|\S+/g)?.map((a) => a.replace(/^"|"$/g, '')) ?? [];
    if (keyword === 'host') {
      const positive = args.filter((p) => !p.startsWith('!'));
      const negated = args.filter((p) => p.startsWith('!')).map((p) => p.slice(1));
      applies =
        positive.some((p) => hostPatternMatches(p, alias)) &&
        !negated.some((p) => hostPatternMatches(p, alias));
      if (applies && positive.some((p) => p.toLowerCase() === alias.toLowerCase())) named = true;
    } else if (keyword === 'match') {
      applies = false;
    } else if (applies && keys[keyword] !== undefined && args[0] !== undefined) {
      const field = keys[keyword];
      found[field] ??= args[0];
    }
  }
  if (!named) return undefined;
  if (found.hostName !== undefined) found.hostName = found.hostName.replace(/%h/g, alias);
  if (found.identityFile !== undefined) found.identityFile = expandHome(found.identityFile);
  return found;
}

/** ssh compares host patterns case-insensitively (it lowercases the host name first). */
function hostPatternMatches(pattern: string, alias: string): boolean {
  return wildcardMatch(alias.toLowerCase(), pattern.toLowerCase());
}
