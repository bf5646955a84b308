// The config and the identity are refused, like ssh's StrictModes, when others could have written
// them: the file group/other-writable, or the folder holding it (unless it has the sticky bit).
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../../src/config/config.js';
import { isRcppError } from '../../src/errors.js';
import { refuseIfOthersCanWrite } from '../../src/file-trust.js';
import { createIdentity, loadIdentity } from '../../src/secure/identity.js';

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    assert.ok(isRcppError(err), String(err));
    return err.code;
  }
  return 'OK';
}

describe('files that decide whom we trust', () => {
  let base: string;

  before(async () => {
    base = await mkdtemp(join(tmpdir(), 'rcpp2p-trust-'));
  });
  after(async () => {
    await rm(base, { recursive: true, force: true });
  });

  it('a config others can write is refused before it is read, with the chmod to run', async () => {
    const file = join(base, 'open.json');
    await writeFile(file, '{}');
    await chmod(file, 0o666);
    await assert.rejects(loadConfig(file), (err: Error & { code?: string; hint?: string }) => {
      assert.equal(err.code, 'CONFIG_INVALID');
      assert.match(err.message, /can be changed by other users \(permissions 0666\)/);
      assert.equal(err.hint, `Run: chmod go-w ${file}`);
      return true;
    });
    await chmod(file, 0o644);
    // Readable by others is fine for a config (it holds no secret): now it is read, and found empty.
    await assert.rejects(loadConfig(file), (err: Error) => !/other users/.test(err.message));
  });

  it('a config in a folder others can write is refused; a sticky folder (like /tmp) is fine', async () => {
    const dir = join(base, 'shared');
    const sticky = join(base, 'sticky');
    for (const d of [dir, sticky]) {
      await rm(d, { recursive: true, force: true });
      await mkdir(d);
      await writeFile(join(d, 'c.json'), '{}', { mode: 0o600 });
    }
    await chmod(dir, 0o777);
    await chmod(sticky, 0o1777);
    await assert.rejects(
      refuseIfOthersCanWrite(join(dir, 'c.json'), 'The configuration'),
      /folder .* can be changed by other users/,
    );
    await refuseIfOthersCanWrite(join(sticky, 'c.json'), 'The configuration');
  });

  it('an identity (0600) in a folder others can write is refused', async () => {
    const dir = join(base, 'id');
    await mkdir(dir, { mode: 0o700 });
    const file = join(dir, 'peer.identity.pem');
    await createIdentity(file, 'peer');
    assert.equal((await loadIdentity(file)).certPem.length > 0, true);
    await chmod(dir, 0o777);
    assert.equal(await code(loadIdentity(file)), 'CONFIG_INVALID');
  });
});
