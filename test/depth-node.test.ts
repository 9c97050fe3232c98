import { test, describe } from 'node:test';
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

/**
 * A source of small RGB frames. `gapAt` skips `gap` sequence numbers (and their time), `ptsStepMs`
 * sets the nominal rate (a tiny step: a source much faster than any engine), `discAt` sends a
 * discontinuity before that frame, `resizeAt` switches to `width2` x `height2` from that frame on.
 */
const frameSource = defineNode({
  kind: 'frames-for-test',
  role: 'source',
  description: 'test frames',
  inputs: {},
  outputs: { video: 'video' },
  options: z
    .object({
      count: z.number(),
      width: z.number().default(64),
      height: z.number().default(64),
      gapAt: z.number().default(-1),
      gap: z.number().default(0),
      intervalMs: z.number().default(0),
      ptsStepMs: z.number().default(33),
      discAt: z.number().default(-1),
      resizeAt: z.number().default(-1),
      width2: z.number().default(96),
      height2: z.number().default(64),
    })
    .strict(),
  create(o, ctx) {
    return {
      async run() {
        let seq = 0;
        for (let i = 0; i < o.count && !ctx.signal.aborted; i++) {
          if (i === o.gapAt) seq += o.gap;
          if (i === o.discAt) await ctx.emit('video', { type: 'discontinuity', streamId: 's', reason: 'test: stream restarted' });
          const [width, height] = o.resizeAt >= 0 && i >= o.resizeAt ? [o.width2, o.height2] : [o.width, o.height];
          const data = new Uint8Array(width * height * 3);
          for (let j = 0; j < data.length; j++) data[j] = (j * 13 + i * 7) & 255;
          await ctx.emit('video', { type: 'video', streamId: 's', seq, ptsMs: seq * o.ptsStepMs, arrivalMs: nowMs(), width, height, data });
          seq++;
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
  depth: { kind: depth, options: ${depthOpts.replace('{', '{ model: tiny-random,')} }
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
  const { packets } = await runDepth('{ count: 21 }', '{ window: 8, overlap: 3, steps: 1, maxRes: 64, stride: 1 }');
  const d = depthFrames(packets);
  assert.deepEqual(
    d.map((f) => f.seq),
    Array.from({ length: 21 }, (_, i) => i),
  );
  for (const f of d) {
    assert.equal(f.width, 64);
    assert.equal(f.data.length, 64 * 64);
    assert.ok(f.source && f.source.seq === f.seq, 'depth frame carries its RGB source');
    assert.ok(Number.isInteger(f.window) && f.window >= 0);
    let lo = Infinity,
      hi = -Infinity;
    for (const v of f.data) {
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
    assert.ok(lo >= 0 && hi <= 1, 'live output is normalised to [0,1]');
  }
  // windows: [0,8) [5,13) [10,18) [15,21); frames 0..7 are final after window 1
  assert.equal(d[0].window, 1);
  assert.equal(d[20].window, 3);
});

test('a time gap longer than maxGapMs starts a new sequence (discontinuity downstream)', async () => {
  // 20 missing frames at 33 ms = 660 ms without a frame.
  const { packets, graph } = await runDepth('{ count: 12, gapAt: 6, gap: 20 }', '{ window: 4, overlap: 1, steps: 1, maxRes: 64, maxGapMs: 500, stride: 1 }');
  assert.equal(await graph.metrics.value('dcl_depth_sequences_total', { node: 'depth', reason: 'gap' }), 1);
  assert.equal(await graph.metrics.value('dcl_depth_sequences_total', { node: 'depth', reason: 'start' }), 1);
  const d = depthFrames(packets);
  assert.equal(d.length, 12);
  const seqs = d.map((f) => f.seq);
  assert.deepEqual(seqs, [0, 1, 2, 3, 4, 5, 26, 27, 28, 29, 30, 31]);
  const disc = packets.findIndex((p) => p.type === 'discontinuity');
  assert.ok(disc > 0, 'a discontinuity was emitted');
  // All depth frames of the first sequence come before the discontinuity.
  assert.ok(packets.slice(0, disc).filter((p) => p.type === 'depth').length === 6);
});

test('overrun at a fixed stride of 1: a source faster than the model is shed at the drop-oldest edge and latency stays bounded', async () => {
  const { packets, graph } = await runDepth(
    '{ count: 150, width: 256, height: 256, intervalMs: 2 }',
    '{ window: 6, overlap: 2, steps: 4, maxRes: 256, maxInFlight: 1, stride: 1, maxGapMs: 100000 }',
    'drop-oldest',
  );
  const d = depthFrames(packets);
  const dropped = await graph.metrics.value('dcl_edge_dropped_total', { edge: 'src.video->depth.video' });
  assert.ok(dropped > 0, `frames were dropped at the edge (${dropped})`);
  const marked = d.reduce((a, f) => a + (f.droppedBefore ?? 0), 0);
  assert.equal(marked, dropped, 'every drop is marked on the next frame that passed');
  assert.equal(d.length + dropped, 150, 'every frame is either answered or counted as dropped');
  const seqs = d.map((f) => f.seq);
  assert.deepEqual(
    seqs,
    [...seqs].sort((a, b) => a - b),
    'still in order',
  );
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

describe('rate adaptation: a source much faster than the engine', () => {
  // 0.1 ms between frames (a nominal 10,000 fps): no engine keeps up, so k rises to maxStride once
  // the first window has been measured; a block edge makes the run lossless and repeatable.
  const W = 8,
    O = 4,
    P = W - O;
  const opts = `{ window: ${W}, overlap: ${O}, steps: 1, maxRes: 64, maxStride: 4 }`;

  /** Computed frames in output order, and for each the stride it was taken with (seq distance to the previous computed frame). */
  const computedSpacing = (d: DepthFrame[]) => {
    const c = d.filter((f) => !f.interpolated);
    return c.slice(1).map((f, i) => f.seq - c[i].seq);
  };

  test('every frame out once, in order, one sequence; interpolated frames flagged and lying between their neighbours', async () => {
    const n = 300;
    const { packets, graph } = await runDepth(`{ count: ${n}, ptsStepMs: 0.1 }`, opts);
    const d = depthFrames(packets);
    assert.deepEqual(
      d.map((f) => f.seq),
      Array.from({ length: n }, (_, i) => i),
      'output count equals input count, seq strictly increasing',
    );
    assert.ok(!packets.some((p) => p.type === 'discontinuity'), 'no sequence restart');
    const v = (reason: string) => graph.metrics.value('dcl_depth_sequences_total', { node: 'depth', reason });
    assert.deepEqual([await v('start'), await v('discontinuity'), await v('size'), await v('gap')], [1, 0, 0, 0]);
    const interpolated = d.filter((f) => f.interpolated).length;
    assert.ok(interpolated > n / 2, `most frames were interpolated (${interpolated} of ${n})`);
    assert.equal(await graph.metrics.value('dcl_depth_frames_total', { node: 'depth', kind: 'interpolated' }), interpolated);
    assert.equal(await graph.metrics.value('dcl_depth_frames_total', { node: 'depth', kind: 'computed' }), n - interpolated);
    assert.equal(await graph.metrics.value('dcl_depth_stride', { node: 'depth' }), 4);
    assert.equal(await graph.metrics.value('dcl_edge_dropped_total', { edge: 'src.video->depth.video' }), 0);

    // Each interpolated frame is the linear blend, in time, of the computed frames around it.
    let checked = 0;
    for (let i = 0; i < d.length; i++) {
      if (!d[i].interpolated) continue;
      let a = i - 1;
      while (d[a].interpolated) a--;
      let b = i + 1;
      while (d[b].interpolated) b++;
      const t = (d[i].ptsMs - d[a].ptsMs) / (d[b].ptsMs - d[a].ptsMs);
      assert.ok(t > 0 && t < 1);
      for (let p = 0; p < d[i].data.length; p += 97) {
        const want = (1 - t) * d[a].data[p] + t * d[b].data[p];
        assert.ok(Math.abs(d[i].data[p] - want) < 1e-5, `frame ${d[i].seq} pixel ${p}: ${d[i].data[p]} vs ${want}`);
      }
      assert.equal(d[i].source?.seq, d[i].seq, 'an interpolated frame carries its own RGB');
      checked++;
    }
    assert.equal(checked, interpolated);
  });

  test('the stride changes only at window boundaries (the new frames of a window share one spacing)', async () => {
    const { packets } = await runDepth(`{ count: 400, ptsStepMs: 0.1 }`, opts);
    const spacing = computedSpacing(depthFrames(packets));
    // spacing[j] is the stride engine frame j + 1 was taken with. The last computed frame closes the sequence (irregular).
    const body = spacing.slice(0, -1);
    assert.ok(
      body.slice(0, W - 1).every((s) => s === 1),
      `k = 1 before anything was measured: ${body.slice(0, W - 1)}`,
    );
    for (let start = W; start + P <= body.length + 1; start += P) {
      const block = body.slice(start - 1, start - 1 + P);
      assert.ok(
        block.every((s) => s === block[0]),
        `engine frames ${start}..${start + P - 1} share one stride: ${block}`,
      );
    }
    assert.ok(body.includes(4), 'the stride rose to maxStride');
  });

  test('a fixed stride computes exactly every k-th frame from the first', async () => {
    const { packets } = await runDepth(`{ count: 41, ptsStepMs: 33 }`, `{ window: ${W}, overlap: ${O}, steps: 1, maxRes: 64, stride: 3 }`);
    const d = depthFrames(packets);
    assert.equal(d.length, 41);
    assert.deepEqual(
      d.filter((f) => !f.interpolated).map((f) => f.seq),
      Array.from({ length: 14 }, (_, i) => 3 * i).concat([40]),
    );
  });

  test('fill: hold repeats the previous computed frame; none emits computed frames only and counts the others', async () => {
    const held = depthFrames(
      (await runDepth(`{ count: 30, ptsStepMs: 33 }`, `{ window: ${W}, overlap: ${O}, steps: 1, maxRes: 64, stride: 3, fill: hold }`)).packets,
    );
    assert.equal(held.length, 30);
    for (let i = 0; i < held.length; i++) {
      if (!held[i].interpolated) continue;
      let a = i - 1;
      while (held[a].interpolated) a--;
      assert.deepEqual(held[i].data, held[a].data, `frame ${held[i].seq} holds frame ${held[a].seq}`);
    }
    const none = await runDepth(`{ count: 30, ptsStepMs: 33 }`, `{ window: ${W}, overlap: ${O}, steps: 1, maxRes: 64, stride: 3, fill: none }`);
    const d = depthFrames(none.packets);
    assert.deepEqual(
      d.map((f) => f.seq),
      Array.from({ length: 10 }, (_, i) => 3 * i),
    );
    assert.ok(d.every((f) => !f.interpolated));
    assert.equal(await none.graph.metrics.value('dcl_node_frames_dropped_total', { node: 'depth', reason: 'stride' }), 20);
  });

  test('a real discontinuity and a frame-size change still start new sequences', async () => {
    const { packets, graph } = await runDepth(`{ count: 120, ptsStepMs: 0.1, discAt: 40, resizeAt: 80 }`, opts);
    const d = depthFrames(packets);
    assert.deepEqual(
      d.map((f) => f.seq),
      Array.from({ length: 120 }, (_, i) => i),
      'every frame out, in order',
    );
    const v = (reason: string) => graph.metrics.value('dcl_depth_sequences_total', { node: 'depth', reason });
    assert.deepEqual([await v('start'), await v('discontinuity'), await v('size'), await v('gap')], [1, 1, 1, 0]);
    const discs = packets
      .map((p, i) => [p, i] as const)
      .filter(([p]) => p.type === 'discontinuity')
      .map(([, i]) => i);
    assert.equal(discs.length, 2, 'a discontinuity downstream for each new sequence');
    assert.equal(packets.slice(0, discs[0]).filter((p) => p.type === 'depth').length, 40, 'the first sequence is complete before the first discontinuity');
    assert.ok(d.slice(80).every((f) => f.source?.width === 96) && d.slice(0, 80).every((f) => f.source?.width === 64), 'the new size from frame 80');
  });
});

test('WebSocket subscribers see interpolated frames flagged in the header', async () => {
  const { WebSocket } = await import('ws');
  const { decodeFrameMessage } = await import('../src/protocol/frame-message.js');
  const registry = builtinRegistry().add(frameSource);
  const yaml = `
server: { host: 127.0.0.1, port: 0 }
nodes:
  src: { kind: frames-for-test, options: { count: 90, intervalMs: 15 } }
  depth: { kind: depth, options: { model: tiny-random, window: 8, overlap: 4, steps: 1, maxRes: 64, stride: 3 } }
  ws: { kind: websocket, options: { viewer: false } }
edges:
  - { from: src, to: depth, queue: { capacity: 4, policy: block } }
  - { from: depth, to: ws, queue: { capacity: 64, policy: block } }
`;
  const graph = new Graph(parsePipeline(yaml, 'ws.yaml', registry), { log });
  await graph.start();
  const client = new WebSocket(`ws://127.0.0.1:${graph.address!.port}/ws?format=f32`);
  const headers: Array<{ seq: number; interpolated?: boolean }> = [];
  client.on('message', (data, isBinary) => isBinary && headers.push(decodeFrameMessage(data as Buffer).header));
  await new Promise((res, rej) => client.once('open', res).once('error', rej));
  await graph.done;
  client.close();
  const body = headers.filter((h) => h.seq < 89);
  assert.ok(body.length > 30, `received ${headers.length} frames`);
  for (const h of body) assert.equal(h.interpolated === true, h.seq % 3 !== 0, `seq ${h.seq}`);
  assert.ok(
    body.every((h) => h.interpolated === undefined || h.interpolated === true),
    'the field is absent on computed frames',
  );
});
