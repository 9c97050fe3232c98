// Benchmark of offline inference with a model pack (default: the committed tiny pack) on a
// fixed clip. Prints, per configuration: frames/s of `infer`, the sum of pure session.run time,
// their ratio (engine overhead), encoder calls per frame (must be 1.00) and peak RSS.
//   npm run bench -- [--model DIR] [--video FILE]
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { inferVideo } from '../src/inference/offline/infer.js';
import { createLogger } from '../src/util/log.js';
import { DEFAULT_PACK } from '../src/inference/pack/default-pack.js';

const { values } = parseArgs({ options: { model: { type: 'string' }, video: { type: 'string' } } });
const dir = mkdtempSync(join(tmpdir(), 'dcl-bench-'));
const shared = new URL('../../shared/data/bedroom-960x540-200f.mp4', import.meta.url).pathname;
let video = values.video ?? (existsSync(shared) ? shared : '');
if (!video) {
  video = join(dir, 'clip.mp4');
  execFileSync('gst-launch-1.0', ['-q', 'videotestsrc', 'num-buffers=200', 'pattern=ball', '!', 'video/x-raw,width=960,height=540,framerate=30/1', '!', 'videoconvert', '!', 'x264enc', '!', 'mp4mux', '!', 'filesink', `location=${video}`]);
}
const log = createLogger({ level: 'warn' });
const configs: Array<{ label: string; maxRes: number; window?: number; overlap?: number; steps?: number }> = [
  { label: 'W16/O4 2 steps 256px', maxRes: 256, window: 16, overlap: 4, steps: 2 },
  // The pack's own defaults (the tiny pack carries the reference's: window 110, overlap 25, 5 steps).
  { label: 'pack defaults, max-res 512', maxRes: 512 },
];
let peak = 0;
const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
const rows: string[][] = [];
for (const c of configs) {
  peak = process.memoryUsage().rss;
  const r = await inferVideo({ input: video, outDir: join(dir, 'out'), packDir: values.model ?? DEFAULT_PACK, choices: { ...c, seed: 42 }, log, writeVideos: false, compressNpz: false });
  const runMs = Object.values(r.stats.ms).reduce((a, b) => a + b, 0);
  const wallMs = r.seconds * 1000;
  const enc = (r.stats.framesIn.encodeImage / r.frames).toFixed(2) + ' / ' + (r.stats.framesIn.encodeLatent / r.frames).toFixed(2);
  rows.push([c.label, `${r.frames}`, `${r.width}x${r.height}`, (r.frames / r.seconds).toFixed(2), (runMs / 1000).toFixed(2), (wallMs / 1000).toFixed(2), (wallMs / runMs).toFixed(2), enc, `${Math.round(peak / 2 ** 20)}`]);
}
clearInterval(sampler);
const head = ['config', 'frames', 'model res', 'frames/s', 'session.run s', 'wall s', 'wall/run', 'enc calls/frame (clip/vae)', 'peak RSS MiB'];
const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
const line = (r: string[]) => r.map((v, i) => v.padEnd(widths[i])).join('  ');
console.log(`video: ${video}\npack: ${values.model ?? DEFAULT_PACK}`);
console.log(line(head));
for (const r of rows) console.log(line(r));
rmSync(dir, { recursive: true, force: true });
process.exit(0);
