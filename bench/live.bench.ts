// Live depth benchmark: the real CLI runs a pipeline (synthetic source -> depth node -> websocket
// sink) for a while, a WebSocket subscriber records every depth frame, and /metrics is scraped
// every 30 s. Afterwards the same frames are rendered again (the synthetic scene is deterministic)
// for ground truth, and the frames the live node computed are run through the engine offline (as
// `infer` does: lossless, raw depth, whole-video normalisation) to compare temporal quality.
//
//   node --import tsx bench/live.bench.ts [--rates 15,30] [--configs demo,pack] [--seconds 300]
//       [--model models/synthetic-small] [--seed 7] [--size 256] [--no-offline]
//   node --import tsx bench/live.bench.ts --pipeline pipelines/demo.yaml --seconds 600   # a shipped file as is
//   node --import tsx bench/live.bench.ts --frames 200 --rates 20,30,40 --repeat 3 --model models/tiny-random
//       # rate mode: pipelines/demo.yaml (or --pipeline) with a synthetic source of a fixed number of frames
//       # (--root DIR runs the CLI of another built checkout, e.g. the previous commit, for before/after tables)
//
// Rate mode runs the pipeline file until its source ends (`--set source.frames=N`) and prints,
// per run and as median [min-max] over the repeats: frames made, frames out and the subscriber's
// frames, where frames were dropped (inside the live source because it fell behind its clock,
// at each edge queue, by the depth node's stride with fill none, by the sink for a slow
// subscriber), the output rate, latency, the pipeline's CPU and the load average.
// Configs: `demo` = window 16 / overlap 8 / 2 steps (pipelines/demo.yaml), `pack` = the pack's
// defaults, or `W/O/S`. Prints per run: sequences started, strides chosen, frames in/out, latency
// p50/p95 against the formula (README), RSS every 30 s, and temporal error / flicker of the live
// output against offline on the same frames at the same stride.
import { parseArgs } from 'node:util';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { WebSocket } from 'ws';
import { parse as parseYaml } from 'yaml';
import { decodeFrameMessage } from '../src/protocol/frame-message.js';
import { generateScene } from '../src/synth/generate.js';
import { Renderer } from '../src/synth/renderer.js';
import { DepthEngine, type EngineDepth } from '../src/inference/engine/depth-engine.js';
import { evaluateSequence, flickerNoGt, resizeBilinear } from '../src/eval/metrics.js';
import { lerpDepth, timeFraction } from '../src/inference/live/interpolate.js';
import { expectedLatency } from '../src/inference/live/latency-model.js';
import { ensureBuilt } from '../test/helpers/build-cli.js';

const { values } = parseArgs({
  options: {
    rates: { type: 'string', default: '15,30' },
    configs: { type: 'string', default: 'demo,pack' },
    seconds: { type: 'string', default: '300' },
    model: { type: 'string', default: 'models/synthetic-small' },
    seed: { type: 'string', default: '7' },
    size: { type: 'string', default: '256' },
    pipeline: { type: 'string' },
    frames: { type: 'string' },
    repeat: { type: 'string', default: '3' },
    subscribe: { type: 'string', default: 'format=f32&rgb=1&rgbFormat=rgb24&gt=1' },
    set: { type: 'string', multiple: true, default: [] },
    root: { type: 'string' },
    'no-offline': { type: 'boolean', default: false },
  },
});
const ROOT = resolve(import.meta.dirname, '..');
const CLI = join(ROOT, 'bin', 'depthcrafter-live.js');
const EVAL = 64; // frames are kept at 64x64 for scoring (memory: 16 KB a frame)
const SAMPLE_S = 30;

interface Run {
  label: string;
  yaml: string;
  source: { seed: number; width: number; height: number; fps: number; scene?: 'auto' | 'indoor' | 'outdoor'; fov?: number };
  depth: { model: string; window?: number; overlap?: number; steps?: number; seed?: number; maxRes?: number };
}

