// Live depth benchmark: a paced source into the streaming depth node, at several input rates.
// Prints per rate: depth frames out, frames dropped at the edge, output fps, p50/p95 end-to-end
// latency against the floor (W - O + decode chunk) / fps, then RSS sampled over a long run.
//   node --import tsx bench/live.bench.ts [--rates 10,20,40] [--seconds 20] [--long-frames 3000] [--window 16 --overlap 8 --steps 2 --size 256]
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { parsePipeline } from '../src/graph/pipeline-file.js';
import { Graph } from '../src/graph/runtime.js';
import { defineNode } from '../src/graph/node-kind.js';
import { builtinRegistry } from '../src/nodes/index.js';
import { nowMs, type Packet } from '../src/graph/packets.js';
import { createLogger } from '../src/util/log.js';

const { values } = parseArgs({
  options: {
    rates: { type: 'string', default: '10,20,40' },
    seconds: { type: 'string', default: '20' },
    'long-frames': { type: 'string', default: '3000' },
    window: { type: 'string', default: '16' },
    overlap: { type: 'string', default: '8' },
    steps: { type: 'string', default: '2' },
    size: { type: 'string', default: '256' },
  },
});
const W = Number(values.window), O = Number(values.overlap), size = Number(values.size);

interface Run { out: number; latencies: number[]; rss: number[] }

async function run(fps: number, frames: number, rssEvery = 0): Promise<Run & { dropped: number; seconds: number }> {
  const r: Run = { out: 0, latencies: [], rss: [] };
  const sink = defineNode({
    kind: 'bench-sink', role: 'sink', description: 'latency probe', inputs: { in: 'depth' }, outputs: {}, options: z.object({}).strict(),
    create: () => ({
      process(_p: string, p: Packet) {
        if (p.type !== 'depth') return;
        r.out++;
        r.latencies.push(nowMs() - p.arrivalMs);
        if (rssEvery && r.out % rssEvery === 0) r.rss.push(process.memoryUsage().rss);
      },
    }),
  });
  const yaml = `
server: { enabled: false }
nodes:
  source: { kind: test-pattern, options: { pattern: ball, width: ${size}, height: ${size}, fps: ${fps}, frames: ${frames}, live: true } }
  depth: { kind: depth, options: { window: ${W}, overlap: ${O}, steps: ${values.steps}, maxRes: ${size}, maxGapMs: 100000000 } }
  sink: { kind: bench-sink }
edges:
  - { from: source, to: depth, queue: { capacity: 2, policy: drop-oldest } }
  - { from: depth, to: sink, queue: { capacity: 64, policy: drop-oldest } }
`;
  const graph = new Graph(parsePipeline(yaml, 'bench.yaml', builtinRegistry().add(sink)), { log: createLogger({ level: 'warn' }) });
  const t0 = performance.now();
  await graph.start();
  await graph.done;
  const dropped = await graph.metrics.value('dcl_edge_dropped_total', { edge: 'source.video->depth.video' });
  return { ...r, dropped, seconds: (performance.now() - t0) / 1000 };
}

const pct = (xs: number[], p: number) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]; };
console.log(`depth node: window ${W}, overlap ${O}, steps ${values.steps}, ${size}x${size}, tiny-random pack, CPU (${process.arch})`);
console.log('input fps  frames in  depth out  dropped  out fps  p50 ms  p95 ms  floor ms (W-O+8)/fps');
for (const fps of values.rates!.split(',').map(Number)) {
  const frames = Math.round(fps * Number(values.seconds));
  const r = await run(fps, frames);
  const floor = ((W - O + 8) / fps) * 1000;
  console.log(`${String(fps).padEnd(11)}${String(frames).padEnd(11)}${String(r.out).padEnd(11)}${String(r.dropped).padEnd(9)}${(r.out / r.seconds).toFixed(1).padEnd(9)}${pct(r.latencies, 50).toFixed(0).padEnd(8)}${pct(r.latencies, 95).toFixed(0).padEnd(8)}${floor.toFixed(0)}`);
}
const longFrames = Number(values['long-frames']);
if (longFrames > 0) {
  const fps = Number(values.rates!.split(',')[0]);
  const r = await run(fps * 4, longFrames, 250);
  console.log(`long run: ${longFrames} frames offered at ${fps * 4} fps, ${r.out} out, ${r.dropped} dropped; RSS MiB every 250 out: ${r.rss.map((b) => Math.round(b / 2 ** 20)).join(' ')}`);
}
process.exit(0);
