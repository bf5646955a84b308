// The index file a file server publishes on the rendezvous: what its shared folder holds, for
// `--servers` and `--search` to answer without connecting to it.
//
//   {"rcpp2p":"index","v":1,"server":"ASUS","files":2,"bytes":1234,"truncated":false,"at":"..."}\n
//   gzip( {"p":"notes.txt","s":34,"m":1718000000000}\n {"p":"photos/beach.jpg","s":1200,"m":...}\n )
//
// The first line is a plain JSON summary (under INDEX_SUMMARY_BYTES), so the rendezvous can show it
// with POSIX tools and `--servers` reads no more than that. Then gzip'd JSON lines, one per file:
// path relative to the shared folder (sorted, each once), size in bytes, mtime in ms since 1970.
//
// Whoever shares the rendezvous account can write any file there, so reading an index is reading
// untrusted input: the summary and every entry go through the Fields readers, paths through the
// protocol's path rules (checkRelativePath), and counts and sizes are bounded before anything is
// kept: at most MAX_INDEX_FILES entries and MAX_INDEX_TEXT_BYTES unpacked (a gzip bomb stops there).
import { promisify } from 'node:util';
import { gunzip as gunzipCb, gzip as gzipCb } from 'node:zlib';
import { RcppError } from '../errors.js';
import { PEER_NAME } from '../peer.js';
import { MAX_ABS_MTIME_MS, MAX_FILE_SIZE, MAX_PATH_BYTES } from '../protocol/limits.js';
import { checkRelativePath } from '../transfer/safe-path.js';
import { fields, type Complaint, type Fields } from '../validate.js';

const gzip = promisify(gzipCb);
const gunzip = promisify(gunzipCb);

/** Files one index lists; a folder with more is indexed up to here and marked truncated. */
export const MAX_INDEX_FILES = 200_000;
/** The JSON lines of one index, unpacked. */
export const MAX_INDEX_TEXT_BYTES = 64 * 1024 * 1024;
/** The summary line, newline included (the rendezvous shows this much of it). */
const MAX_SUMMARY_BYTES = 1024;
/** One entry line: a path of MAX_PATH_BYTES, every byte escaped (\uXXXX), and two numbers. */
const MAX_ENTRY_CHARS = MAX_PATH_BYTES * 6 + 100;
const ISO_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)$/;

export interface IndexEntry {
  /** Relative path inside the shared folder, '/'-separated. */
  path: string;
  size: number;
  mtimeMs: number;
}

/** The first line of an index. */
export interface IndexSummary {
  server: string;
  files: number;
  /** Sum of the files' sizes. */
  bytes: number;
  /** The folder had more files than the index holds (MAX_INDEX_FILES, or the byte limit). */
  truncated: boolean;
  /** ISO time the index was made. */
  at: string;
}

export interface IndexContent {
  summary: IndexSummary;
  entries: IndexEntry[];
}

/**
 * Encodes an index (entries sorted by path here) no larger than maxBytes: past that, entries are
 * left out from the end of the sorted list and the summary says truncated.
 */
export async function encodeIndex(
  server: string,
  entries: readonly IndexEntry[],
  opts: { maxBytes: number; truncated: boolean; at?: Date },
): Promise<{ data: Buffer; summary: IndexSummary }> {
  const sorted = [...entries].sort((a, b) => compareCodeUnits(a.path, b.path));
  let keep = Math.min(sorted.length, MAX_INDEX_FILES);
  for (let attempt = 0; ; attempt++) {
    const kept = sorted.slice(0, keep);
    const summary: IndexSummary = {
      server,
      files: kept.length,
      bytes: kept.reduce((sum, e) => sum + e.size, 0),
      truncated: opts.truncated || keep < sorted.length,
      at: (opts.at ?? new Date()).toISOString(),
    };
    const head = Buffer.from(JSON.stringify({ rcpp2p: 'index', v: 1, ...summary }) + '\n', 'utf8');
    const body = await gzip(entryLines(kept));
    if (head.length + body.length <= opts.maxBytes || keep === 0) {
      return { data: Buffer.concat([head, body]), summary };
    }
    if (attempt >= 8) keep = 0;
    // Shrink in proportion, with room to spare (names compress unevenly).
    else keep = Math.floor((keep * (opts.maxBytes - head.length) * 0.9) / body.length);
  }
}

/** The JSON lines of the entries, as packed (also what a change is detected on). */
export function entryLines(entries: readonly IndexEntry[]): string {
  let text = '';
  for (const e of entries) {
    text += JSON.stringify({ p: e.path, s: e.size, m: Math.trunc(e.mtimeMs) }) + '\n';
  }
  return text;
}

