// The trained small pack (models/synthetic-small, built by training/run.sh, see docs/training.md),
// end to end through the real engine: it loads through loadModelPack, infers a short held-out
// synthetic clip with inferVideo (pack defaults: 5 steps, window 32, overlap 8) and, scored
// with evaluateSequence against the renderer's exact depth, must beat two trivial predictions
// (a constant and a vertical gradient, bottom = near) on AbsRel. Needs no Python; skipped when the
// pack is absent.

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';

import { loadModelPack } from '../src/inference/pack/load-pack.js';
import { inferVideo } from '../src/inference/offline/infer.js';
import { evaluateSequence, type SequenceMetrics } from '../src/eval/metrics.js';
import { loadGroundTruth, loadPrediction } from '../src/eval/load.js';
import { writeSynthSequence } from '../src/synth/write-sequence.js';

const PACK = path.join(process.cwd(), 'models', 'synthetic-small');
const HAS_PACK = existsSync(path.join(PACK, 'manifest.json'));
// An evaluation seed: training uses seeds 1000-1999 only (training/make_data.py).
const SEED = 90002;
const FRAMES = 16;
const SIZE = 128;
const MAX_DEPTH = 80;

describe('trained pack models/synthetic-small', { skip: HAS_PACK ? false : 'models/synthetic-small not built (bash training/run.sh)' }, () => {
  let tmp = '';
  let model: SequenceMetrics;
  let constant: SequenceMetrics;
  let gradient: SequenceMetrics;

  before(async () => {
    tmp = await mkdtemp(path.join(tmpdir(), 'trained-pack-'));
    const clip = path.join(tmp, 'clip');
    await writeSynthSequence({ outDir: clip, seed: SEED, frames: FRAMES, width: SIZE, height: SIZE, fps: 30, fovDeg: 60, worker: false });
    const res = await inferVideo({
      input: path.join(clip, 'rgb'),
      outDir: path.join(tmp, 'out'),
      packDir: PACK,
      device: 'cpu',
      threads: 1,
      choices: { seed: 42 },
      writeVideos: false,
      log: pino({ level: 'silent' }),
    });
    assert.equal(res.frames, FRAMES);
    assert.deepEqual([res.width, res.height], [SIZE, SIZE], 'runs at the native resolution');
    const pred = await loadPrediction(res.files.npz!);
    const gt = await loadGroundTruth(path.join(clip, 'depth'), { depthScale: 0.001 });
    const n = SIZE * SIZE;
    const score = (frames: Float32Array[]): SequenceMetrics => evaluateSequence(frames, gt.frames, SIZE, SIZE, { maxDepth: MAX_DEPTH });
    model = score(pred.frames);
    constant = score(gt.frames.map(() => new Float32Array(n).fill(0.5)));
    const ramp = new Float32Array(n);
    for (let y = 0; y < SIZE; y++) ramp.fill(y / (SIZE - 1), y * SIZE, (y + 1) * SIZE);
    gradient = score(gt.frames.map(() => ramp.slice()));
  });

  after(async () => {
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('loads through loadModelPack with its manifest', async () => {
    const pack = await loadModelPack(PACK, { device: 'cpu', intraOpNumThreads: 1 });
    try {
      assert.equal(pack.manifest.name, 'synthetic-small');
      assert.equal(pack.manifest.dtype, 'float32');
      assert.deepEqual(pack.manifest.nativeResolution, { height: SIZE, width: SIZE });
      assert.equal(pack.unetOutputName, 'noise_pred');
      assert.match(pack.manifest.description, /synthetic/);
    } finally {
      await pack.release();
    }
  });

  it('produces finite, non-constant depth for every frame', () => {
    assert.equal(model.frames, FRAMES);
    assert.ok(Number.isFinite(model.absrel) && Number.isFinite(model.delta1));
    assert.ok(model.scale !== 0, 'the fit found a non-constant prediction');
  });

  it('beats a constant and a vertical-gradient prediction on AbsRel (held-out seed)', (t) => {
    const msg = `AbsRel model ${model.absrel.toFixed(4)}, constant ${constant.absrel.toFixed(4)}, gradient ${gradient.absrel.toFixed(4)}`;
    t.diagnostic(`${msg}; delta1 model ${model.delta1.toFixed(4)}, constant ${constant.delta1.toFixed(4)}, gradient ${gradient.delta1.toFixed(4)}`);
    assert.ok(model.absrel < constant.absrel, msg);
    assert.ok(model.absrel < gradient.absrel, msg);
    assert.ok(model.delta1 > constant.delta1, `delta1 model ${model.delta1.toFixed(4)} vs constant ${constant.delta1.toFixed(4)}`);
  });
});
