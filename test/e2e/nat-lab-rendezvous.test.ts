// The rendezvous kinds the lab can run, and what each one lets an ssh2 client do: the measured
// capability matrix later work relies on (docs/nat-lab.md, "Rendezvous kinds"). Each kind runs at
// 203.0.113.10:22; the client host (behind a drop NAT) logs in with the system ssh client and with
// test/helpers/ssh-probe.ts, which tries every forwarding kind rcpp2p could use.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { canMakeNetns, hasCommand, hasSshd, isRoot, skipUnless } from '../helpers/capability.js';
import { DROPBEAR, DROPBEARCONVERT } from '../helpers/dropbear.js';
import {
  ALL_RENDEZVOUS_KINDS,
  createLab,
  SSH_PROBE,
  WAN_IP,
  type Lab,
  type RendezvousKind,
} from '../helpers/nat-lab.js';
import type { SshProbeResult } from '../helpers/ssh-probe.js';
import { runCommand } from '../helpers/processes.js';
import { SSH, SSHD, sshClientArgs } from '../helpers/sshd.js';
import { renderRendezvousCommand } from '../../src/rendezvous/commands.js';

const skip = skipUnless(
  isRoot(),
  canMakeNetns(),
  hasSshd(),
  hasCommand(SSH, 'Debian package openssh-client'),
  hasCommand(DROPBEAR, 'Debian package dropbear-bin'),
  hasCommand(DROPBEARCONVERT, 'Debian package dropbear-bin'),
);

type Row = Record<Exclude<keyof SshProbeResult, 'event' | 'banner'>, boolean>;

/** What each kind allows, as measured (the table in docs/nat-lab.md). */
const EXPECTED: Record<RendezvousKind, Row> = {
  openssh: row('yes yes yes yes yes yes'),
  'openssh-defaults': row('yes yes yes yes yes yes'),
  'openssh-no-streamlocal': row('yes yes no no yes yes'),
  'openssh-no-forwarding': row('yes yes no no no no'),
  dropbear: row('yes yes no no yes yes'),
  embedded: row('no yes yes no no no'),
};

function row(text: string): Row {
  const [exec, hello, streamlocal, directStreamlocal, tcpipForward, directTcpip] = text
    .split(' ')
    .map((w) => w === 'yes');
  return {
    exec: !!exec,
    hello: !!hello,
    streamlocal: !!streamlocal,
    directStreamlocal: !!directStreamlocal,
    tcpipForward: !!tcpipForward,
    directTcpip: !!directTcpip,
  };
}

const UNIX_ECHO = `const net=require('net');const fs=require('fs');const p=process.argv[1];
try{fs.unlinkSync(p)}catch{}
net.createServer((s)=>{s.on('error',()=>{});s.end('unix target\\n')}).listen(p,()=>console.log('listening'));`;

/** Runs the ssh probe from the client host; answers its tcpip-forward from the rendezvous side. */
async function probe(lab: Lab): Promise<SshProbeResult> {
  const rv = lab.rendezvous;
  await lab.startAddressEcho('rendezvous', 7);
  const target = join(rv.kind === 'embedded' ? rv.dir : rv.rendezvousDirOnDisk, 'target.sock');
  const unix = lab.spawn('rendezvous', process.execPath, ['-e', UNIX_ECHO, target]);
  await unix.waitForOutput(/listening/, 10_000);
  const p = lab.spawn('client', process.execPath, [
    ...[SSH_PROBE, '--host', rv.host, '--port', String(rv.port), '--user', rv.user],
    ...['--key', rv.clientKeyFile, '--host-key', rv.hostPublicKey, '--dir', rv.rendezvousDir],
    ...['--unix-target', target, '--echo-port', '7'],
  ]);
  const m = await p.waitForOutput(/"event":"(tcpip-forward","port":(\d+)|result|error)/, 60_000);
  if (m[2]) {
    const r = await lab.tcpConnect('rendezvous', { host: '127.0.0.1', port: Number(m[2]) });
    assert.equal(r.firstLine, 'via tcpip-forward', JSON.stringify(r));
  }
  await p.waitExit(60_000);
  const last = p.stdout().trim().split('\n').pop() ?? '';
  const result = JSON.parse(last) as SshProbeResult;
  assert.equal(result.event, 'result', `${p.stdout()}${p.stderr()}`);
  return result;
}

