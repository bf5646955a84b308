// The identity file: created 0600 and atomically, never silently replaced, and refused with a clear
// sentence when missing, damaged, or readable by others (like ssh does with private keys).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, X509Certificate } from 'node:crypto';
import {
  chmodSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  createIdentity,
  fingerprintOf,
  generateIdentity,
  loadIdentity,
  parseIdentity,
} from '../../../src/secure/identity.js';
import { isRcppError, type ErrorCode } from '../../../src/errors.js';

function rejectsWith(code: ErrorCode, pattern?: RegExp) {
  return (err: unknown): boolean => {
    assert.ok(isRcppError(err), `not an RcppError: ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (pattern) assert.match(`${err.message} ${err.hint}`, pattern);
    return true;
  };
}

describe('identity', () => {
  let dir = '';
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'rcpp2p-identity-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('fingerprintOf is SHA256: + unpadded base64 over the DER, from PEM or DER', () => {
    const id = generateIdentity('ASUS');
    const raw = new X509Certificate(id.certPem).raw;
    const want = `SHA256:${createHash('sha256').update(raw).digest('base64').replace(/=+$/, '')}`;
    assert.equal(fingerprintOf(id.certPem), want);
    assert.equal(fingerprintOf(raw), want);
    assert.equal(fingerprintOf(id.keyPem + id.certPem), want);
    assert.equal(id.fingerprint, want);
    assert.match(want, /^SHA256:[A-Za-z0-9+/]{43}$/); // the form peer records accept
    assert.throws(() => fingerprintOf('no pem here'), TypeError);
  });

  it('refuses names that could not go into a record', () => {
    for (const name of ['', '-x', 'a b', 'x'.repeat(65), 'Büro']) {
      assert.throws(() => generateIdentity(name), rejectsWith('USAGE', /not a valid peer name/));
    }
  });

  it('creates a 0600 file with key and certificate, atomically, and loads it back', async () => {
    const file = join(dir, 'sub', 'config.identity.pem');
    const created = await createIdentity(file, 'laptop');
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.equal(statSync(join(dir, 'sub')).mode & 0o777, 0o700);
    const text = readFileSync(file, 'utf8');
    assert.match(text, /-----BEGIN PRIVATE KEY-----[\s\S]+-----BEGIN CERTIFICATE-----/);
    assert.deepEqual(readdirSync(join(dir, 'sub')), ['config.identity.pem']); // no temp file left
    const loaded = await loadIdentity(file);
    assert.deepEqual(loaded, created);
    assert.equal(loaded.name, 'laptop');
  });

  it('does not replace an existing identity unless asked', async () => {
    const file = join(dir, 'keep.identity.pem');
    const first = await createIdentity(file, 'ASUS');
    await assert.rejects(
      createIdentity(file, 'ASUS'),
      rejectsWith('FILE_EXISTS', /already exists/),
    );
    assert.equal((await loadIdentity(file)).fingerprint, first.fingerprint);
    const second = await createIdentity(file, 'ASUS', { overwrite: true });
    assert.notEqual(second.fingerprint, first.fingerprint);
    assert.equal((await loadIdentity(file)).fingerprint, second.fingerprint);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.deepEqual(
      readdirSync(dir).filter((n) => n.includes('keep') && n !== 'keep.identity.pem'),
      [],
    );
  });

  it('says how to create a missing identity', async () => {
    await assert.rejects(
      loadIdentity(join(dir, 'nope.pem')),
      rejectsWith('CONFIG_MISSING', /--configure/),
    );
  });

  it('refuses a file others can read, with a chmod 600 hint', async () => {
    const file = join(dir, 'open.identity.pem');
    await createIdentity(file, 'ASUS');
    for (const mode of [0o644, 0o640, 0o604, 0o660]) {
      chmodSync(file, mode);
      await assert.rejects(
        loadIdentity(file),
        rejectsWith(
          'CONFIG_INVALID',
          new RegExp(`permissions 0${mode.toString(8)}.*chmod 600`, 's'),
        ),
      );
    }
    chmodSync(file, 0o400); // read-only for the owner is fine
    assert.equal((await loadIdentity(file)).name, 'ASUS');
  });

  it('names what is wrong with a damaged file', async () => {
    const a = generateIdentity('ASUS');
    const b = generateIdentity('ASUS');
    const table: [string, string, RegExp][] = [
      ['garbage', 'hello world\n', /no private key/],
      ['certificate only', a.certPem, /no private key/],
      ['key only', a.keyPem, /no certificate/],
      ['key of another identity', b.keyPem + a.certPem, /does not belong to the certificate/],
      [
        'broken base64',
        a.keyPem + a.certPem.replace(/\n[A-Za-z0-9+/]{20}/, '\nAAAA'),
        /certificate cannot be read/,
      ],
    ];
    for (const [what, text, pattern] of table) {
      assert.throws(
        () => parseIdentity(text, '/x/id.pem'),
        rejectsWith('CONFIG_INVALID', pattern),
        what,
      );
      const file = join(dir, `damaged-${what.replace(/\W/g, '-')}.pem`);
      writeFileSync(file, text, { mode: 0o600 });
      await assert.rejects(
        loadIdentity(file),
        rejectsWith('CONFIG_INVALID', new RegExp(file)),
        what,
      );
    }
  });

  it('refuses a folder where the file should be', async () => {
    await assert.rejects(loadIdentity(dir), rejectsWith('CONFIG_INVALID', /not a file/));
  });
});
