// The paper's stitching ablation on our data: one long sequence (several windows) run three ways
//   average    overlap from fresh noise, 50/50 average of the overlap    (naive baseline)
//   init-only  noise-anchored initialisation, 50/50 average
//   full       noise-anchored initialisation + mortise-and-tenon weights (the reference)
// and the temporal metrics at window boundaries for each (definitions: docs/evaluation.md).
//   node --import tsx bench/ablation.ts [--model DIR] [--window 16] [--overlap 4] [--steps 2] [--max-res 256]
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { inferVideo } from '../src/inference/offline/infer.js';
import { createLogger } from '../src/util/log.js';
import { DEFAULT_PACK } from '../src/inference/pack/default-pack.js';
import { loadGroundTruth, loadPrediction } from '../src/eval/load.js';
import { boundariesFromSegments, evaluateSequence, flickerNoGt, resizeSequence } from '../src/eval/metrics.js';
import { segmentLayout } from '../src/inference/math/segments.js';
import type { StitchMode } from '../src/inference/engine/depth-session.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: DEFAULT_PACK },
    window: { type: 'string', default: '16' },
    overlap: { type: 'string', default: '4' },
    steps: { type: 'string', default: '2' },
    'max-res': { type: 'string', default: '256' },
    data: { type: 'string', default: new URL('../../shared/data/rgbd-hololens-000', import.meta.url).pathname },
  },
});
const window = Number(values.window);
const overlap = Number(values.overlap);
if (!existsSync(join(values.data!, 'rgb'))) {
  console.log(`ablation skipped: no dataset at ${values.data} (needs rgb/ and depth/)`);
  process.exit(0);
}
const log = createLogger({ level: 'warn' });
const gt = await loadGroundTruth(join(values.data!, 'depth'), { depthScale: 0.001 });
const dir = mkdtempSync(join(tmpdir(), 'dcl-ablation-'));
const boundaries = boundariesFromSegments(segmentLayout(gt.frames.length, window, overlap));
console.log(
  `data ${values.data} (${gt.frames.length} frames), pack ${values.model}, window ${window}, overlap ${overlap}, steps ${values.steps}, boundaries at ${boundaries.join(', ')}`,
);
console.log('mode        AbsRel   delta1   temporal  temporal@boundaries  flicker(noGT)  flicker(noGT)@boundaries');
for (const stitch of ['average', 'init-only', 'full'] as StitchMode[]) {
  const r = await inferVideo({
    input: join(values.data!, 'rgb'),
    outDir: join(dir, stitch),
    packDir: values.model!,
    choices: { window, overlap, steps: Number(values.steps), maxRes: Number(values['max-res']), seed: 42, stitch },
    log,
    writeVideos: false,
    compressNpz: false,
  });
  const pred = await loadPrediction(r.files.npz!);
  const preds = resizeSequence(pred.frames, pred.width, pred.height, gt.width, gt.height);
  const m = evaluateSequence(preds, gt.frames, gt.width, gt.height, { maxDepth: 10, boundaries });
  const f = flickerNoGt(pred.frames, { boundaries });
  const cell = (v: number, w: number) => v.toFixed(5).padEnd(w);
  console.log(
    `${stitch.padEnd(12)}${cell(m.absrel, 9)}${cell(m.delta1, 9)}${cell(m.temporal, 10)}${cell(m.temporalBoundary, 21)}${cell(f.flicker, 15)}${cell(f.flickerBoundary, 10)}`,
  );
}
rmSync(dir, { recursive: true, force: true });
process.exit(0);
