// rcpp2p --send FILE...: offer files once, to whoever types the printed code into rcpp2p --receive
// (on any machine configured for the same rendezvous account; neither side needs to be a file
// server or a registered client). The sender waits on the rendezvous like a file server named
// send-<number>, admits the first receiver that proves it knows the code, puts the files over the
// link, and exits. Trust is link/send-introduction.ts's; the transfer is an ordinary put, so
// resume and integrity checks work as for --put.
import { RcppError } from '../../errors.js';
import type { Link } from '../../link/link.js';
import {
  MAX_WRONG_PROOFS,
  OFFER_LIFETIME_MS,
  senderTrust,
  waitForKeptMark,
} from '../../link/send-introduction.js';
import { serveRendezvous } from '../../link/serve-rendezvous.js';
import type { ProgressEvent } from '../../progress.js';
import { deriveSendKey, makeSendCode, offerName, type SendCode } from '../../secure/send-code.js';
import { FileClient, type TransferResult } from '../../transfer/file-client.js';
import { loadPeer, type CommandContext, type Peer } from '../context.js';
import { localSources, report } from './transfer-files.js';

/** A send whose number another live send holds is offered again under a new code. */
const MAX_CODES = 3;

export async function sendCommand(ctx: CommandContext, paths: string[]): Promise<number> {
  const absolute = await localSources(ctx, paths);
  const peer = await loadPeer(ctx);
  for (let attempt = 1; ; attempt++) {
    const code = makeSendCode();
    try {
      return await offerOnce(ctx, peer, code, absolute);
    } catch (err) {
      const taken = err instanceof RcppError && err.code === 'NAME_IN_USE';
      if (!taken || attempt >= MAX_CODES) throw err;
    }
  }
}

interface Outcome {
  results?: TransferResult[];
  link?: Pick<
    Link,
    'path' | 'family' | 'reason' | 'setupMs' | 'portMapping' | 'signaling' | 'relay' | 'answerMs'
  >;
  receiver?: string;
  ms?: number;
  error?: unknown;
}

async function offerOnce(
  ctx: CommandContext,
  peer: Peer,
  code: SendCode,
  files: string[],
): Promise<number> {
  const key = await deriveSendKey(code);
  const stop = new AbortController();
  const signal = AbortSignal.any([ctx.signal, stop.signal]);
  const end = (reason: unknown): void => stop.abort(reason);
  const trust = senderTrust(code, key, peer.identity.fingerprint, (wrong) => {
    if (wrong >= MAX_WRONG_PROOFS) {
      end(
        new RcppError(
          'PEER_REFUSED',
          `Send cancelled: ${wrong} peers tried to receive it without knowing the code (someone may be guessing it).`,
          'Run rcpp2p --send again for a new code, and give it only to the receiver.',
        ),
      );
    }
  });
  const expiry = setTimeout(
    () =>
      end(
        new RcppError(
          'TIMEOUT',
          `Nobody received the send within ${OFFER_LIFETIME_MS / 60_000} minutes; code ${code.text} has expired.`,
          'Run rcpp2p --send again when the receiver is ready.',
        ),
      ),
    OFFER_LIFETIME_MS,
  );
  const outcome: Outcome = {};
  let shown = false;
  const label = peer.config.clientName ?? peer.config.serverName ?? 'sender';
  const onProgress = (event: ProgressEvent): void => {
    if (event.type === 'record:published') {
      if (!shown) showCode(ctx, code);
      shown = true;
      return;
    }
    if (event.type === 'signaling:ready' && event.mode === 'records') {
      end(
        new RcppError(
          'RENDEZVOUS_REFUSED',
          'The rendezvous host allows neither forwarding nor remote commands, so a send cannot wait there.',
          'Use a rendezvous host that allows TCP forwarding, or --put to a file server.',
        ),
      );
      return;
    }
    if (event.type === 'signaling:ready' || event.type === 'server:request') return;
    if (event.type === 'server:client-connected') {
      ctx.view.onProgress({
        type: 'note',
        text: `Receiver ${event.client} connected: ${event.path} from ${event.remote} (${event.reason}).`,
      });
      return;
    }
    ctx.view.onProgress(event);
  };
  let busy = false;
  const onLink = async (link: Link): Promise<void> => {
    // Every path the receiver's race secured arrives here; it marks the one it kept.
    if (busy || !(await waitForKeptMark(link.stream, signal)) || busy) return;
    busy = true;
    ctx.view.onProgress({
      type: 'note',
      text: `Encrypted with TLS 1.3; the receiver knew the code and proved identity ${link.peerFingerprint}.`,
    });
    const started = Date.now();
    try {
      const client = await FileClient.open(link.stream, {
        clientName: label,
        signal,
        serverFingerprint: link.peerFingerprint,
      });
      try {
        // The receiver decides about files it already has (its --force).
        outcome.results = await client.put(files, '', {
          signal,
          onProgress: ctx.view.onProgress,
          force: true,
        });
      } finally {
        await client.close().catch(() => {});
      }
      outcome.link = link;
      outcome.receiver = link.peer;
      outcome.ms = Date.now() - started;
      end(undefined);
    } catch (err) {
      outcome.error = err;
      end(err);
    }
  };
  try {
    await serveRendezvous({
      rendezvous: peer.rendezvous,
      auth: peer.auth,
      localPort: 0,
      serverName: offerName(code),
      identity: peer.identity,
      trust: peer.trust,
      pollSeconds: peer.config.pollSeconds,
      signal,
      onProgress,
      portMapping: peer.portMapping,
      onLink,
      send: trust,
    });
  } finally {
    clearTimeout(expiry);
  }
  if (outcome.results && outcome.link) {
    return report(
      ctx,
      outcome.receiver ?? 'receiver',
      outcome.results,
      outcome.link,
      outcome.ms ?? 0,
    );
  }
  if (outcome.error !== undefined) throw outcome.error as Error;
  // Stopped by Ctrl-C, or ended by one of the reasons above.
  throw (ctx.signal.aborted ? ctx.signal.reason : stop.signal.reason) as Error;
}

function showCode(ctx: CommandContext, code: SendCode): void {
  ctx.view.print('');
  ctx.view.print(`Code: ${code.text}`);
  ctx.view.print(`On the other machine run:  rcpp2p receive ${code.text}`);
  ctx.view.print(
    `Waiting for the receiver (the code works once, for ${OFFER_LIFETIME_MS / 60_000} minutes; Ctrl-C cancels)...`,
  );
  ctx.view.emitJson({ op: 'send', code: code.text, expiresInMs: OFFER_LIFETIME_MS });
}
