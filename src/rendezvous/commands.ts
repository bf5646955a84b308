// The few shell commands rcpp2p runs on the rendezvous account, and how to read their output.
//
// They are the whole contract with the rendezvous host: an OpenSSH server runs them through the
// account's shell; the embedded rendezvous server (src/rendezvous-server) recognises exactly these
// templates with parseRendezvousCommand() and answers them itself. Every template runs /bin/sh, so
// the account's login shell (bash, zsh, fish, csh) does not matter. Parameters are checked against
// strict patterns first (names.ts), so nothing needs quoting.
import { RcppError } from '../errors.js';
import { checkPeerName, PEER_NAME, RENDEZVOUS_DIR, type Role } from '../peer.js';
import { checkRendezvousDir } from './names.js';

export type RendezvousOp =
  /** Learn our external address ($SSH_CLIENT) and the account's home, and read one record. */
  | { op: 'hello'; dir: string; role: Role; name: string }
  /** Read every record of one role. */
  | { op: 'list'; dir: string; role: Role }
  /** Write one record from stdin, atomically (temp file + rename). */
  | { op: 'publish'; dir: string; role: Role; name: string }
  /** Remove a file server's stale signaling socket before it binds the name again. */
  | { op: 'unlink-socket'; dir: string; name: string };

const TEMPLATES: Record<RendezvousOp['op'], string> = {
  hello:
    `/bin/sh -c 'umask 077; cd && d={dir} && mkdir -p "$d/servers" "$d/clients" "$d/sockets"` +
    ` && echo "rcpp2p 1" && echo "ssh-client $SSH_CLIENT" && echo "home $HOME"` +
    ` && printf "record " && { cat "$d/{role}s/{name}.json" 2>/dev/null; echo; }'`,
  list:
    `/bin/sh -c 'cd && d={dir} && for f in "$d/{role}s/"*.json; do` +
    ` [ -f "$f" ] && { printf "record "; cat "$f"; echo; }; done; echo end'`,
  publish:
    `/bin/sh -c 'umask 077; cd && d={dir} && mkdir -p "$d/{role}s" && t="$d/{role}s/.{name}.json.$$"` +
    ` && cat > "$t" && mv -f "$t" "$d/{role}s/{name}.json"'`,
  'unlink-socket': `/bin/sh -c 'cd && rm -f {dir}/sockets/{name}.sock'`,
};

/** A whole-string pattern without its anchors, to embed in a larger one. */
function bare(pattern: RegExp): string {
  return pattern.source.replace(/^\^/, '').replace(/\$$/, '');
}

const PLACEHOLDER_PATTERNS: Record<string, string> = {
  dir: bare(RENDEZVOUS_DIR),
  role: '(?:server|client)',
  name: bare(PEER_NAME),
};

export function renderRendezvousCommand(op: RendezvousOp): string {
  checkRendezvousDir(op.dir);
  if ('name' in op) checkPeerName(op.name);
  const values: Record<string, string> = { ...op };
  return TEMPLATES[op.op].replace(/\{(\w+)\}/g, (_, key: string) => values[key] ?? '');
}

const PARSERS = (Object.keys(TEMPLATES) as RendezvousOp['op'][]).map((op) => {
  const source = TEMPLATES[op]
    .split(/(\{\w+\})/)
    .map((part) => {
      const key = /^\{(\w+)\}$/.exec(part)?.[1];
      if (key === undefined) return part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      return `(?<${key}_${Math.random().toString(36).slice(2, 8)}>${PLACEHOLDER_PATTERNS[key]})`;
    })
    .join('');
  return { op, regex: new RegExp(`^${source}$`) };
});

/** The inverse of renderRendezvousCommand, for the embedded server: undefined if not ours. */
export function parseRendezvousCommand(command: string): RendezvousOp | undefined {
  for (const { op, regex } of PARSERS) {
    const match = regex.exec(command);
    if (!match?.groups) continue;
    const values: Record<string, string> = {};
    for (const [group, value] of Object.entries(match.groups)) {
      const key = group.split('_')[0] ?? group;
      // A placeholder used twice must carry the same value both times.
      if (values[key] !== undefined && values[key] !== value) return undefined;
      values[key] = value;
    }
    const candidate = { op, ...values } as RendezvousOp;
    if (values['dir']?.split('/').includes('..')) return undefined;
    if (renderRendezvousCommand(candidate) === command) return candidate;
  }
  return undefined;
}

export interface HelloReply {
  /** The address and port the rendezvous sees us at ($SSH_CLIENT). */
  observed: { ip: string; port: number };
  home: string;
  /** The raw record text, or undefined when there is none. */
  recordText: string | undefined;
}

export function parseHelloReply(stdout: string): HelloReply {
  const lines = stdout.split('\n');
  if (lines[0] !== 'rcpp2p 1') {
    throw new RcppError(
      'RENDEZVOUS_REFUSED',
      'The rendezvous host did not run the rcpp2p command as expected.',
      'The account needs a POSIX /bin/sh; a forced command or restricted shell on it stops rcpp2p.',
    );
  }
  const field = (key: string): string | undefined =>
    lines.find((l) => l.startsWith(`${key} `))?.slice(key.length + 1);
  const sshClient = field('ssh-client')?.trim().split(/\s+/) ?? [];
  const ip = sshClient[0];
  const port = Number(sshClient[1]);
  if (ip === undefined || ip === '' || !Number.isInteger(port) || port <= 0 || port > 65535) {
    throw new RcppError(
      'RENDEZVOUS_REFUSED',
      'The rendezvous host did not tell rcpp2p its external address ($SSH_CLIENT was empty).',
      'Log in to an OpenSSH server directly (not through a jump host or a proxy).',
    );
  }
  const home = field('home') ?? '';
  const record = field('record')?.trim();
  return { observed: { ip, port }, home, recordText: record ? record : undefined };
}

/** Lines of `record JSON` from a list command; the list ends with `end`. */
export function parseListReply(stdout: string): string[] {
  const lines = stdout.split('\n');
  if (!lines.includes('end')) {
    throw new RcppError('RENDEZVOUS_REFUSED', 'The rendezvous host cut the record list short.');
  }
  return lines.filter((l) => l.startsWith('record ')).map((l) => l.slice('record '.length).trim());
}

/** Absolute path of a file server's signaling socket on the rendezvous host. */
export function socketPath(home: string, dir: string, serverName: string): string {
  const base = dir.startsWith('/') ? dir : `${home.replace(/\/+$/, '')}/${dir}`;
  return `${base}/sockets/${serverName}.sock`;
}
