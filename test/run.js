#!/usr/bin/env node
// Runs the compiled test files (dist/test/**/*.test.js) in one node:test run, so CI reads one summary.
// Usage: node test/run.js [unit|integration|e2e|PATH-FRAGMENT ...]
// Suites that need root, sshd or network namespaces skip with a reason locally and fail under CI=true.
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { spawnSync } from 'node:child_process';

const root = join(import.meta.dirname, '..', 'dist', 'test');
const filters = process.argv.slice(2);

function collect(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return collect(path);
    return name.endsWith('.test.js') ? [path] : [];
  });
}

const order = ['unit', 'integration', 'e2e'];
const files = collect(root)
  .filter((f) => filters.length === 0 || filters.some((x) => relative(root, f).includes(x)))
  .sort((a, b) => {
    const ka = order.indexOf(relative(root, a).split('/')[0] ?? '');
    const kb = order.indexOf(relative(root, b).split('/')[0] ?? '');
    return ka - kb || a.localeCompare(b);
  });

if (files.length === 0) {
  console.error(
    `No test files matched ${filters.join(' ') || '(all)'} under ${root}. Run "npm run build" first.`,
  );
  process.exit(1);
}

const result = spawnSync(
  process.execPath,
  ['--test', '--test-concurrency=1', '--test-timeout=600000', '--test-reporter=spec', ...files],
  { stdio: 'inherit' },
);
process.exit(result.status ?? 1);
