import { test } from 'node:test';
import assert from 'node:assert/strict';
import { z } from 'zod';
import { parsePipeline } from '../src/graph/pipeline-file.js';
import { Graph } from '../src/graph/runtime.js';
import { defineNode } from '../src/graph/node-kind.js';
import { builtinRegistry } from '../src/nodes/index.js';
import { nowMs, type DepthFrame, type Packet } from '../src/graph/packets.js';
import { createLogger } from '../src/util/log.js';
import { LiveNormaliser, robustRange } from '../src/inference/live/live-normaliser.js';

const log = createLogger({ level: 'silent' });

/** A source of small RGB frames; `gapAt` skips sequence numbers to simulate a dropped run. */
const frameSource = defineNode({
  kind: 'frames-for-test',
  role: 'source',
  description: 'test frames',
  inputs: {},
  outputs: { video: 'video' },
  options: z.object({ count: z.number(), width: z.number().default(64), height: z.number().default(64), gapAt: z.number().default(-1), gap: z.number().default(0), intervalMs: z.number().default(0) }).strict(),
  create(o, ctx) {
    return {
      async run() {
        let seq = 0;
        for (let i = 0; i < o.count && !ctx.signal.aborted; i++) {
          if (i === o.gapAt) seq += o.gap;
          const data = new Uint8Array(o.width * o.height * 3);
          for (let j = 0; j < data.length; j++) data[j] = (j * 13 + i * 7) & 255;
          await ctx.emit('video', { type: 'video', streamId: 's', seq: seq++, ptsMs: i * 33, arrivalMs: nowMs(), width: o.width, height: o.height, data });
          if (o.intervalMs) await new Promise((r) => setTimeout(r, o.intervalMs));
        }
      },
    };
  },
});

function collector(out: Packet[]) {
  return defineNode({
    kind: 'collect',
    role: 'sink',
    description: 'collects packets',
    inputs: { in: 'any' },
    outputs: {},
    options: z.object({}).strict(),
    create() {
      return {
        process: (_p: string, pkt: Packet) => {
          out.push(pkt);
          if (pkt.type === 'depth') latencies.set(pkt, nowMs() - pkt.arrivalMs);
        },
      };
    },
  });
}

async function runDepth(sourceOpts: string, depthOpts: string, policy = 'block'): Promise<{ packets: Packet[]; graph: Graph }> {
  const packets: Packet[] = [];
  const registry = builtinRegistry().add(frameSource).add(collector(packets));
  const yaml = `
server: { enabled: false }
nodes:
  src: { kind: frames-for-test, options: ${sourceOpts} }
  depth: { kind: depth, options: ${depthOpts} }
  sink: { kind: collect }
edges:
  - { from: src, to: depth, queue: { capacity: 2, policy: ${policy} } }
  - { from: depth, to: sink, queue: { capacity: 64, policy: block } }
`;
  const graph = new Graph(parsePipeline(yaml, 'test.yaml', registry), { log });
  await graph.start();
  await graph.done;
  return { packets, graph };
}

const latencies = new WeakMap<Packet, number>();
const depthFrames = (ps: Packet[]) => ps.filter((p): p is DepthFrame => p.type === 'depth');

test('every source frame comes out once, in order, with its metadata', async () => {
  const { packets } = await runDepth('{ count: 21 }', '{ window: 8, overlap: 3, steps: 1, maxRes: 64 }');
  const d = depthFrames(packets);
  assert.deepEqual(d.map((f) => f.seq), Array.from({ length: 21 }, (_, i) => i));
  for (const f of d) {
    assert.equal(f.width, 64);
    assert.equal(f.data.length, 64 * 64);
    assert.ok(f.source && f.source.seq === f.seq, 'depth frame carries its RGB source');
    assert.ok(Number.isInteger(f.window) && f.window >= 0);
    let lo = Infinity, hi = -Infinity;
    for (const v of f.data) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
    assert.ok(lo >= 0 && hi <= 1, 'live output is normalised to [0,1]');
  }
  // windows: [0,8) [5,13) [10,18) [15,21); frames 0..7 are final after window 1
  assert.equal(d[0].window, 1);
  assert.equal(d[20].window, 3);
});

test('a gap larger than maxGap starts a new sequence (discontinuity downstream)', async () => {
  const { packets } = await runDepth('{ count: 12, gapAt: 6, gap: 20 }', '{ window: 4, overlap: 1, steps: 1, maxRes: 64, maxGap: 8 }');
  const d = depthFrames(packets);
  assert.equal(d.length, 12);
  const seqs = d.map((f) => f.seq);
  assert.deepEqual(seqs, [0, 1, 2, 3, 4, 5, 26, 27, 28, 29, 30, 31]);
  const disc = packets.findIndex((p) => p.type === 'discontinuity');
  assert.ok(disc > 0, 'a discontinuity was emitted');
  // All depth frames of the first sequence come before the discontinuity.
  assert.ok(packets.slice(0, disc).filter((p) => p.type === 'depth').length === 6);
});

test('overrun: a source faster than the model is shed at the drop-oldest edge and latency stays bounded', async () => {
  const { packets, graph } = await runDepth('{ count: 150, width: 256, height: 256, intervalMs: 2 }', '{ window: 6, overlap: 2, steps: 4, maxRes: 256, maxInFlight: 1, maxGap: 1000 }', 'drop-oldest');
  const d = depthFrames(packets);
  const dropped = await graph.metrics.value('dcl_edge_dropped_total', { edge: 'src.video->depth.video' });
  assert.ok(dropped > 0, `frames were dropped at the edge (${dropped})`);
  assert.equal(d.length + dropped, 150, 'every frame is either answered or counted as dropped');
  const seqs = d.map((f) => f.seq);
  assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b), 'still in order');
  // Bounded latency: the last answered frame waited about one window, not the whole backlog.
  const lat = d.map((f) => latencies.get(f)!);
  const first = Math.max(...lat.slice(0, 10));
  const last = Math.max(...lat.slice(-10));
  console.log(`overrun: ${d.length} answered, ${dropped} dropped, max latency first 10 ${first.toFixed(0)} ms, last 10 ${last.toFixed(0)} ms`);
  assert.ok(last < 3 * first + 250, `latency grew from ${first} to ${last} ms`);
});

test('robust range and the live normaliser', () => {
  const v = new Float32Array(1000);
  for (let i = 0; i < v.length; i++) v[i] = i / 1000;
  const [lo, hi] = robustRange(v, 0.02);
  assert.ok(Math.abs(lo - 0.02) < 0.003 && Math.abs(hi - 0.98) < 0.003, `${lo} ${hi}`);
  const n = new LiveNormaliser({ alpha: 0.5, clip: 0 });
  n.apply(Float32Array.from(v));
  assert.ok(Math.abs(n.range.lo - 0) < 0.002 && Math.abs(n.range.hi - 1) < 0.002);
  // A frame with half the range moves the range half way (alpha 0.5) instead of jumping.
  n.apply(Float32Array.from(v, (x) => x / 2));
  assert.ok(Math.abs(n.range.hi - 0.75) < 0.003, `hi ${n.range.hi}`);
  n.reset();
  assert.ok(Number.isNaN(n.range.lo));
  assert.throws(() => new LiveNormaliser({ alpha: 0 }), /alpha/);
});
