// The configuration file: its schema, a validator that names the wrong field in a sentence, and
// load/save. The file holds no secrets (passwords and passphrases are asked for at each run), but it
// is still written 0600 in a 0700 folder, atomically (temp file + rename), like ssh keeps its files.
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import { homedir } from 'node:os';
import { basename, dirname, isAbsolute, join } from 'node:path';
import { fsError, RcppError } from '../errors.js';
import { refuseIfOthersCanWrite } from '../file-trust.js';
import { isRendezvousDir, PEER_NAME, PEER_NAME_RULE } from '../peer.js';
import { Fields, isObject, type Complaint } from '../validate.js';
import { defaultKnownHostsFile, expandHome } from './paths.js';

export type AuthConfig =
  { method: 'key'; identityFile: string } | { method: 'agent' } | { method: 'password' }; // the password itself is never stored

export interface RendezvousConfig {
  host: string;
  port: number;
  user: string;
  /** rcpp2p's folder on the rendezvous account, relative to its home or absolute. */
  dir: string;
}

export interface Config {
  version: 1;
  rendezvous: RendezvousConfig;
  auth: AuthConfig;
  knownHostsFile: string;
  serverName?: string;
  clientName?: string;
  /** Local TCP port for the rendezvous session and the hole punch. */
  port: number;
  /** The file server's working directory (absolute). */
  workDir?: string;
  /** Periodic mode: how often the file server reads client records. */
  pollSeconds: number;
  /** SSH keepalive interval on the rendezvous session; 0 turns it off. */
  keepaliveSeconds: number;
  /**
   * File servers: which clients to serve. "new" (the default): clients pinned in known_peers and
   * new ones (announced in the log); "known": pinned ones only; a list: only these client names.
   */
  allowClients?: 'new' | 'known' | string[];
}

export const CONFIG_DEFAULTS = {
  rendezvousPort: 22,
  rendezvousDir: '.rcpp2p',
  pollSeconds: 10,
  keepaliveSeconds: 15,
} as const;

const HOST = /^[A-Za-z0-9_.:-]{1,253}$/;
const USER = /^[A-Za-z0-9._][A-Za-z0-9._@-]{0,63}$/;
const SECRET_KEY = /password|passphrase|passwd/i;
const FIX_HINT = 'Correct the file, or run rcpp2p --configure to write it again.';
const UNKNOWN_SETTING = 'is not a setting rcpp2p knows (a typo?)';
const MAX_ALLOWED_CLIENTS = 1000;

const TOP_KEYS = [
  'version',
  'rendezvous',
  'auth',
  'knownHostsFile',
  'serverName',
  'clientName',
  'port',
  'workDir',
  'pollSeconds',
  'keepaliveSeconds',
  'allowClients',
];

/**
 * Checks a parsed config and fills in defaults; `~/` paths are expanded. Throws CONFIG_INVALID with a
 * sentence naming the field; `source` names the file in that sentence.
 */
