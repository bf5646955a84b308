// The command line's grammar (commander): the original tool's mode flags, the same modes as words
// (`rcpp2p get ASUS photo.jpg` = `rcpp2p --get ASUS photo.jpg`), every option, and the help text
// with examples and exit codes. Parsing only records which mode was chosen; main.ts runs it.
import { Command, Option } from 'commander';
import { defaultConfigPath } from '../config/paths.js';
import { VERSION } from '../version.js';
import type { ConfigureFlags } from './commands/configure.js';
import type { CliIo } from './io.js';

/** Every option commander parses; the --configure answers are configure.ts's own flags. */
export interface Options extends Partial<ConfigureFlags> {
  config?: string;
  configure?: boolean;
  addclient?: boolean;
  filelist?: string[];
  servers?: boolean;
  search?: string;
  server?: string;
  get?: string[];
  put?: string[];
  send?: string[];
  receive?: string;
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
  replace?: boolean;
}

export type Chosen =
  | { mode: 'configure' | 'addclient' | 'demo' | 'rendezvousServer' | 'serve' | 'servers' }
  | { mode: 'search'; pattern: string }
  | { mode: 'forgetPeer'; name: string }
  | { mode: 'filelist'; server: string; folder: string }
  | { mode: 'get' | 'put'; server: string; files: string[] }
  | { mode: 'send'; files: string[] }
  | { mode: 'receive'; code: string };

/** The mode flags, by mode. */
export const MODES = {
  configure: 'configure',
  addclient: 'addclient',
  filelist: 'filelist',
  servers: 'servers',
  search: 'search',
  get: 'get',
  put: 'put',
  send: 'send',
  receive: 'receive',
  demo: 'demo',
  rendezvousServer: 'rendezvous-server',
  forgetPeer: 'forget-peer',
  serve: '',
} as const satisfies Record<Chosen['mode'], string>;

const FLAG_MODES = [
  'configure',
  'addclient',
  'filelist',
  'servers',
  'search',
  'get',
  'put',
  'send',
  'receive',
  'demo',
  'rendezvousServer',
  'forgetPeer',
];

/** Words people try out of habit, and the command that does it. */
const SIMILAR: Record<string, string> = {
  download: 'get',
  fetch: 'get',
  pull: 'get',
  upload: 'put',
  push: 'put',
  share: 'send',
  give: 'send',
  take: 'receive',
  recv: 'receive',
  dir: 'ls',
  files: 'ls',
  filelist: 'ls',
  server: 'serve',
  start: 'serve',
  run: 'serve',
  configure: '--configure',
  config: '--configure',
  setup: '--configure',
  addclient: '--addclient',
  demo: '--demo',
};

const EXAMPLES = `
Examples:
  rcpp2p --configure                      set up this machine (a wizard)
  rcpp2p                                  run this machine's file server until Ctrl-C
  rcpp2p --addclient                      register this machine as a client (once)
  rcpp2p ls ASUS                          list the files of file server ASUS (= --filelist ASUS)
  rcpp2p get ASUS photos/2024 notes.txt   download into this folder (= --get ...; --to DIR)
  rcpp2p put ASUS report.pdf --to inbox   upload into the server's folder inbox (= --put ...)
  rcpp2p send report.pdf photos           offer files once; prints a code like 7-kobaru-tesimo
  rcpp2p receive 7-kobaru-tesimo          on the other machine: take them (= --receive CODE)
  rcpp2p servers                          every file server: online or not, files, likely path
  rcpp2p search beach                     find files on every file server (= --search; '*.jpg')
  rcpp2p --demo                           see it work on this machine, nothing to set up

Exit codes:
  0    success
  1    anything else (a bug, an unexpected failure)
  2    usage or configuration (a wrong option, no config yet)
  3    rendezvous (unreachable, login refused, unknown or changed host key)
  4    peer (unknown, offline, no path, wrong identity, name taken)
  5    file (missing, exists, permission, disk full, integrity)
  130  interrupted (Ctrl-C; a second Ctrl-C quits at once)
`;

