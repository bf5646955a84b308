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
  allowClients?: string;
  /** --port-mapping auto|off (commander gives false for --no-port-mapping). */
  portMapping?: string | false;
}

export async function configureCommand(
  ctx: CommandContext,
  flags: ConfigureFlags,
): Promise<number> {
  const existing = await loadConfig(ctx.configPath).catch((err: unknown) => {
    if (isRcppError(err) && err.code === 'CONFIG_MISSING') return undefined;
    throw err;
  });
  const config = flags.yes ? fromFlags(ctx, flags, existing) : await runWizard(ctx, existing);
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
  if (config.clientName)
    ctx.view.print('Next on a client: rcpp2p --addclient, then rcpp2p --filelist SERVER.');
  if (config.serverName)
    ctx.view.print(
      `Next on the file server: rcpp2p (serves ${config.workDir ?? '?'} as ${config.serverName}).`,
    );
  return 0;
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
    ...portMappingFrom(flags.portMapping, existing),
  };
}

/** --port-mapping auto | off (or --no-port-mapping); otherwise what the config said. */
function portMappingFrom(
  value: string | false | undefined,
  existing: Config | undefined,
): Pick<Config, 'portMapping'> {
  if (value === undefined) {
    return existing?.portMapping === undefined ? {} : { portMapping: existing.portMapping };
  }
  if (value === false || value === 'off') return { portMapping: 'off' };
  if (value === 'auto') return { portMapping: 'auto' };
  throw new RcppError('USAGE', `--port-mapping is "auto" or "off", not "${value}".`);
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
