// A hostile client for the NAT lab: it opens the real link to a file server (rendezvous, punch, TLS
// with this peer's identity) like `rcpp2p --get`, then speaks the transfer protocol by hand, so names
// FileClient would refuse locally reach the server. It asks for the names given, refuses every file
// offered, and prints the server's manifest as one JSON line: {"files": [...], "problems": [...]}, or
// the server's refusal of the whole request: {"error": {"code", "message"}}.
//
// Usage (inside the client's namespace): node raw-get.js CONFIG SERVER '["name", ...]'
import { loadConfig } from '../../src/config/config.js';
import { expandHome, identityPathFor } from '../../src/config/paths.js';
import { rendezvousSettings } from '../../src/cli/context.js';
import { openLink } from '../../src/link/open-link.js';
import type { Message } from '../../src/protocol/messages.js';
import { resolveSshAuth } from '../../src/rendezvous/ssh-auth.js';
import { loadIdentity } from '../../src/secure/identity.js';
import { KnownPeers, knownPeersPathFor } from '../../src/secure/known-peers.js';
import { FrameChannel } from '../../src/transfer/channel.js';

const [configPath, serverName, namesJson] = process.argv.slice(2);
if (!configPath || !serverName || !namesJson) {
  process.stderr.write('usage: raw-get.js CONFIG SERVER NAMES-JSON\n');
  process.exit(2);
}
const names = JSON.parse(namesJson) as string[];
const signal = AbortSignal.timeout(60_000);

const config = await loadConfig(configPath);
const clientName = config.clientName ?? 'LAPTOP';
const link = await openLink({
  rendezvous: rendezvousSettings(config),
  auth: await resolveSshAuth(
    config.auth.method === 'key'
      ? { method: 'key', identityFile: expandHome(config.auth.identityFile) }
      : config.auth,
    () => Promise.reject(new Error('raw-get asks no questions')),
  ),
  localPort: 0,
  clientName,
  identity: await loadIdentity(identityPathFor(configPath)),
  trust: await KnownPeers.load(knownPeersPathFor(configPath)),
  serverName,
  signal,
});
const ch = new FrameChannel(link.stream, { peer: 'the server', idleTimeoutMs: 30_000 });
try {
  ch.send({ t: 'hello', v: 1, client: clientName, features: [], idleMs: 0 });
  const welcome = await ch.readMessage(signal);
  if (welcome.t !== 'welcome') throw new Error(`expected welcome, got ${JSON.stringify(welcome)}`);
  ch.send({ t: 'get', paths: names });
  const files: Extract<Message, { t: 'manifest' }>['files'] = [];
  const problems: Extract<Message, { t: 'manifest' }>['problems'] = [];
  for (;;) {
    const m = await ch.readMessage(signal);
    if (m.t === 'error') {
      process.stdout.write(`${JSON.stringify({ error: { code: m.code, message: m.message } })}\n`);
      process.exit(0);
    }
    if (m.t !== 'manifest') throw new Error(`expected a manifest, got ${JSON.stringify(m)}`);
    files.push(...m.files);
    problems.push(...m.problems);
    if (m.last) break;
  }
  ch.send({
    t: 'accept',
    files: [],
    refused: files.map((f) => ({ i: f.i, code: 'BUSY', message: 'not wanted' })),
    last: true,
  });
  for (;;) if ((await ch.readMessage(signal)).t === 'done') break;
  ch.send({ t: 'done' });
  ch.send({ t: 'bye' });
  process.stdout.write(`${JSON.stringify({ files, problems })}\n`);
} finally {
  ch.destroy();
  await link.close();
}
