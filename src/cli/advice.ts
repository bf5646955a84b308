// Advice that names an rcpp2p command ("Run rcpp2p --configure", "rcpp2p --addclient") must work
// when pasted: a peer set up with --config PATH needs that option on every command. The library
// layers word their hints for the default config; this one place adds the option for the CLI.
import { resolve } from 'node:path';
import { defaultConfigPath } from '../config/paths.js';

/** The commands that act with this peer's config (not --rendezvous-server, --demo, --help). */
const PEER_COMMANDS =
  /\brcpp2p(?= (?:--(?:configure|addclient|filelist|get|put|forget-peer)|get|put|ls|serve)\b)/g;

/** A function adding `--config PATH` after "rcpp2p" in advice; the identity for the default config. */
export function adviceFor(
  configPath: string,
  cwd: string,
  env: NodeJS.ProcessEnv,
): (text: string) => string {
  if (resolve(cwd, configPath) === resolve(defaultConfigPath(env))) return (text) => text;
  const option = `--config ${shellWord(configPath)}`;
  return (text) => text.replace(PEER_COMMANDS, `rcpp2p ${option}`);
}

/** The rcpp2p command line for this peer: `rcpp2p`, or `rcpp2p --config PATH`, then `args`. */
export function commandFor(
  configPath: string,
  cwd: string,
  env: NodeJS.ProcessEnv,
  args = '',
): string {
  const isDefault = resolve(cwd, configPath) === resolve(defaultConfigPath(env));
  const base = isDefault ? 'rcpp2p' : `rcpp2p --config ${shellWord(configPath)}`;
  return args === '' ? base : `${base} ${args}`;
}

/** A word a POSIX shell reads back as the same text. */
export function shellWord(text: string): string {
  if (/^[A-Za-z0-9_@%+=:,./~-]+$/.test(text) && !text.startsWith('~')) return text;
  return `'${text.replace(/'/g, `'\\''`)}'`;
}
