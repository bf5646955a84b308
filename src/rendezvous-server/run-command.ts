// What the embedded rendezvous does for each of rcpp2p's rendezvous commands, on real files in the
// account's home folder: the same effects and the same output as /bin/sh running the templates of
// src/rendezvous/commands.ts on an OpenSSH host, within the account's quotas. Output goes out as it
// is made (a list is written record by record, waiting while the client does not read), so no
// command ever holds more than one record in memory.
import { randomBytes } from 'node:crypto';
import { lstat, mkdir, open, readdir, rename, unlink, writeFile } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import { socketPath, type RendezvousOp } from '../rendezvous/commands.js';
import { countEntries, missingEntries } from './account-quota.js';
import { isIndexOp, runIndexCommand } from './index-commands.js';
import type { RendezvousLimits } from './limits.js';

export interface CommandContext {
  home: string;
  /** The client's address as this server sees it ($SSH_CLIENT). */
  remote: { ip: string; port: number };
  localPort: number;
  limits: Pick<RendezvousLimits, 'maxEntriesPerAccount' | 'maxRecordBytes'>;
  /** Reads all of stdin, or 'too-large' as soon as more than `limit` bytes arrive. */
  readStdin: (limit: number) => Promise<Buffer | 'too-large'>;
  /** Writes output; resolves once it is sent and the client has room for more (so a Buffer
   * passed in may be reused). */
  stdout: (data: string | Buffer) => Promise<void>;
  stderr: (text: string) => Promise<void>;
  /** Forgets a registered signaling socket (the `unlink-socket` command). */
  unlinkSocket: (path: string) => void;
  /** Runs `work` alone among this account's commands that create files. */
  exclusive: <T>(work: () => Promise<T>) => Promise<T>;
}

/** Runs one command; resolves with its exit code. */
export async function runRendezvousCommand(op: RendezvousOp, ctx: CommandContext): Promise<number> {
  const base = resolve(ctx.home, op.dir);
  if (relative(ctx.home, base).startsWith('..')) {
    return refuse(ctx, `${op.dir} is outside the account's home`);
  }
  if (isIndexOp(op)) {
    return runIndexCommand(op, {
      base,
      readStdin: ctx.readStdin,
      stdout: ctx.stdout,
      stderr: ctx.stderr,
    });
  }
  const max = ctx.limits.maxRecordBytes;
  switch (op.op) {
    case 'hello': {
      const folders = ['servers', 'clients', 'sockets'].map((sub) => join(base, sub));
      if (!(await createWithinQuota(ctx, folders, 0, () => makeFolders(folders)))) {
        return refuseQuota(ctx);
      }
      const file = join(base, `${op.role}s`, `${op.name}.json`);
      const record = (await readRecord(file, Buffer.alloc(max + 1)))?.toString('utf8') ?? '';
      await ctx.stdout(
        'rcpp2p 1\n' +
          `ssh-client ${ctx.remote.ip} ${ctx.remote.port} ${ctx.localPort}\n` +
          `home ${ctx.home}\n` +
          `record ${record.trim()}\n`,
      );
      return 0;
    }
    case 'list': {
      const dir = join(base, `${op.role}s`);
      const names = (await readdir(dir).catch(() => [] as string[]))
        .filter((n) => n.endsWith('.json') && !n.startsWith('.'))
        .sort();
      // One buffer for every record: each line is sent before the next is read into it.
      const line = Buffer.alloc(max + RECORD_PREFIX.length + 1);
      RECORD_PREFIX.copy(line);
      for (const name of names) {
        const record = await readRecord(join(dir, name), line.subarray(RECORD_PREFIX.length));
        if (record === undefined) continue;
        const text = trimmed(record);
        const at = RECORD_PREFIX.length;
        line.copyWithin(at, at + text.start, at + text.end);
        const end = RECORD_PREFIX.length + text.end - text.start;
        line[end] = 0x0a;
        await ctx.stdout(line.subarray(0, end + 1));
      }
      await ctx.stdout('end\n');
      return 0;
    }
    case 'publish': {
      const data = await ctx.readStdin(max);
      if (data === 'too-large') return refuse(ctx, `record too large (more than ${max} bytes)`);
      const dir = join(base, `${op.role}s`);
      const target = join(dir, `${op.name}.json`);
      const isNew = !(await lstat(target).then(
        () => true,
        () => false,
      ));
      const written = await createWithinQuota(ctx, [dir], isNew ? 1 : 0, async () => {
        await makeFolders([dir]);
        const tmp = join(dir, `.${op.name}.json.${randomBytes(4).toString('hex')}`);
        try {
          await writeFile(tmp, data, { mode: 0o600 });
          await rename(tmp, target);
        } catch (err) {
          await unlink(tmp).catch(() => {});
          throw err;
        }
      });
      return written ? 0 : refuseQuota(ctx);
    }
    case 'unlink-socket':
      ctx.unlinkSocket(socketPath(ctx.home, op.dir, op.name));
      return 0;
    case 'read-clients':
      // File servers read client records through a long-running command to save one command per
      // connection on OpenSSH; here every command is answered in-process, so they use `hello`.
      return refuse(ctx, 'client records are read with one command each here');
    case 'watch':
    case 'ask':
      // The exec signaling transport is for SSH servers that forward nothing. This server forwards
      // signaling sockets, so file servers never fall back this far here: say so rather than fake it.
      return refuse(
        ctx,
        'this server offers socket forwarding for signaling; the remote-command transport is not needed here',
      );
  }
}

