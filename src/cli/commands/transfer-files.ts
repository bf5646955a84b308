// rcpp2p --get SERVER FILE... and --put SERVER FILE...: files and folders over one connection.
// Obvious mistakes (a local file missing, a target that exists without --force) are refused before
// anything connects; everything else is decided per file and reported per file.
import { stat } from 'node:fs/promises';
import { basename, resolve } from 'node:path';
import { RcppError } from '../../errors.js';
import type { Link } from '../../link/link.js';
import { checkPeerName } from '../../peer.js';
import type { TransferResult } from '../../transfer/file-client.js';
import { checkRelativePath, normalizeUserPath } from '../../transfer/safe-path.js';
import type { CommandContext } from '../context.js';
import { formatBytes, formatSeconds, formatSpeed, portMappingJson } from '../format.js';
import { exitCodeFor } from '../report-error.js';
import { withServer } from './with-server.js';

export interface TransferCommandOptions {
  /** get: local folder to save into; put: folder on the server. */
  to: string | undefined;
  force: boolean;
}

export async function getCommand(
  ctx: CommandContext,
  serverName: string,
  remotePaths: string[],
  opts: TransferCommandOptions,
): Promise<number> {
  checkPeerName(serverName, 'file-server name');
  refuseIfNoNameIsValid(remotePaths);
  const localDir = await localFolder(ctx, opts.to);
  if (!opts.force) {
    for (const remote of remotePaths) {
      const target = resolve(localDir, basename(remote));
      const existing = await stat(target).catch(() => undefined);
      if (existing?.isFile()) {
        throw new RcppError(
          'FILE_EXISTS',
          `${target} already exists.`,
          'Add --force to replace it, or use --to to save elsewhere.',
        );
      }
    }
  }
  return withServer(ctx, serverName, async ({ link, client }) => {
    const started = Date.now();
    const results = await client.get(remotePaths, localDir, {
      signal: ctx.signal,
      onProgress: ctx.view.onProgress,
      force: opts.force,
    });
    return report(ctx, serverName, results, link, Date.now() - started);
  });
}

export async function putCommand(
  ctx: CommandContext,
  serverName: string,
  localPaths: string[],
  opts: TransferCommandOptions,
): Promise<number> {
  checkPeerName(serverName, 'file-server name');
  const absolute = await localSources(ctx, localPaths);
  return withServer(ctx, serverName, async ({ link, client }) => {
    const started = Date.now();
    const results = await client.put(absolute, opts.to ?? '', {
      signal: ctx.signal,
      onProgress: ctx.view.onProgress,
      force: opts.force,
    });
    return report(ctx, serverName, results, link, Date.now() - started);
  });
}

/** The folder a get or a receive saves into (--to, or the current one): it must exist. */
export async function localFolder(ctx: CommandContext, to: string | undefined): Promise<string> {
  const folder = resolve(ctx.io.cwd, to ?? '.');
  const found = await stat(folder).catch(() => undefined);
  if (!found?.isDirectory()) {
    throw new RcppError(
      'FILE_NOT_FOUND',
      `The folder ${folder} does not exist.`,
      'Create it, or pick another with --to.',
    );
  }
  return folder;
}

/** The files and folders a put or a send reads, as absolute paths; each must exist. */
export async function localSources(ctx: CommandContext, paths: string[]): Promise<string[]> {
  const absolute = paths.map((p) => resolve(ctx.io.cwd, p));
  for (const path of absolute) {
    const found = await stat(path).catch(() => undefined);
    if (!found) {
      throw new RcppError(
        'FILE_NOT_FOUND',
        `${path} does not exist.`,
        'Check the name; nothing was sent.',
      );
    }
    if (!found.isFile() && !found.isDirectory()) {
      throw new RcppError('NOT_A_FILE', `${path} is neither a file nor a folder.`);
    }
  }
  return absolute;
}

/** Prints each file's outcome (and JSON with --json); the exit code for the whole transfer. */
export function report(
  ctx: CommandContext,
  serverName: string,
  results: TransferResult[],
  link: Pick<
    Link,
    'path' | 'family' | 'reason' | 'setupMs' | 'portMapping' | 'signaling' | 'relay' | 'answerMs'
  >,
  /** The whole get or put: files overlap (one streams while the last is verified), so no sum. */
  ms: number,
): number {
  ctx.view.finish();
  let exitCode = 0;
  let bytes = 0;
  for (const r of results) {
    if (r.ok) {
      bytes += r.bytes - r.resumedBytes;
      ctx.view.emitJson({
        op: r.op,
        ok: true,
        server: serverName,
        file: r.file,
        localPath: r.localPath,
        bytes: r.bytes,
        resumedBytes: r.resumedBytes,
        sha256: r.sha256,
        path: link.path,
        family: link.family,
        reason: link.reason,
        signaling: link.signaling,
        relay: link.relay,
        setupMs: link.setupMs,
        ...(link.answerMs !== undefined && { answerMs: link.answerMs }),
        portMapping: portMappingJson(link.portMapping),
        transferMs: r.transferMs,
      });
    } else {
      exitCode ||= exitCodeFor(r.error.code);
      ctx.view.emitJson({
        op: r.op,
        ok: false,
        server: serverName,
        file: r.file,
        path: link.path,
        signaling: link.signaling,
        relay: link.relay,
        error: r.error,
      });
      // Most messages name the file already; prefix it only when they do not.
      const named = r.error.message.includes(r.file) ? '' : `${r.file}: `;
      ctx.view.fileError(`${named}${r.error.message}`, r.error.hint);
    }
  }
  const ok = results.filter((r) => r.ok).length;
  if (results.length > 1 || ok === 0) {
    ctx.view.print(
      `${ok} of ${results.length} file${results.length === 1 ? '' : 's'} transferred` +
        (ok > 0
          ? `, ${formatBytes(bytes)} in ${formatSeconds(ms)} (${formatSpeed(bytes, ms)})`
          : '') +
        '.',
    );
  }
  return exitCode;
}

/** A get whose every name would be refused need not connect just to say so. */
function refuseIfNoNameIsValid(remotePaths: string[]): void {
  const problems = remotePaths.map((raw): Error | undefined => {
    try {
      checkRelativePath(normalizeUserPath(raw));
      return undefined;
    } catch (err) {
      return err as Error;
    }
  });
  const first = problems[0];
  if (first !== undefined && problems.every((p) => p !== undefined)) throw first;
}
