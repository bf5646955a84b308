// rcpp2p's command line: the original tool's modes, kept exactly (--configure, no mode = file
// server, --addclient, --filelist, --get, --put), the words people type out of habit as aliases
// (get, put, ls/list, serve, help), and the options scripts and tests need. Parses argv with
// commander, runs one command, and returns the exit code; every failure goes through
// ConsoleView.fail (the one place that words errors).
//
// Ctrl-C: the first one aborts the command's signal (the command stops cleanly, keeps partial files
// for resume, and exits 130); a second one exits 130 at once.
import { CommanderError } from 'commander';
import { defaultConfigPath } from '../config/paths.js';
import { RcppError } from '../errors.js';
import { adviceFor } from './advice.js';
import type { CommandContext } from './context.js';
import { processIo, type CliIo } from './io.js';
import { buildProgram, MODES, type Chosen, type Options } from './program.js';
import { makeAsk } from './prompt.js';
import { EXIT } from './report-error.js';
import { ConsoleView } from './view.js';

export { buildProgram } from './program.js';

export async function main(argv: string[], io: CliIo = processIo()): Promise<number> {
  let chosen: Chosen | undefined;
  const program = buildProgram(io, (c) => (chosen = c));
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
  const configPath = opts.config ?? defaultConfigPath(io.env);
  const mode = chosen?.mode ?? 'serve';
  const view = new ConsoleView({
    stdout: io.stdout,
    stderr: io.stderr,
    json,
    timestamps: mode === 'serve',
    advice: adviceFor(configPath, io.cwd, io.env),
  });
  const controller = new AbortController();
  let interrupts = 0;
  const onSignal = (): void => {
    interrupts++;
    if (interrupts === 1) {
      view.interrupt();
      controller.abort(new RcppError('ABORTED', 'Stopped by the user.'));
    } else {
      (io.exit ?? process.exit)(EXIT.interrupted);
    }
  };
  const signals = io.signals ?? process;
  signals.on('SIGINT', onSignal);
  signals.on('SIGTERM', onSignal);
  if (io.env['RCPP2P_REPORT_RSS']) {
    // For `npm run bench`: the peak resident memory of this process, read at exit.
    process.once('exit', () =>
      io.stderr.write(`rcpp2p-max-rss-kib ${process.resourceUsage().maxRSS}\n`),
    );
  }
  const ctx: CommandContext = {
    io,
    view,
    configPath,
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
    const code = await run(ctx, opts, chosen ?? { mode: 'serve' });
    // (the long-running modes end with 0 on Ctrl-C: that is how they stop)
    const oneShot = ['get', 'put', 'filelist', 'addclient'].includes(mode);
    if (interrupts > 0 && code === EXIT.ok && oneShot) {
      view.onProgress({ type: 'note', text: 'It had finished before it could stop.' });
    }
    return code;
  } catch (err) {
    view.emitJson({ op: jsonOp(mode), ok: false, error: errorJson(err) });
    return view.fail(err);
  } finally {
    signals.off('SIGINT', onSignal);
    signals.off('SIGTERM', onSignal);
  }
}

// Each command is loaded when it runs: a get need not load the wizard's inquirer or the embedded
// SSH server (start-up time is part of every command's set-up time).
async function run(ctx: CommandContext, opts: Options, chosen: Chosen): Promise<number> {
  checkOnlyWith(opts, chosen);
  switch (chosen.mode) {
    case 'configure': {
      const { configureCommand } = await import('./commands/configure.js');
      return configureCommand(ctx, { ...opts, yes: opts.yes === true });
    }
    case 'demo':
      return (await import('./commands/demo.js')).demoCommand(ctx);
    case 'rendezvousServer': {
      const { rendezvousServerCommand } = await import('./commands/rendezvous-server.js');
      return rendezvousServerCommand(ctx, {
        listen: opts.listen,
        state: opts.state,
        addAccount: opts.addAccount,
        authorizedKey: opts.authorizedKey,
        password: opts.accountPassword === true,
      });
    }
    case 'forgetPeer':
      return (await import('./commands/forget-peer.js')).forgetPeerCommand(ctx, chosen.name);
    case 'addclient':
      return (await import('./commands/add-client.js')).addClientCommand(ctx, {
        replace: opts.replace === true,
        yes: opts.yes === true,
      });
    case 'filelist':
      return (await import('./commands/file-list.js')).fileListCommand(
        ctx,
        chosen.server,
        chosen.folder,
      );
    case 'get':
    case 'put': {
      const commands = await import('./commands/transfer-files.js');
      const command = chosen.mode === 'get' ? commands.getCommand : commands.putCommand;
      return command(ctx, chosen.server, chosen.files, {
        to: opts.to,
        force: opts.force === true,
      });
    }
    case 'send':
      return (await import('./commands/send.js')).sendCommand(ctx, chosen.files);
    case 'receive':
      return (await import('./commands/receive.js')).receiveCommand(ctx, chosen.code, {
        to: opts.to,
        force: opts.force === true,
      });
    case 'servers':
      return (await import('./commands/servers.js')).serversCommand(ctx);
    case 'search':
      return (await import('./commands/search.js')).searchCommand(ctx, chosen.pattern, opts.server);
    case 'serve': {
      const { serveCommand } = await import('./commands/serve.js');
      return serveCommand(ctx, { periodic: opts.periodic === true });
    }
  }
}

/** Options that only make sense with one mode are refused elsewhere, not ignored. */
function checkOnlyWith(opts: Options, chosen: Chosen): void {
  const only: [keyof Options, string, Chosen['mode'][]][] = [
    ['yes', '--yes', ['configure', 'addclient']],
    ['replace', '--replace', ['addclient']],
    ['trustHostKey', '--trust-host-key', ['configure']],
    ['testLogin', '--test-login', ['configure']],
    ['allowClients', '--allow-clients', ['configure']],
    ['publishIndex', '--publish-index', ['configure']],
    ['server', '--server', ['search']],
  ];
  if (typeof opts.portMapping === 'string' && chosen.mode !== 'configure') {
    throw new RcppError(
      'USAGE',
      '--port-mapping only goes with --configure.',
      'Use --no-port-mapping to leave the router alone for one run.',
    );
  }
  for (const [key, flag, modes] of only) {
    if (opts[key] !== undefined && !modes.includes(chosen.mode)) {
      const withWhat = modes.map((m) => `--${MODES[m]}`).join(' or ');
      throw new RcppError('USAGE', `${flag} only goes with ${withWhat}.`);
    }
  }
}

function jsonOp(mode: Chosen['mode']): string {
  return mode;
}

function errorJson(err: unknown): { code: string; message: string } {
  const e = err as { code?: unknown; message?: unknown };
  return {
    code: typeof e.code === 'string' ? e.code : 'INTERNAL',
    message: String(e.message ?? err),
  };
}
