// The few shell commands rcpp2p runs on the rendezvous account, and how to read their output.
//
// They are the whole contract with the rendezvous host: an OpenSSH server runs them through the
// account's shell; the embedded rendezvous server (src/rendezvous-server) recognises exactly these
// templates with parseRendezvousCommand() and answers them itself. Every template runs /bin/sh, so
// the account's login shell (bash, zsh, fish, csh) does not matter. Parameters are checked against
// strict patterns first (names.ts), so nothing needs quoting.
import { RcppError } from '../errors.js';
import { checkPeerName, isPeerName, PEER_NAME, RENDEZVOUS_DIR, type Role } from '../peer.js';
import { quote } from '../protocol/text.js';
import { checkRendezvousDir } from './names.js';

export type RendezvousOp =
  /** Learn our external address ($SSH_CLIENT) and the account's home, and read one record. */
  | { op: 'hello'; dir: string; role: Role; name: string }
  /** Read every record of one role. */
  | { op: 'list'; dir: string; role: Role }
  /**
   * A file server's reader of client records, running for its session: each client name it reads
   * on stdin is answered on stdout with `record JSON` (the record's first line) or `none`.
   */
  | { op: 'read-clients'; dir: string }
  /** Write one record from stdin, atomically (temp file + rename). */
  | { op: 'publish'; dir: string; role: Role; name: string }
  /** Remove a file server's stale signaling socket before it binds the name again. */
  | { op: 'unlink-socket'; dir: string; name: string }
  /**
   * The exec signaling transport, file-server side: a long-running loop that takes over the
   * server's request folder, prints every client line that appears there, and writes the server's
   * answers it reads on stdin into the folder (see exec-transport.ts).
   */
  | { op: 'watch'; dir: string; name: string; wid: string }
  /**
   * The exec transport, client side: one conversation with server `name`, as stdin and stdout;
   * the first `first` lines the client writes travel to the server together, after the record of
   * client `client` (saving the server a command to read it).
   */
  | { op: 'ask'; dir: string; name: string; cid: string; first: number; client: string }
  /**
   * Write a file server's index from stdin, atomically; `bytes` is its exact length, so an upload
   * cut short (the channel closed: cat sees a plain end of input) never replaces a good index.
   */
  | { op: 'publish-index'; dir: string; name: string; bytes: number }
  /** Remove a file server's index (it stopped publishing one). */
  | { op: 'remove-index'; dir: string; name: string }
  /** One line per index: `index NAME BYTES FIRST-LINE` (the first line is its summary); `end`. */
  | { op: 'list-indexes'; dir: string }
  /** One index's bytes, as stored (nothing when there is none). */
  | { op: 'read-index'; dir: string; name: string };

/**
 * The largest index file a rendezvous keeps or a reader accepts, in bytes (about 500,000 files of
 * typical names: a 100,000-file index is near 300 KB). Publishers stay under it; the embedded
 * rendezvous refuses more, and readers stop reading past it.
 */
export const MAX_INDEX_BYTES = 8 * 1024 * 1024;
/** How much of an index's first line list-indexes shows. */
export const INDEX_SUMMARY_BYTES = 1024;

/** Bounds of the exec transport's loops on the rendezvous host (see exec-transport.ts). */
export const EXEC_LOOP = {
  /** Seconds between two looks at the request folder, and the fallback without fractional sleep. */
  pause: '0.2',
  slowPause: '1',
  /** A watcher ends after this many pauses (10 minutes), a conversation after 60 s. */
  watchRounds: 3000,
  watchRoundsSlow: 600,
  askRounds: 300,
  askRoundsSlow: 60,
  /** Parts a client may send in one conversation (its first part, then one line each). */
  maxClientParts: 9,
  /**
   * Every this many pauses the watcher removes once more whatever the conversations that ended
   * one to two periods ago left behind (a server part written after the client left, a client
   * line moved in after its ask had signed off): 5 to 10 s after their end at 0.2 s a pause.
   */
  sweepRounds: 25,
} as const;

