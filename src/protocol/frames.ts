// Length-prefixed frames, sans-IO: `type:u8 | length:u32 BE | payload`.
// Type 1 carries a control message (UTF-8 JSON), type 2 raw file bytes. Both are capped at
// MAX_FRAME_PAYLOAD, checked from the header before a single payload byte is buffered; a data frame
// must carry at least one byte (an empty one would cost the receiver memory and time for nothing).
//
// FrameDecoder is fed whatever chunks the transport delivers and returns the complete frames.
// States: `header` (collecting up to 5 header bytes) -> `slices` (collecting the slices of the
// chunks that hold a data payload) or `copy` (collecting a payload into a buffer of exactly its
// size) -> `header` ...; a bad header -> `failed`, which is terminal.
// A data payload of SLICE_MIN bytes or more is not copied: it comes out as the list of chunk slices
// it arrived in (a TLS stream delivers 16 KiB chunks, so a 1 MiB frame is 64 slices), which a
// receiver hashes and writes with one writev. Its slices keep at most its length plus two chunks
// alive. A smaller data payload (so a small frame cannot keep a whole chunk alive), a control
// payload spanning chunks, and a payload that arrives in more than MAX_SLICES pieces (a peer
// dribbling bytes) are copied once into a buffer of their own. A control payload inside one chunk
// is a slice of it (it is parsed at once).
//
// Errors: push() throws the RcppError (PROTOCOL_ERROR for an unknown type or an empty data frame,
// FRAME_TOO_LARGE for a length over the cap). When good frames preceded the bad header in the same
// chunk, push() returns them and the error is thrown by the next push(); `failure` tells a caller at
// once.

import { RcppError } from '../errors.js';
import { FRAME_HEADER_BYTES, MAX_FRAME_PAYLOAD } from './limits.js';

export const FRAME_CONTROL = 1;
export const FRAME_DATA = 2;

/** Data payloads from this size on are handed over as slices of the chunks they arrived in. */
export const SLICE_MIN = 64 * 1024;
/** A payload in more pieces than this is copied into one buffer instead. */
export const MAX_SLICES = 256;

export type FrameKind = 'control' | 'data';
export type Frame =
  | { kind: 'control'; payload: Buffer }
  /** `pieces` are slices of the chunks pushed (valid as long as the caller keeps them). */
  | { kind: 'data'; pieces: Buffer[]; length: number };

type DecoderState =
  | { s: 'header'; filled: number }
  | { s: 'copy'; kind: FrameKind; buf: Buffer; filled: number }
  | { s: 'slices'; pieces: Buffer[]; length: number; filled: number }
  | { s: 'failed'; error: RcppError };

export class FrameDecoder {
  private state: DecoderState = { s: 'header', filled: 0 };
  private readonly header = Buffer.alloc(FRAME_HEADER_BYTES);
  private readonly maxPayload: number;
  private dataTotal = 0;

  constructor(opts: { maxPayload?: number } = {}) {
    this.maxPayload = opts.maxPayload ?? MAX_FRAME_PAYLOAD;
  }

  /** Bytes held for a frame that is not complete yet (part of a header or of a payload). */
  get pendingBytes(): number {
    return this.state.s === 'failed' ? 0 : this.state.filled;
  }

  /** Data payload bytes taken in so far, complete frames or not (progress on a slow link). */
  get dataBytes(): number {
    return this.dataTotal;
  }

  /** The error that stopped this decoder, if any. */
  get failure(): RcppError | undefined {
    return this.state.s === 'failed' ? this.state.error : undefined;
  }