export function validateConfig(
  raw: unknown,
  source = 'The configuration',
  home: string = homedir(),
): Config {
  const complain: Complaint = (_where, problem) =>
    new RcppError('CONFIG_INVALID', `${source}: ${problem}.`, FIX_HINT);
  const secret = findSecretKey(raw);
  if (secret !== undefined) {
    throw new RcppError(
      'CONFIG_INVALID',
      `${source} has a field named "${secret}"; rcpp2p never keeps passwords or passphrases in its configuration.`,
      'Remove that field: rcpp2p asks for the password when it needs it (or use a key with ssh-agent).',
    );
  }
  if (!isObject(raw)) throw complain(source, 'the configuration must be an object');
  const f = new Fields(raw, source, complain);
  f.onlyKeys(TOP_KEYS, UNKNOWN_SETTING);
  if (f.has('version') && f.raw('version') !== 1) {
    f.fail(
      `version is ${JSON.stringify(f.raw('version'))}, but this rcpp2p reads version 1 (was it written by a newer one?)`,
    );
  }

  const r = f.obj('rendezvous');
  r.onlyKeys(['host', 'port', 'user', 'dir'], UNKNOWN_SETTING);
  const host = r.str('host', 253, HOST, (v) => `"${v}" is not a host name or IP address`, true);
  if (host.startsWith('-')) r.fail(`rendezvous.host "${host}" is not a host name or IP address`);
  const user = r.str(
    'user',
    64,
    USER,
    (v) => `"${v}" is not a user name rcpp2p accepts (letters, digits, ".", "_", "-", "@")`,
    true,
  );
  const dir = r.has('dir')
    ? r.str('dir', 200, undefined, undefined, true)
    : CONFIG_DEFAULTS.rendezvousDir;
  if (!isRendezvousDir(dir)) {
    r.fail(
      `rendezvous.dir "${dir}" may only contain letters, digits, ".", "_", "-", "+" and "/" (and no "..")`,
    );
  }
  const rendezvous: RendezvousConfig = {
    host,
    port: r.has('port') ? r.int('port', 1, 65535) : CONFIG_DEFAULTS.rendezvousPort,
    user,
    dir,
  };

  const a: Fields = f.obj('auth');
  const method = a.raw('method');
  let auth: AuthConfig;
  if (method === 'key') {
    a.onlyKeys(['method', 'identityFile'], UNKNOWN_SETTING);
    auth = { method: 'key', identityFile: absolutePath(a, 'identityFile', home) };
  } else if (method === 'agent' || method === 'password') {
    a.onlyKeys(['method'], UNKNOWN_SETTING);
    auth = method === 'agent' ? { method: 'agent' } : { method: 'password' };
  } else {
    a.fail(
      method === undefined
        ? 'auth.method is missing'
        : `auth.method is ${JSON.stringify(method)}; use "key", "agent" or "password"`,
    );
  }

  const config: Config = {
    version: 1,
    rendezvous,
    auth,
    knownHostsFile: f.has('knownHostsFile')
      ? absolutePath(f, 'knownHostsFile', home)
      : defaultKnownHostsFile(home),
    port: f.int('port', 1024, 65535),
    pollSeconds: f.has('pollSeconds') ? f.int('pollSeconds', 1, 3600) : CONFIG_DEFAULTS.pollSeconds,
    keepaliveSeconds: f.has('keepaliveSeconds')
      ? f.int('keepaliveSeconds', 0, 3600)
      : CONFIG_DEFAULTS.keepaliveSeconds,
  };
  for (const field of ['serverName', 'clientName'] as const) {
    if (!f.has(field)) continue;
    config[field] = f.str(
      field,
      256,
      PEER_NAME,
      (v) => `"${v}" is not a valid name (${PEER_NAME_RULE})`,
      true,
    );
  }
  if (f.has('workDir')) config.workDir = absolutePath(f, 'workDir', home);
  if (f.has('allowClients')) {
    const allow = f.raw('allowClients');
    config.allowClients = Array.isArray(allow)
      ? f.arr('allowClients', MAX_ALLOWED_CLIENTS, (v, where) =>
          f
            .element({ name: v }, where)
            .str('name', 64, PEER_NAME, (n) => `"${n}" is not a client name`),
        )
      : f.oneOf('allowClients', ['new', 'known'] as const);
  }
  return config;
}

