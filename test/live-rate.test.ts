import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { SourceRate } from '../src/inference/live/source-rate.js';
import { StrideController, ThroughputMeter } from '../src/inference/live/stride-controller.js';
import { lerpDepth, timeFraction } from '../src/inference/live/interpolate.js';
import { expectedLatency, frameWaits, triggerFrame } from '../src/inference/live/latency-model.js';
import { EdgeQueue } from '../src/graph/edge-queue.js';
import type { Packet, VideoFrame } from '../src/graph/packets.js';
import { z } from 'zod';
import { pino } from 'pino';
import { defineNode } from '../src/graph/node-kind.js';
import { parsePipeline } from '../src/graph/pipeline-file.js';
import { Graph } from '../src/graph/runtime.js';
import { builtinRegistry } from '../src/nodes/index.js';
import { WARMUP_FRAMES } from '../src/nodes/sources/synthetic.js';

// The pure parts of rate adaptation: what the live depth node measures, decides and promises.

describe('source rate from sequence numbers and timestamps', () => {
  test('a steady 30 fps source reads 30 fps, also when frames in between were dropped', () => {
    const r = new SourceRate();
    assert.ok(Number.isNaN(r.fps));
    for (let seq = 0; seq < 100; seq++) if (seq % 3 !== 1) r.observe(seq, (seq * 1000) / 30);
    assert.ok(Math.abs(r.fps - 30) < 1e-9, String(r.fps));
  });
  test('numbering that goes backwards (a new stream) starts the estimate over', () => {
    const r = new SourceRate();
    for (let seq = 0; seq < 10; seq++) r.observe(seq, seq * 100);
    assert.ok(Math.abs(r.fps - 10) < 1e-9);
    r.observe(0, 0);
    assert.ok(Number.isNaN(r.fps));
    r.observe(1, 40);
    assert.ok(Math.abs(r.fps - 25) < 1e-9);
  });
});

describe('stride controller', () => {
  const P = 8;
  test('keeps k = 1 until something was measured', () => {
    const c = new StrideController({ maxStride: 16 });
    assert.equal(c.next({ sourceFps: NaN, throughputFps: 10, backlog: 0, period: P }), 1);
    assert.equal(c.next({ sourceFps: 30, throughputFps: NaN, backlog: 0, period: P }), 1);
  });
  test('the smallest k that keeps the engine at most 85 % busy', () => {
    const c = new StrideController({ maxStride: 16 });
    assert.equal(c.next({ sourceFps: 15, throughputFps: 20, backlog: 0, period: P }), 1); // 75 % at k = 1
    assert.equal(new StrideController({ maxStride: 16 }).next({ sourceFps: 15, throughputFps: 17, backlog: 0, period: P }), 2); // 88 % at 1
    assert.equal(new StrideController({ maxStride: 16 }).next({ sourceFps: 30, throughputFps: 4, backlog: 0, period: P }), 9); // 30 / (0.85 * 4) = 8.8
  });
  test('a backlog is drained within the next window period', () => {
    // steady needs k = 3 (30 / 12 = 2.5 -> 2.94 at 85 %); 8 frames queued need fps (8 + 8) / (12 * 8) = 5.
    const c = new StrideController({ maxStride: 16 });
    assert.equal(c.next({ sourceFps: 30, throughputFps: 12, backlog: 8, period: P }), 5);
  });
  test('hysteresis: k comes down only to a stride that would be at most 70 % busy', () => {
    const c = new StrideController({ maxStride: 16 });
    c.next({ sourceFps: 30, throughputFps: 12, backlog: 8, period: P }); // 5
    assert.equal(c.next({ sourceFps: 30, throughputFps: 12, backlog: 0, period: P }), 4); // k 4: 62 %
    assert.equal(c.next({ sourceFps: 30, throughputFps: 12, backlog: 0, period: P }), 4); // k 3: 83 % > 70 %: stay
    assert.equal(c.next({ sourceFps: 30, throughputFps: 12.5, backlog: 0, period: P }), 4, 'small changes in throughput do not flap');
    assert.equal(c.next({ sourceFps: 30, throughputFps: 15, backlog: 0, period: P }), 3); // k 3: 67 %
    assert.equal(c.next({ sourceFps: 30, throughputFps: 10, backlog: 0, period: P }), 4, 'a slower engine raises k at once'); // 3: 100 %
    // After a start-up backlog pushed k high, it comes down in one window once the backlog is gone.
    const d = new StrideController({ maxStride: 16 });
    assert.equal(d.next({ sourceFps: 30, throughputFps: 20, backlog: 40, period: P }), 9);
    assert.equal(d.next({ sourceFps: 30, throughputFps: 20, backlog: 0, period: P }), 3, 'k 2 would be 75 % busy: 3'); // 50 %
  });
  test('never beyond maxStride', () => {
    const c = new StrideController({ maxStride: 4 });
    assert.equal(c.next({ sourceFps: 1000, throughputFps: 5, backlog: 50, period: P }), 4);
    assert.throws(() => new StrideController({ maxStride: 0 }), /maxStride/);
  });
});

