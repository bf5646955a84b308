// The configure wizard (inquirer): asks for the rendezvous (user@host[:port] or a Host alias from
// ~/.ssh/config), how to log in (a key found in ~/.ssh, ssh-agent, or a password asked at each run),
// this peer's names, port and working directory. Every answer is checked, and a wrong one gets a
// sentence saying what is wrong and is asked again; re-running offers the current values as
// defaults. It ends by testing the login: an unknown host key's fingerprint is shown and trusted
// only when the user says so (like ssh's first connection). When the test fails the user can change
// the answers, save anyway, or quit without saving.
import { randomInt } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import net from 'node:net';
import { homedir, userInfo } from 'node:os';
import { join, resolve } from 'node:path';
import inquirer from 'inquirer';
import { parseRendezvous, type Config } from '../config/config.js';
import { defaultKnownHostsFile, expandHome } from '../config/paths.js';
import { abortError, RcppError } from '../errors.js';
import { appendKnownHost } from '../rendezvous/known-hosts-file.js';
import { isPeerName } from '../peer.js';
import { sshHostAlias } from '../config/ssh-config.js';
import type { UnknownHostKey } from '../rendezvous/ssh-session.js';
import type { CommandContext } from './context.js';
import { hostLabel, keyProblem, testLogin, trustFingerprint } from './login-test.js';
import { escapeControls } from './safe-text.js';

type Question = Record<string, unknown>;
type Ask = (question: Question) => Promise<unknown>;

interface Target {
  user: string;
  host: string;
  port: number;
  /** Set when the answer was a Host alias from ~/.ssh/config. */
  alias?: string;
  identityFile?: string;
}

const PORTS = 'give a port from 1024 to 65535';
const NAME_CHARS = 'names use letters, digits, ".", "_" and "-" only';

export async function runWizard(
  ctx: CommandContext,
  existing: Config | undefined,
  opts: { trustHostKey?: string } = {},
): Promise<Config> {
  if (!ctx.io.stdin.isTTY || !ctx.io.stderr.isTTY) {
    throw new RcppError(
      'USAGE',
      'The configure wizard needs a terminal to ask its questions.',
      'For scripts use: rcpp2p --configure --yes --rendezvous user@host[:port] --identity KEY --trust-host-key SHA256:... --server-name NAME --client-name NAME --port N --dir PATH',
    );
  }
  const prompt = inquirer.createPromptModule({
    input: ctx.io.stdin,
    output: ctx.io.stderr,
    signal: ctx.signal,
  });
  const ask: Ask = async (question) => {
    try {
      // inquirer's overloads type each question literal; ours are built per step, so widen once.
      const answers = await prompt<Question>([
        { name: 'value', ...question },
      ] as unknown as Parameters<typeof prompt>[0]);
      return answers['value'];
    } catch (err) {
      const name = (err as Error | undefined)?.name;
      if (ctx.signal.aborted) throw abortError(ctx.signal);
      if (name === 'ExitPromptError' || name === 'AbortPromptError')
        throw new RcppError('ABORTED', 'Stopped; nothing was saved.');
      throw err;
    }
  };

  ctx.io.stderr.write(
    existing
      ? 'rcpp2p setup. Press Enter to keep the current value shown in parentheses.\n'
      : 'rcpp2p setup. Press Enter to take the suggestion shown in parentheses.\n',
  );
  let previous = existing;
  for (;;) {
    const config = await askAll(ctx, ask, previous);
    const test = await ask({
      type: 'confirm',
      message: 'Test the login to the rendezvous now?',
      default: true,
    });
    if (test !== true) return config;
    const knownHosts = expandHome(config.knownHostsFile);
    const failure = await testLogin(
      ctx,
      config,
      opts.trustHostKey !== undefined
        ? trustFingerprint(ctx, opts.trustHostKey, knownHosts)
        : (info) => confirmHostKey(ctx, ask, knownHosts, info),
    );
    if (failure === undefined) {
      ctx.io.stderr.write('Login works.\n');
      return config;
    }
    // fail() closes the open "Connecting..." step and prints the sentence and hint
    ctx.view.fail(
      failure.code === 'HOST_KEY_UNKNOWN'
        ? new RcppError(
            failure.code,
            failure.message,
            'The key was not trusted, so the login was not tested.',
          )
        : failure,
    );
    const next = await ask({
      type: 'select',
      message: 'The login test failed. What now?',
      choices: [
        { name: 'change the answers', value: 'again' },
        { name: 'save these settings anyway', value: 'save' },
        { name: 'quit without saving', value: 'quit' },
      ],
    });
    if (next === 'save') return config;
    if (next === 'quit') throw new RcppError('ABORTED', 'Nothing was saved.');
    previous = config;
  }
}

