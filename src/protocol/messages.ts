// Every control message of the transfer protocol, and parseMessage(), which turns untrusted JSON into
// one of them or throws RcppError('PROTOCOL_ERROR') with a sentence. Each field is checked for type
// and bounds here; what a value means (is this path safe, is this index expected now) is checked by
// the session that receives it. docs/protocol.md has the same table with directions and order.

import { isErrorCode, RcppError, type ErrorCode } from '../errors.js';
import {
  FEATURE_PATTERN,
  MAX_ABS_MTIME_MS,
  MAX_ENTRIES_PER_PART,
  MAX_FEATURES,
  MAX_FILE_SIZE,
  MAX_FILES_PER_COMMAND,
  MAX_IDLE_MS,
  MAX_MESSAGE_CHARS,
  MAX_PATH_BYTES,
  MAX_REQUEST_PATHS,
  NAME_PATTERN,
  PROTOCOL_VERSION,
  RESUME_MAX_BLOCKS,
  RESUME_MIN_BLOCK,
} from './limits.js';
import { blockCount, resumeBlockSize, type ResumeInfo } from './resume.js';

export type { ResumeInfo } from './resume.js';
import { displaySafe } from './text.js';
import { element, Fields, fail, isObject, stringElement } from './validate.js';

export interface FileEntry {
  i: number;
  path: string;
  size: number;
  mtimeMs: number;
}
export interface ManifestFile extends FileEntry {
  /** Index of the requested path (in `get.paths`) this file belongs to. */
  root: number;
}
export interface DirEntry {
  path: string;
  mtimeMs: number;
}
export interface ManifestDir extends DirEntry {
  root: number;
}
export interface Problem {
  root: number;
  path: string;
  code: ErrorCode;
  message: string;
}
export interface AcceptFile {
  i: number;
  resume?: ResumeInfo;
}
export interface Refusal {
  i: number;
  code: ErrorCode;
  message: string;
}
export interface ListingEntry {
  path: string;
  kind: 'file' | 'dir';
  size: number;
  mtimeMs: number;
}

export type Message =
  | { t: 'hello'; v: number; client: string; features: string[]; idleMs: number }
  | { t: 'welcome'; v: number; server: string; features: string[]; idleMs: number }
  | { t: 'list'; path: string; recursive: boolean }
  | { t: 'listing'; entries: ListingEntry[]; last: boolean; truncated: boolean }
  | { t: 'get'; paths: string[] }
  | {
      t: 'manifest';
      files: ManifestFile[];
      dirs: ManifestDir[];
      problems: Problem[];
      last: boolean;
    }
  | { t: 'put'; files: FileEntry[]; dirs: DirEntry[]; force: boolean; last: boolean }
  | { t: 'accept'; files: AcceptFile[]; refused: Refusal[]; last: boolean }
  | { t: 'file'; i: number; offset: number }
  | { t: 'file-end'; i: number; sha256: string }
  | { t: 'file-ok'; i: number }
  | { t: 'file-error'; i: number; code: ErrorCode; message: string }
  | { t: 'done' }
  | { t: 'error'; code: ErrorCode; message: string }
  | { t: 'bye' }
  | { t: 'keepalive' };

export type MessageType = Message['t'];
export type MessageOf<T extends MessageType> = Extract<Message, { t: T }>;

const HEX64 = /^[0-9a-f]{64}$/;
const CODE = /^[A-Z][A-Z0-9_]{0,63}$/;
const MAX_INDEX = MAX_FILES_PER_COMMAND - 1;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Decodes one control frame's payload: strict UTF-8, JSON, then parseMessage(). */
export function decodeMessage(payload: Buffer): Message {
  let json: unknown;
  try {
    json = JSON.parse(utf8.decode(payload));
  } catch {
    throw new RcppError('PROTOCOL_ERROR', 'The peer sent a control frame that is not UTF-8 JSON.');
  }
  return parseMessage(json);
}

/** Validates a decoded JSON value as a Message; throws PROTOCOL_ERROR or VERSION_MISMATCH. */
export function parseMessage(json: unknown): Message {
  if (!isObject(json)) fail('a control message', 'body is not a JSON object');
  const t = Object.hasOwn(json, 't') ? json['t'] : undefined;
  if (typeof t !== 'string') {
    fail('a control message', 'type field "t" is missing');
  }
  const f = new Fields(json, `${/^[aeiou]/.test(t) ? 'an' : 'a'} ${t} message`);
  switch (t) {
    case 'hello':
      checkVersion(f, 'client');
      return { t, v: PROTOCOL_VERSION, client: f.str('client', 64, NAME_PATTERN), ...greeting(f) };
    case 'welcome':
      checkVersion(f, 'server');
      return { t, v: PROTOCOL_VERSION, server: f.str('server', 64, NAME_PATTERN), ...greeting(f) };
    case 'list':
      return { t, path: path(f, 'path'), recursive: f.bool('recursive') };
    case 'listing':
      return {
        t,
        entries: f.arr('entries', MAX_ENTRIES_PER_PART, listingEntry),
        last: f.bool('last'),
        truncated: f.bool('truncated'),
      };
    case 'get':
      return { t, paths: f.arr('paths', MAX_REQUEST_PATHS, (v, w) => pathElement(v, w)) };
    case 'manifest':
      return {
        t,
        files: f.arr('files', MAX_ENTRIES_PER_PART, (v, w) => {
          const e = element(v, w);
          return { ...fileEntry(e), root: root(e) };
        }),
        dirs: f.arr('dirs', MAX_ENTRIES_PER_PART, (v, w) => {
          const e = element(v, w);
          return { ...dirEntry(e), root: root(e) };
        }),
        problems: f.arr('problems', MAX_ENTRIES_PER_PART, problem),
        last: f.bool('last'),
      };
    case 'put':
      return {
        t,
        files: f.arr('files', MAX_ENTRIES_PER_PART, (v, w) => fileEntry(element(v, w))),
        dirs: f.arr('dirs', MAX_ENTRIES_PER_PART, (v, w) => dirEntry(element(v, w))),
        force: f.bool('force'),
        last: f.bool('last'),
      };
    case 'accept':
      return {
        t,
        files: f.arr('files', MAX_ENTRIES_PER_PART, acceptFile),
        refused: f.arr('refused', MAX_ENTRIES_PER_PART, (v, w) => {
          const e = element(v, w);
          return { i: index(e), ...errorInfo(e) };
        }),
        last: f.bool('last'),
      };
    case 'file':
      return { t, i: index(f), offset: f.int('offset', 0, MAX_FILE_SIZE) };
    case 'file-end':
      return { t, i: index(f), sha256: f.str('sha256', 64, HEX64) };
    case 'file-ok':
      return { t, i: index(f) };
    case 'file-error':
      return { t, i: index(f), ...errorInfo(f) };
    case 'error':
      return { t, ...errorInfo(f) };
    case 'done':
    case 'bye':
    case 'keepalive':
      return { t };
    default:
      throw new RcppError(
        'PROTOCOL_ERROR',
        `The peer sent a message of unknown type ${JSON.stringify(displaySafe(t, 32))}.`,
      );
  }
}