const TEMPLATES: Record<RendezvousOp['op'], string> = {
  // "rcpp2p 1" comes first: without it the account ran something else than our command.
  hello:
    `/bin/sh -c 'echo "rcpp2p 1"; umask 077; cd && d={dir}` +
    ` && mkdir -p "$d/servers" "$d/clients" "$d/sockets"` +
    ` && echo "ssh-client $SSH_CLIENT" && echo "home $HOME"` +
    ` && printf "record " && { cat "$d/{role}s/{name}.json" 2>/dev/null; echo; }'`,
  list:
    `/bin/sh -c 'cd && d={dir} && for f in "$d/{role}s/"*.json; do` +
    ` [ -f "$f" ] && { printf "record "; cat "$f"; echo; }; done; echo end'`,
  // Prints "rcpp2p read-clients 1", then answers each line of stdin (a client name) with one
  // line, in order; it ends when stdin closes. Only builtins run per name.
  'read-clients':
    `/bin/sh -c 'cd && d={dir}/clients && echo "rcpp2p read-clients 1";` +
    ` while IFS= read -r n; do case $n in ""|.*|*[!A-Za-z0-9._-]*) echo none; continue;; esac;` +
    ` x=; { IFS= read -r x < "$d/$n.json"; } 2>/dev/null;` +
    ` if [ -n "$x" ]; then printf "record %s\\n" "$x"; else echo none; fi; done'`,
  publish:
    `/bin/sh -c 'umask 077; cd && d={dir} && mkdir -p "$d/{role}s" && t="$d/{role}s/.{name}.json.$$"` +
    ` && cat > "$t" && mv -f "$t" "$d/{role}s/{name}.json"'`,
  'unlink-socket': `/bin/sh -c 'cd && rm -f {dir}/sockets/{name}.sock'`,
  // Prints "rcpp2p watch 1", then one line per client line ("up CID SEQ JSON": every line of the
  // client's part SEQ) and per ended conversation ("end CID"), and "end" when its time is up. On
  // stdin it reads the server's parts ("down CID SEQ JSON" or "fin CID SEQ") and leaves each in
  // the folder as CID.SEQ.down or CID.SEQ.fin. It stops when another watcher takes the folder
  // over, and when its stdin closes (the SSH session ended: the background reader sees EOF and
  // exits, which the loop notices). Only builtins run while idle, apart from the sleep. Files of
  // ended conversations are removed at their end and once more a few seconds later; files older
  // than 10 minutes when a watcher starts (a client killed mid-conversation) go then.
  watch:
    `/bin/sh -c 'umask 077; cd && d={dir}/signals/{name} && mkdir -p "$d" && rm -f "$d"/w.*` +
    ` && : > "$d/w.{wid}" || exit 1; bye() { rm -f "$d/w.{wid}"; }; trap bye EXIT;` +
    ` trap "exit 0" HUP INT TERM PIPE; find "$d" -type f -mmin +10 -exec rm -f {} + 2>/dev/null;` +
    ` exec 3<&0; { while read -r w c k x <&3; do` +
    ` case $w.$c.$k in down.*|fin.*) ;; *) continue;; esac;` +
    ` case $c$k in ""|*[!0-9a-f]*) continue;; esac; t="$d/.$c.$k.d";` +
    ` if [ $w = down ]; then printf "%s\\n" "$x" > "$t"; else : > "$t"; fi` +
    ` && mv -f "$t" "$d/$c.$k.$w"; done; } >/dev/null 2>&1 & r=$!;` +
    ` echo "rcpp2p watch 1"; s=${EXEC_LOOP.pause}; l=${EXEC_LOOP.watchRounds};` +
    ` sleep 0.01 2>/dev/null || { s=${EXEC_LOOP.slowPause}; l=${EXEC_LOOP.watchRoundsSlow}; };` +
    ` n=0; g=; o=; while [ -f "$d/w.{wid}" ] && [ $n -lt $l ] && kill -0 $r 2>/dev/null; do` +
    ` for f in "$d"/*.up "$d"/*.end; do [ -f "$f" ] || continue; b=$\{f##*/};` +
    ` case $b in *.up) b=$\{b%.up}; while IFS= read -r x; do` +
    ` printf "up %s %s %s\\n" "$\{b%.*}" "$\{b##*.}" "$x"; done < "$f"; rm -f "$f";;` +
    ` *) b=$\{b%.end}; rm -f "$d/$b".*; g="$g $b"; printf "end %s\\n" "$b";; esac; done;` +
    ` if [ $((n % ${EXEC_LOOP.sweepRounds})) = 0 ]; then for b in $o; do rm -f "$d/$b".*; done; o=$g; g=; fi;` +
    ` sleep $s; n=$((n+1)); done; echo end'`,
  // Prints "rcpp2p ask 1" (or "rcpp2p ask 1 no-watcher" and ends when no watcher runs), then
  // moves stdin into the folder (the first FIRST lines as CID.1.up, after "record JSON" of client
  // CLIENT when there is one; each later line as the next CID.N.up) and prints the server's
  // CID.N.down files in order, until CID.N.fin, the end of stdin, or 60 s. On its way out it
  // leaves CID.end: the watcher then ends the conversation.
  ask:
    `/bin/sh -c 'umask 077; cd && d={dir}/signals/{name} && c={cid} || exit 1;` +
    ` w=; for f in "$d"/w.*; do [ -f "$f" ] && w=1; done;` +
    ` [ -n "$w" ] || { echo "rcpp2p ask 1 no-watcher"; exit 0; };` +
    ` bye() { rm -f "$d/$c".*.down "$d/$c".*.fin; : > "$d/$c.end"; }; trap bye EXIT;` +
    ` trap "exit 1" HUP INT TERM PIPE; exec 3<&0;` +
    ` { x=; IFS= read -r x < {dir}/clients/{client}.json;` +
    ` [ -n "$x" ] && printf "record %s\\n" "$x" > "$d/.$c.1.u"; } 2>/dev/null;` +
    ` { m=1; i=0; t={first}; while [ $m -le ${EXEC_LOOP.maxClientParts} ] && IFS= read -r x <&3; do` +
    ` printf "%s\\n" "$x" >> "$d/.$c.$m.u"; i=$((i+1)); if [ $i -ge $t ]; then` +
    ` mv -f "$d/.$c.$m.u" "$d/$c.$m.up"; m=$((m+1)); i=0; t=1; fi; done; } >/dev/null 2>&1 & r=$!;` +
    ` echo "rcpp2p ask 1"; s=${EXEC_LOOP.pause}; l=${EXEC_LOOP.askRounds};` +
    ` sleep 0.01 2>/dev/null || { s=${EXEC_LOOP.slowPause}; l=${EXEC_LOOP.askRoundsSlow}; };` +
    ` k=1; n=0; while [ $n -lt $l ]; do` +
    ` if [ -f "$d/$c.$k.down" ]; then cat "$d/$c.$k.down"; rm -f "$d/$c.$k.down"; k=$((k+1)); continue; fi;` +
    ` [ -f "$d/$c.$k.fin" ] && exit 0; kill -0 $r 2>/dev/null || exit 0; sleep $s; n=$((n+1)); done'`,
  'publish-index':
    `/bin/sh -c 'umask 077; cd && d={dir} && mkdir -p "$d/indexes" && t="$d/indexes/.{name}.idx.$$"` +
    ` && { cat > "$t" && [ $(wc -c < "$t") -eq {bytes} ] && mv -f "$t" "$d/indexes/{name}.idx"` +
    ` || { rm -f "$t"; echo "index upload incomplete" >&2; exit 1; }; }'`,
  'remove-index': `/bin/sh -c 'cd && rm -f {dir}/indexes/{name}.idx'`,
  'list-indexes':
    `/bin/sh -c 'cd && d={dir} && for f in "$d/indexes/"*.idx; do [ -f "$f" ] || continue;` +
    ` n=$(wc -c < "$f") || continue; b=\${f##*/}; printf "index %s %s " "\${b%.idx}" $n;` +
    ` dd if="$f" bs=${INDEX_SUMMARY_BYTES} count=1 2>/dev/null | head -n 1 | tr -d "\\r\\n"; echo; done; echo end'`,
  'read-index': `/bin/sh -c 'cd && cat {dir}/indexes/{name}.idx 2>/dev/null; exit 0'`,
};

