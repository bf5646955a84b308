// The port-mapping setting from the command line, in-process: --configure --yes --port-mapping
// auto|off (and --no-port-mapping) save it; a bad value is refused with a sentence; a run's
// --no-port-mapping and RCPP2P_PORT_MAPPING_PROTOCOLS shape what the link layer is asked for.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { validateConfig, type Config } from '../../src/config/config.js';
import { portMappingSettings, type CommandContext } from '../../src/cli/context.js';
import type { CliIo } from '../../src/cli/io.js';
import { main } from '../../src/cli/main.js';
import { isRcppError } from '../../src/errors.js';

function memoryIo(cwd: string, env: NodeJS.ProcessEnv = {}): CliIo & { err(): string } {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let errText = '';
  stderr.on('data', (c: Buffer) => (errText += c.toString()));
  stdout.resume();
  return { stdin: new PassThrough(), stdout, stderr, env, cwd, err: () => errText };
}

describe('the port-mapping setting', () => {
  let dir = '';
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rcpp2p-portmap-cli-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  const configure = async (name: string, extra: string[]) => {
    const config = join(dir, `${name}.json`);
    const io = memoryIo(dir);
    const code = await main(
      [
        'node',
        'rcpp2p',
        '--configure',
        '--yes',
        '--config',
        config,
        '--rendezvous',
        'peer@203.0.113.10',
        '--client-name',
        'LAPTOP',
        '--port',
        '40002',
        ...extra,
      ],
      io,
    );
    const saved =
      code === 0
        ? (JSON.parse(await readFile(config, 'utf8')) as Record<string, unknown>)
        : undefined;
    return { code, saved, err: io.err() };
  };

  it('--configure --yes without it writes nothing (auto is the default)', async () => {
    const r = await configure('default', []);
    assert.equal(r.code, 0, r.err);
    assert.equal(r.saved?.['portMapping'], undefined);
  });

  it('--port-mapping off and --no-port-mapping save "off"; --port-mapping auto saves "auto"', async () => {
    assert.equal((await configure('off', ['--port-mapping', 'off'])).saved?.['portMapping'], 'off');
    assert.equal((await configure('no', ['--no-port-mapping'])).saved?.['portMapping'], 'off');
    assert.equal(
      (await configure('auto', ['--port-mapping', 'auto'])).saved?.['portMapping'],
      'auto',
    );
  });

  it('--port-mapping maybe is refused with a sentence and exit code 2', async () => {
    const r = await configure('bad', ['--port-mapping', 'maybe']);
    assert.equal(r.code, 2);
    assert.match(r.err, /--port-mapping is "auto" or "off", not "maybe"\./);
  });

  it('a config file with another value names the field', () => {
    assert.throws(
      () =>
        validateConfig({
          rendezvous: { host: 'rv', user: 'peer' },
          auth: { method: 'agent' },
          port: 40001,
          portMapping: 'upnp',
        }),
      (err) =>
        isRcppError(err) &&
        err.code === 'CONFIG_INVALID' &&
        /portMapping must be one of "auto", "off" \(it is "upnp"\)/.test(err.message),
    );
  });

  const config = (portMapping?: 'auto' | 'off'): Config =>
    validateConfig({
      rendezvous: { host: 'rv', user: 'peer' },
      auth: { method: 'agent' },
      port: 40001,
      ...(portMapping && { portMapping }),
    });
  const ctx = (noPortMapping: boolean, env: NodeJS.ProcessEnv = {}): CommandContext =>
    ({ noPortMapping, io: memoryIo(dir, env) }) as unknown as CommandContext;

  it('a run: the config decides, --no-port-mapping overrides, the env var narrows the protocols', () => {
    assert.deepEqual(portMappingSettings(ctx(false), config()), { mode: 'auto' });
    assert.deepEqual(portMappingSettings(ctx(false), config('off')), { mode: 'off' });
    assert.deepEqual(portMappingSettings(ctx(true), config('auto')), { mode: 'off' });
    assert.deepEqual(
      portMappingSettings(
        ctx(false, { RCPP2P_PORT_MAPPING_PROTOCOLS: 'natpmp, upnp' }),
        config('auto'),
      ),
      { mode: 'auto', protocols: ['natpmp', 'upnp'] },
    );
    assert.throws(
      () =>
        portMappingSettings(ctx(false, { RCPP2P_PORT_MAPPING_PROTOCOLS: 'upnp,ssdp' }), config()),
      (err) => isRcppError(err) && err.code === 'USAGE' && /"ssdp"/.test(err.message),
    );
  });
});
