// Port mapping end to end: real rcpp2p peers behind real NAT routers running miniupnpd (UPnP IGD v1
// and v2, NAT-PMP, PCP). The pairs that relay without a mapping (NATs that change ports, NATs that
// answer strays with RST) connect directly when one router maps a port; the mapping shows on the
// router while it is used and is gone once the file server stops or the client's command ends; a
// network without a gateway behaves as before. Run alone: node test/run.js e2e/port-mapping
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { canMakeNetns, hasSshd, isRoot, skipUnless } from '../helpers/capability.js';
import {
  describeRun,
  jsonLines,
  RCPP2P_BIN,
  setupLabPeers,
  sha256File,
  writeRandomFile,
  type LabPeers,
} from '../helpers/lab-peers.js';
import { hasMiniupnpd } from '../helpers/miniupnpd.js';
import { createLab, type Lab, type LabOptions, type Site } from '../helpers/nat-lab.js';
import type { ProcessHandle, RunResult } from '../helpers/processes.js';

const skip = skipUnless(isRoot(), canMakeNetns(), hasSshd(), hasMiniupnpd());

interface Pair {
  lab: Lab;
  peers: LabPeers;
  server: ProcessHandle;
  /** Runs a --get of data.bin (2 MB) with --json in the client's namespace. */
  get: (extraArgs?: string[]) => Promise<{ run: RunResult; result: Record<string, unknown> }>;
  serverLog: () => string;
}

/**
 * A lab, two configured peers and a running file server. `env` goes to both peers (e.g.
 * RCPP2P_PORT_MAPPING_PROTOCOLS). Waits for the server's mapping when its router has miniupnpd.
 */
async function withPair(
  options: LabOptions,
  env: Record<string, string>,
  body: (pair: Pair) => Promise<void>,
): Promise<void> {
  const lab = await createLab(options);
  let peers: LabPeers | undefined;
  let server: ProcessHandle | undefined;
  try {
    peers = await setupLabPeers(lab);
    const p = peers;
    const peerEnv = { ...process.env, ...env };
    const started = lab.spawn(
      'server',
      process.execPath,
      [RCPP2P_BIN, '--config', p.serverConfig],
      {
        cwd: p.workDir,
        env: peerEnv,
      },
    );
    server = started;
    await started.waitForOutput(/Signaling: /, 20_000);
    if (lab.portMapper('server')) await started.waitForOutput(/Port mapping: .* opened /, 10_000);
    const sha = await writeRandomFile(join(p.workDir, 'data.bin'), 2 * 1024 * 1024 + 7);
    await body({
      lab,
      peers: p,
      server: started,
      serverLog: () => started.stderr() + started.stdout(),
      get: async (extraArgs = []) => {
        const run = await lab.exec(
          'client',
          process.execPath,
          [
            RCPP2P_BIN,
            '--config',
            p.clientConfig,
            ...['--get', 'ASUS', 'data.bin', '--json', '--force', ...extraArgs],
          ],
          { cwd: p.clientDir, env: peerEnv, timeoutMs: 90_000 },
        );
        assert.equal(run.code, 0, describeRun(run) + `\n--- server\n${started.stderr()}`);
        assert.equal(await sha256File(join(p.clientDir, 'data.bin')), sha);
        const result = jsonLines(run.stdout)[0] ?? {};
        return { run, result };
      },
    });
  } catch (err) {
    for (const site of ['server', 'client'] as const) {
      const pm = lab.portMapper(site);
      if (pm) console.error(`--- miniupnpd on the ${site} router\n${pm.logText().slice(-4000)}`);
    }
    if (server) console.error(`--- file server\n${server.stderr()}`);
    throw err;
  } finally {
    await lab.close();
    await peers?.cleanup();
  }
}

async function mappedPorts(lab: Lab, site: Site): Promise<string[]> {
  const pm = lab.portMapper(site);
  assert.ok(pm, `miniupnpd runs on the ${site} router`);
  return (await pm.mappings()).map(
    (m) => `${m.protocol} ${m.externalPort} -> ${m.internalIp}:${m.internalPort}`,
  );
}

function mapping(result: Record<string, unknown>, role: 'client' | 'server'): unknown {
  return (result['portMapping'] as Record<string, unknown> | undefined)?.[role];
}