test('throughput meter: frames per second of engine work, one sample per window, smoothed', () => {
  const t = new ThroughputMeter(0.5);
  for (let i = 0; i < 7; i++) t.record(10, false);
  assert.ok(Number.isNaN(t.fps), 'nothing until a window ran');
  t.record(330, true); // 8 frames in 400 ms
  assert.equal(t.fps, 20);
  for (let i = 0; i < 7; i++) t.record(10, false);
  t.record(730, true); // 8 frames in 800 ms: 10 fps -> EMA 15
  assert.equal(t.fps, 15);
});

test('throughput meter warm-up: the first window is not a sample, the next samples replace the value', () => {
  const window = (t: ThroughputMeter, busyMs: number) => {
    for (let i = 0; i < 7; i++) t.record(0, false);
    t.record(busyMs, true);
  };
  const t = new ThroughputMeter(0.5, { skip: 1, replace: 2 });
  window(t, 1600); // a cold first window: 8 frames in 1.6 s
  assert.ok(Number.isNaN(t.fps), 'the warm-up window is no sample');
  window(t, 800); // 10 fps, still warming up
  assert.equal(t.fps, 10);
  window(t, 200); // 40 fps: replaces, not averaged with 10
  assert.equal(t.fps, 40);
  window(t, 400); // 20 fps: averaged from here on (alpha 0.5)
  assert.equal(t.fps, 30);
  // Without warm-up the first window counts (the default).
  const plain = new ThroughputMeter(0.5);
  window(plain, 1600);
  assert.equal(plain.fps, 5);
});