/** Parses `user@host`, `user@host:port`, `user@[v6]:port` (or a bare v6 address without a port). */
export function parseRendezvous(input: string): { user: string; host: string; port: number } {
  const usage = (problem: string): RcppError =>
    new RcppError(
      'USAGE',
      `"${input}" ${problem}.`,
      'Write the rendezvous as user@host, user@host:port or user@[ipv6]:port.',
    );
  const at = input.lastIndexOf('@');
  if (at <= 0) throw usage('does not name an account (user@host)');
  const user = input.slice(0, at);
  const rest = input.slice(at + 1);
  let host: string;
  let portText: string | undefined;
  const bracketed = /^\[([^\]]+)\](?::(.*))?$/.exec(rest);
  if (bracketed) {
    host = bracketed[1] ?? '';
    portText = bracketed[2];
  } else if ((rest.match(/:/g) ?? []).length > 1) {
    host = rest; // a bare IPv6 address: no port possible
  } else {
    const colon = rest.indexOf(':');
    host = colon < 0 ? rest : rest.slice(0, colon);
    portText = colon < 0 ? undefined : rest.slice(colon + 1);
  }
  if (!USER.test(user)) throw usage(`has a user name rcpp2p does not accept ("${user}")`);
  if (host === '' || !HOST.test(host) || host.startsWith('-')) throw usage('does not name a host');
  let port = 22;
  if (portText !== undefined) {
    port = /^\d{1,5}$/.test(portText) ? Number(portText) : NaN;
    if (!(port >= 1 && port <= 65535)) throw usage(`has a bad port "${portText}" (use 1 to 65535)`);
  }
  return { user, host, port };
}

/** Reads and validates a config file. */
export async function loadConfig(path: string, home: string = homedir()): Promise<Config> {
  await refuseIfOthersCanWrite(path, 'The configuration');
  let textContent: string;
  try {
    textContent = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new RcppError(
        'CONFIG_MISSING',
        `There is no configuration at ${path}.`,
        'Run rcpp2p --configure to create one.',
        { cause: err },
      );
    }
    throw fsError(err, path);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(textContent);
  } catch (err) {
    throw new RcppError(
      'CONFIG_INVALID',
      `${path} is not valid JSON (${describeJsonError(err as Error, textContent)}).`,
      FIX_HINT,
      { cause: err },
    );
  }
  return validateConfig(raw, path, home);
}

/** Validates, then writes the config atomically with mode 0600, creating its folder with 0700. */
export async function saveConfig(
  path: string,
  config: Config,
  home: string = homedir(),
): Promise<void> {
  const checked = validateConfig(config, 'The configuration to save', home);
  const dir = dirname(path);
  await mkdir(dir, { recursive: true, mode: 0o700 }).catch((err: unknown) => {
    throw fsError(err, dir);
  });
  const tmp = join(dir, `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    const fh = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
    try {
      await fh.chmod(0o600); // whatever the umask
      await fh.writeFile(`${JSON.stringify(checked, null, 2)}\n`);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => {});
    throw fsError(err, path);
  }
}

/** A path setting: absolute, or starting with ~/ (expanded here). */
function absolutePath(f: Fields, key: string, home: string): string {
  const path = expandHome(f.str(key, 4096, undefined, undefined, true), home);
  if (!isAbsolute(path)) {
    f.fail(
      `${key === 'identityFile' ? 'auth.' : ''}${key} must be an absolute path or start with ~/ (it is "${path}")`,
    );
  }
  return path;
}

function findSecretKey(value: unknown, depth = 0): string | undefined {
  if (typeof value !== 'object' || value === null || depth > 20) return undefined;
  for (const [key, inner] of Object.entries(value)) {
    if (SECRET_KEY.test(key)) return key;
    const found = findSecretKey(inner, depth + 1);
    if (found !== undefined) return found;
  }
  return undefined;
}

/** "line 3, column 5: Unexpected token ..." from V8's "... at position N" messages. */
function describeJsonError(err: Error, source: string): string {
  const message = err.message
    .replace(/\s+in JSON at position \d+.*$/s, '')
    .replace(/^JSON\.parse: /, '');
  const m = /at position (\d+)/.exec(err.message);
  if (!m) return message;
  const position = Number(m[1]);
  const before = source.slice(0, position).split('\n');
  return `line ${before.length}, column ${(before.at(-1)?.length ?? 0) + 1}: ${message}`;
}
