// The NAT lab itself: for every NAT kind, hosts reach the rendezvous sshd and it sees the expected
// external address; unsolicited SYNs are dropped or answered with RST as configured; the symmetric
// NAT changes the port per destination; conntrack flushing; sameLan; and close() leaves nothing.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { canMakeNetns, hasCommand, hasSshd, isRoot, skipUnless } from '../helpers/capability.js';
import {
  createLab,
  RENDEZVOUS_IP,
  STRANGER_IP,
  type Lab,
  type LabHost,
  type NatKind,
  type TcpProbeResult,
} from '../helpers/nat-lab.js';
import { IP, pidAlive, runCommand } from '../helpers/processes.js';
import { SSH, sshClientArgs } from '../helpers/sshd.js';

const skip = skipUnless(
  isRoot(),
  canMakeNetns(),
  hasSshd(),
  hasCommand(SSH, 'Debian package openssh-client'),
  hasCommand('/usr/sbin/conntrack', 'Debian package conntrack'),
);

async function waitFor(what: string, check: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** `echo $SSH_CLIENT` on the rendezvous, run with the system ssh client from `host`. */
async function sshClientSeenFrom(lab: Lab, host: LabHost): Promise<string[]> {
  const r = await lab.exec(host, SSH, [...sshClientArgs(lab.rendezvous), 'echo "$SSH_CLIENT"'], {
    timeoutMs: 20_000,
  });
  assert.equal(r.code, 0, `ssh from ${host.name} failed: ${r.stderr}\n${lab.rendezvous.logText()}`);
  return r.stdout.trim().split(' ');
}

function echoed(r: TcpProbeResult): { ip: string; port: number } {
  assert.equal(r.outcome, 'connected', JSON.stringify(r));
  const [ip, port] = (r.firstLine ?? '').split(':');
  return { ip: ip ?? '', port: Number(port) };
}

/** What an unsolicited SYN from the stranger to the server site's public address gets. */
const UNSOLICITED: Record<NatKind, TcpProbeResult['outcome']> = {
  drop: 'timeout',
  rst: 'refused',
  symmetric: 'timeout',
  public: 'refused', // the host itself, no listener
};

describe('NAT lab', { skip }, () => {
  for (const kind of ['drop', 'rst', 'symmetric', 'public'] as const) {
    describe(`both sites ${kind}`, () => {
      let lab: Lab | undefined;
      const L = (): Lab => {
        assert.ok(lab, 'lab was not built');
        return lab;
      };
      before(async () => {
        lab = await createLab({ server: kind, client: kind });
      });
      after(() => lab?.close());

      it('hosts reach the rendezvous sshd on port 22', async (t) => {
        t.diagnostic(`lab built in ${L().buildMs} ms`);
        for (const site of ['server', 'client'] as const) {
          const r = await L().tcpConnect(site, { host: RENDEZVOUS_IP, port: 22, localPort: 40001 });
          assert.equal(r.outcome, 'connected', `${site}: ${JSON.stringify(r)}`);
          assert.match(r.firstLine ?? '', /^SSH-2\.0-OpenSSH/);
          assert.equal(r.localPort, 40001);
        }
      });

      it('$SSH_CLIENT shows the public address, and the rendezvous dir is writable', async () => {
        const lab = L();
        for (const site of ['server', 'client'] as const) {
          const host = lab.hosts[site];
          const [ip, , port] = await sshClientSeenFrom(lab, host);
          assert.equal(ip, host.publicIp);
          assert.equal(port, '22');
        }
        const dir = lab.rendezvous.rendezvousDir;
        const r = await lab.exec('server', SSH, [
          ...sshClientArgs(lab.rendezvous),
          `mkdir -p ${dir}/servers && echo ok > ${dir}/servers/x && cat ${dir}/servers/x`,
        ]);
        assert.equal(r.stdout.trim(), 'ok', r.stderr);
      });

      it('maps a fixed local port as this NAT kind does', async () => {
        const lab = L();
        await lab.startAddressEcho('rendezvous', 7);
        await lab.startAddressEcho('stranger', 7);
        const host = lab.hosts.server;
        const viaRv = echoed(
          await lab.tcpConnect('server', { host: RENDEZVOUS_IP, port: 7, localPort: 40002 }),
        );
        const viaSt = echoed(
          await lab.tcpConnect('server', { host: STRANGER_IP, port: 7, localPort: 40002 }),
        );
        assert.equal(viaRv.ip, host.publicIp);
        assert.equal(viaSt.ip, host.publicIp);
        if (kind === 'symmetric') {
          // a new external port per destination (fully random: 1 in ~64k to collide)
          assert.notEqual(viaRv.port, viaSt.port);
        } else {
          // port preserving and endpoint independent
          assert.equal(viaRv.port, 40002);
          assert.equal(viaSt.port, 40002);
        }
        if (kind !== 'public') {
          const ours = (await lab.conntrack('server')).filter((e) => e.orig.sport === 40002);
          assert.equal(ours.length, 2, JSON.stringify(ours));
          const external = ours.map((e) => e.reply.dport).sort();
          assert.deepEqual(external, [viaRv.port, viaSt.port].sort());
          for (const e of ours) assert.equal(e.reply.dst, host.publicIp);
        }
      });

      it(`an unsolicited SYN from the stranger gets: ${UNSOLICITED[kind]}`, async () => {
        const lab = L();
        const target = { host: lab.hosts.server.publicIp, port: 40003, timeoutMs: 1500 };
        const r = await lab.tcpConnect('stranger', target);
        assert.equal(r.outcome, UNSOLICITED[kind], JSON.stringify(r));
      });

      it('flushConntrack empties the router table', async () => {
        const lab = L();
        await lab.tcpConnect('server', { host: RENDEZVOUS_IP, port: 22, localPort: 40004 });
        if (kind === 'public') {
          assert.equal(lab.natRouterNs('server'), undefined);
          await lab.flushConntrack('server'); // no-op
          return;
        }
        const before = await lab.conntrack('server');
        assert.ok(
          before.some((e) => e.orig.sport === 40004),
          JSON.stringify(before),
        );
        await lab.flushConntrack('server');
        const afterFlush = await lab.conntrack('server');
        assert.ok(!afterFlush.some((e) => e.orig.sport === 40004), JSON.stringify(afterFlush));
      });
    });
  }

  describe('sameLan', () => {
    let lab: Lab | undefined;
    before(async () => {
      lab = await createLab({ server: 'drop', client: 'drop', sameLan: true });
    });
    after(() => lab?.close());

    it('puts both hosts behind one router, reachable by private address, without hairpinning', async () => {
      assert.ok(lab);
      const { server, client } = lab.hosts;
      assert.equal(server.ip, '198.18.1.2');
      assert.equal(client.ip, '198.18.1.3');
      assert.equal(server.routerNs, client.routerNs);
      assert.equal(client.publicIp, server.publicIp);
      await lab.startAddressEcho('client', 7);
      const direct = echoed(
        await lab.tcpConnect('server', { host: client.ip, port: 7, localPort: 40005 }),
      );
      assert.deepEqual(direct, { ip: server.ip, port: 40005 });
      const hairpin = await lab.tcpConnect('server', {
        host: client.publicIp,
        port: 7,
        timeoutMs: 1500,
      });
      assert.notEqual(hairpin.outcome, 'connected');
      for (const host of [server, client]) {
        const [ip] = await sshClientSeenFrom(lab, host);
        assert.equal(ip, server.publicIp);
      }
    });
  });

  describe('options', () => {
    it('forwarding: false makes the rendezvous refuse Unix socket forwards; rateLimitMbit adds tbf', async () => {
      const lab = await createLab({
        server: 'public',
        client: 'drop',
        forwarding: false,
        rateLimitMbit: 100,
      });
      try {
        const router = lab.natRouterNs('client');
        assert.ok(router);
        const qdisc = await runCommand('/usr/sbin/tc', ['qdisc', 'show', 'dev', 'wan0'], {
          netns: router,
        });
        assert.match(qdisc.stdout, /tbf .*rate 100Mbit/);
        const sock = `${lab.rendezvous.rendezvousDir}/fwd.sock`;
        const args = sshClientArgs(lab.rendezvous);
        const r = await lab.exec(
          'client',
          SSH,
          [
            ...args.slice(0, -1),
            '-N',
            '-o',
            'ExitOnForwardFailure=yes',
            '-R',
            `${sock}:127.0.0.1:9`,
            args[args.length - 1] as string,
          ],
          { timeoutMs: 20_000 },
        );
        assert.notEqual(r.code, 0);
        assert.match(r.stderr, /remote port forwarding failed/);
      } finally {
        await lab.close();
      }
    });
  });

  describe('close()', () => {
    it('kills every process by PID and deletes every namespace, idempotently', async (t) => {
      const lab = await createLab({ server: 'drop', client: 'symmetric' });
      let closed = false;
      try {
        const sleeper = lab.spawn('server', '/bin/sleep', ['300']);
        const echo = await lab.startAddressEcho('stranger', 7);
        const session = lab.spawn('client', SSH, [...sshClientArgs(lab.rendezvous), 'sleep 300']);
        await waitFor(
          'the ssh session',
          () => /Accepted publickey/.test(lab.rendezvous.logText()),
          15_000,
        );
        const names = [...lab.namespaces];
        assert.equal(names.length, 7); // inet, rv, st, rs, hs, rc, hc
        const pids = [sleeper.pid, echo.pid, session.pid, lab.rendezvous.pid];
        const started = Date.now();
        await Promise.all([lab.close(), lab.close()]);
        await lab.close();
        closed = true;
        t.diagnostic(`lab closed in ${Date.now() - started} ms`);
        const list = await runCommand(IP, ['netns', 'list']);
        const left = new Set(list.stdout.split('\n').map((l) => l.split(' ')[0]));
        for (const ns of names) assert.ok(!left.has(ns), `${ns} still exists`);
        for (const pid of pids) assert.ok(!pidAlive(pid), `pid ${pid} still alive`);
        assert.throws(() => lab.spawn('server', '/bin/true', []), /closed/);
      } finally {
        if (!closed) await lab.close();
      }
    });
  });
});