/**
 * hello comes from the client, welcome from the server. The version is checked before any other
 * field, so a peer of another major version gets VERSION_MISMATCH, not a confusing field error.
 */
function checkVersion(f: Fields, sender: 'client' | 'server'): void {
  const v = f.int('v', 0, 0xffff);
  if (v === PROTOCOL_VERSION) return;
  const other = sender === 'client' ? 'server' : 'client';
  const older = v < PROTOCOL_VERSION ? sender : other;
  throw new RcppError(
    'VERSION_MISMATCH',
    `The ${sender} speaks transfer protocol version ${v} and the ${other} version ${PROTOCOL_VERSION}; upgrade rcpp2p on the ${older}.`,
    `Install the same rcpp2p release on both computers (at least the ${older}'s must be upgraded).`,
  );
}

function greeting(f: Fields): { features: string[]; idleMs: number } {
  return {
    features: f.arr('features', MAX_FEATURES, (v, w) => stringElement(v, w, 32, FEATURE_PATTERN)),
    idleMs: f.int('idleMs', 0, MAX_IDLE_MS),
  };
}

function path(f: Fields, key: string): string {
  return f.str(key, MAX_PATH_BYTES);
}

function pathElement(value: unknown, where: string): string {
  return stringElement(value, where, MAX_PATH_BYTES);
}

function index(f: Fields): number {
  return f.int('i', 0, MAX_INDEX);
}

function root(f: Fields): number {
  return f.int('root', 0, MAX_REQUEST_PATHS - 1);
}

function mtime(f: Fields): number {
  return f.num('mtimeMs', -MAX_ABS_MTIME_MS, MAX_ABS_MTIME_MS);
}

function fileEntry(e: Fields): FileEntry {
  return {
    i: index(e),
    path: path(e, 'path'),
    size: e.int('size', 0, MAX_FILE_SIZE),
    mtimeMs: mtime(e),
  };
}

function dirEntry(e: Fields): DirEntry {
  return { path: path(e, 'path'), mtimeMs: mtime(e) };
}

function listingEntry(value: unknown, where: string): ListingEntry {
  const e = element(value, where);
  const kind = e.str('kind', 4);
  if (kind !== 'file' && kind !== 'dir') fail(where, 'kind is neither "file" nor "dir"');
  return { path: path(e, 'path'), kind, size: e.int('size', 0, MAX_FILE_SIZE), mtimeMs: mtime(e) };
}

/** A code this version does not know is kept as PEER_REFUSED, with the peer's sentence. */
function errorInfo(f: Fields): { code: ErrorCode; message: string } {
  const code = f.str('code', 64, CODE);
  const message = displaySafe(f.str('message', MAX_MESSAGE_CHARS * 3), MAX_MESSAGE_CHARS);
  return { code: isErrorCode(code) ? code : 'PEER_REFUSED', message };
}

function problem(value: unknown, where: string): Problem {
  const e = element(value, where);
  return { root: root(e), path: displaySafe(path(e, 'path'), MAX_PATH_BYTES), ...errorInfo(e) };
}

function acceptFile(value: unknown, where: string): AcceptFile {
  const e = element(value, where);
  const i = index(e);
  if (!e.has('resume')) return { i };
  return { i, resume: resumeInfo(e.raw('resume'), `${where} (resume)`) };
}

/** Block hashes of a partial file, with the block size resume.ts prescribes for its length. */
function resumeInfo(value: unknown, where: string): ResumeInfo {
  const r = element(value, where);
  const length = r.int('length', 1, MAX_FILE_SIZE);
  const blockSize = r.int('blockSize', RESUME_MIN_BLOCK, MAX_FILE_SIZE);
  if (blockSize !== resumeBlockSize(length)) {
    fail(where, `blockSize is not ${resumeBlockSize(length)} for a partial of ${length} bytes`);
  }
  const hashes = r.arr('hashes', RESUME_MAX_BLOCKS, (v, w) => stringElement(v, w, 64, HEX64));
  if (hashes.length !== blockCount(length, blockSize)) {
    fail(where, 'hashes do not cover length in blocks of blockSize');
  }
  return { blockSize, length, hashes };
}
