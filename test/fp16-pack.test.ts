// The float16 model-pack path: models/tiny-random-fp16 holds the same networks and seeded weights
// as models/tiny-random, but its image encoder, UNet and VAE decoder take and return float16
// tensors (each graph casts to a float32 body and back; the VAE encoder stays float32). These
// tests cover the loader's dtype validation, the engine's float32 <-> float16 conversion end to
// end against the float32 pack, and the conversion functions themselves.

import assert from 'node:assert/strict';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import * as ort from 'onnxruntime-node';

import { DepthEngine, type EngineDepth } from '../src/inference/engine/depth-engine.js';
import type { StageStats } from '../src/inference/backend/model-stages.js';
import { float32ToHalf, fromHalfBits, halfToFloat32, toHalfBits } from '../src/inference/math/float16.js';
import { loadModelPack, ModelPackError } from '../src/inference/pack/load-pack.js';

const PACK16 = path.join('models', 'tiny-random-fp16');
const PACK32 = path.join('models', 'tiny-random');

const tmpDirs: string[] = [];
async function tmpPack(from: string): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'dc-pack16-'));
  tmpDirs.push(dir);
  await cp(from, dir, { recursive: true });
  return dir;
}

after(async () => {
  await Promise.all(tmpDirs.map((d) => rm(d, { recursive: true, force: true })));
});

async function loadError(dir: string): Promise<ModelPackError> {
  let caught: unknown;
  try {
    const pack = await loadModelPack(dir, { device: 'cpu', intraOpNumThreads: 1 });
    await pack.release();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof ModelPackError, `expected a ModelPackError, got ${String(caught)}`);
  return caught;
}

function includesAll(message: string, ...parts: string[]): void {
  for (const p of parts) assert.ok(message.includes(p), `message ${JSON.stringify(message)} lacks ${JSON.stringify(p)}`);
}

/** Deterministic pseudo-random floats in [lo, hi) (xorshift32). */
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

function randomRgb(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out[i] = (s >>> 0) & 0xff;
  }
  return out;
}

