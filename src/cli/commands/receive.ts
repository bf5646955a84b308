// rcpp2p --receive CODE: take the files a sender offered with rcpp2p --send, into this folder (or
// --to DIR). The receiver opens the link like a client (the code, not a registration, introduces
// it: link/send-introduction.ts) and then serves the sender's put in receive-only mode: nothing
// here can be listed or read, files that exist are kept unless --force, and a partial download
// never replaces a good file.
import { resolve } from 'node:path';
import { isRcppError, RcppError } from '../../errors.js';
import { openLink } from '../../link/open-link.js';
import { markKeptStream, receiverTrust } from '../../link/send-introduction.js';
import type { ProgressEvent } from '../../progress.js';
import { deriveSendKey, offerName, parseSendCode, type SendCode } from '../../secure/send-code.js';
import { FileServer } from '../../transfer/file-server.js';
import { loadPeer, type CommandContext } from '../context.js';
import { formatBytes, formatSeconds, formatSpeed } from '../format.js';
import { localFolder } from './transfer-files.js';

export async function receiveCommand(
  ctx: CommandContext,
  codeText: string,
  opts: { to: string | undefined; force: boolean },
): Promise<number> {
  const code = parseSendCode(codeText);
  const folder = await localFolder(ctx, opts.to);
  const peer = await loadPeer(ctx);
  const key = await deriveSendKey(code);
  const label = peer.config.clientName ?? peer.config.serverName ?? 'receiver';
  const link = await openLink({
    rendezvous: peer.rendezvous,
    auth: peer.auth,
    localPort: 0,
    clientName: label,
    identity: peer.identity,
    trust: peer.trust,
    serverName: offerName(code),
    signal: ctx.signal,
    onProgress: (e) => ctx.view.onProgress(asReceiver(e, code)),
    portMapping: peer.portMapping,
    introduction: receiverTrust(code, key, peer.identity.fingerprint),
  }).catch((err: unknown) => {
    throw noSuchSend(err, code);
  });
  const received: { file: string; bytes: number }[] = [];
  const failed: { file: string; message: string }[] = [];
  const started = Date.now();
  const receiver = new FileServer({
    workDir: folder,
    serverName: label,
    receiveOnly: { allowOverwrite: opts.force },
    // the folder is the user's, not a file server's: its old partial files are left alone
    partialMaxAgeMs: 0,
    onProgress: (e) => {
      if (e.type === 'transfer:done') received.push({ file: e.file, bytes: e.bytes });
      if (e.type === 'transfer:failed') failed.push({ file: e.file, message: e.message });
      // A file server's log lines ("client X: put ...") say nothing new to a receiver.
      if (e.type === 'server:request') return;
      if (e.type === 'server:session-ended') {
        if (e.message)
          ctx.view.onProgress({ type: 'note', text: `The sender hung up: ${e.message}` });
        return;
      }
      ctx.view.onProgress(e);
    },
  });
  try {
    markKeptStream(link.stream);
    await receiver.serve(
      link.stream,
      { name: 'sender', fingerprint: link.peerFingerprint },
      { signal: ctx.signal },
    );
  } finally {
    await receiver.close();
    await link.close();
  }
  ctx.view.finish();
  if (ctx.signal.aborted) throw ctx.signal.reason as Error;
  const ms = Date.now() - started;
  const bytes = received.reduce((n, f) => n + f.bytes, 0);
  for (const f of received) {
    ctx.view.emitJson({
      op: 'receive',
      ok: true,
      file: f.file,
      localPath: resolve(folder, f.file),
      bytes: f.bytes,
      path: link.path,
      family: link.family,
    });
  }
  for (const f of failed) {
    ctx.view.emitJson({ op: 'receive', ok: false, file: f.file, message: f.message });
    const named = f.message.includes(f.file) ? '' : `${f.file}: `;
    ctx.view.fileError(
      `${named}${f.message}`,
      /exists/.test(f.message) ? 'To replace it, receive a new send with --force.' : '',
    );
  }
  ctx.view.print(
    `Received ${received.length} file${received.length === 1 ? '' : 's'}` +
      (received.length > 0
        ? `, ${formatBytes(bytes)} in ${formatSeconds(ms)} (${formatSpeed(bytes, ms)})`
        : '') +
      ` into ${folder}` +
      (failed.length > 0 ? `; ${failed.length} refused or failed (see above).` : '.'),
  );
  if (failed.length > 0) return 5;
  if (received.length === 0) {
    throw new RcppError(
      'CONNECTION_LOST',
      'The sender hung up before any file arrived.',
      'Ask the sender to run rcpp2p --send again; a file cut short resumes where it stopped.',
    );
  }
  return 0;
}

/** Link words for a send: the "file server" is the send under the code. */
function asReceiver(e: ProgressEvent, code: SendCode): ProgressEvent {
  if (e.type === 'peer:found') {
    return { type: 'note', text: `Found the send under code ${code.nameplate}.` };
  }
  return e;
}

/** "No file server named send-7" is the send that is not there, said as such. */
function noSuchSend(err: unknown, code: SendCode): unknown {
  if (!isRcppError(err) || (err.code !== 'PEER_UNKNOWN' && err.code !== 'PEER_OFFLINE')) {
    return err;
  }
  if (err.message.startsWith('The send under code')) return err; // expired: says so already
  return new RcppError(
    err.code,
    `Nothing is being sent under code ${code.text}: the send was received already, was cancelled or expired, or the number is mistyped.`,
    'Check the code with the sender, or ask for a new one (rcpp2p --send).',
    { cause: err },
  );
}
