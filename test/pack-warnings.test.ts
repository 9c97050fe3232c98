// The depth node is honest about its model: a pack with random weights says its depth is noise, a
// pack trained on synthetic scenes says so when real video feeds it (camera, RTSP, file, test
// pattern), and says nothing on the synthetic scenes it was trained for.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { parsePipeline } from '../src/graph/pipeline-file.js';
import { Graph } from '../src/graph/runtime.js';
import { builtinRegistry } from '../src/nodes/index.js';

async function warningFor(source: string, model: string): Promise<unknown> {
  const yaml = `nodes:
  src: ${source}
  depth: { kind: depth, options: { model: ${model}, window: 4, overlap: 1, steps: 1, stride: 1 } }
  ws: { kind: websocket, options: { viewer: false } }
edges:
  - { from: src, to: depth }
  - { from: depth, to: ws }
`;
  const g = new Graph(parsePipeline(yaml, 'warn.yaml', builtinRegistry(), { env: {} }), { log: pino({ level: 'silent' }), noServer: true });
  await g.start();
  const w = g.status.get('depth')?.details?.packWarning;
  await g.stop();
  return w;
}

test('pack warnings: random weights, and a synthetic-only pack on real video (not on synthetic scenes)', { timeout: 120_000 }, async () => {
  const pattern = '{ kind: test-pattern, options: { frames: 8, width: 64, height: 64, live: false } }';
  const scene = '{ kind: synthetic, options: { frames: 8, width: 64, height: 64, live: false } }';
  assert.match(String(await warningFor(pattern, 'models/tiny-random')), /"tiny-random" has random weights/);
  assert.match(
    String(await warningFor(pattern, 'models/synthetic-small')),
    /"synthetic-small" was trained on synthetic scenes only: on test-pattern input its depth is not reliable/,
  );
  assert.equal(await warningFor(scene, 'models/synthetic-small'), undefined, 'no warning on the scenes it was trained for');
});
