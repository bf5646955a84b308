// OpenSSH known_hosts logic, pure (file text in, decision out), matching what ssh(1) decides:
//
//   [@revoked|@cert-authority] PATTERNS KEYTYPE BASE64 [COMMENT]
//
// PATTERNS is a comma list (`a,b`, `*.example.net`, `?`, `!negated`, `[host]:port`) or one hashed
// entry `|1|salt|hmac` = HMAC-SHA1 keyed with the salt over the host string. The host string is
// `host` for port 22 and `[host]:port` otherwise, lower-cased (sshconnect.c, put_host_port).
// A negated pattern that matches excludes the line even when another pattern matches.
//
// Decision (hostfile.c, check_hostkeys_by_key_or_type), over the lines whose patterns match:
//   1. an @revoked line with this key                         -> revoked (wins over everything)
//   2. a plain line with this key                             -> match
//   3. a plain line with the same key type and another key    -> mismatch (first such line)
//   4. otherwise                                              -> unknown (+ the key types it is known with)
// @cert-authority lines are never host keys. Malformed lines are skipped and reported.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { RcppError } from '../errors.js';

export interface KnownHostsEntry {
  /** 1-based line number. */
  line: number;
  marker: 'revoked' | 'cert-authority' | undefined;
  /** The patterns field as written (a comma list, or one |1|salt|hash entry). */
  hosts: string;
  keyType: string;
  blob: Buffer;
  comment: string;
}

export interface MalformedLine {
  line: number;
  reason: string;
}

export interface KnownHosts {
  entries: KnownHostsEntry[];
  malformed: MalformedLine[];
}

export type HostKeyCheck =
  | { status: 'match'; line: number }
  | { status: 'mismatch'; line: number; knownType: string; knownFingerprint: string }
  /** knownTypes: key types known_hosts holds for this host (it is known, but not with this type). */
  | { status: 'unknown'; knownTypes: string[] }
  | { status: 'revoked'; line: number };

export interface HostKey {
  type: string;
  blob: Buffer;
}

const MAX_LINE = 16 * 1024;

export function parseKnownHosts(text: string): KnownHosts {
  const entries: KnownHostsEntry[] = [];
  const malformed: MalformedLine[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const raw = (lines[i] ?? '').replace(/\r$/, '');
    const line = i + 1;
    const trimmed = raw.trim();
    if (trimmed === '' || trimmed.startsWith('#')) continue;
    if (raw.length > MAX_LINE) {
      malformed.push({ line, reason: 'line too long' });
      continue;
    }
    const fields = trimmed.split(/[ \t]+/);
    let marker: KnownHostsEntry['marker'] = undefined;
    if (fields[0]?.startsWith('@')) {
      const m = fields.shift();
      if (m === '@revoked') marker = 'revoked';
      else if (m === '@cert-authority') marker = 'cert-authority';
      else {
        malformed.push({ line, reason: `unknown marker ${m ?? ''}` });
        continue;
      }
    }
    const [hosts, keyType, base64, ...comment] = fields;
    if (hosts === undefined || keyType === undefined || base64 === undefined) {
      malformed.push({ line, reason: 'expected hosts, key type and key' });
      continue;
    }
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(base64)) {
      malformed.push({ line, reason: 'the key is not base64' });
      continue;
    }
    const blob = Buffer.from(base64, 'base64');
    const blobType = readSshString(blob);
    if (blobType !== keyType) {
      malformed.push({
        line,
        reason:
          blobType === undefined
            ? 'the key is damaged'
            : `key type ${keyType} but the key is ${blobType}`,
      });
      continue;
    }
    if (hosts.startsWith('|') && parseHashed(hosts) === undefined) {
      malformed.push({ line, reason: 'bad hashed host entry' });
      continue;
    }
    entries.push({ line, marker, hosts, keyType, blob, comment: comment.join(' ') });
  }
  return { entries, malformed };
}

/** Decides about a host key the way ssh(1) does; see the table at the top of this file. */
export function checkHostKey(text: string, host: string, port: number, key: HostKey): HostKeyCheck {
  const entries = matchingEntries(text, host, port);
  const revoked = entries.find((e) => e.marker === 'revoked' && e.blob.equals(key.blob));
  if (revoked) return { status: 'revoked', line: revoked.line };
  const plain = entries.filter((e) => e.marker === undefined);
  const match = plain.find((e) => e.blob.equals(key.blob));
  if (match) return { status: 'match', line: match.line };
  const other = plain.find((e) => e.keyType === key.type);
  if (other) {
    return {
      status: 'mismatch',
      line: other.line,
      knownType: other.keyType,
      knownFingerprint: sshFingerprint(other.blob),
    };
  }
  return { status: 'unknown', knownTypes: typesOf(plain) };
}

