#!/usr/bin/env node
// The GStreamer addon parks one libuv threadpool thread per appsink pull and bus poll;
// the pool must be sized before any async I/O starts, hence before the CLI is imported.
process.env.UV_THREADPOOL_SIZE ??= '16';
const { main } = await import('../dist/cli/main.js');
await main(process.argv);
