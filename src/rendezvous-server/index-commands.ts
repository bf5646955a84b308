// The embedded rendezvous's side of the file-server indexes (the index templates of
// src/rendezvous/commands.ts): the same files and the same output as /bin/sh running those
// templates on an OpenSSH host, plus the limits an OpenSSH account cannot enforce: one index is at
// most MAX_INDEX_BYTES, and an account's indexes together at most MAX_INDEX_BYTES_PER_ACCOUNT.
import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, rename, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { INDEX_SUMMARY_BYTES, MAX_INDEX_BYTES, type RendezvousOp } from '../rendezvous/commands.js';

export type IndexOp = Extract<
  RendezvousOp,
  { op: 'publish-index' | 'remove-index' | 'list-indexes' | 'read-index' }
>;

/** Every index of one account together, in bytes (eight indexes at the per-index limit). */
export const MAX_INDEX_BYTES_PER_ACCOUNT = 8 * MAX_INDEX_BYTES;

export interface IndexCommandIo {
  /** The account's rcpp2p folder (already checked to be inside its home). */
  base: string;
  /** All of stdin, or 'too-large' as soon as more than `limit` bytes arrive. */
  readStdin: (limit: number) => Promise<Buffer | 'too-large'>;
  stdout: (data: string | Buffer) => Promise<void>;
  stderr: (text: string) => Promise<void>;
}

export function isIndexOp(op: RendezvousOp): op is IndexOp {
  return (
    op.op === 'publish-index' ||
    op.op === 'remove-index' ||
    op.op === 'list-indexes' ||
    op.op === 'read-index'
  );
}

/** Runs one index command; resolves with its exit code. */
export async function runIndexCommand(op: IndexOp, io: IndexCommandIo): Promise<number> {
  const dir = join(io.base, 'indexes');
  switch (op.op) {
    case 'publish-index': {
      const data = await io.readStdin(MAX_INDEX_BYTES);
      if (data === 'too-large') {
        return refuse(io, `index too large (more than ${MAX_INDEX_BYTES} bytes)`);
      }
      if (data.length !== op.bytes) return refuse(io, 'index upload incomplete');
      const target = join(dir, `${op.name}.idx`);
      const others = (await indexSizes(dir)).filter((i) => i.path !== target);
      const total = others.reduce((sum, i) => sum + i.bytes, 0) + data.length;
      if (total > MAX_INDEX_BYTES_PER_ACCOUNT) {
        return refuse(
          io,
          `this account's file-server indexes would take ${total} bytes, more than its limit of ` +
            `${MAX_INDEX_BYTES_PER_ACCOUNT}; remove the indexes of servers nobody uses`,
        );
      }
      await mkdir(dir, { recursive: true, mode: 0o700 });
      const tmp = join(dir, `.${op.name}.idx.${randomBytes(4).toString('hex')}`);
      try {
        await writeFile(tmp, data, { mode: 0o600 });
        await rename(tmp, target);
      } catch (err) {
        await unlink(tmp).catch(() => {});
        throw err;
      }
      return 0;
    }
    case 'remove-index':
      await rm(join(dir, `${op.name}.idx`), { force: true });
      return 0;
    case 'list-indexes': {
      for (const index of await indexSizes(dir)) {
        const first = await readStart(index.path, INDEX_SUMMARY_BYTES);
        if (first === undefined) continue;
        const newline = first.indexOf(0x0a);
        const line = Buffer.from(
          (newline < 0 ? first : first.subarray(0, newline)).filter((b) => b !== 0x0d),
        );
        await io.stdout(
          Buffer.concat([Buffer.from(`index ${index.name} ${index.bytes} `), line, NEWLINE]),
        );
      }
      await io.stdout('end\n');
      return 0;
    }
    case 'read-index': {
      const data = await readStart(join(dir, `${op.name}.idx`), MAX_INDEX_BYTES + 1);
      if (data !== undefined) await io.stdout(data);
      return 0;
    }
  }
}

const NEWLINE = Buffer.from('\n');

interface StoredIndex {
  name: string;
  path: string;
  bytes: number;
}

/** The account's index files (`*.idx`, not hidden, regular files), sorted by name. */
async function indexSizes(dir: string): Promise<StoredIndex[]> {
  const names = (await readdir(dir).catch(() => [] as string[]))
    .filter((n) => n.endsWith('.idx') && !n.startsWith('.'))
    .sort();
  const found: StoredIndex[] = [];
  for (const file of names) {
    const path = join(dir, file);
    const st = await stat(path).catch(() => undefined);
    if (st?.isFile()) found.push({ name: file.slice(0, -'.idx'.length), path, bytes: st.size });
  }
  return found;
}

/** Up to `limit` bytes from the start of a file; undefined when it cannot be read. */
async function readStart(path: string, limit: number): Promise<Buffer | undefined> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch {
    return undefined;
  }
  try {
    const into = Buffer.alloc(Math.min(limit, (await handle.stat()).size));
    let length = 0;
    while (length < into.length) {
      const { bytesRead } = await handle.read(into, length, into.length - length);
      if (bytesRead === 0) break;
      length += bytesRead;
    }
    return into.subarray(0, length);
  } catch {
    return undefined;
  } finally {
    await handle.close();
  }
}

async function refuse(io: IndexCommandIo, why: string): Promise<number> {
  await io.stderr(`rcpp2p rendezvous: ${why}\n`);
  return 1;
}