/** Key types known_hosts holds for a host, in file order (for host-key algorithm preference). */
export function knownTypesFor(text: string, host: string, port: number): string[] {
  return typesOf(matchingEntries(text, host, port).filter((e) => e.marker === undefined));
}

/**
 * Host-key algorithms to prefer for known key types, like ssh(1): an ssh-rsa key is negotiated
 * as rsa-sha2-512 or rsa-sha2-256; other key types are their own algorithm.
 */
export function hostKeyAlgorithmsFor(keyTypes: string[]): string[] {
  const algorithms = keyTypes.flatMap((t) =>
    t === 'ssh-rsa' ? ['rsa-sha2-512', 'rsa-sha2-256'] : [t],
  );
  return [...new Set(algorithms)];
}

/** 'SHA256:' + unpadded base64 of SHA-256 over the key blob, like ssh-keygen -l. */
export function sshFingerprint(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

/** The key type named at the start of an SSH public key blob (an SSH string). */
export function keyTypeOfBlob(blob: Buffer): string {
  const type = readSshString(blob);
  if (type === undefined) {
    throw new RcppError('PROTOCOL_ERROR', 'The SSH host key the server sent is malformed.');
  }
  return type;
}

/** A known_hosts line as ssh(1) writes it: `host type base64`, or `[host]:port type base64`. */
export function formatKnownHostsLine(
  host: string,
  port: number,
  type: string,
  blob: Buffer,
): string {
  return `${hostString(host, port)} ${type} ${blob.toString('base64')}`;
}

/** The name ssh(1) looks up: `host` for port 22, `[host]:port` otherwise, lower-cased. */
export function hostString(host: string, port: number): string {
  const bare = host.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  return port === 22 ? bare : `[${bare}]:${port}`;
}

/** Every well-formed line whose patterns match the host (like ssh-keygen -F), markers included. */
export function matchingEntries(text: string, host: string, port: number): KnownHostsEntry[] {
  const name = hostString(host, port);
  return parseKnownHosts(text).entries.filter((e) => hostsFieldMatches(e.hosts, name));
}

function typesOf(entries: KnownHostsEntry[]): string[] {
  return [...new Set(entries.map((e) => e.keyType))];
}

function hostsFieldMatches(field: string, name: string): boolean {
  if (field.startsWith('|')) {
    const hashed = parseHashed(field);
    if (!hashed) return false;
    const mac = createHmac('sha1', hashed.salt).update(name).digest();
    return mac.length === hashed.mac.length && timingSafeEqual(mac, hashed.mac);
  }
  let positive = false;
  for (const raw of field.split(',')) {
    const negated = raw.startsWith('!');
    // `[host]:22` names the same thing as `host` (ssh writes the short form; accept both)
    const pattern = (negated ? raw.slice(1) : raw).toLowerCase().replace(/^\[([^\]]*)\]:22$/, '$1');
    if (pattern === '') continue;
    if (wildcardMatch(name, pattern)) {
      if (negated) return false;
      positive = true;
    }
  }
  return positive;
}

function parseHashed(field: string): { salt: Buffer; mac: Buffer } | undefined {
  const m = /^\|1\|([A-Za-z0-9+/]+={0,2})\|([A-Za-z0-9+/]+={0,2})$/.exec(field);
  if (!m) return undefined;
  const salt = Buffer.from(m[1] ?? '', 'base64');
  const mac = Buffer.from(m[2] ?? '', 'base64');
  return salt.length === 20 && mac.length === 20 ? { salt, mac } : undefined;
}

/** OpenSSH match_pattern: `*` any run of characters, `?` exactly one. */
export function wildcardMatch(text: string, pattern: string): boolean {
  let t = 0;
  let p = 0;
  let starP = -1;
  let starT = 0;
  while (t < text.length) {
    const pc = pattern[p];
    if (pc === '*') {
      starP = p++;
      starT = t;
    } else if (pc !== undefined && (pc === '?' || pc === text[t])) {
      p++;
      t++;
    } else if (starP >= 0) {
      p = starP + 1;
      t = ++starT;
    } else {
      return false;
    }
  }
  while (pattern[p] === '*') p++;
  return p === pattern.length;
}

function readSshString(blob: Buffer): string | undefined {
  if (blob.length < 4) return undefined;
  const length = blob.readUInt32BE(0);
  if (length === 0 || length > 64 || 4 + length > blob.length) return undefined;
  const text = blob.subarray(4, 4 + length).toString('latin1');
  return /^[\x21-\x7e]+$/.test(text) ? text : undefined;
}