interface Received {
  seq: number;
  ptsMs: number;
  interpolated: boolean;
  window: number;
  latencyMs: number;
  atS: number;
  depth: Float32Array;
}

interface Sample {
  atS: number;
  rssMiB: number;
  stride: number;
  throughput: number;
  expectedP95: number;
  latencyP95: number;
}

function configSettings(name: string): { window?: number; overlap?: number; steps?: number } {
  if (name === 'demo') return { window: 16, overlap: 8, steps: 2 };
  if (name === 'pack') return {};
  const [w, o, s] = name.split('/').map(Number);
  return { window: w, overlap: o, steps: s };
}

function runsFromArgs(): Run[] {
  if (values.pipeline) {
    const file = resolve(values.pipeline);
    const doc = parseYaml(readFileSync(file, 'utf8').replace(/\$\{(\w+):-([^}]*)\}/g, '$2')) as {
      nodes: Record<string, { kind: string; options?: Record<string, unknown> }>;
    };
    const src = Object.values(doc.nodes).find((n) => n.kind === 'synthetic')?.options ?? {};
    const dep = Object.values(doc.nodes).find((n) => n.kind === 'depth')?.options ?? {};
    return [
      {
        label: values.pipeline,
        yaml: readFileSync(file, 'utf8'),
        source: { seed: Number(src.seed ?? 1), width: Number(src.width ?? 256), height: Number(src.height ?? 256), fps: Number(src.fps ?? 30) },
        depth: {
          model: resolve(String(dep.model ?? join(ROOT, 'models/tiny-random'))),
          window: dep.window as number,
          overlap: dep.overlap as number,
          steps: dep.steps as number,
          maxRes: dep.maxRes as number,
        },
      },
    ];
  }
  const runs: Run[] = [];
  const size = Number(values.size);
  for (const config of values.configs!.split(',')) {
    for (const fps of values.rates!.split(',').map(Number)) {
      const d = configSettings(config);
      const depthOpts = Object.entries({ model: resolve(values.model!), ...d })
        .map(([k, v]) => `${k}: ${JSON.stringify(v)}`)
        .join(', ');
      runs.push({
        label: `${config} @ ${fps} fps`,
        yaml: `
name: live-bench
server: { host: 127.0.0.1, port: 8080 }
nodes:
  source: { kind: synthetic, options: { seed: ${values.seed}, width: ${size}, height: ${size}, fps: ${fps} } }
  depth: { kind: depth, options: { ${depthOpts} } }
  ws: { kind: websocket, options: { viewer: false } }
edges:
  - { from: source.video, to: depth.video, queue: { capacity: 4, policy: drop-oldest } }
  - { from: depth.depth, to: ws.frames, queue: { capacity: 16, policy: drop-oldest } }
`,
        source: { seed: Number(values.seed), width: size, height: size, fps },
        depth: { model: resolve(values.model!), ...d },
      });
    }
  }
  return runs;
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

function metric(text: string, name: string, labels: Record<string, string> = {}): number {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^(\w+)(\{[^}]*\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    if (Object.entries(labels).every(([k, v]) => (m[2] ?? '').includes(`${k}="${v}"`))) return Number(m[3]);
  }
  return NaN;
}

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

const pct = (xs: number[], p: number) => {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
};

/** Downsample (bilinear) to EVAL x EVAL for scoring. */
function small(d: Float32Array, w: number, h: number): Float32Array {
  return w === EVAL && h === EVAL ? d.slice() : resizeBilinear(d, w, h, EVAL, EVAL);
}

/** Ground truth at EVAL x EVAL: nearest pixel (metric depth must not be blended across edges). */
function smallGt(d: Float32Array, w: number, h: number): Float32Array {
  const out = new Float32Array(EVAL * EVAL);
  for (let y = 0; y < EVAL; y++) {
    const sy = Math.min(h - 1, Math.floor(((y + 0.5) * h) / EVAL));
    for (let x = 0; x < EVAL; x++) out[y * EVAL + x] = d[sy * w + Math.min(w - 1, Math.floor(((x + 0.5) * w) / EVAL))];
  }
  return out;
}