/** Reads the summary line (an index's first line, or what list-indexes printed of it). */
export function parseIndexSummary(line: string, server: string): IndexSummary {
  const complain = complaint(server);
  if (Buffer.byteLength(line, 'utf8') >= MAX_SUMMARY_BYTES) {
    throw complain('', 'its summary line is too long');
  }
  let raw: unknown;
  try {
    raw = JSON.parse(line);
  } catch {
    throw complain('', line === '' ? 'it is empty' : 'its summary line is not JSON');
  }
  const f = fields(raw, `the index of ${server}`, complain);
  if (f.raw('rcpp2p') !== 'index') f.fail('it is not an rcpp2p index');
  if (f.raw('v') !== 1) f.fail(`unknown version ${JSON.stringify(f.raw('v')) ?? 'none'}`);
  const named = f.str('server', 64, PEER_NAME);
  if (named !== server) f.fail(`it names another server (${named})`);
  const at = f.str('at', 40, ISO_TIME, 'is not a time');
  if (Number.isNaN(Date.parse(at))) f.fail('at is not a time');
  return {
    server,
    files: f.int('files', 0, MAX_INDEX_FILES),
    bytes: f.int('bytes', 0, MAX_FILE_SIZE),
    truncated: f.bool('truncated'),
    at,
  };
}

/** Reads a whole index (as stored under the server's name); throws one sentence when it is bad. */
export async function decodeIndex(data: Buffer, server: string): Promise<IndexContent> {
  const complain = complaint(server);
  const newline = data.subarray(0, MAX_SUMMARY_BYTES).indexOf(0x0a);
  if (newline < 0) throw complain('', 'it has no summary line');
  const summary = parseIndexSummary(data.subarray(0, newline).toString('utf8'), server);
  let text: string;
  try {
    const unpacked = await gunzip(data.subarray(newline + 1), {
      maxOutputLength: MAX_INDEX_TEXT_BYTES,
    });
    text = unpacked.toString('utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw complain(
      '',
      code === 'ERR_BUFFER_TOO_LARGE'
        ? `it unpacks to more than ${MAX_INDEX_TEXT_BYTES} bytes`
        : 'its file list is not gzip data, or is cut short',
    );
  }
  const entries = parseEntries(text, summary, complain);
  return { summary, entries };
}

function parseEntries(text: string, summary: IndexSummary, complain: Complaint): IndexEntry[] {
  if (text !== '' && !text.endsWith('\n')) throw complain('', 'its file list is cut short');
  const entries: IndexEntry[] = [];
  let total = 0;
  let previous: string | undefined;
  let start = 0;
  for (let n = 1; start < text.length; n++) {
    if (n > summary.files) {
      throw complain('', `it lists more files than the ${summary.files} its summary says`);
    }
    const end = text.indexOf('\n', start);
    const line = text.slice(start, end);
    start = end + 1;
    const where = `entry ${n}`;
    if (line.length > MAX_ENTRY_CHARS) throw complain(where, 'is too long');
    let raw: unknown;
    try {
      raw = JSON.parse(line);
    } catch {
      throw complain(where, 'is not JSON');
    }
    const entry = readEntry(fields(raw, where, complain));
    if (previous !== undefined && compareCodeUnits(previous, entry.path) >= 0) {
      throw complain(where, 'is out of order or listed twice');
    }
    previous = entry.path;
    total += entry.size;
    if (total > MAX_FILE_SIZE)
      throw complain(where, 'makes the total size larger than rcpp2p counts');
    entries.push(entry);
  }
  if (entries.length !== summary.files) {
    throw complain('', `it lists ${entries.length} files, but its summary says ${summary.files}`);
  }
  if (total !== summary.bytes) {
    throw complain('', 'the sizes of its files do not add up to the total in its summary');
  }
  return entries;
}

function readEntry(f: Fields): IndexEntry {
  const path = f.str('p', MAX_PATH_BYTES);
  try {
    checkRelativePath(path);
  } catch (err) {
    f.fail((err as Error).message.replace(/^The path /, 'the path ').replace(/\.$/, ''));
  }
  return {
    path,
    size: f.int('s', 0, MAX_FILE_SIZE),
    mtimeMs: f.int('m', -MAX_ABS_MTIME_MS, MAX_ABS_MTIME_MS),
  };
}

function complaint(server: string): Complaint {
  return (where, problem) =>
    new RcppError(
      'RENDEZVOUS_REFUSED',
      `The index of ${server} on the rendezvous is damaged (${where.startsWith('entry') ? `${where}: ` : ''}${problem}); it is left out.`,
      `Restart file server ${server} to publish its index again.`,
    );
}

/** Plain UTF-16 code unit order: the same on every machine, whatever its locale. */
export function compareCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
