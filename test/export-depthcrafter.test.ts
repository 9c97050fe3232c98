// tools/export_depthcrafter.py on tiny randomly initialised models of the real DepthCrafter classes
// (diffusers UNetSpatioTemporalConditionModel with 8 input channels, AutoencoderKLTemporalDecoder,
// transformers CLIPVisionModelWithProjection), then the real engine on the exported pack. Needs a Python
// with torch, diffusers, transformers, onnx and onnxruntime (tools/requirements-export.txt): set
// DCL_EXPORT_PYTHON (default .venv-export/bin/python, then python3) and PYTHONPATH as needed. Skipped with
// a message where they are not importable (CI has no diffusers). The parity check against the reference
// pipeline is tools/parity_depthcrafter.py (docs/depthcrafter-export.md).

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';

import { loadModelPack } from '../src/inference/pack/load-pack.js';
import { inferVideo } from '../src/inference/offline/infer.js';
import { readNpz } from '../src/io/npz-writer.js';
import { parseNpy } from '../src/io/npy.js';
import { writeSynthSequence } from '../src/synth/write-sequence.js';
import { findPython } from './helpers/find-python.js';

const ROOT = process.cwd();
const TOOLS = path.join(ROOT, 'tools');

const { python, why } = findPython();
const SKIP = python ? false : `torch/diffusers/transformers/onnx not importable (${why}); set DCL_EXPORT_PYTHON and PYTHONPATH to run`;

