// The two ways rcpp2p talks to a router, each bounded and cancellable:
// - udpExchange: one NAT-PMP or PCP request to the gateway's UDP port, retransmitted with the
//   doubling intervals RFC 6886 3.1 and RFC 6887 8.1 ask for, until an accepted answer, an ICMP
//   "port unreachable" (nobody speaks the protocol there: fails at once), the schedule's end, or
//   the signal. A connected socket: only the gateway's own answers reach us.
// - httpExchange: one HTTP request to the router (UPnP description, SOAP control), its answer
//   read up to a size limit.
import dgram from 'node:dgram';
import http from 'node:http';
import { abortError, RcppError } from '../../errors.js';

/** First wait 250 ms, then doubling (RFC 6886 3.1), four sends in all: 3.75 s at most. */
export const RETRANSMIT_MS = [250, 500, 1000, 2000];

export interface UdpExchangeOptions<T> {
  gateway: string;
  port: number;
  request: Buffer;
  /** Returns the answer it recognises, or undefined to keep waiting (a stray or stale packet). */
  accept: (answer: Buffer) => T | undefined;
  signal: AbortSignal;
  maxAnswerBytes: number;
  retransmitMs?: readonly number[];
}

export function udpExchange<T>(opts: UdpExchangeOptions<T>): Promise<T> {
  const schedule = opts.retransmitMs ?? RETRANSMIT_MS;
  return new Promise<T>((resolve, reject) => {
    if (opts.signal.aborted) {
      reject(abortError(opts.signal));
      return;
    }
    const socket = dgram.createSocket('udp4');
    let timer: NodeJS.Timeout | undefined;
    let sent = 0;
    let finished = false;
    const finish = (err: Error | undefined, value?: T): void => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      opts.signal.removeEventListener('abort', onAbort);
      socket.close();
      if (err) reject(err);
      else resolve(value as T);
    };
    const onAbort = (): void => finish(abortError(opts.signal));
    const send = (): void => {
      if (finished) return;
      if (sent >= schedule.length) {
        finish(
          new RcppError(
            'PORT_MAPPING_FAILED',
            `${opts.gateway} did not answer on UDP port ${opts.port}`,
          ),
        );
        return;
      }
      const wait = schedule[sent] ?? 1000;
      sent++;
      socket.send(opts.request, (err) => {
        if (err) finish(describeSocketError(err, opts.gateway, opts.port));
      });
      timer = setTimeout(send, wait);
    };
    opts.signal.addEventListener('abort', onAbort, { once: true });
    socket.on('error', (err) => finish(describeSocketError(err, opts.gateway, opts.port)));
    socket.on('message', (answer) => {
      if (answer.length > opts.maxAnswerBytes) return;
      const value = opts.accept(answer);
      if (value !== undefined) finish(undefined, value);
    });
    socket.connect(opts.port, opts.gateway, send);
  });
}

function describeSocketError(err: Error, gateway: string, port: number): RcppError {
  const code = (err as NodeJS.ErrnoException).code;
  const words =
    code === 'ECONNREFUSED'
      ? `nothing answers on ${gateway} UDP port ${port}`
      : `${gateway} UDP port ${port}: ${code ?? err.message}`;
  return new RcppError('PORT_MAPPING_FAILED', words, '', { cause: err });
}

/** The local address a datagram to `remote` leaves from (no packet is sent). */
export function localAddressToward(remote: string, signal: AbortSignal): Promise<string> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(abortError(signal));
      return;
    }
    const socket = dgram.createSocket('udp4');
    socket.once('error', (err) => {
      socket.close();
      reject(describeSocketError(err, remote, 9));
    });
    socket.connect(9, remote, () => {
      const address = socket.address().address;
      socket.close();
      resolve(address);
    });
  });
}

export interface HttpExchangeOptions {
  method: 'GET' | 'POST';
  headers?: Record<string, string>;
  body?: string;
  maxAnswerBytes: number;
  signal: AbortSignal;
}

export interface HttpAnswer {
  status: number;
  body: string;
  /** Our address on the connection: the LAN address the router knows us by. */
  localAddress: string | undefined;
}

export function httpExchange(url: string, opts: HttpExchangeOptions): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    if (opts.signal.aborted) {
      reject(abortError(opts.signal));
      return;
    }
    let localAddress: string | undefined;
    const fail = (err: unknown): void => {
      if (opts.signal.aborted) reject(abortError(opts.signal));
      else
        reject(
          err instanceof RcppError
            ? err
            : new RcppError(
                'PORT_MAPPING_FAILED',
                `${new URL(url).host}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
                '',
                { cause: err },
              ),
        );
    };
    const body = opts.body === undefined ? undefined : Buffer.from(opts.body, 'utf8');
    const request = http.request(
      url,
      {
        method: opts.method,
        agent: false,
        signal: opts.signal,
        headers: {
          Connection: 'close',
          ...opts.headers,
          ...(body && { 'Content-Length': String(body.length) }),
        },
      },
      (response) => {
        const declared = Number(response.headers['content-length'] ?? 0);
        if (declared > opts.maxAnswerBytes) {
          response.destroy();
          fail(tooLarge(url, opts.maxAnswerBytes));
          return;
        }
        const chunks: Buffer[] = [];
        let size = 0;
        response.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > opts.maxAnswerBytes) {
            response.destroy(tooLarge(url, opts.maxAnswerBytes));
            return;
          }
          chunks.push(chunk);
        });
        response.on('error', fail);
        response.on('end', () =>
          resolve({
            status: response.statusCode ?? 0,
            body: Buffer.concat(chunks).toString('utf8'),
            localAddress,
          }),
        );
      },
    );
    request.on('socket', (socket) =>
      socket.once('connect', () => {
        localAddress = socket.localAddress;
      }),
    );
    request.on('error', fail);
    request.end(body);
  });
}

function tooLarge(url: string, max: number): RcppError {
  return new RcppError(
    'PORT_MAPPING_FAILED',
    `${new URL(url).host} sent more than ${Math.round(max / 1024)} KB`,
  );
}