  /** Feeds bytes; returns every frame they complete, in order. */
  push(chunk: Buffer): Frame[] {
    const before = this.failure;
    if (before) throw before;
    const frames: Frame[] = [];
    let at = 0;
    while (at < chunk.length) {
      const st = this.state;
      if (st.s === 'failed') break;
      if (st.s === 'slices') {
        const n = Math.min(st.length - st.filled, chunk.length - at);
        st.pieces.push(chunk.subarray(at, at + n));
        st.filled += n;
        this.dataTotal += n;
        at += n;
        if (st.filled === st.length) {
          frames.push({ kind: 'data', pieces: st.pieces, length: st.length });
          this.state = { s: 'header', filled: 0 };
        } else if (st.pieces.length >= MAX_SLICES) {
          const buf = Buffer.allocUnsafe(st.length);
          Buffer.concat(st.pieces, st.filled).copy(buf);
          this.state = { s: 'copy', kind: 'data', buf, filled: st.filled };
        }
        continue;
      }
      if (st.s === 'copy') {
        const n = Math.min(st.buf.length - st.filled, chunk.length - at);
        chunk.copy(st.buf, st.filled, at, at + n);
        st.filled += n;
        if (st.kind === 'data') this.dataTotal += n;
        at += n;
        if (st.filled === st.buf.length) {
          frames.push(frameOf(st.kind, st.buf));
          this.state = { s: 'header', filled: 0 };
        }
        continue;
      }
      let type: number;
      let length: number;
      if (st.filled === 0 && chunk.length - at >= FRAME_HEADER_BYTES) {
        // Fast path: a whole header inside this chunk.
        type = chunk[at]!;
        length = chunk.readUInt32BE(at + 1);
        at += FRAME_HEADER_BYTES;
      } else {
        const n = Math.min(FRAME_HEADER_BYTES - st.filled, chunk.length - at);
        chunk.copy(this.header, st.filled, at, at + n);
        st.filled += n;
        at += n;
        if (st.filled < FRAME_HEADER_BYTES) break;
        type = this.header[0]!;
        length = this.header.readUInt32BE(1);
      }
      const kind = this.check(type, length);
      if (kind === undefined) break;
      const large = kind === 'data' && length >= SLICE_MIN;
      if (chunk.length - at >= length && (kind === 'control' || large)) {
        // A control payload is parsed at once; a large data payload keeps little else alive.
        frames.push(frameOf(kind, chunk.subarray(at, at + length)));
        if (kind === 'data') this.dataTotal += length;
        at += length;
        this.state = { s: 'header', filled: 0 };
      } else if (large) {
        this.state = { s: 'slices', pieces: [], length, filled: 0 };
      } else {
        this.state = { s: 'copy', kind, buf: Buffer.allocUnsafe(length), filled: 0 };
      }
    }
    const end = this.state;
    if (end.s === 'failed' && frames.length === 0) throw end.error;
    return frames;
  }

  private check(type: number, length: number): FrameKind | undefined {
    let error: RcppError | undefined;
    if (type !== FRAME_CONTROL && type !== FRAME_DATA) {
      error = new RcppError(
        'PROTOCOL_ERROR',
        `The peer sent a frame of unknown type ${type}; it does not speak the rcpp2p transfer protocol.`,
      );
    } else if (length > this.maxPayload) {
      error = new RcppError(
        'FRAME_TOO_LARGE',
        `The peer announced a frame of ${length} bytes; the limit is ${this.maxPayload}.`,
      );
    } else if (type === FRAME_DATA && length === 0) {
      error = new RcppError('PROTOCOL_ERROR', 'The peer sent an empty data frame.');
    }
    if (error) {
      this.state = { s: 'failed', error };
      return undefined;
    }
    return type === FRAME_CONTROL ? 'control' : 'data';
  }
}

function frameOf(kind: FrameKind, payload: Buffer): Frame {
  return kind === 'control'
    ? { kind, payload }
    : { kind, pieces: [payload], length: payload.length };
}

function header(type: number, length: number): Buffer {
  const buf = Buffer.allocUnsafe(FRAME_HEADER_BYTES);
  buf[0] = type;
  buf.writeUInt32BE(length, 1);
  return buf;
}

/** Encodes a control message (a JSON object with a string `t`) as one frame. */
export function encodeControl<T extends { t: string }>(msg: T): Buffer {
  const json = Buffer.from(JSON.stringify(msg), 'utf8');
  if (json.length > MAX_FRAME_PAYLOAD) {
    throw new RcppError(
      'FRAME_TOO_LARGE',
      `A ${msg.t} message of ${json.length} bytes does not fit in one frame (limit ${MAX_FRAME_PAYLOAD}).`,
    );
  }
  return Buffer.concat([header(FRAME_CONTROL, json.length), json]);
}

/** The 5-byte header of a data frame; the payload is written after it unchanged (no copy). */
export function encodeDataHeader(length: number): Buffer {
  if (!Number.isInteger(length) || length < 1 || length > MAX_FRAME_PAYLOAD) {
    throw new RcppError('INTERNAL', `A data frame of ${length} bytes cannot be encoded.`);
  }
  return header(FRAME_DATA, length);
}

/**
 * Writes a data frame's header into the first FRAME_HEADER_BYTES of `frame`, whose rest is the
 * payload: a sender that reads file bytes in after that room sends the frame as one buffer.
 */
export function putDataHeader(frame: Buffer): void {
  const length = frame.length - FRAME_HEADER_BYTES;
  if (length < 1 || length > MAX_FRAME_PAYLOAD) {
    throw new RcppError('INTERNAL', `A data frame of ${length} bytes cannot be encoded.`);
  }
  frame[0] = FRAME_DATA;
  frame.writeUInt32BE(length, 1);
}

/** Size in bytes of a value once JSON-encoded; used to split long messages into parts. */
export function encodedSize(value: unknown): number {
  return Buffer.byteLength(JSON.stringify(value), 'utf8');
}