describe('a live synthetic source that cannot keep its rate drops frames and counts them', () => {
  const seen: VideoFrame[] = [];
  const collect = defineNode({
    kind: 'collect-live',
    role: 'sink',
    description: 'keeps the frames',
    inputs: { in: 'video' },
    outputs: {},
    options: z.object({}).strict(),
    create: () => ({
      process(_port: string, p: Packet) {
        if (p.type === 'video') seen.push(p);
      },
    }),
  });
  const run = async (options: Record<string, unknown>) => {
    seen.length = 0;
    const yaml = `
name: late
server: { enabled: false }
nodes:
  src: { kind: synthetic, options: ${JSON.stringify(options)} }
  sink: { kind: collect-live }
edges:
  - { from: src.video, to: sink.in, queue: { capacity: 64, policy: block } }
`;
    const graph = new Graph(parsePipeline(yaml, 'late.yaml', builtinRegistry().add(collect)), { log: pino({ level: 'silent' }), noServer: true });
    await graph.start();
    await graph.done;
    return {
      frames: [...seen],
      counts: (await graph.frameCounts()).src,
      metric: await graph.metrics.value('dcl_node_frames_dropped_total', { node: 'src', reason: 'late' }),
    };
  };

  test('1000 fps at 256x256 with one buffer (a frame renders in milliseconds): the late frames are dropped, counted and skipped in seq', async () => {
    const FRAMES = 40;
    const { frames, counts, metric } = await run({ seed: 3, width: 256, height: 256, fps: 1000, frames: FRAMES, worker: 'never', ahead: 1 });
    const late = counts.dropped?.late ?? 0;
    assert.ok(late > 0, `no frame dropped: ${JSON.stringify(counts)}`);
    assert.equal(metric, late, 'dcl_node_frames_dropped_total{reason="late"}');
    assert.equal(counts.out, frames.length);
    assert.equal(frames.length + late, FRAMES, 'every frame index is either sent or counted as dropped');
    // Sequence numbers keep the source's numbering: the gaps are exactly the dropped frames.
    const seqs = frames.map((f) => f.seq);
    assert.ok(
      seqs.every((s, i) => i === 0 || s > seqs[i - 1]),
      'in order',
    );
    assert.deepEqual(seqs.slice(0, WARMUP_FRAMES), [0, 1, 2, 3].slice(0, WARMUP_FRAMES), 'no drops while rendering warms up');
    const gaps = seqs.reduce((a, s, i) => a + (i === 0 ? s : s - seqs[i - 1] - 1), 0) + (FRAMES - 1 - seqs.at(-1)!);
    assert.equal(gaps, late);
    // Presentation times stay on the source's clock (seq / fps), so consumers measure the true rate.
    for (const f of frames) assert.equal(f.ptsMs, f.seq);
  });

  test('not live: every frame, nothing dropped', async () => {
    const { frames, counts } = await run({ seed: 3, width: 64, height: 64, fps: 1000, frames: 12, live: false, worker: 'never' });
    assert.deepEqual(
      frames.map((f) => f.seq),
      [...Array(12).keys()],
    );
    assert.equal(counts.dropped, undefined);
  });
});

test('interpolation: linear in time between the computed neighbours', () => {
  const a = Float32Array.from([0, 0.5, 1]);
  const b = Float32Array.from([1, 0.5, 0]);
  assert.deepEqual([...lerpDepth(a, b, 0.25)], [0.25, 0.5, 0.75]);
  assert.deepEqual([...lerpDepth(a, b, 0)], [...a]);
  assert.throws(() => lerpDepth(a, new Float32Array(2), 0.5), /cannot interpolate/);
  assert.equal(timeFraction(100, 200, 125), 0.25);
  assert.equal(timeFraction(100, 200, 250), 1, 'clamped');
  assert.equal(timeFraction(100, 100, 100), 0.5, 'equal times: half way');
});