async function askAll(
  ctx: CommandContext,
  ask: Ask,
  existing: Config | undefined,
): Promise<Config> {
  const sshConfig = await readFile(join(homedir(), '.ssh', 'config'), 'utf8').catch(() => '');
  const answer = (await ask({
    type: 'input',
    message: 'Rendezvous SSH account (user@host[:port], or a Host from ~/.ssh/config):',
    default: existing ? formatTarget(existing.rendezvous) : undefined,
    validate: (v: string) => {
      const t = resolveTarget(v, sshConfig);
      return typeof t === 'string' ? t : true;
    },
  })) as string;
  const target = resolveTarget(answer, sshConfig) as Target;
  if (target.alias !== undefined) {
    ctx.io.stderr.write(
      `  Host ${target.alias} is ${formatTarget(target)} (from ~/.ssh/config).\n`,
    );
  }

  const auth = await askAuth(ctx, ask, existing, target);

  const serverName = (
    (await ask({
      type: 'input',
      message: 'File-server name of this machine (empty: this machine only fetches files):',
      default: existing?.serverName,
      validate: (v: string) => nameProblem(v) ?? true,
    })) as string
  ).trim();
  const clientName = (
    (await ask({
      type: 'input',
      message: 'Client name of this machine (empty: this machine only serves files):',
      default: existing?.clientName,
      validate: (v: string) =>
        v.trim() === '' && serverName === ''
          ? 'Give at least a file-server name or a client name: with neither, this machine has nothing to do.'
          : (nameProblem(v) ?? true),
    })) as string
  ).trim();
  const port = Number(
    await ask({
      type: 'input',
      message: 'Local TCP port to connect and punch from:',
      default: String(existing?.port ?? (await freePort())),
      validate: (v: string) => portProblem(v) ?? true,
    }),
  );
  let workDir: string | undefined;
  if (serverName !== '') {
    const dirAnswer = (await ask({
      type: 'input',
      message: 'Working directory this file server shares:',
      default: existing?.workDir ?? ctx.io.cwd,
      validate: async (v: string) => (await folderProblem(v, ctx.io.cwd)) ?? true,
    })) as string;
    workDir = resolve(ctx.io.cwd, expandHome(dirAnswer.trim()));
  }

  return {
    version: 1,
    rendezvous: {
      user: target.user,
      host: target.host,
      port: target.port,
      dir: existing?.rendezvous.dir ?? '.rcpp2p',
    },
    auth,
    knownHostsFile: existing?.knownHostsFile ?? defaultKnownHostsFile(),
    ...(serverName !== '' && { serverName }),
    ...(clientName !== '' && { clientName }),
    port,
    ...(workDir !== undefined && { workDir }),
    pollSeconds: existing?.pollSeconds ?? 10,
    keepaliveSeconds: existing?.keepaliveSeconds ?? 15,
    ...(existing?.allowClients !== undefined && { allowClients: existing.allowClients }),
  };
}

async function askAuth(
  ctx: CommandContext,
  ask: Ask,
  existing: Config | undefined,
  target: Target,
): Promise<Config['auth']> {
  const keys = await findKeys();
  const current = existing?.auth.method === 'key' ? existing.auth.identityFile : undefined;
  for (const extra of [target.identityFile, current]) {
    if (extra !== undefined && !keys.includes(extra) && (await isFile(extra))) keys.unshift(extra);
  }
  const preferred =
    existing?.auth.method === 'key'
      ? `key:${existing.auth.identityFile}`
      : (existing?.auth.method ??
        (target.identityFile !== undefined ? `key:${target.identityFile}` : undefined));
  const choice = (await ask({
    type: 'select',
    message: 'How should this peer log in to the rendezvous?',
    choices: [
      ...keys.map((k) => ({ name: `key ${k}`, value: `key:${k}` })),
      ...(ctx.io.env['SSH_AUTH_SOCK'] ? [{ name: 'ssh-agent', value: 'agent' }] : []),
      { name: 'another key file...', value: 'other' },
      { name: 'password, asked at each run (never stored)', value: 'password' },
    ],
    default: preferred,
  })) as string;
  if (choice === 'agent') return { method: 'agent' };
  if (choice === 'password') return { method: 'password' };
  if (choice.startsWith('key:')) return { method: 'key', identityFile: choice.slice(4) };
  const file = (await ask({
    type: 'input',
    message: 'Path of the SSH private key:',
    validate: async (v: string) => (await keyProblem(v, ctx.io.cwd)) ?? true,
  })) as string;
  return { method: 'key', identityFile: resolve(ctx.io.cwd, expandHome(file.trim())) };
}

