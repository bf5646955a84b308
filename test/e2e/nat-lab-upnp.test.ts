// miniupnpd on the lab's routers (LabOptions.portMapping): UPnP IGD v1 and v2, NAT-PMP and PCP map
// real ports through the router's nftables, a stranger on the Internet connects through a mapping,
// and removing a mapping shows in the router's listing. The binaries come from
// scripts/build-miniupnpd.sh (docs/nat-lab.md, "Port mapping").
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { canMakeNetns, hasCommand, hasSshd, isRoot, skipUnless } from '../helpers/capability.js';
import { hasMiniupnpd, UPNPC } from '../helpers/miniupnpd.js';
import {
  createLab,
  PORT_MAPPING_PROBE,
  STRANGER_IP,
  WAN_IP,
  type Lab,
  type LabPortMapper,
  type PortMappingOptions,
  type Site,
} from '../helpers/nat-lab.js';
import type { PortMappingProbeResult } from '../helpers/port-mapping-probe.js';
import { IP, runCommand } from '../helpers/processes.js';

const skip = skipUnless(
  isRoot(),
  canMakeNetns(),
  hasSshd(),
  hasMiniupnpd(),
  hasCommand(UPNPC, 'Debian package miniupnpc'),
);

function mapper(lab: Lab, site: Site): LabPortMapper {
  const pm = lab.portMapper(site);
  assert.ok(pm, `no miniupnpd on the ${site} router`);
  return pm;
}

/** `upnpc -u <description URL> ARGS` from the site's host. */
async function upnpc(lab: Lab, site: Site, args: string[]): Promise<string> {
  const url = mapper(lab, site).descriptionUrl;
  assert.ok(url, 'UPnP is off on this router');
  const r = await lab.exec(site, UPNPC, ['-u', url, ...args], { timeoutMs: 20_000 });
  assert.equal(r.code, 0, `upnpc ${args.join(' ')}: ${r.stdout}${r.stderr}`);
  return r.stdout;
}

/** One NAT-PMP or PCP request from the site's host to its router. */
async function portMappingRequest(
  lab: Lab,
  site: Site,
  args: string[],
): Promise<PortMappingProbeResult> {
  const gateway = mapper(lab, site).lanAddress;
  const r = await lab.exec(site, process.execPath, [
    PORT_MAPPING_PROBE,
    '--gateway',
    gateway,
    ...args,
  ]);
  return JSON.parse(r.stdout.trim()) as PortMappingProbeResult;
}

