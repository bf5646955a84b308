// Joins two SSH channels of the embedded rendezvous both ways (a client's direct-streamlocal channel
// and the channel to the connection that offered the socket).
// Memory: each direction stops reading while more than `highWater` bytes wait for the receiving
// channel's window or in the receiving connection's socket, and a channel's buffer mark is lowered
// to `highWater`, so ssh2 stops topping up the sender's window there (with its own 2 MiB mark about
// 4 MiB piled up, 6 MiB of memory counting the larger buffers the chunks are cut from). A peer that stops reading thus costs at most
// `highWater` plus one SSH window (2 MiB) per direction. ssh2 does not enforce the window it grants
// (a sender that overshoots it once is never stopped again), so a channel holding far more than a
// window is closed as hostile.
// Endings keep every byte: when one side finishes sending, the other gets only an EOF (ssh2's end()
// would also close the channel and cut the other direction); when one side closes, what it sent is
// delivered before both close; a connection that goes away closes both at once.
import type { Socket } from 'node:net';
import type { Channel } from 'ssh2';

export interface SpliceEnd {
  channel: Channel;
  /** The TCP socket of the connection the channel belongs to. */
  socket: Socket;
}

/** More than this waiting in a channel means its sender ignores the window (2 MiB + highWater). */
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
    guardWindow(end.channel, highWater, () => {
      fromA.stop();
      fromB.stop();
      closeBoth();
    });
  }
}

/**
 * Lowers the channel's buffer mark to `highWater`, so ssh2 (which grants more window whenever the
 * stream asks to read and its buffer is under that mark) stops topping up the sender's window; and
 * calls `overrun` (once) and drops the data when the channel holds more than OVERRUN_BYTES.
 */
function guardWindow(channel: Channel, highWater: number, overrun: () => void): void {
  // Node has no public setter for a stream's high-water mark after construction.
  (
    channel as unknown as { _readableState: { highWaterMark: number } }
  )._readableState.highWaterMark = highWater;
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
  /** Bytes handed to the receiving channel that it has not sent yet (its window is shut). */
  let pending = 0;
  let last: Promise<void> = Promise.resolve();
  const blocked = (): boolean => pending > highWater || to.socket.writableLength > highWater;
  const resume = (): void => {
    if (!waiting || blocked()) return;
    waiting = false;
    to.socket.off('drain', resume);
    if (!stopped) from.resume();
  };
  from.on('data', (chunk: Buffer) => {
    if (stopped) return;
    pending += chunk.length;
    last = new Promise((sent) =>
      to.channel.write(chunk, () => {
        pending -= chunk.length;
        sent();
        resume();
      }),
    );
    if (waiting || !blocked()) return;
    waiting = true;
    from.pause();
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
