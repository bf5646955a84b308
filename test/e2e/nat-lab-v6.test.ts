// The NAT lab's IPv6 option: a dual-stack "Internet", a routed global /64 per LAN behind each
// router's stateful IPv6 firewall (no NAT66), IPv6-only and IPv4-only sites, and the rendezvous name
// rv.lab resolving to both of its addresses in every namespace. What the IPv6 work relies on.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { canMakeNetns, hasCommand, hasSshd, isRoot, skipUnless } from '../helpers/capability.js';
import {
  ALL_RENDEZVOUS_KINDS,
  createLab,
  PUNCH_PROBE,
  RENDEZVOUS_IP,
  RENDEZVOUS_IP6,
  RENDEZVOUS_NAME,
  STRANGER_IP6,
  WAN_IP,
  WAN_IP6,
  type Lab,
  type LabHost,
  type Place,
  type TcpProbeResult,
} from '../helpers/nat-lab.js';
import { SSH, sshLoginOptions } from '../helpers/sshd.js';
import { renderRendezvousCommand } from '../../src/rendezvous/commands.js';

const skip = skipUnless(
  isRoot(),
  canMakeNetns(),
  hasSshd(),
  hasCommand(SSH, 'Debian package openssh-client'),
);

/**
 * The client address the rendezvous reports ($SSH_CLIENT, through rcpp2p's hello command, which
 * every kind runs), over the system ssh client to the rendezvous by name, forcing a family.
 */
async function sshClientByName(lab: Lab, host: LabHost, family: '-4' | '-6'): Promise<string> {
  const rv = lab.rendezvous;
  const hello = renderRendezvousCommand({
    op: 'hello',
    dir: rv.rendezvousDir,
    role: 'client',
    name: 'check',
  });
  const r = await lab.exec(
    host,
    SSH,
    [...sshLoginOptions(rv), family, '-l', rv.user, RENDEZVOUS_NAME, hello],
    { timeoutMs: 20_000 },
  );
  assert.equal(r.code, 0, `ssh ${family} from ${host.name}: ${r.stderr}\n${rv.logText()}`);
  return /^ssh-client (\S+) /m.exec(r.stdout)?.[1] ?? '';
}

/** What Node's resolver (getaddrinfo, no flags) answers for rv.lab inside a namespace. */
async function lookupAll(lab: Lab, place: Place): Promise<string[]> {
  const script = `require('dns').lookup(${JSON.stringify(RENDEZVOUS_NAME)},{all:true},(e,a)=>{if(e)throw e;console.log(JSON.stringify(a.map(x=>x.address)))})`;
  const r = await lab.exec(place, process.execPath, ['-e', script]);
  assert.equal(r.code, 0, r.stderr);
  return (JSON.parse(r.stdout) as string[]).sort();
}

function echoedIp(r: TcpProbeResult): string {
  assert.equal(r.outcome, 'connected', JSON.stringify(r));
  const line = r.firstLine ?? '';
  return line.slice(0, line.lastIndexOf(':'));
}

