// What every command starts from: the parsed options, the console view, an AbortSignal tied to
// Ctrl-C, and (for commands that talk to peers) this peer's config, identity and SSH login.
import { loadConfig, type Config } from '../config/config.js';
import { expandHome, identityPathFor } from '../config/paths.js';
import { RcppError } from '../errors.js';
import type { RendezvousSettings } from '../link/join-rendezvous.js';
import { resolveSshAuth, type Ask, type SshAuth } from '../rendezvous/ssh-auth.js';
import { loadIdentity, type Identity } from '../secure/identity.js';
import { KnownPeers, knownPeersPathFor } from '../secure/known-peers.js';
import type { CliIo } from './io.js';
import type { ConsoleView } from './view.js';

export interface CommandContext {
  io: CliIo;
  view: ConsoleView;
  configPath: string;
  json: boolean;
  signal: AbortSignal;
  ask: Ask;
}

export interface Peer {
  config: Config;
  identity: Identity;
  rendezvous: RendezvousSettings;
  auth: SshAuth;
  /** Peer identities pinned so far (known_peers beside the config). */
  trust: KnownPeers;
}

export async function loadPeer(ctx: CommandContext): Promise<Peer> {
  const config = await loadConfig(ctx.configPath);
  const identity = await loadIdentity(identityPathFor(ctx.configPath));
  const auth = await resolveSshAuth(
    config.auth.method === 'key'
      ? { method: 'key', identityFile: expandHome(config.auth.identityFile) }
      : config.auth,
    ctx.ask,
    ctx.io.env,
  );
  const trust = await KnownPeers.load(knownPeersPathFor(ctx.configPath));
  return { config, identity, rendezvous: rendezvousSettings(config), auth, trust };
}

export function rendezvousSettings(config: Config): RendezvousSettings {
  return {
    host: config.rendezvous.host,
    port: config.rendezvous.port,
    user: config.rendezvous.user,
    dir: config.rendezvous.dir,
    knownHostsFile: expandHome(config.knownHostsFile),
    keepaliveSeconds: config.keepaliveSeconds,
  };
}

export function requireName(config: Config, which: 'serverName' | 'clientName'): string {
  const name = config[which];
  if (name === undefined) {
    const role = which === 'serverName' ? 'file-server' : 'client';
    throw new RcppError(
      'CONFIG_INVALID',
      `This peer has no ${role} name configured.`,
      `Run rcpp2p --configure and give it a ${role} name.`,
    );
  }
  return name;
}