describe('port mapping on the home router (NAT lab, miniupnpd)', { skip }, () => {
  it('symmetric/symmetric, UPnP IGD v1 on the server’s router: direct; the mapping is gone after SIGTERM', async () => {
    await withPair(
      {
        server: 'symmetric',
        client: 'symmetric',
        portMapping: { server: { igd: 1, natpmp: false } },
      },
      {},
      async ({ lab, server, get, serverLog }) => {
        assert.deepEqual(await mappedPorts(lab, 'server'), ['tcp 40001 -> 198.18.1.2:40001']);
        assert.match(
          serverLog(),
          /Port mapping: UPnP IGD v1 \(WANIPConnection:1\) on router 198\.18\.1\.1 opened 203\.0\.113\.21:40001 to local port 40001 for 60 min\./,
        );
        const { run, result } = await get();
        assert.equal(result['path'], 'direct', describeRun(run));
        assert.match(
          run.stderr,
          /^Connected: direct connection to 203\.0\.113\.21:40001 in .* \(port 40001 opened on the server’s router by UPnP\)\.$/m,
        );
        assert.deepEqual(mapping(result, 'server'), {
          protocol: 'upnp',
          external: { ip: '203.0.113.21', port: 40001 },
        });
        assert.equal(mapping(result, 'client'), null);
        assert.match(serverLog(), /Client LAPTOP connected: direct connection .*by UPnP\)/);

        const exit = await server.kill(5000);
        assert.equal(exit.code, 0, serverLog());
        assert.match(
          serverLog(),
          /Port mapping 203\.0\.113\.21:40001 removed from the router \(UPnP\)\./,
        );
        assert.deepEqual(await mappedPorts(lab, 'server'), [], 'nothing left on the router');
      },
    );
  });

  it('symmetric/symmetric, UPnP IGD v1 only on the client’s router: reversed; the client removes its mapping at exit', async () => {
    await withPair(
      {
        server: 'symmetric',
        client: 'symmetric',
        portMapping: { client: { igd: 1, natpmp: false } },
      },
      {},
      async ({ lab, get }) => {
        const { run, result } = await get();
        assert.ok(
          ['reversed', 'direct'].includes(String(result['path'])),
          `path ${String(result['path'])}\n${describeRun(run)}`,
        );
        const client = mapping(result, 'client') as {
          protocol: string;
          external: { port: number };
        };
        assert.equal(client?.protocol, 'upnp', describeRun(run));
        assert.match(
          run.stderr,
          new RegExp(`port ${client.external.port} opened on your router by UPnP`),
        );
        assert.match(
          run.stderr,
          /^Port mapping 203\.0\.113\.22:\d+ removed from the router \(UPnP\)\.$/m,
        );
        assert.deepEqual(await mappedPorts(lab, 'client'), [], 'the command left nothing behind');
      },
    );
  });

  it('RST/RST with UPnP IGD v2 on the server’s router: direct', async () => {
    await withPair(
      { server: 'rst', client: 'rst', portMapping: { server: { igd: 2, natpmp: false } } },
      {},
      async ({ get, serverLog }) => {
        assert.match(serverLog(), /UPnP IGD v2 \(WANIPConnection:2\)/);
        const { run, result } = await get();
        assert.equal(result['path'], 'direct', describeRun(run));
        assert.match(run.stderr, /\(port 40001 opened on the server’s router by UPnP\)/);
      },
    );
  });

  it('a NAT-PMP router (enable_upnp=no), NAT-PMP asked for: symmetric/symmetric connects directly, removed on Ctrl-C', async () => {
    await withPair(
      { server: 'symmetric', client: 'symmetric', portMapping: { server: { upnp: false } } },
      { RCPP2P_PORT_MAPPING_PROTOCOLS: 'natpmp' },
      async ({ lab, server, get, serverLog }) => {
        assert.match(serverLog(), /Port mapping: NAT-PMP on router 198\.18\.1\.1 opened/);
        const { run, result } = await get();
        assert.equal(result['path'], 'direct', describeRun(run));
        assert.deepEqual(mapping(result, 'server'), {
          protocol: 'natpmp',
          external: { ip: '203.0.113.21', port: 40001 },
        });
        process.kill(server.pid, 'SIGINT');
        await server.waitExit(10_000);
        assert.match(serverLog(), /removed from the router \(NAT-PMP\)/);
        assert.deepEqual(await mappedPorts(lab, 'server'), []);
      },
    );
  });

  it('a PCP router: symmetric/symmetric connects directly, PCP preferred to NAT-PMP', async () => {
    await withPair(
      { server: 'symmetric', client: 'symmetric', portMapping: { server: { upnp: false } } },
      {},
      async ({ lab, server, get }) => {
        const { run, result } = await get();
        assert.equal(result['path'], 'direct', describeRun(run));
        assert.deepEqual(mapping(result, 'server'), {
          protocol: 'pcp',
          external: { ip: '203.0.113.21', port: 40001 },
        });
        assert.match(run.stderr, /\(port 40001 opened on the server’s router by PCP\)/);
        await server.kill(5000);
        assert.deepEqual(await mappedPorts(lab, 'server'), []);
      },
    );
  });

  it('a dual-stack server with PCP and an IPv4-only client, both NATs changing ports: direct over the mapping', async () => {
    await withPair(
      {
        server: 'symmetric',
        client: 'symmetric',
        ipv6: { client: 'v4only' },
        portMapping: { server: { upnp: false } },
      },
      {},
      async ({ get }) => {
        const { run, result } = await get();
        assert.equal(result['path'], 'direct', describeRun(run));
        assert.equal(result['family'], 4, describeRun(run));
        assert.match(run.stderr, /\(port 40001 opened on the server’s router by PCP\)/);
      },
    );
  });

  it('no gateway that maps ports: the same path as before, and nothing said on the client', async () => {
    await withPair({ server: 'drop', client: 'drop' }, {}, async ({ get, serverLog }) => {
      const { run, result } = await get();
      assert.equal(result['path'], 'direct', describeRun(run));
      assert.match(run.stderr, /\(simultaneous open through both NATs\)/);
      assert.deepEqual(result['portMapping'], { client: null, server: null });
      assert.doesNotMatch(run.stderr, /Port mapping/);
      await waitFor(() => /Port mapping: no router answered/.test(serverLog()));
    });
  });
});

async function waitFor(check: () => boolean): Promise<void> {
  for (let i = 0; i < 100 && !check(); i++) await new Promise((r) => setTimeout(r, 100));
  assert.ok(check());
}
