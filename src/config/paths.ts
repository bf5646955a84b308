// Where rcpp2p keeps its files: the config (XDG base directory rules), the identity beside it, and
// OpenSSH's known_hosts. Environment and home directory are parameters so tests need no real home.
import { homedir } from 'node:os';
import { basename, dirname, isAbsolute, join } from 'node:path';

/** $XDG_CONFIG_HOME/rcpp2p/config.json, else ~/.config/rcpp2p/config.json. */
export function defaultConfigPath(
  env: NodeJS.ProcessEnv = process.env,
  home: string = homedir(),
): string {
  const xdg = env['XDG_CONFIG_HOME'];
  // the XDG spec says a relative value is invalid and must be ignored
  const base = xdg && isAbsolute(xdg) ? xdg : join(home, '.config');
  return join(base, 'rcpp2p', 'config.json');
}

/** The identity file beside a config: /x/y/config.json -> /x/y/config.identity.pem. */
export function identityPathFor(configPath: string): string {
  const name = basename(configPath);
  const base = name.endsWith('.json') ? name.slice(0, -'.json'.length) : name;
  return join(dirname(configPath), `${base}.identity.pem`);
}

export function defaultKnownHostsFile(home: string = homedir()): string {
  return join(home, '.ssh', 'known_hosts');
}

/** Expands a leading `~` or `~/` to the home directory; `~user` forms are left alone. */
export function expandHome(path: string, home: string = homedir()): string {
  if (path === '~') return home;
  if (path.startsWith('~/')) return join(home, path.slice(2));
  return path;
}
