// Peer records on the rendezvous account: read, list and publish them through the session. Every
// call takes the caller's AbortSignal, so Ctrl-C or a deadline closes the command's channel at once.
import { RcppError } from '../errors.js';
import { logger } from '../log.js';
import type { Endpoint, Role } from '../peer.js';
import { displaySafe } from '../protocol/text.js';
import {
  parseHelloReply,
  parseListReply,
  renderRendezvousCommand,
  socketPath,
} from './commands.js';
import { parsePeerRecord, serializePeerRecord, type PeerRecord } from './peer-record.js';
import type { ExecResult, RendezvousSession } from './ssh-session.js';

const log = logger('directory');

export interface HelloResult {
  /** Our address as the rendezvous sees it: the NAT's external mapping of our local port. */
  observed: Endpoint;
  home: string;
  /** The record asked for, when it exists. */
  record: PeerRecord | undefined;
}

export class RendezvousDirectory {
  constructor(
    private readonly session: RendezvousSession,
    readonly dir: string,
  ) {}

  /** One round trip: our external address, the account's home, and one peer's record. */
  async hello(role: Role, name: string, signal: AbortSignal): Promise<HelloResult> {
    const command = renderRendezvousCommand({ op: 'hello', dir: this.dir, role, name });
    const result = await this.session.exec(command, { signal });
    // An account that ran something else than our command (SFTP only, a forced command, a
    // restricted shell) printed no "rcpp2p 1": parseHelloReply says what the account lacks.
    // One that ran it and failed (a folder it cannot write) says why in its stderr.
    if (result.code !== 0 && result.stdout.startsWith('rcpp2p 1\n')) this.refused(result);
    const reply = parseHelloReply(result.stdout);
    const record =
      reply.recordText === undefined
        ? undefined
        : parsePeerRecord(reply.recordText, { role, name });
    return { observed: reply.observed, home: reply.home, record };
  }

  async read(role: Role, name: string, signal: AbortSignal): Promise<PeerRecord | undefined> {
    return (await this.hello(role, name, signal)).record;
  }

  /**
   * Every readable record of one role; damaged ones are skipped (and logged), and so are one-shot
   * sends (records with an offer): they wait like file servers but serve nothing.
   */
  async list(role: Role, signal: AbortSignal): Promise<PeerRecord[]> {
    const result = await this.run(
      renderRendezvousCommand({ op: 'list', dir: this.dir, role }),
      signal,
    );
    const records: PeerRecord[] = [];
    for (const text of parseListReply(result.stdout)) {
      try {
        const raw = JSON.parse(text) as { name?: unknown };
        if (typeof raw.name !== 'string') continue;
        const record = parsePeerRecord(text, { role, name: raw.name });
        if (record.offer === undefined) records.push(record);
      } catch (err) {
        log(`skipping a damaged ${role} record: ${(err as Error).message}`);
      }
    }
    return records;
  }

  async publish(record: PeerRecord, signal: AbortSignal): Promise<void> {
    const command = renderRendezvousCommand({
      op: 'publish',
      dir: this.dir,
      role: record.role,
      name: record.name,
    });
    await this.run(command, signal, serializePeerRecord(record) + '\n');
  }

  async unlinkSocket(serverName: string, signal: AbortSignal): Promise<void> {
    await this.run(
      renderRendezvousCommand({ op: 'unlink-socket', dir: this.dir, name: serverName }),
      signal,
    );
  }

  socketPath(home: string, serverName: string): string {
    return socketPath(home, this.dir, serverName);
  }

  private async run(command: string, signal: AbortSignal, stdin?: string): Promise<ExecResult> {
    const result = await this.session.exec(command, {
      signal,
      ...(stdin !== undefined && { stdin }),
    });
    if (result.code !== 0) this.refused(result);
    return result;
  }

  private refused(result: ExecResult): never {
    // The rendezvous's own words, made safe for a terminal: the account is shared.
    const detail = displaySafe(result.stderr.trim().split('\n').slice(-1)[0] ?? '', 300);
    throw new RcppError(
      'RENDEZVOUS_REFUSED',
      `A command on the rendezvous host failed (exit ${String(result.code)})${detail ? `: ${detail}` : ''}.`,
      `The account needs /bin/sh and a writable directory for rcpp2p (${this.dir}).`,
    );
  }
}
