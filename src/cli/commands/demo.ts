// rcpp2p --demo (npm run demo): the whole product on one machine, no root and no sshd needed.
// Starts the embedded rendezvous on loopback, configures a file server and a client in a temporary
// folder, runs the server, and runs the client commands a user would type, with real output and
// progress bars. Everything is removed at the end, also after Ctrl-C.
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { saveConfig, type Config } from '../../config/config.js';
import { identityPathFor } from '../../config/paths.js';
import { serveRendezvous } from '../../link/serve-rendezvous.js';
import { formatKnownHostsLine } from '../../rendezvous/known-hosts.js';
import { loadPeer } from '../context.js';
import { saveAccounts } from '../../rendezvous-server/accounts.js';
import { startRendezvousServer } from '../../rendezvous-server/server.js';
import { createIdentity } from '../../secure/identity.js';
import { FileServer } from '../../transfer/file-server.js';
import type { CommandContext } from '../context.js';
import { ConsoleView } from '../view.js';
import { addClientCommand } from './add-client.js';
import { fileListCommand } from './file-list.js';
import { receiveCommand } from './receive.js';
import { sendCommand } from './send.js';
import { getCommand, putCommand } from './transfer-files.js';
import { generateSshKeyPair } from '../../rendezvous/ssh-key.js';

const SERVER = 'DEMO-SERVER';
const CLIENT = 'DEMO-CLIENT';