async function live(run: Run, seconds: number) {
  const tmp = mkdtempSync(join(tmpdir(), 'dcl-live-bench-'));
  const file = join(tmp, 'pipeline.yaml');
  writeFileSync(file, run.yaml);
  const port = await freePort();
  const child = spawn(process.execPath, [CLI, 'run', file, '--set', `server.port=${port}`], {
    cwd: ROOT,
    env: { ...process.env, CI: '1', LOG_LEVEL: 'info', PORT: String(port) },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  child.stderr.on('data', (c: Buffer) => (log += c.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    if (log.includes('serving at')) break;
    if (i > 600 || child.exitCode !== null) throw new Error(`the pipeline did not start:\n${log}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const received: Received[] = [];
  const t0 = performance.now();
  let modelSize = { w: 0, h: 0 };
  const ws = new WebSocket(`ws://127.0.0.1:${port}/ws?format=f32`);
  ws.on('message', (data, isBinary) => {
    if (!isBinary) return;
    const { header: h, payload } = decodeFrameMessage(data as Buffer);
    if (h.kind !== 'depth') return;
    const f = new Float32Array(payload.buffer.slice(payload.byteOffset, payload.byteOffset + payload.byteLength));
    modelSize = { w: h.width, h: h.height };
    received.push({
      seq: h.seq,
      ptsMs: h.ptsMs,
      interpolated: h.interpolated === true,
      window: h.window ?? -1,
      latencyMs: h.latencyMs,
      atS: (performance.now() - t0) / 1000,
      depth: small(f, h.width, h.height),
    });
  });
  await new Promise((res, rej) => ws.once('open', res).once('error', rej));
  const samples: Sample[] = [];
  let last = 0;
  while ((performance.now() - t0) / 1000 < seconds) {
    await new Promise((r) => setTimeout(r, 1000));
    const at = (performance.now() - t0) / 1000;
    if (at - last < SAMPLE_S && at < seconds) continue;
    last = at;
    const text = await (await fetch(`${base}/metrics`)).text();
    const recent = received.filter((r) => r.atS > at - SAMPLE_S).map((r) => r.latencyMs / 1000);
    samples.push({
      atS: Math.round(at),
      rssMiB: rssMiB(child.pid!),
      stride: metric(text, 'dcl_depth_stride'),
      throughput: metric(text, 'dcl_depth_throughput_fps'),
      expectedP95: metric(text, 'dcl_depth_expected_latency_seconds'),
      latencyP95: pct(recent, 95),
    });
  }
  const text = await (await fetch(`${base}/metrics`)).text();
  child.kill('SIGTERM');
  const code = await exited;
  ws.close();
  rmSync(tmp, { recursive: true, force: true });
  // Frame counts after the drain, from the CLI's closing log line.
  const finished = log
    .split('\n')
    .filter((l) => l.includes('"pipeline finished"'))
    .map((l) => JSON.parse(l) as { frames: Record<string, { in: number; out: number }> })[0];
  const counts = {
    sourceOut: finished?.frames.source?.out ?? NaN,
    depthIn: finished?.frames.depth?.in ?? NaN,
    depthOut: finished?.frames.depth?.out ?? NaN,
    edgeDrops: metric(text, 'dcl_edge_dropped_total', { edge: 'source.video->depth.video' }),
    computed: received.filter((x) => !x.interpolated).length,
    interpolated: received.filter((x) => x.interpolated).length,
    sequences: Object.fromEntries(['start', 'discontinuity', 'size', 'gap'].map((r) => [r, metric(text, 'dcl_depth_sequences_total', { reason: r })])),
    sequenceLogLines: (log.match(/depth sequence \d+ started/g) ?? []).length,
    strideChanges: [...log.matchAll(/"msg":"stride (\d+) -> (\d+)"/g)].map((m) => `${m[1]}->${m[2]}`),
    exitCode: code,
  };
  const ready = log
    .split('\n')
    .filter((l) => l.includes('"depth engine ready"'))
    .map((l) => JSON.parse(l) as { window: number; overlap: number; steps: number })[0];
  const settings = { window: ready?.window ?? NaN, overlap: ready?.overlap ?? NaN, steps: ready?.steps ?? NaN };
  return { received, samples, counts, modelSize, settings };
}

/** The frames the live node computed, through the engine offline (raw depth, whole-video min-max), at EVAL size. */
async function offline(run: Run, seqs: number[]): Promise<Map<number, Float32Array>> {
  const scene = generateScene(run.source.seed, run.source.scene ?? 'auto');
  const renderer = new Renderer(scene, { width: run.source.width, height: run.source.height, fovDeg: run.source.fov ?? 60 });
  const engine = await DepthEngine.open({
    packDir: run.depth.model,
    choices: { window: run.depth.window, overlap: run.depth.overlap, steps: run.depth.steps, seed: run.depth.seed ?? 42, maxRes: run.depth.maxRes },
  });
  const raw: EngineDepth[] = [];
  engine.onDepth = (d) => raw.push(d);
  for (const seq of seqs) {
    const f = renderer.render(seq / run.source.fps);
    await engine.push(f.rgb, run.source.width, run.source.height);
  }
  await engine.end();
  await engine.close();
  let lo = Infinity;
  let hi = -Infinity;
  for (const d of raw) {
    lo = Math.min(lo, d.min);
    hi = Math.max(hi, d.max);
  }
  const out = new Map<number, Float32Array>();
  raw.forEach((d, i) => {
    const s = small(d.depth, d.width, d.height);
    for (let j = 0; j < s.length; j++) s[j] = (s[j] - lo) / (hi - lo || 1);
    out.set(seqs[i], s);
  });
  return out;
}

function score(preds: Float32Array[], gts: Float32Array[], boundaries: number[]) {
  const m = evaluateSequence(preds, gts, EVAL, EVAL, { maxDepth: 80, boundaries });
  const f = flickerNoGt(
    preds.map((p) => p.map((v) => Math.max(v, 1e-3))),
    { scale: m.scale, shift: m.shift, boundaries },
  );
  return { absrel: m.absrel, temporal: m.temporal, temporalBoundary: m.temporalBoundary, flicker: f.flicker, flickerBoundary: f.flickerBoundary };
}

const fmt = (v: number, d = 4) => (Number.isFinite(v) ? v.toFixed(d) : '–');

// ---------------------------------------------------------------- rate mode (--frames N)

interface RateRun {
  fps: number;
  repeat: number;
  load: number[];
  made: number;
  sourceOut: number;
  sourceDropped: number;
  edgeDropped: Record<string, number>;
  depthIn: number;
  depthOut: number;
  depthDropped: number;
  strides: string[];
  received: number;
  /** Source frames the subscriber did not get, as ranges. */
  missing: string;
  subscriberDropped: number;
  fpsOut: number;
  latencyP50: number;
  latencyP95: number;
  cpuPct: number;
  wallS: number;
  exitCode: number | null;
}

/** utime + stime of a process in seconds (Linux clock ticks of 10 ms). */
function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return NaN;
  }
}

function missingRanges(seqs: number[], frames: number): string {
  const got = new Set(seqs);
  const out: string[] = [];
  for (let i = 0; i < frames; i++) {
    if (got.has(i)) continue;
    let j = i;
    while (j + 1 < frames && !got.has(j + 1)) j++;
    out.push(i === j ? `${i}` : `${i}-${j}`);
    i = j;
  }
  return out.join(',');
}

async function rateRun(file: string, fps: number, frames: number, repeat: number): Promise<RateRun> {
  const port = await freePort();
  const load = loadavg();
  const sets = [
    `server.port=${port}`,
    `source.fps=${fps}`,
    `source.frames=${frames}`,
    `source.width=${values.size}`,
    `source.height=${values.size}`,
    `depth.model=${resolve(values.model!)}`,
    ...values.set!,
  ];
  const root = values.root ? resolve(values.root) : ROOT;
  const child = spawn(process.execPath, [join(root, 'bin', 'depthcrafter-live.js'), 'run', file, ...sets.flatMap((x) => ['--set', x])], {
    cwd: root,
    env: { ...process.env, CI: '1', LOG_LEVEL: 'info', PORT: String(port) },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  child.stderr.on('data', (c: Buffer) => (log += c.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  let cpu = NaN;
  const cpuTimer = setInterval(() => {
    const c = cpuSeconds(child.pid!);
    if (Number.isFinite(c)) cpu = c;
  }, 100);
  for (let i = 0; ; i++) {
    if (log.includes('serving at')) break;
    if (i > 2400 || child.exitCode !== null) {
      child.kill('SIGKILL');
      clearInterval(cpuTimer);
      throw new Error(`the pipeline did not start:\n${log}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  const cpuAtStart = cpuSeconds(child.pid!);
  const t0 = performance.now();
  const times: number[] = [];
  const latency: number[] = [];
  const seqs: number[] = [];
  let subscriberDropped = 0;
  const ws = new WebSocket(`ws://127.0.0.1:${port}/ws?${values.subscribe}`);
  ws.on('message', (data, isBinary) => {
    if (!isBinary) {
      // The sink's per-subscriber counts (once a second): frames it dropped for this subscriber (send buffer full, encoder busy).
      const m = JSON.parse(String(data)) as { type?: string; dropped?: number };
      if (m.type === 'stats') subscriberDropped = Math.max(subscriberDropped, m.dropped ?? 0);
      return;
    }
    const { header: h } = decodeFrameMessage(data as Buffer);
    if (h.kind !== 'depth') return;
    times.push(performance.now());
    latency.push(h.latencyMs / 1000);
    seqs.push(h.seq);
  });
  ws.on('error', () => {});
  const code = await exited;
  clearInterval(cpuTimer);
  const wallS = (performance.now() - t0) / 1000;
  ws.close();
  const finished = log
    .split('\n')
    .filter((l) => l.includes('"pipeline finished"'))
    .map(
      (l) => JSON.parse(l) as { frames: Record<string, { in: number; out: number; dropped?: Record<string, number>; edgeDropped?: Record<string, number> }> },
    )[0];
  if (!finished) throw new Error(`no "pipeline finished" line (exit code ${code}):\n${log.slice(-4000)}`);
  const f = finished.frames;
  const sourceName = Object.keys(f).find((n) => (f[n].in ?? 0) === 0 && f[n].out > 0) ?? 'source';
  const edgeDropped: Record<string, number> = {};
  for (const n of Object.values(f)) Object.assign(edgeDropped, n.edgeDropped ?? {});
  const sum = (r?: Record<string, number>) => Object.values(r ?? {}).reduce((a, b) => a + b, 0);
  const span = times.length > 1 ? (times.at(-1)! - times[0]) / 1000 : NaN;
  return {
    fps,
    repeat,
    load,
    made: frames,
    sourceOut: f[sourceName]?.out ?? NaN,
    sourceDropped: sum(f[sourceName]?.dropped),
    edgeDropped,
    depthIn: f.depth?.in ?? NaN,
    depthOut: f.depth?.out ?? NaN,
    depthDropped: sum(f.depth?.dropped),
    strides: [...log.matchAll(/"msg":"stride (\d+) -> (\d+)"/g)].map((m) => `${m[1]}->${m[2]}`),
    received: times.length,
    missing: missingRanges(seqs, frames),
    subscriberDropped,
    // Frames out per second over the output's span (the first window's start-up excluded).
    fpsOut: (times.length - 1) / span,
    latencyP50: pct(latency, 50),
    latencyP95: pct(latency, 95),
    cpuPct: (100 * (cpu - cpuAtStart)) / wallS,
    wallS,
    exitCode: code,
  };
}

async function rateMode(frames: number): Promise<void> {
  if (values.root) console.log(`code: the CLI built in ${resolve(values.root)}`);
  else {
    ensureBuilt(); // the CLI runs dist/: build it when a source file is newer
    const dirty = spawnSync('git', ['status', '--porcelain', '--', 'src'], { cwd: ROOT, encoding: 'utf8' })
      .stdout.trim()
      .split('\n')
      .filter(Boolean)
      .map((l) => l.slice(3));
    const rev = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).stdout.trim();
    console.log(`code: ${rev}${dirty.length ? ` + uncommitted changes in ${dirty.join(' ')}` : ''}`);
  }
  const file = resolve(values.pipeline ?? join(ROOT, 'pipelines/demo.yaml'));
  const rates = values.rates!.split(',').map(Number);
  const repeats = Number(values.repeat);
  console.log(
    `live rate bench, ${new Date().toISOString()}: ${file}, ${frames} frames at ${values.size}x${values.size}, model ${values.model}, subscriber ?${values.subscribe}${values.set!.length ? `, --set ${values.set!.join(' ')}` : ''}`,
  );
  console.log(
    `load average at start ${loadavg()
      .map((v) => v.toFixed(2))
      .join(' ')} (${(await import('node:os')).cpus().length} cores)\n`,
  );
  console.log(
    'fps in | run | load 1m | source out / made | dropped: source (late) | edges | depth (stride) | sink | received | fps out | latency p50 / p95 s | strides | CPU % | exit',
  );
  const all: RateRun[] = [];
  const lost = (x: RateRun) =>
    x.made - x.received - x.sourceDropped - Object.values(x.edgeDropped).reduce((a, b) => a + b, 0) - x.depthDropped - x.subscriberDropped;
  for (const fps of rates) {
    for (let r = 1; r <= repeats; r++) {
      const x = await rateRun(file, fps, frames, r);
      all.push(x);
      const edges =
        Object.entries(x.edgeDropped)
          .map(([e, n]) => `${e} ${n}`)
          .join(', ') || '0';
      console.log(
        `${fps} | ${r} | ${x.load[0].toFixed(2)} | ${x.sourceOut} / ${x.made} | ${x.sourceDropped} | ${edges} | ${x.depthDropped} | ${x.subscriberDropped} | ${x.received} | ${fmt(x.fpsOut, 1)} | ${fmt(x.latencyP50, 2)} / ${fmt(x.latencyP95, 2)} | ${x.strides.join(' ') || '1'} | ${fmt(x.cpuPct, 0)} | ${x.exitCode}${x.missing ? ` | missing ${x.missing}` : ''}${lost(x) ? ` (${lost(x)} not in any count: dropped by the sink after its last stats message, or lost)` : ''}`,
      );
    }
  }
  const spread = (xs: number[], d = 1) => {
    const s = [...xs].sort((a, b) => a - b);
    return `${fmt(s[Math.floor(s.length / 2)], d)} [${fmt(s[0], d)}-${fmt(s.at(-1)!, d)}]`;
  };
  console.log(
    `\nload average at the end ${loadavg()
      .map((v) => v.toFixed(2))
      .join(' ')}`,
  );
  console.log(
    '\n| fps in | fps out | received / made | dropped in source | dropped at edges | dropped by stride | dropped by sink | latency p95 s | CPU % | load 1m |',
  );
  console.log('|---|---|---|---|---|---|---|---|---|---|');
  for (const fps of rates) {
    const xs = all.filter((x) => x.fps === fps);
    const edges = (x: RateRun) => Object.values(x.edgeDropped).reduce((a, b) => a + b, 0);
    console.log(
      `| ${fps} | ${spread(xs.map((x) => x.fpsOut))} | ${spread(
        xs.map((x) => x.received),
        0,
      )} / ${frames} | ${spread(
        xs.map((x) => x.sourceDropped),
        0,
      )} | ${spread(xs.map(edges), 0)} | ${spread(
        xs.map((x) => x.depthDropped),
        0,
      )} | ${spread(
        xs.map((x) => x.subscriberDropped),
        0,
      )} | ${spread(
        xs.map((x) => x.latencyP95),
        2,
      )} | ${spread(
        xs.map((x) => x.cpuPct),
        0,
      )} | ${spread(
        xs.map((x) => x.load[0]),
        2,
      )} |`,
    );
  }
}

if (values.frames) {
  await rateMode(Number(values.frames));
  process.exit(0);
}

console.log(
  `live depth bench, ${new Date().toISOString()}, load average at start ${loadavg()
    .map((v) => v.toFixed(2))
    .join(' ')} (${(await import('node:os')).cpus().length} cores)`,
);
const table: string[] = [];
for (const run of runsFromArgs()) {
  const seconds = Number(values.seconds);
  console.log(
    `\n== ${run.label}: ${seconds} s, load average ${loadavg()
      .map((v) => v.toFixed(2))
      .join(' ')}`,
  );
  const r = await live(run, seconds);
  const c = r.counts;
  console.log(`sequences started: ${JSON.stringify(c.sequences)} (log lines: ${c.sequenceLogLines}); stride changes: ${c.strideChanges.join(' ') || 'none'}`);
  console.log(
    `source frames ${c.sourceOut}, reached depth ${c.depthIn} (edge drops ${c.edgeDrops}), depth out ${c.depthOut}; the subscriber received ${r.received.length} = computed ${c.computed} + interpolated ${c.interpolated}; exit code ${c.exitCode}`,
  );
  console.log(' t s   RSS MiB  stride  engine fps  expected p95 s  measured p95 s (last 30 s)');
  for (const s of r.samples)
    console.log(
      `${String(s.atS).padStart(4)}   ${s.rssMiB.toFixed(0).padStart(6)}  ${String(s.stride).padStart(6)}  ${fmt(s.throughput, 1).padStart(10)}  ${fmt(s.expectedP95, 2).padStart(13)}  ${fmt(s.latencyP95, 2).padStart(14)}`,
    );
  const lat = r.received.filter((x) => x.atS > 30).map((x) => x.latencyMs / 1000);
  const minute = (a: number, b: number) =>
    pct(
      r.received.filter((x) => x.atS > a && x.atS <= b).map((x) => x.latencyMs / 1000),
      95,
    );
  const last = r.samples.at(-1)!;
  console.log(
    `settings: window ${r.settings.window}, overlap ${r.settings.overlap}, steps ${r.settings.steps}; model output ${r.modelSize.w}x${r.modelSize.h}`,
  );
  console.log(
    `latency after the first 30 s: p50 ${fmt(pct(lat, 50), 2)} s, p95 ${fmt(pct(lat, 95), 2)} s; expected p95 (gauge at the end) ${fmt(last.expectedP95, 2)} s; p95 of minute 2 ${fmt(minute(60, 120), 2)} s, of the last minute ${fmt(minute(seconds - 60, seconds), 2)} s`,
  );
  if (r.settings.window > r.settings.overlap && last.stride > 0) {
    const thr = r.samples.map((x) => x.throughput).filter(Number.isFinite);
    const e = expectedLatency(
      { window: r.settings.window, overlap: r.settings.overlap, chunk: 8, stride: last.stride },
      run.source.fps,
      thr.reduce((a, b) => a + b, 0) / thr.length,
    );
    console.log(`formula at the final stride and the mean engine throughput: p50 ${fmt(e.p50, 2)} s, p95 ${fmt(e.p95, 2)} s`);
  }

  // Quality: one sequence, frames in output order.
  const frames = r.received;
  const scene = generateScene(run.source.seed, run.source.scene ?? 'auto');
  const renderer = new Renderer(scene, { width: run.source.width, height: run.source.height, fovDeg: run.source.fov ?? 60 });
  const gts = frames.map((f) => smallGt(renderer.render(f.seq / run.source.fps).depth, run.source.width, run.source.height));
  const computedIdx = frames.map((f, i) => (f.interpolated ? -1 : i)).filter((i) => i >= 0);
  // Window boundaries: positions where the window that finalised consecutive frames changes.
  const boundaries = (list: Received[]) => list.map((f, i) => (i > 0 && f.window !== list[i - 1].window ? i : -1)).filter((i) => i > 0);
  const liveAll = score(
    frames.map((f) => f.depth),
    gts,
    boundaries(frames),
  );
  const compFrames = computedIdx.map((i) => frames[i]);
  const liveComp = score(
    compFrames.map((f) => f.depth),
    computedIdx.map((i) => gts[i]),
    boundaries(compFrames),
  );
  console.log('                         AbsRel   temporal  temporal@boundary  flicker  flicker@boundary');
  const row = (name: string, m: ReturnType<typeof score>) =>
    console.log(
      `${name.padEnd(25)}${fmt(m.absrel, 3).padEnd(9)}${fmt(m.temporal, 5).padEnd(10)}${fmt(m.temporalBoundary, 5).padEnd(19)}${fmt(m.flicker, 5).padEnd(9)}${fmt(m.flickerBoundary, 5)}`,
    );
  row('live, every frame', liveAll);
  row('live, computed frames', liveComp);
  let ratio = NaN;
  if (!values['no-offline']) {
    const off = await offline(
      run,
      compFrames.map((f) => f.seq),
    );
    const offComp = score(
      compFrames.map((f) => off.get(f.seq)!),
      computedIdx.map((i) => gts[i]),
      boundaries(compFrames),
    );
    // Offline at the same stride, filled like the live node: linear in time between computed neighbours.
    const offAll: Float32Array[] = [];
    let prev = -1;
    for (let i = 0; i < frames.length; i++) {
      if (!frames[i].interpolated) {
        offAll.push(off.get(frames[i].seq)!);
        prev = i;
        continue;
      }
      let next = i + 1;
      while (frames[next].interpolated) next++;
      const a = frames[prev],
        b = frames[next];
      offAll.push(lerpDepth(off.get(a.seq)!, off.get(b.seq)!, timeFraction(a.ptsMs, b.ptsMs, frames[i].ptsMs)));
    }
    const offAllM = score(offAll, gts, boundaries(frames));
    row('offline, same frames', offComp);
    row('offline, filled the same', offAllM);
    ratio = liveAll.temporal / offAllM.temporal;
    console.log(
      `temporal error live / offline at the same stride: every frame ${fmt(ratio, 3)}, computed frames ${fmt(liveComp.temporal / offComp.temporal, 3)}`,
    );
  }
  table.push(
    `| ${run.label} | ${c.sequences.start + c.sequences.discontinuity + c.sequences.size + c.sequences.gap} | ${c.strideChanges.at(-1)?.split('->')[1] ?? 1} | ${c.depthIn} / ${c.depthOut} | ${fmt(pct(lat, 50), 2)} / ${fmt(pct(lat, 95), 2)} | ${fmt(last.expectedP95, 2)} | ${r.samples.map((s) => s.rssMiB.toFixed(0)).join(' ')} | ${fmt(liveAll.temporal, 5)} | ${fmt(ratio, 3)} |`,
  );
}
console.log(
  `\nload average at the end ${loadavg()
    .map((v) => v.toFixed(2))
    .join(' ')}`,
);
console.log(
  '\n| run | sequences | final stride | frames reached depth / out | latency p50 / p95 s | expected p95 s | RSS MiB every 30 s | temporal error | live / offline |',
);
console.log('|---|---|---|---|---|---|---|---|---|');
for (const line of table) console.log(line);
process.exit(0);