export function buildProgram(io: CliIo, choose: (c: Chosen) => void = () => {}): Command {
  const exclusive = (name: string): string[] => FLAG_MODES.filter((m) => m !== name);
  const program = new Command('rcpp2p');
  // Settings first: subcommands copy them when they are created.
  program
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr: (s) => io.stderr.write(s),
    })
    .showSuggestionAfterError(true)
    .allowExcessArguments(true)
    .helpCommand('help [command]', 'show the help of rcpp2p or of one command');
  program
    .description(
      'Move files directly between two computers behind NAT routers, using an SSH account as the meeting point.\n' +
        "With no command, runs this machine's file server until Ctrl-C.",
    )
    .usage('[command] [options]')
    .optionsGroup('Modes (the original flags; the commands below do the same):')
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
        '--servers',
        'list the file servers on the rendezvous: online or not, files, the likely path from here',
      ).conflicts(exclusive('servers')),
    )
    .addOption(
      new Option(
        '--search <PATTERN>',
        'find files on every file server in their published indexes (a glob with * or ?)',
      ).conflicts(exclusive('search')),
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
        '--send <FILE...>',
        'offer files or folders once, to whoever runs --receive with the code it prints',
      ).conflicts(exclusive('send')),
    )
    .addOption(
      new Option(
        '--receive <CODE>',
        'receive what --send offered under CODE, into this folder (--to DIR)',
      ).conflicts(exclusive('receive')),
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
    .optionsGroup('Options:')
    .option('--config <path>', 'config file of this peer', defaultConfigPath(io.env))
    .option('--to <folder>', 'get, receive: local folder to save into; put: folder on the server')
    .option('--force', 'replace files that already exist')
    .option('--json', 'print one JSON object per finished operation on stdout')
    .option(
      '--password-stdin',
      'read the rendezvous password (or key passphrase) from standard input',
    )
    .option('--periodic', 'file server: use periodic mode even when live signaling works')
    .option('--server <NAME>', 'search: only in the index of this file server')
    .option('--no-port-mapping', 'do not ask the home router to open a port, for this run')
    .option('--yes', 'with --configure or --addclient: ask nothing (answers come from options)')
    .option(
      '--replace',
      '--addclient: take over a client name another machine registered (it is locked out)',
    )
    .optionsGroup('--configure answers (with --yes, every answer comes from these):')
    .option('--rendezvous <user@host[:port]>', 'the rendezvous SSH account')
    .option('--identity <path>', 'SSH private key to log in with (default: a password at each run)')
    .option('--agent', 'log in with ssh-agent')
    .option(
      '--trust-host-key <SHA256:...>',
      'trust the rendezvous host key with this fingerprint (as ssh-keygen -lf prints it); tests the login',
    )
    .option('--test-login', 'log in to the rendezvous once; nothing is saved if that fails')
    .option('--known-hosts <path>', 'known_hosts file to check the rendezvous host key against')
    .option('--rendezvous-dir <dir>', "rcpp2p's folder on the rendezvous account (default .rcpp2p)")
    .option('--server-name <name>', "this machine's file-server name")
    .option('--client-name <name>', "this machine's client name")
    .option(
      '--port <n>',
      "the file server's local TCP port (client commands punch from a fresh one)",
    )
    .option('--dir <path>', "the file server's working directory (its shared folder)")
    .option('--poll-seconds <n>', 'periodic mode interval (default 10)')
    .option('--keepalive-seconds <n>', 'SSH keepalive interval (default 15)')
    .option(
      '--publish-index <yes|no>',
      "publish the file server's file list (paths, sizes, dates) on the rendezvous for servers and search",
    )
    .option(
      '--port-mapping <mode>',
      'ask the home router to open the punch port (UPnP, NAT-PMP, PCP): auto (default) or off',
    )
    .option(
      '--allow-clients <who>',
      'clients the file server serves: new (default: known ones and new ones), known (only those it has met), or NAME,NAME',
    )
    .optionsGroup('--rendezvous-server options:')
    .option('--listen <host:port>', 'address to listen on (default 0.0.0.0:2222)')
    .option('--state <dir>', 'folder for its host key, accounts and records')
    .option('--add-account <user>', 'add or update an account, then exit')
    .option('--authorized-key <file>', '--add-account: public key(s) that may log in')
    .option('--account-password', '--add-account: ask for a password (stored as a scrypt hash)')
    .optionsGroup('Help:')
    .version(VERSION)
    .helpOption('-h, --help', 'show this help')
    .commandsGroup('Commands (the same as the mode flags, as words):')
    .addHelpText('after', EXAMPLES)
    .action(() => {
      const [word] = program.args;
      if (word !== undefined) unknownCommand(program, word);
      choose(fromFlags(program));
    });

  const noModeFlag = (word: string): void => {
    const flag = FLAG_MODES.find((m) => program.getOptionValue(m) !== undefined);
    if (flag !== undefined) {
      program.error(
        `error: "${word}" and --${MODES[flag as Chosen['mode']]} are two commands; give one.`,
        {
          exitCode: 2,
          code: 'rcpp2p.twoModes',
        },
      );
    }
  };
  const sub = (name: string, description: string): Command =>
    program
      .command(name)
      .description(description)
      .allowExcessArguments(false)
      .addHelpText(
        'after',
        '\nEvery option of rcpp2p --help works here too (--to, --force, --json, --config ...).',
      );

  sub('get', 'download files or folders into the current folder (same as --get; --to DIR)')
    .argument('<SERVER>', 'the file server')
    .argument('<FILE...>', 'files or folders, relative to its shared folder')
    .action((server: string, files: string[]) => {
      noModeFlag('get');
      choose({ mode: 'get', server, files });
    });
  sub('put', "upload files or folders into the server's folder (same as --put; --to DIR)")
    .argument('<SERVER>', 'the file server')
    .argument('<FILE...>', 'local files or folders')
    .action((server: string, files: string[]) => {
      noModeFlag('put');
      choose({ mode: 'put', server, files });
    });
  sub('send', 'offer files or folders once; prints the code to receive them (same as --send)')
    .argument('<FILE...>', 'local files or folders')
    .action((files: string[]) => {
      noModeFlag('send');
      choose({ mode: 'send', files });
    });
  sub('receive', 'receive what rcpp2p send offered (same as --receive; --to DIR)')
    .argument('<CODE>', 'the code the sender printed, e.g. 7-kobaru-tesimo')
    .action((code: string) => {
      noModeFlag('receive');
      choose({ mode: 'receive', code });
    });
  sub('ls', "list a file server's files (same as --filelist)")
    .alias('list')
    .argument('<SERVER>', 'the file server')
    .argument('[FOLDER]', 'a folder inside its shared folder', '')
    .action((server: string, folder: string) => {
      noModeFlag('ls');
      choose({ mode: 'filelist', server, folder });
    });
  sub('servers', 'every file server on the rendezvous (same as --servers)').action(() => {
    noModeFlag('servers');
    choose({ mode: 'servers' });
  });
  sub('search', 'find files on every file server from their indexes (same as --search)')
    .argument('<PATTERN>', 'part of a path, or a glob with * or ? (quote it)')
    .action((pattern: string) => {
      noModeFlag('search');
      choose({ mode: 'search', pattern });
    });
  sub('serve', "run this machine's file server until Ctrl-C (same as no command)").action(() => {
    noModeFlag('serve');
    choose({ mode: 'serve' });
  });
  return program;
}

