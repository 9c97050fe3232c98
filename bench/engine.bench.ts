// Benchmark of offline inference as `infer` runs it (videos on, npz stored, outputs at the input
// size) with a model pack on a fixed clip. Per configuration and repeat: wall time, the inference
// phase (until the last depth frame), the summed pure model time (session.run) and their ratios;
// then a per-stage profile (ms/frame, share of wall, the thread it ran on) from the median run.
//   npm run bench -- [--model DIR] [--video FILE] [--repeat 3] [--configs demo,pack]
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { inferVideo, type InferResult } from '../src/inference/offline/infer.js';
import { readAppSink } from '../src/media/appsink-reader.js';
import { decodeToRgbLaunch } from '../src/media/launch.js';
import { createLogger } from '../src/util/log.js';
import { DEFAULT_PACK } from '../src/inference/pack/default-pack.js';
import type { SessionChoices } from '../src/inference/engine/session-config.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string' },
    video: { type: 'string' },
    repeat: { type: 'string', default: '3' },
    configs: { type: 'string', default: 'demo,pack' },
  },
});
const repeat = Number(values.repeat);
const pack = values.model ?? DEFAULT_PACK;
const dir = mkdtempSync(join(tmpdir(), 'dcl-bench-'));
const shared = new URL('../../shared/data/bedroom-960x540-200f.mp4', import.meta.url).pathname;
let video = values.video ?? (existsSync(shared) ? shared : '');
if (!video) {
  video = join(dir, 'clip.mp4');
  execFileSync('gst-launch-1.0', [
    '-q',
    'videotestsrc',
    'num-buffers=200',
    'pattern=ball',
    '!',
    'video/x-raw,width=960,height=540,framerate=30/1',
    '!',
    'videoconvert',
    '!',
    'x264enc',
    '!',
    'mp4mux',
    '!',
    'filesink',
    `location=${video}`,
  ]);
}
const log = createLogger({ level: 'warn' });
const CONFIGS: Record<string, { label: string; choices: SessionChoices }> = {
  // The live demo's settings (pipelines/demo.yaml: window 16, 2 steps) at 256 px.
  demo: { label: 'demo: W16/O4, 2 steps, 256 px', choices: { maxRes: 256, window: 16, overlap: 4, steps: 2 } },
  // Whatever the pack's manifest says (synthetic-small: W32/O8, 5 steps, 128 px).
  pack: { label: 'pack defaults', choices: {} },
};

const fmt = (v: number, d = 2) => v.toFixed(d);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const spread = (xs: number[], d = 2) => `${fmt(median(xs), d)} (${fmt(Math.min(...xs), d)}-${fmt(Math.max(...xs), d)})`;
const modelMs = (r: InferResult) => Object.values(r.stats.ms).reduce((a, b) => a + b, 0);

function table(head: string[], rows: string[][]): void {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((v, i) => v.padEnd(widths[i])).join('  ');
  console.log(line(head));
  for (const r of rows) console.log(line(r));
}

/** The clip decoded to RGB and pulled into JS, nothing else: the decode row of the profile. */
async function decodeOnly(): Promise<{ ms: number; frames: number }> {
  const t0 = performance.now();
  const r = await readAppSink({
    launch: decodeToRgbLaunch(video),
    streamId: 'bench',
    log,
    signal: new AbortController().signal,
    maxBuffers: 4,
    drop: false,
    sync: false,
    onFrame: () => {},
  });
  return { ms: performance.now() - t0, frames: r.frames };
}

console.log(
  `video: ${video}\npack: ${pack}\nload average before: ${loadavg()
    .map((v) => v.toFixed(2))
    .join(' ')}`,
);
const decode = await decodeOnly();
for (const name of values.configs.split(',')) {
  const c = CONFIGS[name];
  if (!c) throw new Error(`unknown config ${name} (demo, pack)`);
  const runs: InferResult[] = [];
  for (let i = 0; i < repeat; i++) {
    rmSync(join(dir, 'out'), { recursive: true, force: true });
    runs.push(await inferVideo({ input: video, outDir: join(dir, 'out'), packDir: pack, choices: { ...c.choices, seed: 42 }, outputSize: 'input', log }));
  }
  const r0 = runs[0];
  console.log(`\n## ${c.label}: ${r0.frames} frames, model ${r0.model.width}x${r0.model.height}, outputs ${r0.width}x${r0.height}`);
  table(
    ['repeat', 'wall s', 'inference s', 'writing s', 'model s', 'inference/model', 'wall/model', 'frames/s'],
    runs.map((r, i) => [
      `${i + 1}`,
      fmt(r.seconds),
      fmt(r.inferSeconds),
      fmt(r.writeSeconds),
      fmt(modelMs(r) / 1000),
      fmt((r.inferSeconds * 1000) / modelMs(r), 3),
      fmt((r.seconds * 1000) / modelMs(r), 3),
      fmt(r.frames / r.seconds),
    ]),
  );
  console.log(
    `median (min-max): inference/model ${spread(
      runs.map((r) => (r.inferSeconds * 1000) / modelMs(r)),
      3,
    )}, wall/model ${spread(
      runs.map((r) => (r.seconds * 1000) / modelMs(r)),
      3,
    )}, frames/s ${spread(runs.map((r) => r.frames / r.seconds))}`,
  );
  // Profile of the median run.
  const r = [...runs].sort((a, b) => a.seconds - b.seconds)[Math.floor(runs.length / 2)];
  const n = r.frames;
  const wallMs = r.seconds * 1000;
  const { ms, calls } = r.stats;
  const row = (stage: string, thread: string, total: number, extra = ''): string[] => [
    stage,
    thread,
    fmt(total / n),
    `${fmt((100 * total) / wallMs, 1)} %`,
    extra,
  ];
  console.log(
    `\nper-stage profile (median run, ${n} frames, wall ${fmt(r.seconds)} s; stages on different threads overlap, so shares add up to more than 100 %):`,
  );
  table(
    ['stage', 'thread', 'ms/frame', 'share of wall', 'note'],
    [
      row('decode to RGB (alone, separate run)', 'GStreamer + main', (decode.ms * n) / decode.frames, 'overlaps everything below'),
      row('resize to model size', 'frame worker', r.prep.resize),
      row('CLIP preprocessing', 'frame worker', r.prep.clip),
      row('pixel noise + augmentation', 'frame worker', r.prep.noise),
      row('image encoder', 'inference worker (ORT)', ms.encodeImage, `${calls.encodeImage} calls`),
      row('VAE encoder', 'inference worker (ORT)', ms.encodeLatent, `${calls.encodeLatent} calls`),
      row('UNet', 'inference worker (ORT)', ms.denoise, `${calls.denoise} steps, ${fmt(ms.denoise / Math.max(1, calls.denoise), 1)} ms/step`),
      row(
        'VAE decoder + depth reduction',
        'frame worker (ORT)',
        ms.decode,
        `${calls.decode} chunks, ${fmt(ms.decode / Math.max(1, calls.decode), 1)} ms/chunk`,
      ),
      row(
        'sampler, stitching, messages',
        'inference worker (JS)',
        Math.max(0, r.engineBusyMs - ms.encodeImage - ms.encodeLatent - ms.denoise),
        'its busy time outside its model runs',
      ),
      row('normalisation + npz + MP4s', 'finaliser workers + GStreamer', r.writeSeconds * 1000, 'after the last depth frame'),
      row('wall', 'all', wallMs),
    ],
  );
}
console.log(
  `\nload average after: ${loadavg()
    .map((v) => v.toFixed(2))
    .join(' ')}`,
);
rmSync(dir, { recursive: true, force: true });
process.exit(0);