describe('loading the float16 pack', () => {
  it('models/tiny-random-fp16 loads as float16; only the VAE encoder is float32', async () => {
    const pack = await loadModelPack(PACK16, { device: 'cpu', intraOpNumThreads: 1 });
    try {
      assert.equal(pack.dtype, 'float16');
      assert.equal(pack.manifest.dtype, 'float16');
      assert.equal(pack.manifest.name, 'tiny-random-fp16');
      assert.equal(pack.unetOutputName, 'noise_pred');
      assert.match(pack.manifest.description, /float16/);
      assert.match(pack.manifest.description, /float32 body|computes in float32/, 'the description says the arithmetic is float32');
      const types = (s: ort.InferenceSession, side: 'inputMetadata' | 'outputMetadata'): Record<string, string> => {
        const meta = (s as unknown as Record<string, ort.InferenceSession.ValueMetadata[]>)[side] ?? [];
        return Object.fromEntries(meta.map((m) => [m.name, m.isTensor ? m.type : 'non-tensor']));
      };
      const { imageEncoder, vaeEncoder, unet, vaeDecoder } = pack.sessions;
      assert.deepEqual(types(imageEncoder, 'inputMetadata'), { pixel_values: 'float16' });
      assert.deepEqual(types(imageEncoder, 'outputMetadata'), { image_embeds: 'float16' });
      assert.deepEqual(types(unet, 'inputMetadata'), {
        sample: 'float16',
        timestep: 'float16',
        encoder_hidden_states: 'float16',
        added_time_ids: 'float16',
      });
      assert.deepEqual(types(unet, 'outputMetadata'), { noise_pred: 'float16' });
      assert.deepEqual(types(vaeDecoder, 'inputMetadata'), { latent: 'float16' });
      assert.deepEqual(types(vaeDecoder, 'outputMetadata'), { sample: 'float16' });
      assert.deepEqual(types(vaeEncoder, 'inputMetadata'), { sample: 'float32' });
      assert.deepEqual(types(vaeEncoder, 'outputMetadata'), { latent_mean: 'float32' });
    } finally {
      await pack.release();
    }
  });

  it('same weights as the float32 pack: float16 image embeddings are the float32 ones rounded to float16', async () => {
    // Both packs are fed the same float16-exact pixels; the float16 graph casts them to float32, runs
    // the same float32 body and casts the result to float16 with round-to-nearest-even, so the bits
    // must match float32ToHalf of the float32 pack's output exactly.
    const n = 2;
    const x = halfToFloat32(float32ToHalf(randomData(n * 3 * 224 * 224, 9, -2, 2)));
    const p16 = await loadModelPack(PACK16, { device: 'cpu', intraOpNumThreads: 1 });
    const p32 = await loadModelPack(PACK32, { device: 'cpu', intraOpNumThreads: 1 });
    try {
      const dims = [n, 3, 224, 224];
      const o16 = (await p16.sessions.imageEncoder.run({ pixel_values: new ort.Tensor('float16', float32ToHalf(x), dims) })).image_embeds!;
      const o32 = (await p32.sessions.imageEncoder.run({ pixel_values: new ort.Tensor('float32', x, dims) })).image_embeds!;
      assert.equal(o16.type, 'float16');
      assert.deepEqual(o16.dims, [n, 32]);
      assert.ok(o16.data instanceof Uint16Array, 'onnxruntime-node on Node 20 returns float16 as Uint16Array bit patterns');
      assert.deepEqual(Array.from(o16.data as Uint16Array), Array.from(float32ToHalf(o32.data as Float32Array)));
    } finally {
      await p16.release();
      await p32.release();
    }
  });

  it('a float16 pack whose manifest says float32 is rejected, naming the file and the tensor', async () => {
    const dir = await tmpPack(PACK16);
    const file = path.join(dir, 'manifest.json');
    const m = JSON.parse(await readFile(file, 'utf8'));
    m.dtype = 'float32';
    await writeFile(file, JSON.stringify(m));
    const err = await loadError(dir);
    includesAll(
      err.message,
      path.join(dir, 'image_encoder.onnx'),
      'input "pixel_values" has element type float16, expected float32 (manifest dtype float32)',
      'output "image_embeds" has element type float16, expected float32',
    );
    assert.ok(err.message.startsWith(path.join(dir, 'image_encoder.onnx')), err.message);
    assert.equal(err.file, path.join(dir, 'image_encoder.onnx'));
    assert.equal(err.packDir, dir);
  });

  it('a float32 UNet inside a float16 pack is rejected, naming the file and every float tensor', async () => {
    const dir = await tmpPack(PACK16);
    await cp(path.join(PACK32, 'unet.onnx'), path.join(dir, 'unet.onnx'));
    const err = await loadError(dir);
    includesAll(
      err.message,
      path.join(dir, 'unet.onnx'),
      'input "sample" has element type float32, expected float16 (manifest dtype float16)',
      'input "timestep" has element type float32, expected float16',
      'input "encoder_hidden_states" has element type float32, expected float16',
      'input "added_time_ids" has element type float32, expected float16',
      'output "noise_pred" has element type float32, expected float16',
    );
  });
});