describe('latency model', () => {
  test('trigger frame: the engine frame whose arrival makes frame i come out', () => {
    const s = { window: 16, overlap: 8, chunk: 8 };
    // Window n covers [8n, 8n + 16) and runs at frame 8n + 15; frames [8n, 8n + 8) are final after it.
    assert.equal(triggerFrame(16, s), 31);
    assert.equal(triggerFrame(23, s), 31);
    assert.equal(triggerFrame(24, s), 39);
    // W 32 / O 8 (S = 24), chunk 8: chunk [24, 32) is final after window 1, which runs at frame 24 + 31 = 55.
    assert.equal(triggerFrame(24, { window: 32, overlap: 8, chunk: 8 }), 55);
    // Chunk [40, 48) ends in window 1's final range [24, 48): also 55.
    assert.equal(triggerFrame(47, { window: 32, overlap: 8, chunk: 8 }), 55);
  });
  test('waits over one period match a direct simulation of the session schedule', () => {
    for (const [W, O, k] of [
      [16, 8, 1],
      [16, 8, 3],
      [32, 8, 2],
      [8, 6, 1],
      [10, 3, 4],
    ]) {
      const shape = { window: W, overlap: O, chunk: 8, stride: k };
      // Simulate: engine frame f arrives; windows run at W - 1 + nS; after window n, frames < (n+1)S are final; chunks of 8 decode when complete.
      const S = W - O;
      const out = new Map<number, number>();
      let decoded = 0;
      for (let f = 0; f < 400; f++) {
        if (f >= W - 1 && (f - (W - 1)) % S === 0) {
          const final = ((f - (W - 1)) / S + 1) * S;
          while (decoded + 8 <= final) {
            for (let i = decoded; i < decoded + 8; i++) out.set(i, f);
            decoded += 8;
          }
        }
      }
      const waits = frameWaits(shape);
      const period = waits.length / k;
      const first = Math.ceil(W / period) * period;
      const expected: number[] = [];
      for (let i = first; i < first + period; i++) for (let j = 1; j <= k; j++) expected.push(k * (out.get(i)! - i) + k - j);
      assert.deepEqual(waits, expected, `W ${W} O ${O} k ${k}`);
    }
  });
  test('expected latency: the demo (W 16, O 8, 15 fps) and the README formula', () => {
    // Engine frames wait 15..8 frames (mean 11.5); at k = 1 and 15 fps plus S / thr = 8 / 20 s of work.
    const e = expectedLatency({ window: 16, overlap: 8, chunk: 8, stride: 1 }, 15, 20);
    assert.ok(Math.abs(e.max - (15 / 15 + 0.4)) < 1e-9, String(e.max));
    assert.ok(Math.abs(e.mean - (11.5 / 15 + 0.4)) < 1e-9, String(e.mean));
    assert.ok(Math.abs(e.p95 - (15 / 15 + 0.4)) < 1e-9, String(e.p95));
    // Stride 2 at 30 fps: the same engine schedule in time, plus the skipped frame's own wait.
    const e2 = expectedLatency({ window: 16, overlap: 8, chunk: 8, stride: 2 }, 30, 20);
    assert.ok(Math.abs(e2.max - (31 / 30 + 0.4)) < 1e-9, String(e2.max));
  });
});

describe('edge queue marks drops on the next frame that passes (DISCONT)', () => {
  const frame = (seq: number): VideoFrame => ({ type: 'video', streamId: 's', seq, ptsMs: seq, arrivalMs: 0, width: 1, height: 1, data: new Uint8Array(3) });
  const seqAndMark = (p: Packet) => (p.type === 'video' ? [p.seq, p.droppedBefore ?? 0] : [p.type, 0]);
  test('drop-oldest: the frame after the dropped ones carries their count', async () => {
    const q = new EdgeQueue('e', 2, 'drop-oldest');
    for (let s = 0; s < 5; s++) q.offer(frame(s)); // keeps 3, 4; drops 0, 1, 2
    assert.deepEqual(seqAndMark(await q.take()), [3, 3]);
    assert.deepEqual(seqAndMark(await q.take()), [4, 0]);
    assert.equal(q.dropped, 3);
  });
  test('drop-newest: the next frame offered after the drop carries it, frames queued before do not', async () => {
    const q = new EdgeQueue('e', 2, 'drop-newest');
    for (let s = 0; s < 4; s++) q.offer(frame(s)); // keeps 0, 1; drops 2, 3
    assert.deepEqual(seqAndMark(await q.take()), [0, 0]);
    assert.deepEqual(seqAndMark(await q.take()), [1, 0]);
    q.offer(frame(4));
    assert.deepEqual(seqAndMark(await q.take()), [4, 2]);
  });
  test('a control packet in between does not take the mark', async () => {
    const q = new EdgeQueue('e', 1, 'drop-oldest');
    q.offer(frame(0));
    q.offer(frame(1)); // drops 0
    q.offer({ type: 'discontinuity', streamId: 's', reason: 'x' });
    assert.deepEqual(seqAndMark(await q.take()), [1, 1]);
    assert.equal((await q.take()).type, 'discontinuity');
  });
});
