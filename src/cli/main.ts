// rcpp2p's command line: the original tool's modes, kept exactly (--configure, no mode = file
// server, --addclient, --filelist, --get, --put), plus the options scripts and tests need.
// Parses argv with commander, runs one command, and returns the exit code; every failure goes
// through ConsoleView.fail (the one place that words errors).
import { Command, CommanderError, Option } from 'commander';
import { defaultConfigPath } from '../config/paths.js';
import { RcppError } from '../errors.js';
import { VERSION } from '../version.js';
import type { ConfigureFlags } from './commands/configure.js';
import type { CommandContext } from './context.js';
import { processIo, type CliIo } from './io.js';
import { makeAsk } from './prompt.js';
import { EXIT } from './report-error.js';
import { ConsoleView } from './view.js';

/** Every option commander parses; the --configure answers are configure.ts's own flags. */
interface Options extends Partial<ConfigureFlags> {
  config?: string;
  configure?: boolean;
  addclient?: boolean;
  filelist?: string[];
  get?: string[];
  put?: string[];
  to?: string;
  force?: boolean;
  json?: boolean;
  passwordStdin?: boolean;
  periodic?: boolean;
  demo?: boolean;
  rendezvousServer?: boolean;
  forgetPeer?: string;
  listen?: string;
  state?: string;
  addAccount?: string;
  authorizedKey?: string;
  accountPassword?: boolean;
}

const MODES = [
  'configure',
  'addclient',
  'filelist',
  'get',
  'put',
  'demo',
  'rendezvousServer',
  'forgetPeer',
];

export function buildProgram(io: CliIo): Command {
  const exclusive = (name: string): string[] => MODES.filter((m) => m !== name);
  const program = new Command('rcpp2p')
    .description(
      'Move files directly between two computers behind NAT routers, using an SSH account as the meeting point.\n' +
        "With no mode, runs this machine's file server until Ctrl-C.",
    )
    .version(VERSION)
    .addOption(
      new Option(
        '--configure',
        'set up this peer (an interactive wizard; --yes for scripts)',
      ).conflicts(exclusive('configure')),
    )
    .addOption(
      new Option('--addclient', 'register this client on the rendezvous').conflicts(
        exclusive('addclient'),
      ),
    )
    .addOption(
      new Option(
        '--filelist <SERVER...>',
        "list a file server's files: --filelist SERVER [FOLDER]",
      ).conflicts(exclusive('filelist')),
    )
    .addOption(
      new Option(
        '--get <SERVER FILE...>',
        'download files or folders from a file server',
      ).conflicts(exclusive('get')),
    )
    .addOption(
      new Option('--put <SERVER FILE...>', 'upload files or folders to a file server').conflicts(
        exclusive('put'),
      ),
    )
    .addOption(
      new Option(
        '--forget-peer <NAME>',
        'forget the identity remembered for a peer (known_peers), to accept its new one',
      ).conflicts(exclusive('forgetPeer')),
    )
    .addOption(
      new Option(
        '--demo',
        'show rcpp2p working on this machine (embedded rendezvous, temporary folders)',
      ).conflicts(exclusive('demo')),
    )
    .addOption(
      new Option(
        '--rendezvous-server',
        'run the embedded rendezvous SSH server instead of using an OpenSSH account',
      ).conflicts(exclusive('rendezvousServer')),
    )
    .option(
      '--listen <host:port>',
      '--rendezvous-server: address to listen on (default 0.0.0.0:2222)',
    )
    .option('--state <dir>', '--rendezvous-server: folder for its host key, accounts and records')
    .option('--add-account <user>', '--rendezvous-server: add or update an account, then exit')
    .option('--authorized-key <file>', '--add-account: public key(s) that may log in')
    .option(
      '--account-password',
      '--add-account: ask for a password for the account (stored as a scrypt hash)',
    )
    .option('--config <path>', 'config file of this peer', defaultConfigPath(io.env))
    .option('--to <folder>', '--get: local folder to save into; --put: folder on the server')
    .option('--force', 'replace files that already exist')
    .option('--json', 'print one JSON object per finished operation on stdout')
    .option(
      '--password-stdin',
      'read the rendezvous password (or key passphrase) from standard input',
    )
    .option('--periodic', 'file server: use periodic mode even when live signaling works')
    .option('--yes', 'with --configure: take every answer from the options below')
    .option('--rendezvous <user@host[:port]>', '--configure: the rendezvous SSH account')
    .option(
      '--identity <path>',
      '--configure: SSH private key to log in with (default: a password asked at each run)',
    )
    .option('--agent', '--configure: log in with ssh-agent')
    .option(
      '--known-hosts <path>',
      '--configure: known_hosts file to check the rendezvous host key against',
    )
    .option(
      '--rendezvous-dir <dir>',
      "--configure: rcpp2p's folder on the rendezvous account (default .rcpp2p)",
    )
    .option('--server-name <name>', "--configure: this machine's file-server name")
    .option('--client-name <name>', "--configure: this machine's client name")
    .option(
      '--port <n>',
      "--configure: the file server's local TCP port (client commands punch from a fresh one)",
    )
    .option('--dir <path>', "--configure: the file server's working directory")
    .option('--poll-seconds <n>', '--configure: periodic mode interval (default 10)')
    .option('--keepalive-seconds <n>', '--configure: SSH keepalive interval (default 15)')
    .option(
      '--port-mapping <mode>',
      '--configure: ask the home router to open the punch port (UPnP, NAT-PMP, PCP): auto (default) or off',
    )
    .option('--no-port-mapping', 'do not ask the home router to open a port, for this run')
    .option(
      '--allow-clients <who>',
      '--configure: clients the file server serves: new (default: known ones and new ones), known (only those it has met), or NAME,NAME',
    )
    .allowExcessArguments(false)
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr: (s) => io.stderr.write(s),
    });
  return program;
}