/** The device description the router serves to its LAN. */
async function description(lab: Lab, site: Site): Promise<string> {
  const url = mapper(lab, site).descriptionUrl;
  const script = `fetch(${JSON.stringify(url)}).then(r=>r.text()).then(t=>process.stdout.write(t))`;
  const r = await lab.exec(site, process.execPath, ['-e', script]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout;
}

/** One SOAP call to the router's WANIPConnection:N control URL from the site's host. */
async function soap(
  lab: Lab,
  site: Site,
  igd: 1 | 2,
  action: string,
  args: Record<string, string | number>,
): Promise<{ status: number; body: string }> {
  const service = `urn:schemas-upnp-org:service:WANIPConnection:${igd}`;
  const body =
    '<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" ' +
    's:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body>' +
    `<u:${action} xmlns:u="${service}">` +
    Object.entries(args)
      .map(([k, v]) => `<${k}>${v}</${k}>`)
      .join('') +
    `</u:${action}></s:Body></s:Envelope>`;
  const url = `http://${mapper(lab, site).lanAddress}:5000/ctl/IPConn`;
  const init = {
    method: 'POST',
    headers: { 'Content-Type': 'text/xml', SOAPAction: `"${service}#${action}"` },
    body,
  };
  const script = `fetch(${JSON.stringify(url)},${JSON.stringify(init)}).then(async(r)=>console.log(JSON.stringify({status:r.status,body:await r.text()})))`;
  const r = await lab.exec(site, process.execPath, ['-e', script]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as { status: number; body: string };
}

/** The arguments of AddPortMapping / AddAnyPortMapping for a TCP port to `ip`. */
function mappingArgs(ip: string, port: number): Record<string, string | number> {
  return {
    NewRemoteHost: '',
    NewExternalPort: port,
    NewProtocol: 'TCP',
    NewInternalPort: port,
    NewInternalClient: ip,
    NewEnabled: 1,
    NewPortMappingDescription: 'soap',
    NewLeaseDuration: 3600,
  };
}

/** An SSDP M-SEARCH for an IGD from the site's host: the LOCATION headers that answer in 1.5 s. */
async function ssdpLocations(lab: Lab, site: Site): Promise<string[]> {
  const script = `const d=require('dgram').createSocket('udp4');const seen=[];
d.on('message',(m)=>{const l=String(m).split('\\r\\n').find((x)=>/^location:/i.test(x));if(l)seen.push(l.slice(9).trim())});
d.bind(()=>d.send('M-SEARCH * HTTP/1.1\\r\\nHOST: 239.255.255.250:1900\\r\\nMAN: "ssdp:discover"\\r\\nMX: 1\\r\\nST: urn:schemas-upnp-org:device:InternetGatewayDevice:1\\r\\n\\r\\n',1900,'239.255.255.250'));
setTimeout(()=>{console.log(JSON.stringify(seen));process.exit(0)},1500);`;
  const r = await lab.exec(site, process.execPath, ['-e', script]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as string[];
}

/** The stranger connects to the router's WAN address; returns what the LAN listener echoed. */
async function strangerReaches(lab: Lab, site: Site, port: number): Promise<string | undefined> {
  const r = await lab.tcpConnect('stranger', { host: WAN_IP[site], port, timeoutMs: 1500 });
  return r.outcome === 'connected' ? r.firstLine : undefined;
}

async function withLab(
  portMapping: Partial<Record<Site, PortMappingOptions>>,
  body: (lab: Lab) => Promise<void>,
): Promise<void> {
  const lab = await createLab({ server: 'drop', client: 'drop', portMapping });
  try {
    await body(lab);
  } catch (err) {
    for (const pm of [lab.portMapper('server'), lab.portMapper('client')]) {
      if (pm) console.error(`--- miniupnpd on ${pm.site}\n${pm.logText()}`);
    }
    throw err;
  } finally {
    await lab.close();
  }
}

describe('NAT lab: port mapping (miniupnpd)', { skip }, () => {
  for (const igd of [1, 2] as const) {
    it(`UPnP IGD v${igd}: discovered by SSDP, upnpc maps a port, a stranger connects, removal shows, v${igd} actions only`, async () => {
      await withLab({ server: { igd } }, async (lab) => {
        const pm = mapper(lab, 'server');
        const host = lab.hosts.server;
        assert.deepEqual(await ssdpLocations(lab, 'server'), [pm.descriptionUrl]);
        const desc = await description(lab, 'server');
        assert.match(desc, new RegExp(`urn:schemas-upnp-org:device:InternetGatewayDevice:${igd}`));
        assert.match(desc, new RegExp(`urn:schemas-upnp-org:service:WANIPConnection:${igd}`));

        await lab.startAddressEcho('server', 4444);
        assert.equal(await strangerReaches(lab, 'server', 4444), undefined, 'closed before');
        const added = await upnpc(lab, 'server', [
          '-e',
          'lab',
          '-a',
          host.ip,
          '4444',
          '4444',
          'TCP',
        ]);
        assert.match(added, /ExternalIPAddress = 203\.0\.113\.21/);
        assert.match(
          added,
          /external 203\.0\.113\.21:4444 TCP is redirected to internal 198\.18\.1\.2:4444/,
        );
        assert.deepEqual(await pm.mappings(), [
          { protocol: 'tcp', externalPort: 4444, internalIp: host.ip, internalPort: 4444 },
        ]);
        assert.match(await upnpc(lab, 'server', ['-l']), /TCP\s+4444->198\.18\.1\.2:4444\s+'lab'/);
        // DNAT only: the LAN host sees the stranger's own address
        assert.match(
          (await strangerReaches(lab, 'server', 4444)) ?? '',
          new RegExp(`^${STRANGER_IP}:`),
        );

        await upnpc(lab, 'server', ['-d', '4444', 'TCP']);
        assert.deepEqual(await pm.mappings(), []);
        assert.equal(await strangerReaches(lab, 'server', 4444), undefined, 'closed after');

        // AddAnyPortMapping is a WANIPConnection:2 action: a v1 router refuses it (build patch)
        const any = await soap(lab, 'server', igd, 'AddAnyPortMapping', mappingArgs(host.ip, 4446));
        if (igd === 1) {
          assert.equal(any.status, 500, any.body);
          assert.match(any.body, /<errorCode>401<\/errorCode>/);
        } else {
          assert.equal(any.status, 200, any.body);
          assert.match(any.body, /<NewReservedPort>4446<\/NewReservedPort>/);
        }
        const plain = await soap(lab, 'server', igd, 'AddPortMapping', mappingArgs(host.ip, 4447));
        assert.equal(plain.status, 200, plain.body);
        const ports = (await pm.mappings()).map((m) => m.externalPort);
        assert.deepEqual(ports.sort(), igd === 1 ? [4447] : [4446, 4447]);
      });
    });
  }

  it('NAT-PMP only: no UPnP, the external address, a TCP map a stranger uses, and its removal', async () => {
    await withLab({ server: { upnp: false } }, async (lab) => {
      const pm = mapper(lab, 'server');
      assert.equal(pm.descriptionUrl, undefined);
      const http = await lab.tcpConnect('server', { host: pm.lanAddress, port: 5000 });
      assert.equal(http.outcome, 'refused', 'no UPnP HTTP server');
      assert.deepEqual(await ssdpLocations(lab, 'server'), []);

      const ext = await portMappingRequest(lab, 'server', ['--op', 'external']);
      assert.equal(ext.ok, true, JSON.stringify(ext));
      assert.equal(ext.externalIp, WAN_IP.server);

      await lab.startAddressEcho('server', 5555);
      const map = await portMappingRequest(lab, 'server', [
        ...[
          '--op',
          'map',
          '--internal-port',
          '5555',
          '--external-port',
          '5555',
          '--lifetime',
          '60',
        ],
      ]);
      assert.equal(map.ok, true, JSON.stringify(map));
      assert.equal(map.externalPort, 5555);
      assert.equal(map.lifetime, 60);
      assert.deepEqual(await pm.mappings(), [
        {
          protocol: 'tcp',
          externalPort: 5555,
          internalIp: lab.hosts.server.ip,
          internalPort: 5555,
        },
      ]);
      assert.match(
        (await strangerReaches(lab, 'server', 5555)) ?? '',
        new RegExp(`^${STRANGER_IP}:`),
      );

      const unmap = await portMappingRequest(lab, 'server', [
        '--op',
        'unmap',
        '--internal-port',
        '5555',
      ]);
      assert.equal(unmap.ok, true, JSON.stringify(unmap));
      assert.deepEqual(await pm.mappings(), []);
      assert.equal(await strangerReaches(lab, 'server', 5555), undefined);
    });
  });

  it('halt() keeps the mappings (a daemon crash); restart() drops them and the epoch (a reboot)', async () => {
    await withLab({ server: { upnp: false } }, async (lab) => {
      const pm = mapper(lab, 'server');
      const map = ['--op', 'map', '--internal-port', '5556', '--external-port', '5556'];
      assert.equal((await portMappingRequest(lab, 'server', map)).ok, true);
      // wait until the first run's epoch (seconds since it started) reaches 2, so a reset shows
      const deadline = Date.now() + 10_000;
      while (((await portMappingRequest(lab, 'server', ['--op', 'external'])).epoch ?? 0) < 2) {
        assert.ok(Date.now() < deadline, 'the NAT-PMP epoch did not advance');
        await new Promise((r) => setTimeout(r, 200));
      }
      const pid = pm.pid;
      await pm.halt();
      assert.equal(pm.pid, 0);
      assert.equal((await pm.mappings()).length, 1, 'the rule outlives the daemon');
      await pm.restart();
      assert.notEqual(pm.pid, pid);
      assert.deepEqual(await pm.mappings(), []);
      const ext = await portMappingRequest(lab, 'server', ['--op', 'external']);
      assert.equal(ext.ok, true, JSON.stringify(ext));
      assert.ok((ext.epoch ?? 99) < 2, `epoch ${String(ext.epoch)} did not restart`);
    });
  });

  it('PCP (same switch as NAT-PMP): MAP and delete by nonce; lifetimes under 120 s are raised', async () => {
    await withLab({ server: { upnp: false } }, async (lab) => {
      const pm = mapper(lab, 'server');
      const clientIp = ['--client-ip', lab.hosts.server.ip];
      const map = await portMappingRequest(lab, 'server', [
        ...['--protocol', 'pcp', '--op', 'map', '--internal-port', '6666'],
        ...['--external-port', '6666', '--lifetime', '60', ...clientIp],
      ]);
      assert.equal(map.ok, true, JSON.stringify(map));
      assert.equal(map.externalIp, WAN_IP.server);
      assert.equal(map.externalPort, 6666);
      assert.equal(map.lifetime, 120, 'miniupnpd min_lifetime');
      assert.deepEqual(await pm.mappings(), [
        {
          protocol: 'tcp',
          externalPort: 6666,
          internalIp: lab.hosts.server.ip,
          internalPort: 6666,
        },
      ]);
      const unmap = await portMappingRequest(lab, 'server', [
        ...['--protocol', 'pcp', '--op', 'unmap', '--internal-port', '6666'],
        ...['--nonce', map.nonce ?? '', ...clientIp],
      ]);
      assert.equal(unmap.ok, true, JSON.stringify(unmap));
      assert.deepEqual(await pm.mappings(), []);
    });
  });

  it('UPnP only: NAT-PMP and PCP get no answer', async () => {
    await withLab({ server: { natpmp: false } }, async (lab) => {
      const r = await portMappingRequest(lab, 'server', ['--op', 'external']);
      assert.equal(r.ok, false);
      assert.match(r.error ?? '', /no answer/);
    });
  });

  it('both routers, and two labs at once, keep their own daemons, rules and files', async () => {
    const build = () =>
      createLab({
        server: 'drop',
        client: 'rst',
        rendezvous: 'dropbear',
        ipv6: {},
        portMapping: { server: { igd: 2 }, client: { upnp: false } },
      });
    const labs = await Promise.all([build(), build()]);
    try {
      for (const [i, lab] of labs.entries()) {
        const port = String(7000 + i);
        await upnpc(lab, 'server', ['-e', 'x', '-a', lab.hosts.server.ip, port, port, 'TCP']);
        const pmp = await portMappingRequest(lab, 'client', [
          ...['--op', 'map', '--internal-port', port, '--external-port', port],
        ]);
        assert.equal(pmp.ok, true, JSON.stringify(pmp));
      }
      for (const [i, lab] of labs.entries()) {
        for (const site of ['server', 'client'] as const) {
          const mappings = await mapper(lab, site).mappings();
          assert.deepEqual(
            mappings.map((m) => `${m.internalIp}:${m.externalPort}`),
            [`${lab.hosts[site].ip}:${7000 + i}`],
            `lab ${i} ${site}`,
          );
        }
      }
      const pids = labs.flatMap((lab) => [mapper(lab, 'server').pid, mapper(lab, 'client').pid]);
      assert.equal(new Set(pids).size, 4);
    } finally {
      await Promise.all(labs.map((lab) => lab.close()));
    }
    const left = await runCommand(IP, ['netns', 'list']);
    for (const lab of labs) assert.doesNotMatch(left.stdout, new RegExp(`^${lab.id}-`, 'm'));
  });
});
