// npm run bench -- --only index: the Napster-style index with 100,000 files (10,000 with --quick),
// on a real OpenSSH sshd on loopback (no NAT lab needed). Figures:
//   publish   a file server's start to "Index published" (scan, encode, upload), and the scan and
//             upload inside it; baseline: the same list made and stored with standard tools,
//             `find -printf | gzip | ssh rendezvous 'cat > file'`
//   search    `rcpp2p --search` start to exit (login, index list, read, check, match) and the
//             search inside it; baseline: `ssh rendezvous 'cat file' | gunzip | grep -i`, which
//             checks nothing; floor: `ssh rendezvous true`
//   size      the index as stored on the rendezvous
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setupIndexPeers } from '../test/helpers/index-peers.js';
import { runCommand } from '../test/helpers/processes.js';
import { SSH } from '../test/helpers/sshd.js';
import type { Series } from './stats.js';

type Record = (name: string, unit: Series['unit'], value: number) => void;

/** Files in the benchmark's folder (a --quick run, which only keeps the bench working, uses fewer). */
export const INDEX_FILES = 100_000;
export const QUICK_INDEX_FILES = 10_000;
const FOLDERS = 100;
const PUBLISH = 'rcpp2p index publish: server start to published';
const SCAN = 'rcpp2p index: scan + encode inside the server';
const UPLOAD = 'rcpp2p index: upload to the rendezvous';
const FIND = 'baseline: find -printf | gzip | ssh rendezvous cat >';
const SEARCH = 'rcpp2p --search: start to exit';
const SEARCH_INSIDE = 'rcpp2p --search: read, check and match inside';
const GREP = 'baseline: ssh rendezvous cat | gunzip | grep -i';
const SSH_TRUE = 'floor: ssh rendezvous true (loopback)';
const SIZE = 'index size on the rendezvous';

/** The table rows (name, then the baselines it is compared with), in order. */
export const INDEX_ROWS: [string, ...string[]][] = [
  [FIND],
  [PUBLISH, FIND],
  [SCAN],
  [UPLOAD],
  [SSH_TRUE],
  [GREP, SSH_TRUE],
  [SEARCH, GREP, SSH_TRUE],
  [SEARCH_INSIDE],
  [SIZE],
];

export async function indexBench(opts: {
  runs: number;
  record: Record;
  files: number;
}): Promise<void> {
  const peers = await setupIndexPeers('openssh', ['BIG'], { timeoutMs: 600_000 });
  try {
    const folder = peers.folders.get('BIG')!;
    await makeTree(folder, opts.files);
    const ssh = peers.rv.sshArgs!;
    const baselineFile = join(peers.rv.dir, 'baseline.txt.gz');
    for (let i = 0; i < opts.runs; i++) {
      const started = performance.now();
      const server = await peers.startServer('BIG');
      opts.record(PUBLISH, 's', (performance.now() - started) / 1000);
      const line =
        /Index published: ([\d,]+) files, .*\(([\d.]+ \S+) on the rendezvous; scan ([\d.]+) s, upload ([\d.]+) s\)/.exec(
          server.stderr(),
        );
      if (!line || line[1] !== opts.files.toLocaleString('en-US')) {
        throw new Error(`the file server did not publish ${opts.files} files:\n${server.stderr()}`);
      }
      opts.record(SCAN, 's', Number(line[3]));
      opts.record(UPLOAD, 's', Number(line[4]));
      opts.record(SIZE, 'MB', bytesOf(line[2]!) / 1e6);
      await peers.stopServer('BIG');

      opts.record(
        FIND,
        's',
        await timedShell(
          `find ${folder} -type f -printf '%P\\t%s\\t%T@\\n' | gzip | ${SSH} ${ssh.join(' ')} 'cat > ${baselineFile}'`,
        ),
      );
      const searchStarted = performance.now();
      const search = await peers.client(['--search', 'img_0042']);
      opts.record(SEARCH, 's', (performance.now() - searchStarted) / 1000);
      const inside = new RegExp(
        `Found ${hitsFor(opts.files)} files? .* \\(searched 1 index in ([\\d.]+) s\\)`,
      ).exec(search.stdout);
      if (search.code !== 0 || !inside) {
        throw new Error(
          `rcpp2p --search failed or found the wrong files:\n${search.stdout}${search.stderr}`,
        );
      }
      opts.record(SEARCH_INSIDE, 's', Number(inside[1]));
      opts.record(
        GREP,
        's',
        await timedShell(
          `${SSH} ${ssh.join(' ')} 'cat ${baselineFile}' | gunzip | grep -ci img_0042 | grep -qx ${hitsFor(opts.files)}`,
        ),
      );
      opts.record(SSH_TRUE, 's', await timedShell(`${SSH} ${ssh.join(' ')} true`));
    }
  } finally {
    await peers.stop();
  }
}

/** IMG_0042xx: files 4,200 to 4,299 when there are that many. */
function hitsFor(files: number): number {
  return Math.max(0, Math.min(100, files - 4200));
}

/** 100 folders of files named like a camera names them; sizes vary, content does not matter. */
async function makeTree(root: string, files: number): Promise<void> {
  for (let d = 0; d < FOLDERS; d++) {
    const dir = join(
      root,
      'photos',
      String(2000 + Math.floor(d / 10)),
      `album-${String(d).padStart(3, '0')}`,
    );
    await mkdir(dir, { recursive: true });
    const writes: Promise<void>[] = [];
    for (let f = 0; f < files / FOLDERS; f++) {
      const n = d * (files / FOLDERS) + f;
      writes.push(
        writeFile(join(dir, `IMG_${String(n).padStart(6, '0')}.jpg`), 'x'.repeat(n % 97)),
      );
    }
    await Promise.all(writes);
  }
}

async function timedShell(script: string): Promise<number> {
  const started = performance.now();
  const r = await runCommand('/bin/sh', ['-c', script], { timeoutMs: 600_000 });
  const s = (performance.now() - started) / 1000;
  if (r.code !== 0) throw new Error(`${script} failed (${String(r.code)}): ${r.stderr}`);
  return s;
}

/** "297.12 KiB" -> bytes. */
function bytesOf(text: string): number {
  const m = /^([\d.]+) (B|KiB|MiB|GiB)$/.exec(text);
  if (!m) throw new Error(`not a size: ${text}`);
  const unit = { B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3 }[
    m[2] as 'B' | 'KiB' | 'MiB' | 'GiB'
  ];
  return Number(m[1]) * unit;
}