/** The effective sshd config (`sshd -T`), for the OpenSSH kinds. */
async function sshdSetting(lab: Lab, keyword: string): Promise<string> {
  const r = await runCommand(SSHD, ['-T', '-f', join(lab.rendezvous.dir, 'sshd_config')]);
  const line = r.stdout.split('\n').find((l) => l.startsWith(`${keyword} `));
  return line?.slice(keyword.length + 1) ?? '';
}

describe('NAT lab: rendezvous kinds', { skip }, () => {
  for (const kind of ALL_RENDEZVOUS_KINDS) {
    it(`${kind}: logs in with the lab's key and known_hosts, and allows what the matrix says`, async (t) => {
      const lab = await createLab({ server: 'public', client: 'drop', rendezvous: kind });
      try {
        const rv = lab.rendezvous;
        assert.equal(rv.kind, kind);
        // the system ssh client, strict known_hosts: rcpp2p's hello shows our NAT's address
        const hello = renderRendezvousCommand({
          op: 'hello',
          dir: rv.rendezvousDir,
          role: 'client',
          name: 'check',
        });
        const ssh = await lab.exec('client', SSH, [...sshClientArgs(rv), hello], {
          timeoutMs: 20_000,
        });
        assert.equal(ssh.code, 0, `${ssh.stderr}\n${rv.logText()}`);
        assert.match(
          ssh.stdout,
          new RegExp(`^ssh-client ${WAN_IP.client.replace(/\./g, '\\.')} \\d+ 22$`, 'm'),
        );

        const result = await probe(lab);
        const got = Object.fromEntries(
          Object.keys(EXPECTED[kind]).map((k) => [k, result[k as keyof Row].ok]),
        ) as Row;
        const line = `${kind.padEnd(24)} ${Object.entries(got)
          .map(([k, ok]) => `${k}=${ok ? 'yes' : 'no'}`)
          .join(' ')} | ${result.banner}`;
        t.diagnostic(line);
        for (const k of Object.keys(EXPECTED[kind]) as (keyof Row)[]) {
          const cap = result[k];
          if (!cap.ok) t.diagnostic(`  ${k}: ${cap.error}`);
        }
        assert.deepEqual(got, EXPECTED[kind], JSON.stringify(result, null, 1));
        if (result.exec.ok)
          assert.match(result.exec.detail ?? '', new RegExp(`^${WAN_IP.client} \\d+ 22$`));
      } finally {
        await lab.close();
      }
    });
  }

  it('OpenSSH kinds: MaxStartups is 100 for the lab profile, the default elsewhere; sshdConfig wins', async () => {
    const cases: [RendezvousKind, string[] | undefined, string][] = [
      ['openssh', undefined, '100:30:100'],
      ['openssh-defaults', undefined, '10:30:100'],
      ['openssh', ['MaxStartups 10:30:100'], '10:30:100'],
      ['openssh-no-forwarding', ['MaxStartups 3:50:9'], '3:50:9'],
    ];
    for (const [kind, sshdConfig, expected] of cases) {
      const lab = await createLab({
        server: 'public',
        client: 'public',
        rendezvous: kind,
        sshdConfig,
      });
      try {
        assert.equal(
          await sshdSetting(lab, 'maxstartups'),
          expected,
          `${kind} ${String(sshdConfig)}`,
        );
        if (kind === 'openssh-defaults') {
          assert.equal(await sshdSetting(lab, 'streamlocalbindunlink'), 'no');
          assert.equal(await sshdSetting(lab, 'maxsessions'), '10');
        }
        if (kind === 'openssh-no-forwarding') {
          assert.equal(await sshdSetting(lab, 'disableforwarding'), 'yes');
        }
      } finally {
        await lab.close();
      }
    }
  });
});
