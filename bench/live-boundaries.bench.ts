// Do window boundaries show in the live output? Runs the `synthetic` source through the streaming
// depth node (live normalisation on, as served) and the same frames through a DepthEngine without
// `live` (raw depth), then compares the mean absolute frame-to-frame change of consecutive frames
// finalised by different windows ("boundary" pairs) with pairs finalised by one window ("within").
// A ratio near 1 means no jump at boundaries. The synthetic scene's ground-truth disparity gives
// the scene's own motion per pair for reference.
//   node --import tsx bench/live-boundaries.bench.ts [--frames 300] [--window 16 --overlap 8 --steps 2 --size 256 --seed 7 --alpha 0.05 --model models/tiny-random]
import { parseArgs } from 'node:util';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { parsePipeline } from '../src/graph/pipeline-file.js';
import { Graph } from '../src/graph/runtime.js';
import { defineNode } from '../src/graph/node-kind.js';
import { builtinRegistry } from '../src/nodes/index.js';
import type { Packet, VideoFrame } from '../src/graph/packets.js';
import { DepthEngine } from '../src/inference/engine/depth-engine.js';
import { LiveNormaliser } from '../src/inference/live/live-normaliser.js';
import { createLogger } from '../src/util/log.js';

const { values } = parseArgs({
  options: {
    frames: { type: 'string', default: '300' },
    window: { type: 'string', default: '16' },
    overlap: { type: 'string', default: '8' },
    steps: { type: 'string', default: '2' },
    size: { type: 'string', default: '256' },
    seed: { type: 'string', default: '7' },
    alpha: { type: 'string', default: '0.05' },
    model: { type: 'string', default: 'models/tiny-random' },
  },
});
const N = Number(values.frames),
  W = Number(values.window),
  O = Number(values.overlap),
  steps = Number(values.steps),
  size = Number(values.size);
const alpha = Number(values.alpha);
const NOISE_SEED = 42; // the depth node's default seed; the raw engine uses the same

interface Out {
  seq: number;
  window: number;
  depth: Float32Array;
}

// 1. Live output, as the depth node emits it (lossless edge, so every source frame gets a depth frame).
const live: Out[] = [];
const video: VideoFrame[] = [];
const probe = defineNode({
  kind: 'boundary-probe',
  role: 'sink',
  description: 'collects depth frames',
  inputs: { in: 'depth' },
  outputs: {},
  options: z.object({}).strict(),
  create: () => ({
    process(_p: string, p: Packet) {
      if (p.type === 'depth') live.push({ seq: p.seq, window: p.window, depth: p.data.slice() });
    },
  }),
});
const yaml = `
server: { enabled: false }
nodes:
  source: { kind: synthetic, options: { seed: ${values.seed}, width: ${size}, height: ${size}, fps: 15, frames: ${N}, live: false } }
  depth: { kind: depth, options: { model: ${JSON.stringify(values.model)}, window: ${W}, overlap: ${O}, steps: ${steps}, maxRes: ${size}, seed: ${NOISE_SEED}, rangeAlpha: ${alpha}, maxGapMs: 100000000, stride: 1, keepSource: false } }
  sink: { kind: boundary-probe }
edges:
  - { from: source, to: depth, queue: { capacity: 4, policy: block } }
  - { from: depth, to: sink, queue: { capacity: 64, policy: block } }
`;
const graph = new Graph(parsePipeline(yaml, 'boundaries.yaml', builtinRegistry().add(probe)), { log: createLogger({ level: 'warn' }) });
graph.frames$('source', 'video').subscribe((f) => {
  const v = f as VideoFrame;
  video.push({ ...v, data: v.data.slice() });
});
let t0 = performance.now();
await graph.start();
await graph.done;
const liveSeconds = (performance.now() - t0) / 1000;

// 2. Raw output: the same frames through the engine without live normalisation.
const raw: Out[] = [];
const engine = await DepthEngine.open({ packDir: values.model!, choices: { window: W, overlap: O, steps, maxRes: size, seed: NOISE_SEED } });
engine.onDepth = (d) => raw.push({ seq: video[d.index].seq, window: d.window, depth: d.depth });
t0 = performance.now();
for (const v of video) await engine.push(v.data.slice(), v.width, v.height);
await engine.end();
await engine.close();
const rawSeconds = (performance.now() - t0) / 1000;

if (live.length !== video.length || raw.length !== video.length) throw new Error(`frames: ${video.length} in, ${live.length} live, ${raw.length} raw`);
for (let i = 0; i < live.length; i++) {
  if (live[i].seq !== raw[i].seq || live[i].window !== raw[i].window) throw new Error(`frame ${i}: live and raw runs disagree on seq/window`);
}