function fromFlags(program: Command): Chosen {
  const value = (name: string): unknown => program.getOptionValue(name);
  const words = (name: string): string[] => (value(name) as string[] | undefined) ?? [];
  if (value('configure')) return { mode: 'configure' };
  if (value('addclient')) return { mode: 'addclient' };
  if (value('demo')) return { mode: 'demo' };
  if (value('rendezvousServer')) return { mode: 'rendezvousServer' };
  if (value('servers')) return { mode: 'servers' };
  const pattern = value('search');
  if (typeof pattern === 'string') return { mode: 'search', pattern };
  const send = value('send');
  if (send !== undefined) return { mode: 'send', files: words('send') };
  const receive = value('receive');
  if (typeof receive === 'string') return { mode: 'receive', code: receive };
  const forget = value('forgetPeer');
  if (typeof forget === 'string') return { mode: 'forgetPeer', name: forget };
  if (value('filelist') !== undefined) {
    const [server, folder = '', ...extra] = words('filelist');
    if (server === undefined || extra.length > 0)
      usage(program, 'rcpp2p --filelist SERVER [FOLDER]');
    return { mode: 'filelist', server, folder };
  }
  for (const mode of ['get', 'put'] as const) {
    if (value(mode) === undefined) continue;
    const [server, ...files] = words(mode);
    if (server === undefined || files.length === 0) {
      usage(program, `rcpp2p --${mode} SERVER FILE [FILE...]`);
    }
    return { mode, server, files };
  }
  return { mode: 'serve' };
}

function usage(program: Command, form: string): never {
  program.error(`error: use ${form}`, { exitCode: 2, code: 'rcpp2p.usage' });
}

function unknownCommand(program: Command, word: string): never {
  const similar = SIMILAR[word.toLowerCase()];
  const suggestion = similar ? ` Did you mean "rcpp2p ${similar}"?` : '';
  program.error(
    `error: unknown command "${word}".${suggestion}\n` +
      'Commands: get, put, send, receive, ls (list), servers, search, serve, help; or the options in rcpp2p --help.',
    { exitCode: 2, code: 'commander.unknownCommand' },
  );
}