export async function main(argv: string[], io: CliIo = processIo()): Promise<number> {
  const program = buildProgram(io);
  try {
    program.parse(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    throw err;
  }
  const opts = program.opts<Options>();
  const json = opts.json === true;
  const serving = !MODES.some((m) => opts[m as keyof Options] !== undefined);
  const view = new ConsoleView({ stdout: io.stdout, stderr: io.stderr, json, timestamps: serving });
  const controller = new AbortController();
  const onSignal = (): void => {
    if (controller.signal.aborted) return;
    io.stderr.write('\nStopping...\n');
    controller.abort(new RcppError('ABORTED', 'Stopped by the user.'));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  if (io.env['RCPP2P_REPORT_RSS']) {
    // For `npm run bench`: the peak resident memory of this process, read at exit.
    process.once('exit', () =>
      io.stderr.write(`rcpp2p-max-rss-kib ${process.resourceUsage().maxRSS}\n`),
    );
  }
  const ctx: CommandContext = {
    io,
    view,
    configPath: opts.config ?? defaultConfigPath(io.env),
    json,
    signal: controller.signal,
    noPortMapping: opts.portMapping === false,
    ask: makeAsk({
      stdin: io.stdin,
      stderr: io.stderr,
      passwordStdin: opts.passwordStdin === true,
    }),
  };
  try {
    return await run(ctx, opts, serving);
  } catch (err) {
    view.emitJson({ op: modeName(opts), ok: false, error: errorJson(err) });
    return view.fail(err);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

// Each command is loaded when it runs: a get need not load the wizard's inquirer or the embedded
// SSH server (start-up time is part of every command's set-up time).
async function run(ctx: CommandContext, opts: Options, serving: boolean): Promise<number> {
  if (opts.configure) {
    const { configureCommand } = await import('./commands/configure.js');
    return configureCommand(ctx, { ...opts, yes: opts.yes === true });
  }
  if (opts.yes) throw new RcppError('USAGE', '--yes only goes with --configure.');
  if (opts.demo) return (await import('./commands/demo.js')).demoCommand(ctx);
  if (opts.rendezvousServer) {
    const { rendezvousServerCommand } = await import('./commands/rendezvous-server.js');
    return rendezvousServerCommand(ctx, {
      listen: opts.listen,
      state: opts.state,
      addAccount: opts.addAccount,
      authorizedKey: opts.authorizedKey,
      password: opts.accountPassword === true,
    });
  }
  if (opts.forgetPeer !== undefined) {
    return (await import('./commands/forget-peer.js')).forgetPeerCommand(ctx, opts.forgetPeer);
  }
  if (opts.addclient) return (await import('./commands/add-client.js')).addClientCommand(ctx);
  if (opts.filelist) {
    const [server, folder = '', ...extra] = opts.filelist;
    if (server === undefined || extra.length > 0)
      throw new RcppError('USAGE', 'Use: rcpp2p --filelist SERVER [FOLDER]');
    return (await import('./commands/file-list.js')).fileListCommand(ctx, server, folder);
  }
  const transfer = { to: opts.to, force: opts.force === true };
  if (opts.get) {
    const [server, ...files] = opts.get;
    if (server === undefined || files.length === 0)
      throw new RcppError('USAGE', 'Use: rcpp2p --get SERVER FILE [FILE...]');
    return (await import('./commands/transfer-files.js')).getCommand(ctx, server, files, transfer);
  }
  if (opts.put) {
    const [server, ...files] = opts.put;
    if (server === undefined || files.length === 0)
      throw new RcppError('USAGE', 'Use: rcpp2p --put SERVER FILE [FILE...]');
    return (await import('./commands/transfer-files.js')).putCommand(ctx, server, files, transfer);
  }
  if (serving) {
    const { serveCommand } = await import('./commands/serve.js');
    return serveCommand(ctx, { periodic: opts.periodic === true });
  }
  return EXIT.usage;
}

function modeName(opts: Options): string {
  return MODES.find((m) => opts[m as keyof Options] !== undefined) ?? 'serve';
}

function errorJson(err: unknown): { code: string; message: string } {
  const e = err as { code?: unknown; message?: unknown };
  return {
    code: typeof e.code === 'string' ? e.code : 'INTERNAL',
    message: String(e.message ?? err),
  };
}
