// Which message may come when, on the receiving side of the streaming phase (the client in a get, the
// server in a put), as a pure tracker: fed what arrives, it says what to do or throws PROTOCOL_ERROR
// (a peer's `error` is thrown with the peer's code). stream-files.ts does the disk and channel work.
//
//   between --file {i accepted, not started, offset usable}--> in-file {i, left = size - offset}
//   in-file --data (n <= left)--> in-file {left - n}
//   in-file --file-end {same i}--> between
//   in-file | between --file-error {i accepted, not started or the current file}--> between
//   in-file (receiver gave up on it: abandon()) --file | done--> as from between
//   between --done--> finished (the accepted files never started are "never sent")
//
// A usable offset is 0, or one the receiver's partial allows (resume.ts isResumeOffset), and never
// past the file's size.

import { RcppError } from '../errors.js';
import type { Message, ResumeInfo } from './messages.js';
import { isResumeOffset } from './resume.js';
import { quote } from './text.js';

/** What the receiver accepted for one file index. */
export interface Expected {
  /** How the file is named in sentences. */
  shown: string;
  size: number;
  /** The partial it described, if any: the sender may continue from a block of it. */
  resume?: ResumeInfo;
}

export type Arrival = { kind: 'data'; length: number } | { kind: 'message'; msg: Message };

export type ReceiveStep =
  | { do: 'start'; i: number; offset: number }
  | { do: 'data'; i: number; length: number }
  | { do: 'end'; i: number; sha256: string }
  | { do: 'sender-failed'; i: number; error: RcppError; current: boolean }
  | { do: 'finish'; neverSent: number[] };

type State =
  | { s: 'between' }
  | { s: 'in-file'; i: number; left: number; abandoned: boolean }
  | { s: 'finished' };

export class ReceiveOrder {
  private state: State = { s: 'between' };
  private readonly started = new Set<number>();

  /**
   * @param accepted the files the receiver accepted, by index
   * @param peer who sends, for sentences ("the server ASUS")
   */
  constructor(
    private readonly accepted: ReadonlyMap<number, Expected>,
    private readonly peer: string,
  ) {}

  /** The file being received, if any. */
  get current(): number | undefined {
    return this.state.s === 'in-file' ? this.state.i : undefined;
  }

  /** The receiver gave up on the current file: its remaining bytes may be cut short. */
  abandon(i: number): void {
    if (this.state.s === 'in-file' && this.state.i === i) this.state.abandoned = true;
  }

  step(arrival: Arrival): ReceiveStep {
    const st = this.state;
    if (st.s === 'finished') throw this.error(`sent more after done`);
    if (arrival.kind === 'data') {
      if (st.s !== 'in-file') throw this.error('sent file data outside a file');
      if (arrival.length > st.left) throw this.error('sent more bytes than the file has');
      st.left -= arrival.length;
      return { do: 'data', i: st.i, length: arrival.length };
    }
    const msg = arrival.msg;
    const live = st.s === 'in-file' && !st.abandoned;
    switch (msg.t) {
      case 'error':
        throw new RcppError(msg.code, msg.message);
      case 'file': {
        if (live) throw this.error('started a file before ending the previous one');
        const want = this.accepted.get(msg.i);
        if (!want || this.started.has(msg.i)) throw this.error('sent a file that was not accepted');
        if (msg.offset > want.size || !isResumeOffset(msg.offset, want.resume)) {
          throw this.error(`asked to continue ${quote(want.shown)} from an offset it cannot use`);
        }
        this.started.add(msg.i);
        this.state = { s: 'in-file', i: msg.i, left: want.size - msg.offset, abandoned: false };
        return { do: 'start', i: msg.i, offset: msg.offset };
      }
      case 'file-end':
        if (st.s !== 'in-file' || st.i !== msg.i) {
          throw this.error('ended a file it had not started');
        }
        this.state = { s: 'between' };
        return { do: 'end', i: msg.i, sha256: msg.sha256 };
      case 'file-error': {
        if (!this.accepted.has(msg.i)) throw this.error('reported on a file that was not accepted');
        const current = st.s === 'in-file' && st.i === msg.i;
        if (!current && live) throw this.error('reported on another file in the middle of a file');
        if (!current && this.started.has(msg.i)) {
          throw this.error('reported on a file it had already sent');
        }
        this.started.add(msg.i);
        this.state = { s: 'between' };
        return {
          do: 'sender-failed',
          i: msg.i,
          error: new RcppError(msg.code, msg.message),
          current,
        };
      }
      case 'done': {
        if (live) throw this.error('finished in the middle of a file');
        this.state = { s: 'finished' };
        const neverSent = [...this.accepted.keys()].filter((i) => !this.started.has(i));
        return { do: 'finish', neverSent };
      }
      default:
        throw this.error(`sent ${msg.t} while sending files`);
    }
  }

  private error(what: string): RcppError {
    return new RcppError('PROTOCOL_ERROR', `${capital(this.peer)} ${what}.`);
  }
}

function capital(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