/** A whole-string pattern without its anchors, to embed in a larger one. */
function bare(pattern: RegExp): string {
  return pattern.source.replace(/^\^/, '').replace(/\$$/, '');
}

const PLACEHOLDER_PATTERNS: Record<string, string> = {
  dir: bare(RENDEZVOUS_DIR),
  role: '(?:server|client)',
  name: bare(PEER_NAME),
  wid: '[0-9a-f]{16}',
  cid: '[0-9a-f]{16}',
  first: '[1-9]',
  client: bare(PEER_NAME),
  bytes: '(?:0|[1-9][0-9]{0,9})',
};
/** Placeholders that hold numbers in a RendezvousOp. */
const NUMERIC_PLACEHOLDERS = new Set(['first', 'bytes']);

export function renderRendezvousCommand(op: RendezvousOp): string {
  checkRendezvousDir(op.dir);
  if ('name' in op) checkPeerName(op.name);
  const values: Record<string, string> = Object.fromEntries(
    Object.entries(op).map(([key, value]) => [key, String(value)]),
  );
  return TEMPLATES[op.op].replace(/\{(\w+)\}/g, (_, key: string) => {
    const value = values[key] ?? '';
    // Every value goes into a shell command unquoted: only what its pattern allows.
    if (!new RegExp(`^${PLACEHOLDER_PATTERNS[key] ?? '(?!)'}$`).test(value)) {
      throw new RcppError(
        'INTERNAL',
        `A rendezvous command got a bad ${key}: ${JSON.stringify(value)}.`,
      );
    }
    return value;
  });
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
    const typed = Object.fromEntries(
      Object.entries(values).map(([k, v]) => [k, NUMERIC_PLACEHOLDERS.has(k) ? Number(v) : v]),
    );
    const candidate = { op, ...typed } as RendezvousOp;
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

/** One line of a list-indexes reply: a file server's index, its size and its first line. */
export interface IndexListing {
  name: string;
  bytes: number;
  /** The index's first line (its summary), at most INDEX_SUMMARY_BYTES, unchecked. */
  summary: string;
}

export interface IndexListReply {
  indexes: IndexListing[];
  /** One sentence per line that was not an index line rcpp2p wrote. */
  damaged: string[];
}

const INDEX_LINE = /^index ([^ ]+) +(\d{1,15}) ?(.*)$/s;

/**
 * Reads a list-indexes reply. The rendezvous account is shared, so a line that is not in the
 * template's form, a bad name or a name listed twice is reported and left out, never trusted.
 */
export function parseIndexListReply(stdout: string): IndexListReply {
  const lines = stdout.split('\n');
  if (lines.at(-1) === '') lines.pop();
  if (lines.at(-1) !== 'end') {
    throw new RcppError('RENDEZVOUS_REFUSED', 'The rendezvous host cut the index list short.');
  }
  lines.pop();
  const indexes: IndexListing[] = [];
  const damaged: string[] = [];
  const seen = new Set<string>();
  for (const line of lines) {
    const m = INDEX_LINE.exec(line);
    const name = m?.[1] ?? '';
    if (!m || !isPeerName(name)) {
      damaged.push(`A line of the index list is not one rcpp2p wrote (${quote(line, 60)}).`);
      continue;
    }
    if (seen.has(name)) {
      damaged.push(`The index of ${name} is listed twice; both are left out.`);
      const first = indexes.findIndex((i) => i.name === name);
      if (first >= 0) indexes.splice(first, 1);
      continue;
    }
    seen.add(name);
    indexes.push({
      name,
      bytes: Number(m[2]),
      summary: (m[3] ?? '').slice(0, INDEX_SUMMARY_BYTES),
    });
  }
  return { indexes, damaged };
}

/** Absolute path of a file server's signaling socket on the rendezvous host. */
export function socketPath(home: string, dir: string, serverName: string): string {
  const base = dir.startsWith('/') ? dir : `${home.replace(/\/+$/, '')}/${dir}`;
  return `${base}/sockets/${serverName}.sock`;
}
