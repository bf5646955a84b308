// Peers this one has talked to, and the identity each proved: rcpp2p's known_hosts. The rendezvous
// account says who a peer is, but everyone in the account can rewrite records; pinning the first
// fingerprint seen for a name (trust on first use, as ssh does with host keys) turns a silent
// impersonation into a refusal that shows both fingerprints.
//
// File format, one peer per line, beside the config (mode 0600):
//   # comment
//   server ASUS SHA256:... 2026-12-02T10:00:00.000Z
//   client LAPTOP SHA256:... 2026-12-02T10:05:00.000Z
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { fsError } from '../errors.js';
import { isPeerName, type Role } from '../peer.js';

export interface KnownPeer {
  role: Role;
  name: string;
  fingerprint: string;
  /** When this peer was first remembered (ISO time). */
  since: string;
  /** 1-based line in the file, for sentences. */
  line: number;
}

export type PeerCheck =
  | { status: 'known'; known: KnownPeer }
  | { status: 'new' }
  | { status: 'changed'; known: KnownPeer };

const FINGERPRINT = /^SHA256:[A-Za-z0-9+/]{43}$/;
const HEADER =
  "# rcpp2p known_peers: the identity each peer proved the first time (like ssh's known_hosts).\n" +
  '# A changed identity is refused; remove a line (rcpp2p --forget-peer NAME) to accept a new one.\n';

/** Parses the file; lines that are not `role name fingerprint time` are ignored. */
export function parseKnownPeers(text: string): KnownPeer[] {
  const peers: KnownPeer[] = [];
  text.split('\n').forEach((raw, index) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const [role, name, fingerprint, since = ''] = line.split(/\s+/);
    if (
      (role === 'server' || role === 'client') &&
      name !== undefined &&
      isPeerName(name) &&
      fingerprint !== undefined &&
      FINGERPRINT.test(fingerprint)
    ) {
      peers.push({ role, name, fingerprint, since, line: index + 1 });
    }
  });
  return peers;
}

export function formatKnownPeers(peers: readonly KnownPeer[]): string {
  return HEADER + peers.map((p) => `${p.role} ${p.name} ${p.fingerprint} ${p.since}\n`).join('');
}

/** What the file says about a peer that now proves `fingerprint`. */
export function checkPeer(
  peers: readonly KnownPeer[],
  role: Role,
  name: string,
  fingerprint: string,
): PeerCheck {
  const known = peers.find((p) => p.role === role && p.name === name);
  if (!known) return { status: 'new' };
  return known.fingerprint === fingerprint
    ? { status: 'known', known }
    : { status: 'changed', known };
}

/** The known_peers file beside a config: /x/y/config.json -> /x/y/config.known_peers. */
export function knownPeersPathFor(configPath: string): string {
  const name = basename(configPath);
  const base = name.endsWith('.json') ? name.slice(0, -'.json'.length) : name;
  return join(dirname(configPath), `${base}.known_peers`);
}

export class KnownPeers {
  /** Writes happen one at a time; each re-reads the file so other processes' lines survive. */
  private writing: Promise<unknown> = Promise.resolve();

  private constructor(
    readonly file: string,
    private peers: KnownPeer[],
  ) {}

  static async load(file: string): Promise<KnownPeers> {
    return new KnownPeers(file, await readPeers(file));
  }

  /** Reads the file again: a long-running file server sees `--forget-peer` run beside it. */
  async reload(): Promise<void> {
    await this.writing;
    this.peers = await readPeers(this.file);
  }

  check(role: Role, name: string, fingerprint: string): PeerCheck {
    return checkPeer(this.peers, role, name, fingerprint);
  }

  /** Remembers a peer seen for the first time; a name already known keeps its first identity. */
  remember(role: Role, name: string, fingerprint: string): Promise<void> {
    return this.update((peers) => {
      if (peers.some((p) => p.role === role && p.name === name)) return peers;
      return [...peers, { role, name, fingerprint, since: new Date().toISOString(), line: 0 }];
    });
  }

  /** Forgets every identity remembered for `name` (either role); resolves with what was removed. */
  async forget(name: string): Promise<KnownPeer[]> {
    let removed: KnownPeer[] = [];
    await this.update((peers) => {
      removed = peers.filter((p) => p.name === name);
      return peers.filter((p) => p.name !== name);
    });
    return removed;
  }

  private update(change: (peers: KnownPeer[]) => KnownPeer[]): Promise<void> {
    const next = this.writing.then(async () => {
      const before = await readPeers(this.file);
      const after = change(before);
      if (after !== before) await writeAtomically(this.file, formatKnownPeers(after));
      this.peers = parseKnownPeers(formatKnownPeers(after));
    });
    this.writing = next.catch(() => {});
    return next;
  }
}

async function readPeers(file: string): Promise<KnownPeer[]> {
  try {
    return parseKnownPeers(await readFile(file, 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw fsError(err, file);
  }
}

async function writeAtomically(file: string, text: string): Promise<void> {
  const dir = dirname(file);
  const tmp = join(dir, `.${basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const fh = await open(tmp, 'wx', 0o600);
    try {
      await fh.chmod(0o600);
      await fh.writeFile(text);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, file);
  } catch (err) {
    await unlink(tmp).catch(() => {});
    throw fsError(err, file);
  }
}
