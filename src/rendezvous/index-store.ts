// File-server indexes on the rendezvous account: <rendezvousDir>/indexes/<SERVER>.idx, written
// atomically by the server that owns the name and read by any peer of the account. What an index
// holds is src/index/'s business; this layer moves the bytes and bounds them: an index is at most
// MAX_INDEX_BYTES, and no reply is read past its bound, whatever the rendezvous sends.
import { RcppError } from '../errors.js';
import { displaySafe } from '../protocol/text.js';
import {
  MAX_INDEX_BYTES,
  parseIndexListReply,
  renderRendezvousCommand,
  type IndexListReply,
  type RendezvousOp,
} from './commands.js';
import { isOutputTooLarge, type ExecResult, type RendezvousSession } from './ssh-session.js';

/** Index lines one list reply may hold (each at most ~1.1 KB): far more servers than an account has. */
const MAX_LIST_BYTES = 4 * 1024 * 1024;
/** An upload of a full-size index over a slow uplink (8 MiB at 1 Mbit/s is about 70 s). */
const PUBLISH_TIMEOUT_MS = 120_000;
const READ_TIMEOUT_MS = 120_000;

export type IndexBytes =
  { kind: 'none' } | { kind: 'index'; bytes: Buffer } | { kind: 'too-large'; limit: number };

export class RendezvousIndexes {
  constructor(
    private readonly session: RendezvousSession,
    readonly dir: string,
  ) {}

  /** Replaces this server's index with `data` (atomically on the rendezvous). */
  async publish(serverName: string, data: Buffer, signal: AbortSignal): Promise<void> {
    if (data.length > MAX_INDEX_BYTES) {
      throw new RcppError(
        'INTERNAL',
        `An index of ${data.length} bytes is over the ${MAX_INDEX_BYTES}-byte limit.`,
      );
    }
    await this.run(
      { op: 'publish-index', dir: this.dir, name: serverName, bytes: data.length },
      { signal, stdin: data, timeoutMs: PUBLISH_TIMEOUT_MS },
    );
  }

  async remove(serverName: string, signal: AbortSignal): Promise<void> {
    await this.run({ op: 'remove-index', dir: this.dir, name: serverName }, { signal });
  }

  /** Every index's name, size and summary line, in one round trip. */
  async list(signal: AbortSignal): Promise<IndexListReply> {
    const result = await this.run(
      { op: 'list-indexes', dir: this.dir },
      { signal, maxStdoutBytes: MAX_LIST_BYTES },
    );
    return parseIndexListReply(result.stdout);
  }

  /** One server's index as stored; 'too-large' when the rendezvous has more than rcpp2p reads. */
  async read(serverName: string, signal: AbortSignal): Promise<IndexBytes> {
    let result: ExecResult;
    try {
      result = await this.run(
        { op: 'read-index', dir: this.dir, name: serverName },
        { signal, maxStdoutBytes: MAX_INDEX_BYTES, timeoutMs: READ_TIMEOUT_MS },
      );
    } catch (err) {
      if (isOutputTooLarge(err)) {
        return { kind: 'too-large', limit: MAX_INDEX_BYTES };
      }
      throw err;
    }
    if (result.stdoutBytes.length === 0) return { kind: 'none' };
    return { kind: 'index', bytes: result.stdoutBytes };
  }

  private async run(
    op: RendezvousOp,
    opts: { signal: AbortSignal; stdin?: Buffer; timeoutMs?: number; maxStdoutBytes?: number },
  ): Promise<ExecResult> {
    const result = await this.session.exec(renderRendezvousCommand(op), opts);
    if (result.code !== 0) {
      const detail = displaySafe(result.stderr.trim().split('\n').slice(-1)[0] ?? '', 300);
      throw new RcppError(
        'RENDEZVOUS_REFUSED',
        `The rendezvous host refused the ${op.op} command (exit ${String(result.code)})${detail ? `: ${detail}` : ''}.`,
        `The account needs /bin/sh and a writable directory for rcpp2p (${this.dir}).`,
      );
    }
    return result;
  }
}
