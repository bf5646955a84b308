#!/usr/bin/env node
// Receiving a tree of small files keeps up to 32 fsyncs in flight (src/transfer/stream-files.ts);
// they wait on the disk, not the CPU, and libuv's default pool of 4 threads would run 4 at a time.
// Set before anything uses the pool; a value the user set wins.
process.env['UV_THREADPOOL_SIZE'] ??= '16';
const { main } = await import('../dist/src/cli/main.js');

process.exitCode = await main(process.argv);
