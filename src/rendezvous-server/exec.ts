// One exec request on the embedded rendezvous: rcpp2p's own commands run in-process, anything else
// gets exit code 127 like a missing command. Output is written with backpressure on both the SSH
// channel (its window) and the connection's socket (a client can grant a huge window and then stop
// reading TCP), and input is read only up to its limit; input a command does not want is discarded.
import type { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import type { ServerChannel } from 'ssh2';
import { parseRendezvousCommand } from '../rendezvous/commands.js';
import { runRendezvousCommand, type CommandContext } from './run-command.js';

export type ExecContext = Omit<CommandContext, 'readStdin' | 'stdout' | 'stderr'> & {
  /** The connection's TCP socket, for its backpressure. */
  socket: Socket;
  socketHighWaterBytes: number;
};

class ChannelClosed extends Error {
  constructor() {
    super('the channel closed');
  }
}

export async function runExec(
  channel: ServerChannel,
  command: string,
  ctx: ExecContext,
): Promise<void> {
  const controller = new AbortController();
  const onClose = (): void => controller.abort();
  channel.once('close', onClose);
  ctx.socket.once('close', onClose);
  const { signal } = controller;
  const write = async (target: NodeJS.WritableStream, data: string | Buffer): Promise<void> => {
    await until(signal, (done) => target.write(data, () => done()));
    if (ctx.socket.writableLength > ctx.socketHighWaterBytes) {
      await until(signal, (done) => once(ctx.socket, 'drain', done, signal));
    }
  };
  const op = parseRendezvousCommand(command);
  // Only publish reads its input; the rest throw it away (a paused channel would never end).
  if (op?.op !== 'publish') channel.resume();
  let code = 127;
  try {
    if (!op) {
      await write(
        channel.stderr,
        "This is an rcpp2p rendezvous: it runs rcpp2p's own commands only.\n",
      );
    } else {
      code = await runRendezvousCommand(op, {
        ...ctx,
        readStdin: (limit) => until(signal, (done) => readLimited(channel, limit, done)),
        stdout: (data) => write(channel, data),
        stderr: (text) => write(channel.stderr, text),
      });
    }
    channel.exit(code);
    channel.end();
  } catch (err) {
    if (err instanceof ChannelClosed) return;
    await write(channel.stderr, `rcpp2p rendezvous: ${(err as Error).message}\n`).catch(() => {});
    channel.exit(1);
    channel.end();
  } finally {
    channel.off('close', onClose);
    ctx.socket.off('close', onClose);
  }
}

/** Runs `start(done)` and resolves with what it passes to done, or rejects once `signal` aborts. */
function until<T = void>(
  signal: AbortSignal,
  start: (done: (value: T) => void) => void,
): Promise<T> {
  if (signal.aborted) return Promise.reject(new ChannelClosed());
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(new ChannelClosed());
    signal.addEventListener('abort', onAbort, { once: true });
    start((value) => {
      signal.removeEventListener('abort', onAbort);
      resolve(value);
    });
  });
}

function once(emitter: EventEmitter, event: string, done: () => void, signal: AbortSignal): void {
  const fire = (): void => {
    signal.removeEventListener('abort', drop);
    done();
  };
  const drop = (): void => void emitter.off(event, fire);
  emitter.once(event, fire);
  signal.addEventListener('abort', drop, { once: true });
}

/** Passes all of the channel's input to `done`, or 'too-large' once it exceeds `limit`. */
function readLimited(
  channel: ServerChannel,
  limit: number,
  done: (input: Buffer | 'too-large') => void,
): void {
  const chunks: Buffer[] = [];
  let length = 0;
  const finish = (input: Buffer | 'too-large'): void => {
    channel.off('data', onData);
    channel.off('end', onEnd);
    channel.resume(); // the rest is thrown away
    done(input);
  };
  const onData = (d: Buffer): void => {
    length += d.length;
    if (length > limit) finish('too-large');
    else chunks.push(d);
  };
  const onEnd = (): void => finish(Buffer.concat(chunks));
  channel.on('data', onData);
  channel.once('end', onEnd);
}
