import assert from 'node:assert/strict';
import { cp, mkdtemp, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as ort from 'onnxruntime-node';
import { loadModelPack, ModelPackError, type LoadedModelPack } from '../src/inference/pack/load-pack.js';
import { parsePackManifest, PackManifestSchema } from '../src/inference/pack/manifest.js';

const PACK = path.join('models', 'tiny-random');

/** Deterministic pseudo-random floats in [lo, hi). */
function randomData(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out[i] = lo + ((s >>> 0) / 4294967296) * (hi - lo);
  }
  return out;
}

function assertFinite(t: ort.Tensor, label: string): void {
  const data = t.data as Float32Array;
  assert.ok(data.length > 0, `${label}: empty`);
  for (let i = 0; i < data.length; i++) {
    if (!Number.isFinite(data[i])) assert.fail(`${label}: non-finite value at ${i}`);
  }
}

const tmpDirs: string[] = [];
async function tmpPack(): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'dc-pack-'));
  tmpDirs.push(dir);
  await cp(PACK, dir, { recursive: true });
  return dir;
}

async function rejectsWith(dir: string, ...patterns: (string | RegExp)[]): Promise<ModelPackError> {
  let caught: unknown;
  try {
    const pack = await loadModelPack(dir, { device: 'cpu' });
    await pack.release();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof ModelPackError, `expected ModelPackError, got ${String(caught)}`);
  for (const p of patterns) {
    if (typeof p === 'string') assert.ok(caught.message.includes(p), `message ${JSON.stringify(caught.message)} lacks ${JSON.stringify(p)}`);
    else assert.match(caught.message, p);
  }
  return caught;
}

after(async () => {
  await Promise.all(tmpDirs.map((d) => rm(d, { recursive: true, force: true })));
});

describe('tiny-random pack', () => {
  let pack: LoadedModelPack;
  const T = 2;
  const H = 64;
  const W = 64;
  const h = H / 8;
  const w = W / 8;

  before(async () => {
    pack = await loadModelPack(PACK, { device: 'cpu', intraOpNumThreads: 1 });
  });
  after(async () => {
    await pack?.release();
  });

  it('loads with the expected manifest and contract', () => {
    assert.equal(pack.dir, PACK);
    assert.equal(pack.dtype, 'float32');
    assert.equal(pack.unetOutputName, 'noise_pred');
    const m = pack.manifest;
    assert.equal(m.format, 'depthcrafter-pack');
    assert.equal(m.formatVersion, 1);
    assert.equal(m.name, 'tiny-random');
    assert.equal(m.latentChannels, 4);
    assert.equal(m.vaeScalingFactor, 0.18215);
    assert.equal(m.spatialDownsample, 8);
    assert.equal(m.embeddingDim, 32);
    assert.deepEqual(m.addedTimeIds, [7, 127, 0.02]);
    assert.deepEqual(m.defaults, {
      steps: 5,
      guidance: 1,
      window: 110,
      overlap: 25,
      maxRes: 1024,
      noiseAugStrength: 0.02,
      decodeChunk: 8,
    });
    assert.deepEqual(pack.sessions.unet.inputNames, ['sample', 'timestep', 'encoder_hidden_states', 'added_time_ids']);
  });

  it('image encoder: [N,3,224,224] -> image_embeds [N,D]', async () => {
    const x = new ort.Tensor('float32', randomData(T * 3 * 224 * 224, 1), [T, 3, 224, 224]);
    const out = await pack.sessions.imageEncoder.run({ pixel_values: x });
    const e = out.image_embeds!;
    assert.deepEqual(e.dims, [T, 32]);
    assertFinite(e, 'image_embeds');
  });

  it('VAE encoder: [N,3,H,W] -> latent_mean [N,4,H/8,W/8]', async () => {
    const x = new ort.Tensor('float32', randomData(T * 3 * H * W, 2), [T, 3, H, W]);
    const out = await pack.sessions.vaeEncoder.run({ sample: x });
    const l = out.latent_mean!;
    assert.deepEqual(l.dims, [T, 4, h, w]);
    assertFinite(l, 'latent_mean');
  });

  it('UNet: [1,T,8,h,w] + timestep + embeddings + added_time_ids -> noise_pred [1,T,4,h,w]', async () => {
    const feeds = {
      sample: new ort.Tensor('float32', randomData(T * 8 * h * w, 3), [1, T, 8, h, w]),
      timestep: new ort.Tensor('float32', Float32Array.of(0.25 * Math.log(700)), [1]),
      encoder_hidden_states: new ort.Tensor('float32', randomData(T * 32, 4), [1, T, 32]),
      added_time_ids: new ort.Tensor('float32', Float32Array.from(pack.manifest.addedTimeIds), [1, 3]),
    };
    const out = await pack.sessions.unet.run(feeds);
    const y = out[pack.unetOutputName]!;
    assert.deepEqual(y.dims, [1, T, 4, h, w]);
    assertFinite(y, 'noise_pred');
    // the timestep is actually used
    const out2 = await pack.sessions.unet.run({
      ...feeds,
      timestep: new ort.Tensor('float32', Float32Array.of(0.25 * Math.log(0.002)), [1]),
    });
    assert.notDeepEqual(out2[pack.unetOutputName]!.data, y.data);
  });

  it('VAE decoder: latent [T,4,h,w] -> sample [T,3,H,W] in (-1,1), frames mixed temporally', async () => {
    const lat = randomData(T * 4 * h * w, 5, -5, 5);
    const out = await pack.sessions.vaeDecoder.run({ latent: new ort.Tensor('float32', lat, [T, 4, h, w]) });
    const y = out.sample!;
    assert.deepEqual(y.dims, [T, 3, H, W]);
    assertFinite(y, 'decoded sample');
    const yd = y.data as Float32Array;
    let min = Infinity;
    let max = -Infinity;
    for (const v of yd) {
      min = Math.min(min, v);
      max = Math.max(max, v);
    }
    assert.ok(min >= -1 && max <= 1, `decoder output in [-1,1], got [${min}, ${max}]`);
    assert.ok(max - min > 0.1, 'decoder output is not constant');

    // change frame 0 only: output frame 1 must change
    const lat2 = lat.slice();
    for (let i = 0; i < 4 * h * w; i++) lat2[i] += 3;
    const out2 = await pack.sessions.vaeDecoder.run({ latent: new ort.Tensor('float32', lat2, [T, 4, h, w]) });
    const y2 = out2.sample!.data as Float32Array;
    const frame = 3 * H * W;
    let diff = 0;
    for (let i = frame; i < 2 * frame; i++) diff = Math.max(diff, Math.abs(y2[i]! - yd[i]!));
    assert.ok(diff > 1e-4, `output frame 1 should depend on input frame 0 (max diff ${diff})`);
  });

  it('release() is idempotent', async () => {
    const p = await loadModelPack(PACK, { device: 'cpu' });
    await p.release();
    await p.release();
  });
});

