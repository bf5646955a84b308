// The benchmark itself works: `node dist/bench/main.js --quick` builds its labs, measures every
// figure once and writes valid results. No figure is checked against a threshold: benchmarks are
// not timed tests, and this machine's speed is not the product's.
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';
import { benchCapabilities } from '../../bench/capabilities.js';
import type { Series } from '../../bench/stats.js';
import { skipUnless } from '../helpers/capability.js';
import { runCommand } from '../helpers/processes.js';

const BENCH = fileURLToPath(new URL('../../bench/main.js', import.meta.url));
const skip = skipUnless(...benchCapabilities());

const SMALL = 'folder of 1000 x 4 KiB';
const EXPECTED = [
  'rcpp2p get, direct, unlimited link',
  'rcpp2p put, direct, unlimited link',
  'iperf3 (raw TCP), unlimited link',
  'Node TCP socket -> file (1 MiB writes), unlimited link',
  'Node TLS 1.3 socket -> file (1 MiB writes), unlimited link',
  'scp (default cipher), unlimited link',
  'scp (aes128-gcm), unlimited link',
  'CPU, rcpp2p get, direct',
  'CPU, rcpp2p put, direct',
  'CPU, rcpp2p 1-byte get (s, both peers)',
  'CPU, Node TLS 1.3 socket -> file (1 MiB writes)',
  'CPU, scp (default cipher)',
  'CPU, scp (aes128-gcm)',
  'rcpp2p get, direct, 200 Mbit/s link',
  'rcpp2p put, direct, 200 Mbit/s link',
  'iperf3 (raw TCP), 200 Mbit/s link',
  'Node TCP socket -> file (1 MiB writes), 200 Mbit/s link',
  `rcpp2p get, ${SMALL}`,
  `rcpp2p put, ${SMALL}`,
  `ssh host tar c | tar x, ${SMALL}`,
  `tar c | ssh host tar x, ${SMALL}`,
  `CPU, rcpp2p get, ${SMALL}`,
  `CPU, rcpp2p put, ${SMALL}`,
  `CPU, ssh host tar c | tar x, ${SMALL}`,
  `CPU, tar c | ssh host tar x, ${SMALL}`,
  'rcpp2p get, relayed',
  'OpenSSH relay through the rendezvous (ssh -R / -W)',
  'rcpp2p 1-byte get, direct: command start to exit',
  'rcpp2p direct: link set-up inside the process',
  'rcpp2p 1-byte get, relayed: command start to exit',
  'rcpp2p relayed: link set-up inside the process',
  'floor: ssh rendezvous true (same key)',
  'floor: node -e 0',
  'rcpp2p --version: command start to exit',
  'client peak RSS (direct get, 1 file)',
  'client peak RSS (direct put, 1 file)',
  'file server peak RSS (direct gets and puts, 1 file)',
  `client peak RSS (get, ${SMALL})`,
  `client peak RSS (put, ${SMALL})`,
  `file server peak RSS (gets and puts, ${SMALL})`,
  'client peak RSS (relayed get)',
  'file server peak RSS (relayed gets)',
  'rcpp2p index publish: server start to published',
  'rcpp2p --search: start to exit',
];

describe('npm run bench -- --quick', { skip }, () => {
  let out: string | undefined;

  after(async () => {
    if (out) await rm(out, { recursive: true, force: true });
  });

  it('measures every figure and writes the JSON, the table and the chart', async () => {
    out = await mkdtemp(join(tmpdir(), 'rcpp2p-bench-'));
    const r = await runCommand(process.execPath, [BENCH, '--quick', '--out', out], {
      timeoutMs: 540_000,
    });
    assert.equal(r.code, 0, `bench --quick failed:\n${r.stdout}\n${r.stderr}`);
    const files = await readdir(out);
    const json = files.find((f) => f.endsWith('.json'));
    assert.ok(json, `no JSON in ${files.join(', ')}`);
    const stem = json.slice(0, -'.json'.length);
    assert.ok(files.includes(`${stem}.svg`) && files.includes(`${stem}.txt`), files.join(', '));

    const results = JSON.parse(await readFile(join(out, json), 'utf8')) as {
      quick: boolean;
      runs: number;
      series: Series[];
    };
    assert.equal(results.quick, true);
    const byName = new Map(results.series.map((s) => [s.name, s]));
    assert.deepEqual(
      EXPECTED.filter((name) => !byName.has(name)),
      [],
      'series missing from the results',
    );
    for (const s of results.series) {
      assert.ok(s.values.length >= results.runs, `${s.name}: ${s.values.length} values`);
      for (const v of s.values) assert.ok(Number.isFinite(v) && v > 0, `${s.name}: ${v}`);
    }
    const svg = await readFile(join(out, `${stem}.svg`), 'utf8');
    assert.match(svg, /^<svg [^>]*>[\s\S]*<\/svg>\n$/);
    assert.match(r.stdout, /rcpp2p get, relayed/);
  });
});