describe('engine on the float16 pack', () => {
  const W = 160;
  const H = 96;
  const FRAMES = 12;
  const choices = { window: 8, overlap: 3, steps: 2, maxRes: 128, seed: 42 };
  const frames = Array.from({ length: FRAMES }, (_, i) => randomRgb(W * H * 3, 11_000 + i));

  interface Run {
    name: string;
    description: string;
    depth: EngineDepth[];
    again: EngineDepth[];
    stats: StageStats;
  }

  async function runPack(packDir: string): Promise<Run> {
    const engine = await DepthEngine.open({ packDir, threads: 1, choices });
    try {
      const sequence = async (): Promise<EngineDepth[]> => {
        const got: EngineDepth[] = [];
        engine.onDepth = (d) => got.push(d);
        for (const f of frames) await engine.push(f.slice(), W, H);
        await engine.end();
        return got;
      };
      const depth = await sequence();
      const { stats } = await engine.stats();
      const again = await sequence();
      return { name: engine.packName, description: engine.packDescription, depth, again, stats };
    } finally {
      await engine.close();
    }
  }

  // Tolerance. The float16 pack computes in float32 with the float32 pack's weights; the only
  // difference is float16 rounding (relative 2^-12) of every image-encoder, UNet and VAE-decoder
  // input and output. The last rounding dominates: the decoded sample x in (-1,1) is rounded to a
  // float16 (error <= 2^-12 for |x| in [0.5,1)), depth = mean_RGB((x+1)/2) halves that to <= 2^-13
  // = 1.2e-4. Rounding the UNet inputs/outputs over 2 Euler steps and the decoder input adds a few
  // 1e-5 on top (measured max |diff| 1.66e-4 for seed 42; 1.7e-4 to 1.8e-4 for seeds 1, 2, 3, 7).
  // 2^-11 (4.9e-4, one float16 ulp just below 1) is about 3x the measured maximum. A broken
  // conversion (bit patterns read as numbers, wrong rounding, swapped bytes) is off by O(0.1) to O(1).
  const TOLERANCE = 2 ** -11;

  it(`${FRAMES} frames, window 8, overlap 3, 2 steps, maxRes 128: float16 depth is within ${TOLERANCE.toExponential(2)} of float32 but not identical`, async () => {
    const r32 = await runPack(PACK32);
    const r16 = await runPack(PACK16);

    assert.equal(r16.name, 'tiny-random-fp16');
    assert.match(r16.description, /float16/);
    assert.equal(r32.name, 'tiny-random');

    // Same plumbing: the same windows, steps and decode chunks, frame for frame.
    // Windows [0,8) and [5,12): 2 windows x 2 steps; decode chunks 8 + 4.
    assert.deepEqual(r16.stats.calls, r32.stats.calls);
    assert.deepEqual(r16.stats.framesIn, r32.stats.framesIn);
    assert.equal(r16.stats.calls.denoise, 2 * 2);
    assert.equal(r16.stats.framesIn.denoise, (8 + 7) * 2);
    assert.equal(r16.stats.calls.decode, 2);
    assert.equal(r16.stats.framesIn.encodeImage, FRAMES);

    assert.deepEqual(
      r16.depth.map((d) => d.index),
      Array.from({ length: FRAMES }, (_, i) => i),
    );
    assert.equal(r32.depth.length, FRAMES);

    let maxDiff = 0;
    let sumDiff = 0;
    let differing = 0;
    let count = 0;
    for (let f = 0; f < FRAMES; f++) {
      const a = r32.depth[f]!;
      const b = r16.depth[f]!;
      assert.equal(b.width, 128);
      assert.equal(b.height, 128);
      assert.equal(b.depth.length, a.depth.length);
      for (let i = 0; i < a.depth.length; i++) {
        const x = b.depth[i]!;
        assert.ok(x >= 0 && x <= 1, `frame ${f}: float16 depth ${x} outside [0,1]`);
        const d = Math.abs(x - a.depth[i]!);
        if (d > maxDiff) maxDiff = d;
        if (d > 0) differing++;
        sumDiff += d;
        count++;
      }
    }
    const meanDiff = sumDiff / count;
    console.log(
      `float16 vs float32 pack (seed ${choices.seed}, ${FRAMES} frames 128x128): max |depth diff| ${maxDiff.toExponential(3)}, ` +
        `mean ${meanDiff.toExponential(3)}, ${((100 * differing) / count).toFixed(1)}% of values differ (tolerance ${TOLERANCE.toExponential(3)})`,
    );
    assert.ok(maxDiff <= TOLERANCE, `max |depth diff| ${maxDiff} exceeds ${TOLERANCE}`);
    // Not identical: the float16 path (conversion both ways, float16 tensors) really ran.
    assert.ok(maxDiff > 0, 'float16 depth is bit-identical to float32: the float16 path did not run');
    assert.ok(differing > count / 10, `only ${differing} of ${count} depth values differ from float32`);
    // The depth is not constant, so the comparison means something.
    assert.ok(
      r16.depth.some((d) => d.max - d.min > 0.05),
      'float16 depth is (nearly) constant',
    );

    // Deterministic: a second sequence on the same engine with the same seed is bit-identical.
    for (let f = 0; f < FRAMES; f++) {
      assert.deepEqual(r16.again[f]!.depth, r16.depth[f]!.depth, `float16 frame ${f} not reproducible`);
    }
  });
});

