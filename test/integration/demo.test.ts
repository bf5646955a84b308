// The README's first command, `npm run demo` (rcpp2p --demo), as a real process: no root, no sshd.
// It runs the whole stack on loopback (embedded rendezvous, signaling, path race, TLS, transfers),
// so a plain `npm test` on a laptop covers every layer at least once.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { describe, it } from 'node:test';
import { RCPP2P_BIN } from '../helpers/lab-peers.js';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function runDemo(timeoutMs: number): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [RCPP2P_BIN, '--demo'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, RCPP2P_DEBUG: '' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the demo did not end within ${timeoutMs} ms:\n${stderr}`));
    }, timeoutMs);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('rcpp2p --demo (the README’s first command)', () => {
  it('moves files both ways over an authenticated connection and exits 0', async () => {
    const run = await runDemo(120_000);
    const all = run.stdout + run.stderr;
    assert.equal(run.code, 0, all);
    assert.match(all, /Connecting to rendezvous 127\.0\.0\.1:\d+/);
    assert.match(all, /Connected: LAN connection .*both peers are on this machine/);
    assert.match(all, /proved identity SHA256:[A-Za-z0-9+/]{43}/);
    assert.match(all, /welcome\.txt/, 'the file list names the server’s files');
    assert.match(all, /notes\.txt .*Complete\./, 'the put finished');
    assert.match(all, /photo\.jpg .*Complete\./, 'the get finished');
    assert.match(all, /Code: \d+-[a-z]{6}-[a-z]{6}\n/, 'the send printed its code');
    assert.match(all, /Received 1 file, .* into \S+received\./, 'the receiver took the send');
    assert.match(all, /The demo worked/);
  });
});