export async function demoCommand(ctx: CommandContext): Promise<number> {
  const dir = await mkdtemp(join(tmpdir(), 'rcpp2p-demo-'));
  const stop = new AbortController();
  const onAbort = (): void => stop.abort(ctx.signal.reason);
  ctx.signal.addEventListener('abort', onAbort, { once: true });
  const say = (text: string): void => {
    ctx.io.stderr.write(`${text}\n`);
  };
  let rendezvous: Awaited<ReturnType<typeof startRendezvousServer>> | undefined;
  let serving: Promise<void> | undefined;
  try {
    say(`rcpp2p demo: two peers and a rendezvous on this machine, in ${dir}\n`);

    say(
      '== 1. Start the embedded rendezvous (an SSH server; on real machines any OpenSSH account works)',
    );
    const keyPair = generateSshKeyPair();
    const keyFile = join(dir, 'demo_ssh_key');
    await writeFile(keyFile, keyPair.private, { mode: 0o600 });
    await saveAccounts(join(dir, 'rendezvous'), [
      { user: 'demo', authorizedKeys: [keyPair.public] },
    ]);
    rendezvous = await startRendezvousServer({
      stateDir: join(dir, 'rendezvous'),
      host: '127.0.0.1',
      port: 0,
    });
    say(
      `   listening on 127.0.0.1:${rendezvous.port}, host key ${rendezvous.hostKey.fingerprint}\n`,
    );
    const knownHosts = join(dir, 'known_hosts');
    await writeFile(
      knownHosts,
      formatKnownHostsLine(
        '127.0.0.1',
        rendezvous.port,
        rendezvous.hostKey.type,
        rendezvous.hostKey.blob,
      ) + '\n',
      { mode: 0o600 },
    );

    say('== 2. Configure a file server and a client (rcpp2p --configure)');
    const serverFiles = join(dir, 'server-files');
    const clientFiles = join(dir, 'client-files');
    await mkdir(serverFiles);
    await mkdir(clientFiles);
    await writeFile(join(serverFiles, 'welcome.txt'), 'Hello from the rcpp2p demo file server.\n');
    await writeFile(join(serverFiles, 'photo.jpg'), randomBytes(6 * 1024 * 1024));
    await writeFile(join(clientFiles, 'notes.txt'), 'Uploaded by the demo client.\n'.repeat(1000));
    const base = (port: number): Omit<Config, 'serverName' | 'clientName' | 'workDir'> => ({
      version: 1,
      rendezvous: { host: '127.0.0.1', port: rendezvous?.port ?? 0, user: 'demo', dir: '.rcpp2p' },
      auth: { method: 'key', identityFile: keyFile },
      knownHostsFile: knownHosts,
      port,
      pollSeconds: 10,
      keepaliveSeconds: 15,
      portMapping: 'off', // the demo stays on this machine: it never asks the router for a port
    });
    const serverConfig = join(dir, 'server.json');
    const clientConfig = join(dir, 'client.json');
    const serverPort = 20_000 + Math.floor(Math.random() * 20_000);
    await saveConfig(serverConfig, {
      ...base(serverPort),
      serverName: SERVER,
      workDir: serverFiles,
    });
    await saveConfig(clientConfig, { ...base(serverPort + 1), clientName: CLIENT });
    const serverIdentity = await createIdentity(identityPathFor(serverConfig), SERVER);
    const clientIdentity = await createIdentity(identityPathFor(clientConfig), CLIENT);
    await chmod(dir, 0o700);
    say(`   ${SERVER} identity ${serverIdentity.fingerprint}`);
    say(`   ${CLIENT} identity ${clientIdentity.fingerprint}\n`);

    say(`== 3. Start the file server (rcpp2p) serving ${serverFiles}`);
    const serverView = new ConsoleView({
      stdout: ctx.io.stderr,
      stderr: ctx.io.stderr,
      json: false,
      prefix: '   [server] ',
    });
    const serverCtx: CommandContext = {
      ...ctx,
      view: serverView,
      configPath: serverConfig,
      signal: stop.signal,
    };
    const peer = await loadPeer(serverCtx);
    const fileServer = new FileServer({
      workDir: serverFiles,
      serverName: SERVER,
      onProgress: serverView.onProgress,
    });
    let ready: () => void = () => {};
    const signalingReady = new Promise<void>((r) => (ready = r));
    serving = serveRendezvous({
      rendezvous: peer.rendezvous,
      auth: peer.auth,
      localPort: serverPort,
      serverName: SERVER,
      identity: peer.identity,
      trust: peer.trust,
      pollSeconds: 10,
      signal: stop.signal,
      onProgress: (e) => {
        serverView.onProgress(e);
        if (e.type === 'signaling:ready') ready();
      },
      onLink: (link) =>
        fileServer.serve(
          link.stream,
          { name: link.peer, fingerprint: link.peerFingerprint },
          { signal: stop.signal },
        ),
    }).finally(() => fileServer.close());
    await Promise.race([signalingReady, serving]);
    say('');

    const clientView = new ConsoleView({
      stdout: ctx.io.stdout,
      stderr: ctx.io.stderr,
      json: false,
    });
    const clientCtx: CommandContext = {
      ...ctx,
      view: clientView,
      configPath: clientConfig,
      signal: stop.signal,
      io: { ...ctx.io, cwd: clientFiles },
    };
    const steps: [string, () => Promise<number>][] = [
      ['rcpp2p --addclient', () => addClientCommand(clientCtx)],
      [`rcpp2p --filelist ${SERVER}`, () => fileListCommand(clientCtx, SERVER, '')],
      [
        `rcpp2p --put ${SERVER} notes.txt`,
        () => putCommand(clientCtx, SERVER, ['notes.txt'], { to: undefined, force: false }),
      ],
      [
        `rcpp2p --get ${SERVER} photo.jpg`,
        () => getCommand(clientCtx, SERVER, ['photo.jpg'], { to: undefined, force: false }),
      ],
    ];
    let n = 4;
    for (const [command, run] of steps) {
      say(`== ${n++}. The client runs: ${command}`);
      const code = await run();
      if (code !== 0) return code;
      say('');
    }
    say(
      `== ${n}. Once, with a code: the client runs rcpp2p send notes.txt, the other machine rcpp2p receive CODE`,
    );
    const sent = await sendAndReceive(ctx, clientCtx, {
      ...serverCtx,
      view: new ConsoleView({
        stdout: ctx.io.stderr,
        stderr: ctx.io.stderr,
        json: false,
        prefix: '   [receiver] ',
      }),
      io: { ...ctx.io, cwd: join(dir, 'received') },
    });
    if (sent !== 0) return sent;
    say('');
    say('The demo worked: the files moved over an encrypted, mutually authenticated connection.');
    say(
      'Next: install rcpp2p on two machines and run "rcpp2p --configure" on each (README.md, "Install" and "Set up two machines").',
    );
    return 0;
  } finally {
    ctx.signal.removeEventListener('abort', onAbort);
    stop.abort();
    await serving?.catch(() => {});
    await rendezvous?.close();
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * The one-shot send between the demo's two peers: the sender's printed code is read off its
 * output and typed into the receiver, as a user would read it to someone.
 */
async function sendAndReceive(
  ctx: CommandContext,
  senderCtx: CommandContext,
  receiverCtx: CommandContext,
): Promise<number> {
  await mkdir(receiverCtx.io.cwd);
  let heard: (code: string) => void = () => {};
  const code = new Promise<string>((resolve) => (heard = resolve));
  const stdout = new Writable({
    write(chunk: Buffer, _encoding, done) {
      const m = /Code: (\S+)/.exec(chunk.toString('utf8'));
      if (m) heard(m[1]!);
      ctx.io.stdout.write(chunk, () => done());
    },
  });
  const view = new ConsoleView({ stdout, stderr: ctx.io.stderr, json: false });
  const sending = sendCommand({ ...senderCtx, view }, ['notes.txt']);
  const received = await Promise.race([sending.then(() => undefined), code]).then((c) =>
    c === undefined ? 1 : receiveCommand(receiverCtx, c, { to: undefined, force: false }),
  );
  return (await sending) || received;
}