/** Runs `create` if the folders it makes plus `files` new files fit the account's quota. */
function createWithinQuota(
  ctx: CommandContext,
  folders: string[],
  files: number,
  create: () => Promise<void>,
): Promise<boolean> {
  return ctx.exclusive(async () => {
    const adding = (await missingEntries(ctx.home, folders)) + files;
    const limit = ctx.limits.maxEntriesPerAccount;
    if (adding > 0 && (await countEntries(ctx.home, limit)) + adding > limit) return false;
    await create();
    return true;
  });
}

async function makeFolders(folders: string[]): Promise<void> {
  for (const folder of folders) await mkdir(folder, { recursive: true, mode: 0o700 });
}

const RECORD_PREFIX = Buffer.from('record ');

/**
 * Reads a record into `into` (whose length is the size limit + 1): the bytes read, or undefined
 * when the record is missing, not a file, or over the limit.
 */
async function readRecord(path: string, into: Buffer): Promise<Buffer | undefined> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch {
    return undefined;
  }
  try {
    let length = 0;
    for (;;) {
      const { bytesRead } = await handle.read(into, length, into.length - length);
      if (bytesRead === 0) break;
      length += bytesRead;
      if (length >= into.length) return undefined;
    }
    return into.subarray(0, length);
  } catch {
    return undefined;
  } finally {
    await handle.close();
  }
}

/** Offsets of `bytes` without leading and trailing ASCII white space (String.trim for JSON). */
function trimmed(bytes: Buffer): { start: number; end: number } {
  const space = (b: number | undefined): boolean =>
    b === 0x20 || b === 0x09 || b === 0x0a || b === 0x0d || b === 0x0b || b === 0x0c;
  let start = 0;
  let end = bytes.length;
  while (start < end && space(bytes[start])) start++;
  while (end > start && space(bytes[end - 1])) end--;
  return { start, end };
}

async function refuse(ctx: CommandContext, why: string): Promise<number> {
  await ctx.stderr(`rcpp2p rendezvous: ${why}\n`);
  return 1;
}

function refuseQuota(ctx: CommandContext): Promise<number> {
  return refuse(
    ctx,
    `this account has reached its limit of ${ctx.limits.maxEntriesPerAccount} files and folders; ` +
      'ask the rendezvous operator to remove records nobody uses',
  );
}