describe('NAT lab: IPv6', { skip }, () => {
  describe('both sites dual-stack behind drop routers', () => {
    let lab: Lab | undefined;
    const L = (): Lab => {
      assert.ok(lab, 'lab was not built');
      return lab;
    };
    before(async () => {
      lab = await createLab({ server: 'drop', client: 'drop', ipv6: {} });
    });
    after(() => lab?.close());

    it('gives each LAN host a global address routed through its router', (t) => {
      t.diagnostic(`lab built in ${L().buildMs} ms`);
      const { server, client, stranger } = L().hosts;
      assert.equal(server.ipv6, '2001:db8:1::2');
      assert.equal(client.ipv6, '2001:db8:2::2');
      assert.equal(server.ipv4, '198.18.1.2');
      assert.equal(server.routerWanIpv6, WAN_IP6.server);
      assert.equal(stranger.ipv6, STRANGER_IP6);
      assert.equal(L().rendezvousName, RENDEZVOUS_NAME);
    });

    it('rv.lab resolves to both addresses in every namespace', async () => {
      const lab = L();
      for (const place of ['server', 'client', 'stranger', 'rendezvous'] as const) {
        assert.deepEqual(
          await lookupAll(lab, place),
          [RENDEZVOUS_IP, RENDEZVOUS_IP6].sort(),
          place,
        );
      }
    });

    it('over IPv6 the rendezvous sees the host itself; over IPv4 its router', async () => {
      const lab = L();
      for (const site of ['server', 'client'] as const) {
        const host = lab.hosts[site];
        assert.equal(await sshClientByName(lab, host, '-6'), host.ipv6);
        assert.equal(await sshClientByName(lab, host, '-4'), WAN_IP[site]);
      }
      await lab.startAddressEcho('rendezvous', 7);
      const v6 = await lab.tcpConnect('server', { host: RENDEZVOUS_NAME, port: 7, family: 6 });
      assert.equal(echoedIp(v6), lab.hosts.server.ipv6);
      assert.equal(v6.remoteAddress, RENDEZVOUS_IP6);
    });

    it('drops an unsolicited IPv6 SYN to a listening LAN host, and to the router', async () => {
      const lab = L();
      await lab.startAddressEcho('server', 7);
      const server = lab.hosts.server;
      const inbound = await lab.tcpConnect('stranger', {
        host: server.ipv6 as string,
        port: 7,
        timeoutMs: 1500,
      });
      assert.equal(inbound.outcome, 'timeout', JSON.stringify(inbound));
      const router = await lab.tcpConnect('stranger', {
        host: WAN_IP6.server,
        port: 22,
        timeoutMs: 1500,
      });
      assert.equal(router.outcome, 'timeout', JSON.stringify(router));
      // the listener is there: the LAN side reaches it
      const fromLan = await lab.tcpConnect(
        { ns: server.routerNs as string },
        { host: server.ipv6 as string, port: 7 },
      );
      assert.equal(fromLan.outcome, 'connected', JSON.stringify(fromLan));
    });

    it('simultaneous open over IPv6 works through both firewalls, without address translation', async () => {
      const lab = L();
      const { server, client } = lab.hosts;
      const startAt = Date.now() + 1000;
      const probe = (host: LabHost, localPort: number, peer: string) =>
        lab.spawn(host, process.execPath, [
          ...[PUNCH_PROBE, '--name', host.name, '--local-port', String(localPort)],
          ...['--peer', peer, '--start-at', String(startAt), '--interval', '150'],
        ]);
      const a = probe(server, 21000, `[${client.ipv6 as string}]:21001`);
      const b = probe(client, 21001, `[${server.ipv6 as string}]:21000`);
      await Promise.all([a.waitExit(20_000), b.waitExit(20_000)]);
      const results = [a, b].map(
        (p) => JSON.parse(p.stdout().trim().split('\n').pop() ?? '{}') as Record<string, unknown>,
      );
      for (const r of results) assert.equal(r['ok'], true, JSON.stringify(results));
      assert.equal(results[0]?.['remote'], `${client.ipv6 as string}:21001`);
      assert.equal(results[1]?.['remote'], `${server.ipv6 as string}:21000`);
      assert.equal(results[0]?.['line'], 'hello from client');
    });
  });

  describe('an IPv6-only client behind an RST router, an IPv4-only server', () => {
    let lab: Lab | undefined;
    const L = (): Lab => {
      assert.ok(lab, 'lab was not built');
      return lab;
    };
    before(async () => {
      lab = await createLab({
        server: 'drop',
        client: 'rst',
        ipv6: { server: 'v4only', client: 'v6only' },
      });
    });
    after(() => lab?.close());

    it('the IPv6-only host has no IPv4 address or route and reaches no IPv4 address', async () => {
      const lab = L();
      const client = lab.hosts.client;
      assert.equal(client.ipv4, undefined);
      assert.equal(client.ip, '2001:db8:2::2');
      assert.equal(client.publicIp, client.ip);
      const addr = await lab.exec('client', '/usr/sbin/ip', ['-4', '-o', 'addr']);
      assert.deepEqual(
        addr.stdout
          .trim()
          .split('\n')
          .map((l) => l.split(/\s+/)[3]),
        ['127.0.0.1/8'],
      );
      const route = await lab.exec('client', '/usr/sbin/ip', ['-4', 'route']);
      assert.equal(route.stdout.trim(), '');
      for (const host of [RENDEZVOUS_IP, WAN_IP.server, '198.18.2.1']) {
        const r = await lab.tcpConnect('client', { host, port: 22, timeoutMs: 1500 });
        assert.equal(r.code, 'ENETUNREACH', `${host}: ${JSON.stringify(r)}`);
      }
      // the name still works: only its AAAA is usable, and the rendezvous sees the host itself
      const byName = await lab.tcpConnect('client', { host: RENDEZVOUS_NAME, port: 22 });
      assert.equal(byName.remoteAddress, RENDEZVOUS_IP6, JSON.stringify(byName));
      assert.equal(await sshClientByName(lab, client, '-6'), client.ipv6);
    });

    it('the IPv4-only host has no global IPv6 and reaches the rendezvous by name over IPv4', async () => {
      const lab = L();
      const server = lab.hosts.server;
      assert.equal(server.ipv6, undefined);
      assert.equal(server.routerWanIpv6, undefined);
      const addr = await lab.exec('server', '/usr/sbin/ip', [
        '-6',
        '-o',
        'addr',
        'show',
        'scope',
        'global',
      ]);
      assert.equal(addr.stdout.trim(), '');
      const v6 = await lab.tcpConnect('server', {
        host: RENDEZVOUS_IP6,
        port: 22,
        timeoutMs: 1500,
      });
      assert.equal(v6.code, 'ENETUNREACH', JSON.stringify(v6));
      const byName = await lab.tcpConnect('server', { host: RENDEZVOUS_NAME, port: 22 });
      assert.equal(byName.remoteAddress, RENDEZVOUS_IP, JSON.stringify(byName));
    });

    it('the RST router answers an unsolicited IPv6 SYN to its LAN host with a reset', async () => {
      const lab = L();
      const r = await lab.tcpConnect('stranger', {
        host: lab.hosts.client.ipv6 as string,
        port: 7,
        timeoutMs: 1500,
      });
      assert.equal(r.outcome, 'refused', JSON.stringify(r));
    });
  });

  describe('every rendezvous kind on a dual-stack host', () => {
    for (const kind of ALL_RENDEZVOUS_KINDS) {
      it(`${kind}: reachable by name over both families, sees the IPv6 host itself`, async () => {
        const lab = await createLab({
          server: 'public',
          client: 'drop',
          ipv6: {},
          rendezvous: kind,
        });
        try {
          const client = lab.hosts.client;
          assert.equal(await sshClientByName(lab, client, '-6'), client.ipv6);
          // the embedded server listens on [::]:22 and still reports IPv4 clients plainly
          assert.equal(await sshClientByName(lab, client, '-4'), WAN_IP.client);
        } finally {
          await lab.close();
        }
      });
    }
  });

  describe('an IPv6-only rendezvous', () => {
    it('listens on IPv6 only, rv.lab has only its AAAA, and close() removes /etc/netns', async () => {
      const lab = await createLab({
        server: 'public',
        client: 'drop',
        ipv6: { rendezvous: 'v6only' },
      });
      let closed = false;
      try {
        assert.equal(lab.rendezvous.host, RENDEZVOUS_IP6);
        assert.deepEqual(await lookupAll(lab, 'client'), [RENDEZVOUS_IP6]);
        const v4 = await lab.tcpConnect('stranger', {
          host: RENDEZVOUS_IP,
          port: 22,
          timeoutMs: 1500,
        });
        assert.notEqual(v4.outcome, 'connected', JSON.stringify(v4));
        assert.equal(await sshClientByName(lab, lab.hosts.client, '-6'), lab.hosts.client.ipv6);
        assert.equal(await sshClientByName(lab, lab.hosts.server, '-6'), lab.hosts.server.ipv6);
        const names = lab.namespaces;
        for (const ns of names) assert.ok(existsSync(`/etc/netns/${ns}/hosts`), ns);
        await lab.close();
        closed = true;
        for (const ns of names) assert.ok(!existsSync(`/etc/netns/${ns}`), `${ns} left behind`);
      } finally {
        if (!closed) await lab.close();
      }
    });
  });
});
