// The command budget: what a builder lets into a manifest, a reader always accepts.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  CommandBudget,
  PROBLEM_MESSAGE_CHARS,
  PROBLEM_PATH_CHARS,
} from '../../../src/protocol/budget.js';
import {
  MAX_DIRS_PER_COMMAND,
  MAX_MANIFEST_BYTES,
  MAX_REQUEST_PATHS,
} from '../../../src/protocol/limits.js';

describe('the command budget', () => {
  it('counts folder entries: the one past MAX_DIRS_PER_COMMAND is refused and nothing is counted for it', () => {
    const b = CommandBudget.forReading();
    for (let k = 0; k < MAX_DIRS_PER_COMMAND; k++) assert.ok(b.addDir('d'));
    assert.equal(b.addDir('d'), false);
    assert.equal(b.dirs, MAX_DIRS_PER_COMMAND);
    assert.ok(b.addFile('f'), 'files have their own count');
  });

  it('counts bytes of names: long paths run out before the file count does', () => {
    const b = CommandBudget.forReading();
    const path = 'p'.repeat(4000);
    let files = 0;
    while (b.addFile(path)) files++;
    // the manifest's bytes, each path 4,000 bytes plus its JSON overhead
    const most = MAX_MANIFEST_BYTES / 4000;
    assert.ok(files > most * 0.95 && files < most, `${files} files of 4,000 bytes`);
  });

  it('a manifest built to the limit, plus the largest problem for every requested path, is read whole', () => {
    const builder = CommandBudget.forBuilding();
    const entries: ['file' | 'dir', string][] = [];
    for (let k = 0; ; k++) {
      const path = `tree/${'x'.repeat(3000)}/${k}`;
      const kind = k % 3 === 0 ? 'dir' : 'file';
      if (!(kind === 'dir' ? builder.addDir(path) : builder.addFile(path))) break;
      entries.push([kind, path]);
    }
    const problem: [string, string] = [
      'p'.repeat(PROBLEM_PATH_CHARS) + '…',
      'm'.repeat(PROBLEM_MESSAGE_CHARS - 1) + '…',
    ];
    for (let r = 0; r < MAX_REQUEST_PATHS; r++) builder.addRootProblem(...problem);
    const reader = CommandBudget.forReading();
    for (const [kind, path] of entries)
      assert.ok(kind === 'dir' ? reader.addDir(path) : reader.addFile(path));
    for (let r = 0; r < MAX_REQUEST_PATHS; r++)
      assert.ok(reader.addProblem(...problem), `problem ${r}`);
    assert.equal(reader.bytes, builder.bytes);
  });
});
