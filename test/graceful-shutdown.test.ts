import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { WebSocket } from 'ws';

import { decodeFrameMessage } from '../src/protocol/frame-message.js';
import { ensureBuilt } from './helpers/build-cli.js';
import { serving, startCli as runCli } from './helpers/cli-process.js';
import { until, within } from './helpers/wait.js';

// The real CLI (bin/depthcrafter-live.js, which runs dist/) on a real GStreamer pipeline with a
// real WebSocket subscriber, stopped by a signal as a service manager would stop it.

const PIPELINE = `
name: shutdown-test
server: { host: 127.0.0.1, port: 0 }
nodes:
  source:
    kind: test-pattern
    options: { live: false, frames: -1, width: 160, height: 120, pattern: ball }
  ws:
    kind: websocket
edges:
  - from: source.video
    to: ws.frames
    queue: { capacity: 4, policy: block }
`;

describe('the CLI stops gracefully on a signal', () => {
  let tmp: string;
  let file: string;
  const children: ChildProcess[] = [];
  before(
    () => {
      ensureBuilt();
      tmp = mkdtempSync(join(tmpdir(), 'dcl-shutdown-'));
      file = join(tmp, 'endless.yaml');
      writeFileSync(file, PIPELINE);
    },
    { timeout: 120_000 },
  );
  after(() => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    rmSync(tmp, { recursive: true, force: true });
  });

  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    test(`${signal} with a subscriber connected: drains, logs, exits 0`, async () => {
      const run = runCli(['run', file]);
      children.push(run.child);
      const { ws } = await serving(run);
      assert.match(ws, /^ws:\/\/127\.0\.0\.1:\d+\/ws$/);
      assert.notEqual(new URL(ws).port, '0', 'an ephemeral port was chosen');

      const client = new WebSocket(ws);
      let frames = 0;
      let lastSeq = -1;
      let ordered = true;
      client.on('message', (data, isBinary) => {
        if (!isBinary) return;
        const { header, payload } = decodeFrameMessage(data as Buffer);
        if (header.seq <= lastSeq) ordered = false;
        lastSeq = header.seq;
        if (payload.byteLength === 160 * 120 * 3) frames++;
      });
      const closed = new Promise<number>((res) => client.on('close', (code) => res(code)));
      await within(5000, 'client open', new Promise((res, rej) => client.once('open', res).once('error', rej)));
      await until(() => frames >= 10, 10_000, 'frames before the signal');

      run.child.kill(signal);
      const { code, signal: killedBy } = await within(10_000, `exit after ${signal}`, run.exit).catch((e: Error) => {
        throw new Error(`${e.message}; stderr:\n${run.stderr.slice(-4000)}`);
      });
      assert.equal(killedBy, null, run.stderr);
      assert.equal(code, 0, run.stderr);
      assert.equal(await within(2000, 'client close', closed), 1001, 'the subscriber was told the pipeline is stopping');
      assert.ok(ordered, 'frames arrived in order');

      const msgs = run.lines.map((l) => String(l.msg));
      const stopping = run.lines.find((l) => String(l.msg).startsWith('stopping'));
      assert.ok(stopping, `a "stopping" line in:\n${msgs.join('\n')}`);
      assert.equal(stopping.signal, signal);
      assert.ok(msgs.includes('pipeline finished'), `"pipeline finished" in:\n${msgs.join('\n')}`);
      assert.ok(msgs.indexOf('pipeline finished') > msgs.indexOf(String(stopping.msg)));
      assert.ok(!run.lines.some((l) => Number(l.level) >= 50), `no error lines:\n${run.stderr}`);
    });
  }

  test('repeated runs stopped by SIGTERM all exit promptly (no GStreamer thread left blocked at exit)', async () => {
    // A bus poll left waiting on a stopped pipeline made process.exit() hang joining its thread in
    // some signal-stopped runs: run several, each streaming for a second.
    const once = async (): Promise<void> => {
      const run = runCli(['run', file, '--set', 'ws.path=/frames']);
      children.push(run.child);
      await serving(run);
      await delay(1000);
      run.child.kill('SIGTERM');
      const { code } = await within(6000, 'exit after SIGTERM', run.exit).catch((e: Error) => {
        run.child.kill('SIGKILL');
        throw new Error(`${e.message} (the process hung after: ${String(run.lines.at(-1)?.msg)})`);
      });
      assert.equal(code, 0, run.stderr);
    };
    for (let i = 0; i < 4; i++) await once();
  });

  test('GStreamer pipelines keep their bus unflushed at stop, so the bus poll ends', async () => {
    // The mitigation for the hang above, read back through GStreamer's own getter.
    const { createPipeline } = await import('../src/media/gst.js');
    const p = createPipeline('videotestsrc num-buffers=1 ! fakesink');
    assert.equal(p['auto-flush-bus'], false);
    p.stop();
  });

  test('a pipeline whose HTTP port is in use exits non-zero with a clear message', async () => {
    const blocker: Server = createServer();
    await new Promise<void>((res) => blocker.listen(0, '127.0.0.1', res));
    const port = (blocker.address() as AddressInfo).port;
    try {
      const run = runCli(['run', file, '--set', `server.port=${port}`]);
      children.push(run.child);
      const { code } = await within(15_000, 'exit', run.exit);
      assert.notEqual(code, 0, run.stderr);
      assert.equal(code, 1, run.stderr);
      assert.ok(run.stderr.includes(`cannot listen on 127.0.0.1:${port}: the port is in use (choose another with --set server.port=N)`), run.stderr);
      assert.doesNotMatch(run.stderr, /\n\s+at /, 'a message, not a stack trace');
    } finally {
      await new Promise((res) => blocker.close(res));
    }
  });

  test('a port in use is reported before any model loads', async () => {
    const blocker: Server = createServer();
    await new Promise<void>((res) => blocker.listen(0, '127.0.0.1', res));
    const port = (blocker.address() as AddressInfo).port;
    const withDepth = join(tmp, 'depth.yaml');
    writeFileSync(
      withDepth,
      PIPELINE.replace('  ws:\n', '  depth: { kind: depth, options: { model: models/synthetic-small, steps: 1 } }\n  ws:\n').replace(
        'to: ws.frames',
        'to: depth.video\n  - from: depth.depth\n    to: ws.frames',
      ),
    );
    try {
      const run = runCli(['run', withDepth, '--set', `server.port=${port}`]);
      children.push(run.child);
      const { code } = await within(15_000, 'exit', run.exit);
      assert.equal(code, 1, run.stderr);
      assert.ok(run.stderr.includes('the port is in use'), run.stderr);
      assert.doesNotMatch(run.stderr, /depth engine ready/, 'the model was never loaded');
    } finally {
      await new Promise((res) => blocker.close(res));
    }
  });

  test('a pipeline file with a mistake exits 2 before starting anything', async () => {
    const bad = join(tmp, 'bad.yaml');
    writeFileSync(bad, PIPELINE.replace('width: 160', 'width: 2'));
    const run = runCli(['run', bad]);
    children.push(run.child);
    const { code } = await within(15_000, 'exit', run.exit);
    assert.equal(code, 2, run.stderr);
    assert.match(run.stderr, /node "source", field "options\.width"/);
  });
});
