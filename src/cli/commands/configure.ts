// rcpp2p --configure: set up this peer. Interactive by default (the wizard); with --yes every
// answer comes from options and nothing is asked (scripts, tests). Either way the config is saved
// owner-only, and the peer's identity (key + certificate) is created once and then kept.
import { randomInt } from 'node:crypto';
import { isAbsolute, resolve } from 'node:path';
import { loadConfig, parseRendezvous, saveConfig, type Config } from '../../config/config.js';
import { defaultKnownHostsFile, expandHome, identityPathFor } from '../../config/paths.js';
import { isRcppError, RcppError } from '../../errors.js';
import { checkPeerName } from '../../peer.js';
import { createIdentity, loadIdentity, type Identity } from '../../secure/identity.js';
import type { CommandContext } from '../context.js';
import { commandFor } from '../advice.js';
import { keyProblem, parseFingerprint, testLogin, trustFingerprint } from '../login-test.js';
import { runWizard } from '../wizard.js';

export interface ConfigureFlags {
  yes: boolean;
  rendezvous?: string;
  identity?: string;
  agent?: boolean;
  knownHosts?: string;
  rendezvousDir?: string;
  serverName?: string;
  clientName?: string;
  port?: string;
  dir?: string;
  pollSeconds?: string;
  keepaliveSeconds?: string;
  /** Trust the rendezvous host key with this fingerprint (implies the login test). */
  trustHostKey?: string;
  /** Log in once before saving; a failure saves nothing. */
  testLogin?: boolean;
  allowClients?: string;
}

export async function configureCommand(
  ctx: CommandContext,
  flags: ConfigureFlags,
): Promise<number> {
  const existing = await loadConfig(ctx.configPath).catch((err: unknown) => {
    if (isRcppError(err) && err.code === 'CONFIG_MISSING') return undefined;
    throw err;
  });
  const config = flags.yes ? await scripted(ctx, flags, existing) : await runWizard(ctx, existing);
  await saveConfig(ctx.configPath, config);
  const identity = await ensureIdentity(ctx.configPath, config);
  ctx.view.emitJson({
    op: 'configure',
    ok: true,
    config: ctx.configPath,
    fingerprint: identity.fingerprint,
  });
  ctx.view.print(`Saved ${ctx.configPath}.`);
  ctx.view.print(`This peer's identity: ${identity.fingerprint}`);
  const rcpp2p = (args = ''): string => commandFor(ctx.configPath, ctx.io.cwd, ctx.io.env, args);
  if (config.clientName)
    ctx.view.print(
      `Next on a client: ${rcpp2p('--addclient')}, then ${rcpp2p('--filelist SERVER')}.`,
    );
  if (config.serverName)
    ctx.view.print(
      `Next on the file server: ${rcpp2p()} (serves ${config.workDir ?? '?'} as ${config.serverName}).`,
    );
  return 0;
}

/** --configure --yes: the answers from options, checked; the login tested when asked to. */
async function scripted(
  ctx: CommandContext,
  flags: ConfigureFlags,
  existing: Config | undefined,
): Promise<Config> {
  const fingerprint =
    flags.trustHostKey !== undefined ? parseFingerprint(flags.trustHostKey) : undefined;
  const config = fromFlags(ctx, flags, existing);
  if (config.auth.method === 'key') {
    const problem = await keyProblem(config.auth.identityFile, ctx.io.cwd);
    if (problem !== undefined) {
      throw new RcppError(
        'CONFIG_INVALID',
        `The SSH key for the rendezvous login cannot be used: ${problem}`,
        'Give the private key file with --identity (ssh-keygen -t ed25519 makes one), or use --agent. Nothing was saved.',
      );
    }
  }
  if (fingerprint === undefined && flags.testLogin !== true) return config;
  const knownHosts = expandHome(config.knownHostsFile);
  const failure = await testLogin(
    ctx,
    config,
    fingerprint !== undefined
      ? trustFingerprint(ctx, fingerprint, knownHosts)
      : () => Promise.resolve(false),
  );
  if (failure !== undefined) {
    const hint =
      failure.code === 'HOST_KEY_UNKNOWN'
        ? 'Get the fingerprint from the rendezvous owner and add --trust-host-key SHA256:..., or run rcpp2p --configure to be asked.'
        : failure.hint;
    throw new RcppError(failure.code, failure.message, `${hint} Nothing was saved.`.trim(), {
      cause: failure,
    });
  }
  ctx.view.onProgress({ type: 'note', text: 'Login works.' });
  return config;
}