/** Like ssh's first connection: show the fingerprint, ask, and append to known_hosts on yes. */
async function confirmHostKey(
  ctx: CommandContext,
  ask: Ask,
  knownHostsFile: string,
  info: UnknownHostKey,
): Promise<boolean> {
  const label = hostLabel(info);
  ctx.io.stderr.write(
    `\nThe authenticity of host ${label} can't be established.\n` +
      `${escapeControls(info.keyType)} key fingerprint is ${info.fingerprint}.\n` +
      (info.knownTypes.length > 0
        ? `(It is known with other key types: ${info.knownTypes.join(', ')}.)\n`
        : '') +
      'Compare it with the one the host owner gives you (ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub on the host).\n',
  );
  const trust =
    (await ask({
      type: 'confirm',
      message: `Trust this key and add it to ${knownHostsFile}?`,
      default: false,
    })) === true;
  if (!trust) return false;
  await appendKnownHost(knownHostsFile, info.host, info.port, info.keyType, info.keyBlob);
  ctx.io.stderr.write(`Added ${label} (${info.keyType}) to ${knownHostsFile}.\n`);
  return true;
}

function formatTarget(t: { user: string; host: string; port: number }): string {
  const host = t.host.includes(':') ? `[${t.host}]` : t.host;
  return `${t.user}@${host}${t.port === 22 ? '' : `:${t.port}`}`;
}

/** The rendezvous from an answer, or a sentence saying what is wrong with it. */
function resolveTarget(input: string, sshConfig: string): Target | string {
  const text = input.trim();
  const forms = 'Write user@host, user@host:port, or a Host name from ~/.ssh/config.';
  if (text === '') return `Give the SSH account both peers log in to. ${forms}`;
  if (text.includes('@')) {
    try {
      return parseRendezvous(text);
    } catch (err) {
      return `${(err as Error).message} ${forms}`;
    }
  }
  const alias = sshHostAlias(sshConfig, text);
  if (alias === undefined) {
    return `"${text}" has no user@ and is not a Host in ~/.ssh/config. ${forms}`;
  }
  const host = alias.hostName ?? text;
  const user = alias.user ?? userInfo().username;
  try {
    const t = parseRendezvous(
      `${user}@${host.includes(':') ? `[${host}]` : host}:${alias.port ?? '22'}`,
    );
    return { ...t, alias: text, ...(alias.identityFile && { identityFile: alias.identityFile }) };
  } catch (err) {
    return `Host ${text} in ~/.ssh/config: ${(err as Error).message}`;
  }
}

function nameProblem(input: string): string | undefined {
  const name = input.trim();
  if (name === '' || isPeerName(name)) return undefined;
  if (/\s/.test(name)) return `"${name}" contains a space; ${NAME_CHARS}.`;
  if (name.length > 64) return `"${name}" is ${name.length} characters long; use at most 64.`;
  const bad = /[^A-Za-z0-9._-]/.exec(name)?.[0];
  if (bad !== undefined) return `"${name}" contains "${bad}"; ${NAME_CHARS}.`;
  return `"${name}" starts with "${name[0] ?? ''}"; start it with a letter or digit.`;
}

function portProblem(input: string): string | undefined {
  const text = input.trim();
  if (!/^\d+$/.test(text)) return `"${text}" is not a whole number; ${PORTS}.`;
  const n = Number(text);
  if (n < 1024)
    return `Port ${n} is below 1024, where ports are reserved for system services; ${PORTS}.`;
  if (n > 65535) return `Port ${n} is above 65535, the highest TCP port; ${PORTS}.`;
  return undefined;
}

async function folderProblem(input: string, cwd: string): Promise<string | undefined> {
  const text = input.trim();
  if (text === '') return 'Give the folder this file server shares.';
  const st = await stat(resolve(cwd, expandHome(text))).catch(() => undefined);
  if (st === undefined) return `${text} does not exist; create the folder first, or give another.`;
  if (!st.isDirectory()) return `${text} is a file, not a folder.`;
  return undefined;
}

/** Private keys in ~/.ssh named like ssh-keygen names them (id_ed25519, id_rsa, ...). */
async function findKeys(): Promise<string[]> {
  const dir = join(homedir(), '.ssh');
  const names = await readdir(dir).catch(() => [] as string[]);
  const keys: string[] = [];
  for (const name of names.sort()) {
    if (/^id_[A-Za-z0-9_-]+$/.test(name) && (await isFile(join(dir, name))))
      keys.push(join(dir, name));
  }
  return keys;
}

async function isFile(path: string): Promise<boolean> {
  return (await stat(path).catch(() => undefined))?.isFile() === true;
}

/** A random high port that nothing on this machine listens on right now. */
async function freePort(): Promise<number> {
  for (let i = 0; i < 20; i++) {
    const port = randomInt(20_000, 60_000);
    const ok = await new Promise<boolean>((res) => {
      const server = net.createServer();
      server.once('error', () => res(false));
      server.listen(port, () => server.close(() => res(true)));
    });
    if (ok) return port;
  }
  return randomInt(20_000, 60_000);
}
