// Joins two SSH channels of the embedded rendezvous both ways (a client's direct-streamlocal channel
// and the channel to the connection that offered the socket). Each direction stops reading while the
// receiving channel has no window left or the receiving connection's socket holds more than
// `highWater` bytes, so a peer that stops reading cannot make the rendezvous buffer for it.
// Endings keep every byte: when one side finishes sending, the other gets only an EOF (ssh2's end()
// would also close the channel and cut the other direction); when one side closes, what it sent is
// delivered before both close; a connection that goes away closes both at once.
// ssh2 does not enforce the window it grants (a sender whose data overshoots it once is never
// stopped again), so a channel holding far more than a window is closed as hostile.
import type { Socket } from 'node:net';
import type { Channel } from 'ssh2';

export interface SpliceEnd {
  channel: Channel;
  /** The TCP socket of the connection the channel belongs to. */
  socket: Socket;
}

/** Twice ssh2's window: more than this waiting in a channel means its sender ignores the window. */
const OVERRUN_BYTES = 4 * 1024 * 1024;

interface Direction {
  /** Resolves once everything read so far has been handed to the receiving connection. */
  flushed(): Promise<void>;
  /** The receiving side is gone: stop reading and stop waiting for it. */
  stop(): void;
}

export function splice(a: SpliceEnd, b: SpliceEnd, highWater: number): void {
  let closed = false;
  let ended = 0;
  const closeBoth = (): void => {
    if (closed) return;
    closed = true;
    for (const end of [a, b]) {
      end.socket.off('close', closeBoth);
      end.channel.close();
    }
  };
  const onEnded = (): void => {
    if (++ended === 2) closeBoth();
  };
  const fromA = pump(a.channel, b, highWater, onEnded);
  const fromB = pump(b.channel, a, highWater, onEnded);
  // 'close' comes after all of that side's data was read: deliver it, then close both.
  a.channel.once('close', () => {
    fromB.stop();
    void fromA.flushed().then(closeBoth);
  });
  b.channel.once('close', () => {
    fromA.stop();
    void fromB.flushed().then(closeBoth);
  });
  for (const end of [a, b]) {
    end.channel.on('error', closeBoth);
    end.socket.once('close', closeBoth);
    guardWindow(end.channel, () => {
      fromA.stop();
      fromB.stop();
      closeBoth();
    });
  }
}

/** Calls `overrun` (once) and drops the data when the channel's buffer passes OVERRUN_BYTES. */
function guardWindow(channel: Channel, overrun: () => void): void {
  let hostile = false;
  const push = channel.push.bind(channel);
  channel.push = (chunk: unknown, encoding?: BufferEncoding): boolean => {
    if (chunk !== null && (hostile || channel.readableLength > OVERRUN_BYTES)) {
      if (!hostile) {
        hostile = true;
        overrun();
      }
      return false;
    }
    return push(chunk, encoding);
  };
}

function pump(from: Channel, to: SpliceEnd, highWater: number, onEnded: () => void): Direction {
  let waiting = false;
  let stopped = false;
  let last: Promise<void> = Promise.resolve();
  const resume = (): void => {
    if (!waiting || to.channel.writableNeedDrain || to.socket.writableLength > highWater) return;
    waiting = false;
    to.channel.off('drain', resume);
    to.socket.off('drain', resume);
    if (!stopped) from.resume();
  };
  from.on('data', (chunk: Buffer) => {
    if (stopped) return;
    last = new Promise((sent) => to.channel.write(chunk, () => sent()));
    if ((!to.channel.writableNeedDrain && to.socket.writableLength <= highWater) || waiting) return;
    waiting = true;
    from.pause();
    to.channel.on('drain', resume);
    to.socket.on('drain', resume);
  });
  from.once('end', () => {
    void last.then(() => {
      if (stopped) return;
      to.channel.eof();
      onEnded();
    });
  });
  return {
    flushed: () => (stopped ? Promise.resolve() : last),
    stop() {
      stopped = true;
      from.resume(); // what still arrives has nowhere to go
    },
  };
}
