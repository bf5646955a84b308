// Every size and count the transfer protocol accepts, in one place. Both sides check incoming
// messages against these before acting on them; docs/protocol.md lists them for implementers.

/** The protocol's major version. A peer with another major version is refused (VERSION_MISMATCH). */
export const PROTOCOL_VERSION = 1;

/** Bytes before every frame: type (u8) and payload length (u32, big-endian). */
export const FRAME_HEADER_BYTES = 5;

/** Largest payload of one frame, control or data. Checked from the header, before buffering. */
export const MAX_FRAME_PAYLOAD = 1024 * 1024;

/** Data frames are cut at this size by senders (one 1 MiB file read per frame). */
export const DATA_CHUNK_BYTES = 1024 * 1024;

/** A control message is split into parts when its encoding would exceed this (room under the cap). */
export const CONTROL_PART_BUDGET = 896 * 1024;

/** A path inside the working directory, in UTF-8 bytes. */
export const MAX_PATH_BYTES = 4096;

/** One path component, in UTF-8 bytes (the common file-system limit). */
export const MAX_NAME_BYTES = 255;

/** Components of one path: deeper paths are refused, so one path costs at most this many folders. */
export const MAX_PATH_DEPTH = 128;

/** Paths named in one get or list command. */
export const MAX_REQUEST_PATHS = 1024;

/** Entries of one kind (files, dirs, problems, refusals, listing entries) in one message part. */
export const MAX_ENTRIES_PER_PART = 16384;

/** Files in one get or put command, over all its parts. */
export const MAX_FILES_PER_COMMAND = 200_000;

/**
 * Folder entries in one get or put command, over all its parts. Each costs the receiver about
 * 1.6 KB while the command runs (its path, its node in the folder tree, its time to set): 20,000
 * of them keep a hostile peer's command within about 40 MiB of memory (measured).
 */
export const MAX_DIRS_PER_COMMAND = 20_000;

/**
 * Bytes of one command's manifest (all parts), counted as protocol/budget.ts does on both sides, so a
 * peer cannot pin much memory: a client holds a manifest it reads several times over (entries,
 * paths, the folder tree it creates), measured at +66 MiB for 15.4 MiB of deep folder paths, so
 * 12 MiB keeps a hostile server within about 50 MiB of the client's memory.
 */
export const MAX_MANIFEST_BYTES = 12 * 1024 * 1024;

/** Entries one listing returns; a longer listing is cut and marked truncated. */
export const MAX_LISTING_ENTRIES = 100_000;

/** Length of the human sentence in error and file-error messages, in UTF-16 units. */
export const MAX_MESSAGE_CHARS = 8192;

/** Peer names follow the rendezvous record names. */
export { PEER_NAME as NAME_PATTERN } from '../peer.js';

/** Feature flags offered in hello/welcome (none defined in version 1; unknown ones are ignored). */
export const FEATURE_PATTERN = /^[a-z0-9][a-z0-9-]{0,31}$/;
export const MAX_FEATURES = 32;

/** Largest idle timeout a peer may announce, in ms (0 means it has none). */
export const MAX_IDLE_MS = 24 * 60 * 60 * 1000;

/** Resume: partial files are described by SHA-256 hashes of fixed blocks. */
export const RESUME_MIN_BLOCK = 1024 * 1024;
export const RESUME_MAX_BLOCKS = 4096;

/** File sizes and offsets are JSON numbers, so they stop at 2^53 - 1. */
export const MAX_FILE_SIZE = Number.MAX_SAFE_INTEGER;

/** Modification times in ms since 1970, within what a JS Date can hold. */
export const MAX_ABS_MTIME_MS = 8.64e15;