describe('manifest schema', () => {
  it('fills defaults for a minimal manifest', () => {
    const m = PackManifestSchema.parse({
      format: 'depthcrafter-pack',
      formatVersion: 1,
      name: 'x',
      version: '1',
      licence: 'test',
      embeddingDim: 1024,
      dtype: 'float16',
      files: { imageEncoder: 'a.onnx', vaeEncoder: 'b.onnx', unet: 'c.onnx', vaeDecoder: 'd.onnx' },
    });
    assert.equal(m.vaeScalingFactor, 0.18215);
    assert.equal(m.imageEncoder.size, 224);
    assert.deepEqual(m.imageEncoder.std, [0.26862954, 0.26130258, 0.27577711]);
    assert.equal(m.defaults.window, 110);
    assert.equal(m.maxWindow, 110);
    assert.equal(m.sigmaMax, 700);
    assert.deepEqual(m.addedTimeIds, [7, 127, 0.02]);
    assert.equal(m.nativeResolution, undefined);
  });

  it('reports every bad field by path', () => {
    assert.throws(
      () =>
        parsePackManifest(
          {
            format: 'depthcrafter-pack',
            formatVersion: 1,
            name: 'x',
            version: '1',
            licence: 'test',
            embeddingDim: 1024,
            dtype: 'float16',
            defaults: { overlap: 200 },
            imageEncoder: { std: [1, 0, 1] },
            files: { imageEncoder: '/abs.onnx', vaeEncoder: '../b.onnx', unet: 'c.onnx', vaeDecoder: 'd.onnx' },
            typo: 1,
          },
          'p/manifest.json',
          'p',
        ),
      (err: unknown) => {
        assert.ok(err instanceof ModelPackError);
        for (const s of [
          'p/manifest.json',
          'field "defaults.overlap"',
          'field "imageEncoder.std"',
          'field "files.imageEncoder"',
          'field "files.vaeEncoder"',
          '"typo"',
        ]) {
          assert.ok(err.message.includes(s), `${err.message} lacks ${s}`);
        }
        return true;
      },
    );
  });
});

