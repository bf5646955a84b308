// What the embedded rendezvous does for each of rcpp2p's rendezvous commands, on real files in the
// account's home folder: the same effects and the same output as /bin/sh running the templates of
// src/rendezvous/commands.ts on an OpenSSH host.
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import { socketPath, type RendezvousOp } from '../rendezvous/commands.js';
import { isIndexOp, runIndexCommand } from './index-commands.js';

export interface CommandResult {
  stdout: string | Buffer;
  stderr: string;
  code: number;
}

export interface CommandContext {
  home: string;
  /** The client's address as this server sees it ($SSH_CLIENT). */
  remote: { ip: string; port: number };
  localPort: number;
  /** All of stdin, or 'too-large' as soon as more than `limit` bytes arrive. */
  readStdin: (limit: number) => Promise<Buffer | 'too-large'>;
  /** Forgets a registered signaling socket (the `unlink-socket` command). */
  unlinkSocket: (path: string) => void;
}

const MAX_RECORD_BYTES = 16 * 1024;

export async function runRendezvousCommand(
  op: RendezvousOp,
  ctx: CommandContext,
): Promise<CommandResult> {
  const base = resolve(ctx.home, op.dir);
  const inside = relative(ctx.home, base);
  if (inside.startsWith('..')) {
    return {
      stdout: '',
      stderr: `rcpp2p rendezvous: ${op.dir} is outside the account's home\n`,
      code: 1,
    };
  }
  if (isIndexOp(op)) {
    const out: Buffer[] = [];
    let stderr = '';
    const code = await runIndexCommand(op, {
      base,
      readStdin: ctx.readStdin,
      stdout: (data) => {
        out.push(Buffer.from(data));
        return Promise.resolve();
      },
      stderr: (text) => {
        stderr += text;
        return Promise.resolve();
      },
    });
    return { stdout: Buffer.concat(out), stderr, code };
  }
  switch (op.op) {
    case 'hello': {
      for (const sub of ['servers', 'clients', 'sockets'])
        await mkdir(join(base, sub), { recursive: true, mode: 0o700 });
      const record = await readFile(join(base, `${op.role}s`, `${op.name}.json`), 'utf8').catch(
        () => '',
      );
      return {
        stdout:
          'rcpp2p 1\n' +
          `ssh-client ${ctx.remote.ip} ${ctx.remote.port} ${ctx.localPort}\n` +
          `home ${ctx.home}\n` +
          `record ${record.trim()}\n`,
        stderr: '',
        code: 0,
      };
    }
    case 'list': {
      const dir = join(base, `${op.role}s`);
      const names = (await readdir(dir).catch(() => [] as string[]))
        .filter((n) => n.endsWith('.json') && !n.startsWith('.'))
        .sort();
      let stdout = '';
      for (const name of names) {
        const text = await readFile(join(dir, name), 'utf8').catch(() => undefined);
        if (text !== undefined) stdout += `record ${text.trim()}\n`;
      }
      return { stdout: stdout + 'end\n', stderr: '', code: 0 };
    }
    case 'publish': {
      const data = await ctx.readStdin(MAX_RECORD_BYTES);
      if (data === 'too-large') {
        return { stdout: '', stderr: 'rcpp2p rendezvous: record too large\n', code: 1 };
      }
      const dir = join(base, `${op.role}s`);
      await mkdir(dir, { recursive: true, mode: 0o700 });
      const tmp = join(dir, `.${op.name}.json.${randomBytes(4).toString('hex')}`);
      await writeFile(tmp, data, { mode: 0o600 });
      await rename(tmp, join(dir, `${op.name}.json`));
      return { stdout: '', stderr: '', code: 0 };
    }
    case 'unlink-socket':
      ctx.unlinkSocket(socketPath(ctx.home, op.dir, op.name));
      return { stdout: '', stderr: '', code: 0 };
    case 'watch':
    case 'ask':
      // The exec signaling transport is for SSH servers that forward nothing. This server forwards
      // signaling sockets, so file servers never fall back this far here: say so rather than fake it.
      return {
        stdout: '',
        stderr:
          'rcpp2p rendezvous: this server offers socket forwarding for signaling; ' +
          'the remote-command transport is not needed here\n',
        code: 1,
      };
  }
}