// Cross-check: the live output is the raw output through the LiveNormaliser, in order.
const norm = new LiveNormaliser({ alpha });
let maxDiff = 0;
for (let i = 0; i < raw.length; i++) {
  const n = norm.apply(raw[i].depth.slice());
  for (let k = 0; k < n.length; k++) maxDiff = Math.max(maxDiff, Math.abs(n[k] - live[i].depth[k]));
}

// Ground-truth disparity (1/z, 0 for invalid), scaled by the first frame's 98th percentile.
function disparity(z: Float32Array): Float32Array {
  const d = new Float32Array(z.length);
  for (let i = 0; i < z.length; i++) d[i] = z[i] > 0 ? 1 / z[i] : 0;
  return d;
}
const gt = video.map((v) => (v.gtDepth ? disparity(v.gtDepth) : null));
const gtScale = (() => {
  const first = gt[0];
  if (!first) return 1;
  const s = Float32Array.from(first).sort();
  return s[Math.floor(0.98 * (s.length - 1))] || 1;
})();

function meanAbsChange(a: Float32Array, b: Float32Array, scale = 1): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += Math.abs(a[i] - b[i]);
  return s / a.length / scale;
}

// Frames are decoded in chunks aligned to multiples of the pack's decode chunk, and a frame's window only changes
// at a chunk start: "within" pairs are split into pairs across a chunk start (same window) and inside a chunk,
// so a jump from the decoder's chunking is not mistaken for (or hidden behind) a window effect.
const chunk: number = (JSON.parse(readFileSync(join(values.model!, 'manifest.json'), 'utf8')) as { defaults: { decodeChunk: number } }).defaults.decodeChunk;
interface Group {
  boundary: number[];
  within: number[];
  chunkStart: number[];
  inChunk: number[];
}
function pairs(frames: Array<Float32Array | null>, scale = 1): Group {
  const g: Group = { boundary: [], within: [], chunkStart: [], inChunk: [] };
  for (let i = 1; i < frames.length; i++) {
    const a = frames[i - 1],
      b = frames[i];
    if (!a || !b) continue;
    const v = meanAbsChange(a, b, scale);
    if (live[i].window !== live[i - 1].window) g.boundary.push(v);
    else {
      g.within.push(v);
      (i % chunk === 0 ? g.chunkStart : g.inChunk).push(v);
    }
  }
  return g;
}
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor(s.length / 2)] : NaN;
};
const cols = [
  ['live (normalised)', pairs(live.map((o) => o.depth))],
  ['raw (engine)', pairs(raw.map((o) => o.depth))],
  ['ground truth', pairs(gt, gtScale)],
] as const;

console.log(
  `depth node: window ${W}, overlap ${O}, steps ${steps}, ${size}x${size}, pack ${values.model}, synthetic seed ${values.seed}, ${N} frames, rangeAlpha ${alpha}`,
);
console.log(
  `live run ${liveSeconds.toFixed(1)} s, raw run ${rawSeconds.toFixed(1)} s; live output vs LiveNormaliser(raw): max |diff| ${maxDiff.toExponential(2)}`,
);
const g0 = cols[0][1];
console.log(
  `mean |frame-to-frame change| per pixel: ${g0.boundary.length} window-boundary pairs, ${g0.within.length} within-window pairs ` +
    `(${g0.chunkStart.length} across a ${chunk}-frame decode chunk start, ${g0.inChunk.length} inside a chunk)`,
);
console.log(`${''.padEnd(22)}${cols.map(([n]) => n.padEnd(20)).join('')}`);
const row = (label: string, f: (g: Group) => number, digits = 5) =>
  console.log(`${label.padEnd(22)}${cols.map(([, g]) => f(g).toFixed(digits).padEnd(20)).join('')}`);
row('boundary: mean', (g) => mean(g.boundary));
row('within: mean', (g) => mean(g.within));
row('boundary: median', (g) => median(g.boundary));
row('within: median', (g) => median(g.within));
row('chunk start: mean', (g) => mean(g.chunkStart));
row('inside chunk: mean', (g) => mean(g.inChunk));
row('boundary / within', (g) => mean(g.boundary) / mean(g.within), 2);
row('  (medians)', (g) => median(g.boundary) / median(g.within), 2);
row('boundary / in chunk', (g) => mean(g.boundary) / mean(g.inChunk), 2);
row('chunk st. / in chunk', (g) => mean(g.chunkStart) / mean(g.inChunk), 2);
process.exit(0);