function py(args: string[]): string {
  const r = spawnSync(python!, args, { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`${args[0]} failed (${r.status}): ${r.stderr.slice(-3000)}`);
  return r.stdout;
}

describe('DepthCrafter export tool on tiny models of the real classes', { skip: SKIP }, () => {
  let tmp = '';
  let pack = '';
  let unfused = '';
  let models = '';

  before(async () => {
    tmp = await mkdtemp(path.join(tmpdir(), 'dc-export-'));
    models = path.join(tmp, 'models');
    pack = path.join(tmp, 'pack');
    unfused = path.join(tmp, 'pack-unfused');
    // two layers per VAE block (as SVD-xt): the temporal decoder's mid-block attention only runs with two or more
    py([path.join(TOOLS, 'make_tiny_depthcrafter.py'), '--out', models, '--seed', '3', '--vae-layers', '2']);
    const exportTo = (out: string, ...extra: string[]) =>
      py([
        path.join(TOOLS, 'export_depthcrafter.py'),
        '--unet',
        path.join(models, 'unet'),
        '--svd',
        path.join(models, 'svd'),
        '--out',
        out,
        '--dtype',
        'float32',
        '--name',
        'tiny-dc',
        '--external-data',
        'unet',
        ...extra,
      ]);
    exportTo(pack); // fused attention, the default
    exportTo(unfused, '--attention', 'unfused');
  });
  after(async () => {
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it("writes a pack that the loader accepts, with the models' own numbers in the manifest", async () => {
    const manifest = JSON.parse(readFileSync(path.join(pack, 'manifest.json'), 'utf8'));
    assert.equal(manifest.embeddingDim, 32, 'projection_dim of the tiny CLIP');
    assert.equal(manifest.spatialDownsample, 8, 'four VAE blocks -> 1/8');
    assert.equal(manifest.sigmaMax, 700);
    assert.equal(manifest.sigmaMin, 0.002);
    assert.deepEqual(manifest.addedTimeIds, [7, 127, 0.02]);
    assert.ok(existsSync(path.join(pack, 'unet.onnx.data')), 'UNet weights in external data');
    const report = JSON.parse(readFileSync(path.join(pack, 'export-report.json'), 'utf8'));
    for (const key of ['imageEncoder', 'vaeEncoder', 'unet', 'vaeDecoder']) {
      assert.ok(report[key].other_shape.rel < 1e-4, `${key}: ONNX Runtime vs PyTorch at a second shape ${report[key].other_shape.rel}`);
    }
    assert.ok(report.unetWrapper.max_abs_diff < 1e-5, 'per-frame wrapper == stock forward with equal embeddings');
    const loaded = await loadModelPack(pack, { device: 'cpu', intraOpNumThreads: 1 });
    try {
      assert.equal(loaded.unetOutputName, 'noise_pred');
      assert.equal(loaded.dtype, 'float32');
    } finally {
      await loaded.release();
    }
  });

  it('fuses every attention into one MultiHeadAttention node (none left as MatMul-Softmax-MatMul); --attention unfused keeps them', () => {
    const fused = JSON.parse(readFileSync(path.join(pack, 'export-report.json'), 'utf8'));
    const plain = JSON.parse(readFileSync(path.join(unfused, 'export-report.json'), 'utf8'));
    // the tiny models: UNet 2 cross-attention down + mid + 2 up blocks (28 attentions: spatial self/cross, temporal
    // self/cross), the VAE's mid-block attention in encoder and decoder, CLIP's 2 layers
    const attentions: Record<string, number> = { unet: 28, vaeEncoder: 1, vaeDecoder: 1, imageEncoder: 2 };
    for (const [key, n] of Object.entries(attentions)) {
      assert.equal(fused[key].attention, 'mha');
      assert.deepEqual(
        [fused[key].ops.Softmax, fused[key].ops.unfusedAttention, fused[key].ops.MultiHeadAttention],
        [0, 0, n],
        `${key} fused: ${JSON.stringify(fused[key].ops)}`,
      );
      assert.deepEqual(
        [plain[key].ops.Softmax, plain[key].ops.unfusedAttention, plain[key].ops.MultiHeadAttention],
        [n, n, 0],
        `${key} unfused: ${JSON.stringify(plain[key].ops)}`,
      );
      assert.ok(fused[key].ops.nodes < plain[key].ops.nodes, `${key}: fewer nodes fused`);
      // the same ONNX Runtime vs PyTorch check as the unfused form, to the same tolerance
      assert.ok(
        fused[key].other_shape.rel < 1e-4 && plain[key].other_shape.rel < 1e-4,
        `${key}: ${fused[key].other_shape.rel} / ${plain[key].other_shape.rel}`,
      );
    }
  });

  it('runs through the engine over three windows (the last one short) and keeps the stitched latents', async () => {
    const clip = path.join(tmp, 'clip');
    await writeSynthSequence({ outDir: clip, seed: 11, frames: 22, width: 128, height: 64, fps: 30, fovDeg: 60, worker: false });
    const res = await inferVideo({
      input: path.join(clip, 'rgb'),
      outDir: path.join(tmp, 'out'),
      packDir: pack,
      device: 'cpu',
      threads: 1,
      choices: { seed: 1, window: 10, overlap: 3, steps: 2, keepLatents: true },
      writeVideos: false,
      log: pino({ level: 'silent' }),
    });
    assert.equal(res.frames, 22);
    assert.deepEqual([res.width, res.height], [128, 64]);
    const depth = (await readNpz(res.files.npz!)).depth;
    assert.deepEqual(depth.shape, [22, 64, 128]);
    const d = depth.data as Float32Array;
    let lo = Infinity;
    let hi = -Infinity;
    for (const v of d) {
      assert.ok(Number.isFinite(v));
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    assert.equal(lo, 0, 'whole-video min-max');
    assert.equal(hi, 1);
    const latents = parseNpy(readFileSync(res.files.latents!));
    assert.deepEqual(latents.shape, [22, 4, 8, 16]);
  });

  it('gives the same depth with fused and unfused attention (same frames, same seed)', async () => {
    const clip = path.join(tmp, 'clip-cmp');
    await writeSynthSequence({ outDir: clip, seed: 5, frames: 9, width: 128, height: 64, fps: 30, fovDeg: 60, worker: false });
    const run = async (p: string, out: string) => {
      const res = await inferVideo({
        input: path.join(clip, 'rgb'),
        outDir: path.join(tmp, out),
        packDir: p,
        device: 'cpu',
        threads: 1,
        choices: { seed: 2, window: 6, overlap: 2, steps: 2, keepLatents: true },
        writeVideos: false,
        log: pino({ level: 'silent' }),
      });
      return { depth: (await readNpz(res.files.npz!)).depth.data as Float32Array, latents: parseNpy(readFileSync(res.files.latents!)).data as Float32Array };
    };
    const a = await run(pack, 'out-fused');
    const b = await run(unfused, 'out-unfused');
    const maxDiff = (x: Float32Array, y: Float32Array) => x.reduce((m, v, i) => Math.max(m, Math.abs(v - y[i]!)), 0);
    assert.equal(a.depth.length, b.depth.length);
    assert.ok(maxDiff(a.latents, b.latents) < 1e-4, `stitched latents differ by ${maxDiff(a.latents, b.latents)}`);
    assert.ok(maxDiff(a.depth, b.depth) < 1e-4, `depth differs by ${maxDiff(a.depth, b.depth)}`);
  });

  it('names what is missing when the SVD folder is incomplete', () => {
    const r = spawnSync(
      python!,
      [path.join(TOOLS, 'export_depthcrafter.py'), '--unet', path.join(models, 'unet'), '--svd', path.join(models, 'unet'), '--out', path.join(tmp, 'bad')],
      { encoding: 'utf8' },
    );
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /missing vae\/ \(expected the stable-video-diffusion-img2vid-xt layout\)/);
  });
});
