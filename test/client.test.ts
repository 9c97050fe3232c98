// The documented clients of the DCL1 stream against a real pipeline: the package's JS client
// (typed payloads, the stream filter, reconnection when the server comes back on its port) and
// the Python snippet in docs/websocket-protocol.md, run with Debian's python3 and numpy on a
// message the server sent.

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { WebSocket } from 'ws';
import { pino } from 'pino';
import { parsePipeline } from '../src/graph/pipeline-file.js';
import { Graph } from '../src/graph/runtime.js';
import { builtinRegistry } from '../src/nodes/index.js';
import { DclClient, toFrame, type ClientFrame } from '../src/client/dcl-client.js';
import { CLI, ROOT, ensureBuilt } from './helpers/build-cli.js';
import { until } from './helpers/wait.js';
import { freePort } from './helpers/net.js';

const graphs: Graph[] = [];
after(async () => {
  for (const g of graphs) await g.stop();
});

async function startGraph(port: number): Promise<Graph> {
  const yaml = `name: client-test
server: { host: 127.0.0.1, port: ${port} }
streams:
  - { name: a, source: { kind: synthetic, options: { seed: 1, width: 64, height: 64, fps: 20 } } }
  - { name: b, source: { kind: synthetic, options: { seed: 2, width: 64, height: 64, fps: 20 } } }
nodes:
  depth: { kind: depth, options: { model: models/tiny-random, window: 6, overlap: 2, steps: 1, maxRes: 64, stride: 1 } }
  ws: { kind: websocket, options: { viewer: false } }
edges:
  - { from: streams.video, to: depth.video, queue: { capacity: 8, policy: drop-oldest } }
  - { from: depth.depth, to: ws.frames, queue: { capacity: 64, policy: drop-oldest } }
`;
  const g = new Graph(parsePipeline(yaml, 'client-test.yaml', builtinRegistry(), { env: {} }), { log: pino({ level: 'silent' }) });
  graphs.push(g);
  await g.start();
  return g;
}

test('the JS client: typed depth of the chosen stream, and it reconnects when the server is back', { timeout: 150_000 }, async () => {
  const port = await freePort();
  let graph = await startGraph(port);
  const frames: ClientFrame[] = [];
  let closes = 0;
  const client = new DclClient(`ws://127.0.0.1:${port}/ws`, { format: 'f32', stream: ['b'], maxDelayMs: 500 });
  client.onFrame = (f) => frames.push(f);
  client.onClose = () => closes++;
  try {
    await until(() => frames.length >= 4, 60_000, 'depth frames');
    const f = frames[0];
    assert.equal(f.header.kind, 'depth');
    assert.ok(f.depth instanceof Float32Array && f.depth.length === f.header.width * f.header.height);
    assert.ok(f.depth.every((v) => v >= 0 && v <= 1));
    assert.ok(
      frames.every((x) => x.header.stream === 'b'),
      'the stream filter holds',
    );

    await graph.stop();
    await until(() => closes >= 1, 20_000, 'the client to see the server go');
    const before = frames.length;
    graph = await startGraph(port);
    await until(() => frames.length >= before + 4, 60_000, 'frames after the server came back');
    assert.ok(
      frames.slice(before).every((x) => x.header.stream === 'b'),
      'the subscription survives the reconnect',
    );
  } finally {
    client.close();
    await graph.stop();
  }
});

test('the package exports the client as depthcrafter-live/client', () => {
  ensureBuilt();
  const r = spawnSync(
    process.execPath,
    ['--input-type=module', '-e', "const m = await import('depthcrafter-live/client'); console.log(typeof m.DclClient, typeof m.toFrame)"],
    { cwd: ROOT, encoding: 'utf8' },
  );
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'function function');
  assert.ok(CLI);
});

test('the Python snippet in docs/websocket-protocol.md decodes a message the server sent (numpy)', { timeout: 120_000 }, async (t) => {
  const probe = spawnSync('/usr/bin/python3', ['-c', 'import numpy'], { encoding: 'utf8' });
  if (probe.status !== 0) return t.skip('python3 with numpy is not installed (apt-get install python3-numpy)');
  const doc = readFileSync(join(ROOT, 'docs', 'websocket-protocol.md'), 'utf8');
  const block = /<!-- python-decode: begin[^>]*-->\s*```python\n([\s\S]*?)```\s*<!-- python-decode: end -->/.exec(doc)?.[1];
  assert.ok(block, 'the marked Python block is in the doc');
  const port = await freePort();
  const graph = await startGraph(port);
  const dir = mkdtempSync(join(tmpdir(), 'dcl-py-'));
  try {
    const messages: Buffer[] = [];
    for (const format of ['f32', 'u16']) {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/ws?format=${format}&rgb=1&stream=a`);
      const got: Buffer[] = [];
      ws.on('message', (d: Buffer, isBinary) => isBinary && got.push(d));
      await until(() => got.length >= 4, 60_000, `${format} messages`);
      ws.close();
      messages.push(...got.slice(0, 2));
    }
    for (const [i, m] of messages.entries()) {
      writeFileSync(join(dir, `m${i}.bin`), m);
      const js = toFrame(m);
      const script: string = `${block}\nimport sys\nh, a = decode(open(sys.argv[1], "rb").read())\nprint(json.dumps({"kind": h["kind"], "format": h["format"], "shape": list(a.shape), "sum": float(np.asarray(a, dtype=np.float64).sum())}))\n`;
      const r: SpawnSyncReturns<string> = spawnSync('/usr/bin/python3', ['-c', script, join(dir, `m${i}.bin`)], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      const py = JSON.parse(r.stdout) as { kind: string; format: string; shape: number[]; sum: number };
      assert.equal(py.kind, js.header.kind);
      assert.equal(py.format, js.header.format);
      const values = js.depth ? Array.from(js.depth, (v) => (js.header.format === 'u16' ? v / 65535 : v)) : Array.from(js.rgb!);
      const sum = values.reduce((a, b) => a + b, 0);
      assert.deepEqual(py.shape, js.rgb ? [js.header.height, js.header.width, 3] : [js.header.height, js.header.width]);
      assert.ok(Math.abs(py.sum - sum) <= 1e-3 * Math.max(1, Math.abs(sum)), `${js.header.kind}/${js.header.format}: python ${py.sum} vs js ${sum}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await graph.stop();
  }
});