describe('loadModelPack errors', () => {
  it('missing folder', async () => {
    const dir = path.join(tmpdir(), 'dc-pack-does-not-exist');
    await rejectsWith(dir, dir, 'not found');
  });

  it('missing manifest', async () => {
    const dir = await tmpPack();
    await unlink(path.join(dir, 'manifest.json'));
    await rejectsWith(dir, path.join(dir, 'manifest.json'), 'not found');
  });

  it('manifest that is not JSON', async () => {
    const dir = await tmpPack();
    await writeFile(path.join(dir, 'manifest.json'), '{ "format": ');
    await rejectsWith(dir, path.join(dir, 'manifest.json'), 'invalid JSON');
  });

  it('invalid manifest field', async () => {
    const dir = await tmpPack();
    const file = path.join(dir, 'manifest.json');
    const m = JSON.parse(await readFile(file, 'utf8'));
    m.embeddingDim = -3;
    m.dtype = 'int8';
    await writeFile(file, JSON.stringify(m));
    const err = await rejectsWith(dir, file, 'field "embeddingDim"', 'field "dtype"');
    assert.equal(err.file, file);
    assert.equal(err.packDir, dir);
  });

  it('missing ONNX file', async () => {
    const dir = await tmpPack();
    await unlink(path.join(dir, 'vae_decoder.onnx'));
    await rejectsWith(dir, path.join(dir, 'vae_decoder.onnx'), 'files.vaeDecoder', 'not found');
  });

  it('corrupt ONNX file', async () => {
    const dir = await tmpPack();
    const bytes = Buffer.alloc(4096);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7919 + 13) & 0xff;
    await writeFile(path.join(dir, 'unet.onnx'), bytes);
    await rejectsWith(dir, path.join(dir, 'unet.onnx'), 'cannot load ONNX model');
  });

  it('ONNX file with the wrong inputs (decoder in place of the UNet)', async () => {
    const dir = await tmpPack();
    await cp(path.join(dir, 'vae_decoder.onnx'), path.join(dir, 'unet.onnx'));
    await rejectsWith(
      dir,
      path.join(dir, 'unet.onnx'),
      'missing input "sample"',
      'missing input "encoder_hidden_states"',
      'unexpected input "latent"',
      'the model\'s inputs are "latent"',
    );
  });

  it('ONNX file with a wrong rank (VAE encoder in place of the UNet)', async () => {
    const dir = await tmpPack();
    await cp(path.join(dir, 'vae_encoder.onnx'), path.join(dir, 'unet.onnx'));
    await rejectsWith(dir, path.join(dir, 'unet.onnx'), 'input "sample" has rank 4, expected 5 [1,T,8,h,w]', 'missing input "timestep"');
  });

  it('model dimension that disagrees with the manifest (embeddingDim)', async () => {
    const dir = await tmpPack();
    const file = path.join(dir, 'manifest.json');
    const m = JSON.parse(await readFile(file, 'utf8'));
    m.embeddingDim = 64;
    await writeFile(file, JSON.stringify(m));
    await rejectsWith(dir, path.join(dir, 'image_encoder.onnx'), 'output "image_embeds" dimension 1 (D) is 32, expected 64 [N,D]');
  });

  it('dtype mismatch between manifest and model', async () => {
    const dir = await tmpPack();
    const file = path.join(dir, 'manifest.json');
    const m = JSON.parse(await readFile(file, 'utf8'));
    m.dtype = 'float16';
    await writeFile(file, JSON.stringify(m));
    await rejectsWith(dir, path.join(dir, 'image_encoder.onnx'), 'input "pixel_values" has element type float32, expected float16');
  });

  it('non-CPU device that cannot load never falls back to CPU', async () => {
    let caught: unknown;
    try {
      const p = await loadModelPack(PACK, { device: 'cuda' });
      await p.release(); // a machine with the CUDA provider installed: fine
      return;
    } catch (err) {
      caught = err;
    }
    assert.ok(caught instanceof ModelPackError);
    assert.match(caught.message, /cuda/);
    assert.match(caught.message, /CUDA 12/);
    assert.match(caught.message, /cuDNN 9/);
  });
});