async function ensureIdentity(configPath: string, config: Config): Promise<Identity> {
  const file = identityPathFor(configPath);
  try {
    return await loadIdentity(file);
  } catch (err) {
    if (!(isRcppError(err) && err.code === 'CONFIG_MISSING')) throw err;
  }
  const name = config.serverName ?? config.clientName ?? 'peer';
  return createIdentity(file, name);
}

function fromFlags(
  ctx: CommandContext,
  flags: ConfigureFlags,
  existing: Config | undefined,
): Config {
  const rendezvousText = flags.rendezvous;
  const target =
    rendezvousText !== undefined ? parseRendezvous(rendezvousText) : existing?.rendezvous;
  if (target === undefined) {
    throw new RcppError('USAGE', '--configure --yes needs --rendezvous user@host[:port].');
  }
  const number = (text: string | undefined, what: string): number | undefined => {
    if (text === undefined) return undefined;
    const n = Number(text);
    if (!Number.isInteger(n))
      throw new RcppError('USAGE', `${what} must be a whole number, not "${text}".`);
    return n;
  };
  const auth: Config['auth'] = flags.identity
    ? { method: 'key', identityFile: resolve(ctx.io.cwd, expandHome(flags.identity)) }
    : flags.agent
      ? { method: 'agent' }
      : rendezvousText === undefined && existing
        ? existing.auth
        : { method: 'password' };
  const serverName = flags.serverName ?? existing?.serverName;
  const clientName = flags.clientName ?? existing?.clientName;
  if (serverName === undefined && clientName === undefined) {
    throw new RcppError(
      'USAGE',
      '--configure --yes needs --server-name NAME, --client-name NAME, or both.',
    );
  }
  const workDirText = flags.dir ?? existing?.workDir;
  const workDir =
    workDirText === undefined ? undefined : resolve(ctx.io.cwd, expandHome(workDirText));
  if (serverName !== undefined && workDir === undefined) {
    throw new RcppError('USAGE', 'A file server needs a working directory: add --dir PATH.');
  }
  const knownHosts = flags.knownHosts ?? existing?.knownHostsFile ?? defaultKnownHostsFile();
  return {
    version: 1,
    rendezvous: {
      host: target.host,
      port: target.port,
      user: target.user,
      dir: flags.rendezvousDir ?? existing?.rendezvous.dir ?? '.rcpp2p',
    },
    auth,
    knownHostsFile: isAbsolute(expandHome(knownHosts))
      ? expandHome(knownHosts)
      : resolve(ctx.io.cwd, knownHosts),
    ...(serverName !== undefined && { serverName }),
    ...(clientName !== undefined && { clientName }),
    port: number(flags.port, '--port') ?? existing?.port ?? randomInt(20_000, 60_000),
    ...(workDir !== undefined && { workDir }),
    pollSeconds: number(flags.pollSeconds, '--poll-seconds') ?? existing?.pollSeconds ?? 10,
    keepaliveSeconds:
      number(flags.keepaliveSeconds, '--keepalive-seconds') ?? existing?.keepaliveSeconds ?? 15,
    ...allowClientsFrom(flags.allowClients, existing),
  };
}

/** --allow-clients new | known | NAME,NAME... */
function allowClientsFrom(
  text: string | undefined,
  existing: Config | undefined,
): Pick<Config, 'allowClients'> {
  if (text === undefined) {
    return existing?.allowClients === undefined ? {} : { allowClients: existing.allowClients };
  }
  if (text === 'new' || text === 'known') return { allowClients: text };
  const names = text
    .split(',')
    .map((n) => n.trim())
    .filter((n) => n !== '');
  for (const name of names) checkPeerName(name, 'client name in --allow-clients');
  if (names.length === 0) {
    throw new RcppError('USAGE', '--allow-clients needs "new", "known" or client names (A,B,C).');
  }
  return { allowClients: names };
}