describe('float16 conversion', () => {
  const isNaNHalf = (h: number): boolean => (h & 0x7c00) === 0x7c00 && (h & 0x03ff) !== 0;

  it('special values: zeros, one, max, overflow, infinities, NaN', () => {
    assert.equal(toHalfBits(0), 0x0000);
    assert.equal(toHalfBits(-0), 0x8000);
    assert.equal(toHalfBits(1), 0x3c00);
    assert.equal(toHalfBits(-2), 0xc000);
    assert.equal(toHalfBits(0.5), 0x3800);
    assert.equal(toHalfBits(65504), 0x7bff, 'largest finite half');
    assert.equal(toHalfBits(-65504), 0xfbff);
    assert.equal(toHalfBits(65519.99), 0x7bff, 'just below the overflow midpoint stays finite');
    assert.equal(toHalfBits(65520), 0x7c00, '65520 is the midpoint to 65536: ties to even = infinity');
    assert.equal(toHalfBits(-65520), 0xfc00);
    assert.equal(toHalfBits(1e6), 0x7c00);
    assert.equal(toHalfBits(3.4e38), 0x7c00);
    assert.equal(toHalfBits(Infinity), 0x7c00);
    assert.equal(toHalfBits(-Infinity), 0xfc00);
    assert.ok(isNaNHalf(toHalfBits(NaN)), `NaN -> 0x${toHalfBits(NaN).toString(16)}`);

    assert.ok(Object.is(fromHalfBits(0x0000), 0));
    assert.ok(Object.is(fromHalfBits(0x8000), -0));
    assert.equal(fromHalfBits(0x3c00), 1);
    assert.equal(fromHalfBits(0x7bff), 65504);
    assert.equal(fromHalfBits(0x7c00), Infinity);
    assert.equal(fromHalfBits(0xfc00), -Infinity);
    assert.ok(Number.isNaN(fromHalfBits(0x7e00)));
    assert.ok(Number.isNaN(fromHalfBits(0xfc01)));
    assert.equal(fromHalfBits(0x3555), 0.333251953125);
  });

  it('subnormals: 6e-8 is the smallest, and underflow rounds half to even', () => {
    const tiny = 2 ** -24; // 5.96e-8, the smallest positive subnormal
    assert.equal(toHalfBits(6e-8), 0x0001);
    assert.equal(fromHalfBits(0x0001), tiny);
    assert.equal(toHalfBits(-6e-8), 0x8001);
    assert.equal(toHalfBits(2 ** -25), 0x0000, 'exactly half the smallest subnormal ties to even (zero)');
    assert.ok(Object.is(fromHalfBits(toHalfBits(-(2 ** -25))), -0), 'negative underflow keeps the sign');
    assert.equal(toHalfBits(1.5 * 2 ** -25), 0x0001, 'above the midpoint rounds up');
    assert.equal(toHalfBits(2 ** -26), 0x0000);
    assert.equal(toHalfBits(1e-10), 0x0000);
    assert.equal(toHalfBits(3 * 2 ** -25), 0x0002, '1.5 x smallest ties to even (2)');
    assert.equal(toHalfBits(5 * 2 ** -25), 0x0002, '2.5 x smallest ties to even (2)');
    assert.equal(toHalfBits(1023 * tiny), 0x03ff, 'largest subnormal');
    assert.equal(fromHalfBits(0x03ff), 1023 * tiny);
    assert.equal(toHalfBits(1023.5 * tiny), 0x0400, 'rounds up into the smallest normal');
    assert.equal(toHalfBits(2 ** -14), 0x0400);
    assert.equal(fromHalfBits(0x0400), 2 ** -14);
  });

  it('normal numbers round half to even', () => {
    const ulp1 = 2 ** -10; // spacing of halves in [1,2)
    assert.equal(toHalfBits(1 + ulp1 / 2), 0x3c00, '1 + ulp/2 ties to 1 (even)');
    assert.equal(toHalfBits(1 + (3 * ulp1) / 2), 0x3c02, '1 + 1.5 ulp ties to 1 + 2 ulp (even)');
    assert.equal(toHalfBits(1 + ulp1 / 2 + 2 ** -20), 0x3c01, 'just above the midpoint rounds up');
    assert.equal(toHalfBits(1 + ulp1 / 2 - 2 ** -20), 0x3c00, 'just below the midpoint rounds down');
    assert.equal(toHalfBits(2049), 0x6800, '2049 ties to 2048');
    assert.equal(toHalfBits(2051), 0x6802, '2051 ties to 2052');
    assert.equal(fromHalfBits(0x6802), 2052);
    assert.equal(toHalfBits(-2051), 0xe802);
    assert.equal(toHalfBits(2047.5), 0x6800, '2047.5 (top of [1024,2048), ulp 1) ties to 2048');
    assert.equal(toHalfBits(0.1), 0x2e66);
    assert.equal(toHalfBits(0.02), 0x251f);
  });

  it('every half round-trips, and every midpoint between neighbours rounds to the even one', () => {
    const f32 = new Float32Array(1);
    const u32 = new Uint32Array(f32.buffer);
    /** The float32 next to v, one step further from zero (dir 1) or towards zero (dir -1). */
    const step = (v: number, dir: 1 | -1): number => {
      f32[0] = v;
      u32[0] += dir;
      return f32[0]!;
    };
    for (let h = 0; h <= 0xffff; h++) {
      if (isNaNHalf(h)) {
        assert.ok(Number.isNaN(fromHalfBits(h)));
        continue;
      }
      const v = fromHalfBits(h);
      if (toHalfBits(v) !== h) assert.fail(`0x${h.toString(16)} -> ${v} -> 0x${toHalfBits(v).toString(16)}`);
      if ((h & 0x7fff) >= 0x7c00) continue; // infinities have no next neighbour
      const next = h + 1; // one step further from zero (same sign); 0x7bff + 1 is infinity
      // The midpoint is exact in float32 (12 significant bits). Past 65504 the next step would be
      // 65536 (exponent 16), so the overflow threshold is the midpoint 65520, which rounds to infinity.
      const toInf = next === 0x7c00 || next === 0xfc00;
      const mid = toInf ? Math.sign(v) * 65520 : (v + fromHalfBits(next)) / 2;
      const even = (h & 1) === 0 ? h : next;
      if (toHalfBits(mid) !== even) assert.fail(`midpoint ${mid} of 0x${h.toString(16)}: got 0x${toHalfBits(mid).toString(16)}, want 0x${even.toString(16)}`);
      if (mid !== 0) {
        if (toHalfBits(step(mid, 1)) !== next) assert.fail(`just above midpoint ${mid}: want 0x${next.toString(16)}`);
        if (toHalfBits(step(mid, -1)) !== h) assert.fail(`just below midpoint ${mid}: want 0x${h.toString(16)}`);
      }
    }
  });

  it('array conversion: float32ToHalf / halfToFloat32 agree with the scalar functions', () => {
    const src = Float32Array.of(0, -0, 1, -1.5, 65504, 65520, 6e-8, NaN, 0.1, -Infinity, 1e-9, 3.14159);
    const half = float32ToHalf(src);
    assert.ok(half instanceof Uint16Array);
    assert.equal(half.length, src.length);
    for (let i = 0; i < src.length; i++) assert.equal(half[i], toHalfBits(src[i]!));
    const back = halfToFloat32(half);
    assert.ok(back instanceof Float32Array);
    for (let i = 0; i < src.length; i++) {
      const want = fromHalfBits(half[i]!);
      assert.ok(Object.is(back[i], Math.fround(want)), `index ${i}: ${back[i]} vs ${want}`);
    }
    assert.equal(back[5], Infinity);
    assert.ok(Number.isNaN(back[7]));
    // Output buffers are reused when given.
    const out = new Uint16Array(src.length);
    assert.equal(float32ToHalf(src, out), out);
    const outF = new Float32Array(src.length);
    assert.equal(halfToFloat32(half, outF), outF);
  });
});
