// DepthSession (the streaming engine) against a plain, whole-video, NON-streaming
// implementation of the reference pipeline written here from the spec (sections 2-5 and 11 of
// /work/shared/reference/depthcrafter-inference-spec.md). Both drive the same cheap,
// deterministic fake model stages written in JS, and get the same seeded noise, so any
// difference is a difference in the loop logic: segment layout, noise block rolling, overlap
// re-noising, Euler/CFG steps, stitching weights, decode chunking or streaming emission.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { DepthSession, type SessionConfig, type SessionOutput, type SessionProbe } from '../src/inference/engine/depth-session.js';
import { SeededNoise, type NoiseSource } from '../src/inference/engine/noise-source.js';
import type { ModelStages } from '../src/inference/backend/model-stages.js';
import type { ModelBackend, SamplerSettings } from '../src/inference/backend/model-backend.js';
import { StagesBackend } from '../src/inference/backend/stages-backend.js';
import { ClipPreprocessor } from '../src/inference/image/clip-preprocess.js';
import { karrasSigmas, toFloat32Sigmas } from '../src/inference/math/sigmas.js';
import { cNoise } from '../src/inference/math/edm.js';
import { torchLinspace01 } from '../src/inference/math/stitching.js';
import { Prng } from '../src/inference/math/prng.js';

const f32 = Math.fround;

// ---------------------------------------------------------------------------------------------
// Configuration (small: 32x48 frames -> 4x6 latents; a 32x32 "CLIP" input keeps the fake cheap)

function makeConfig(window: number, overlap: number, steps: number, guidance: number, size = { height: 32, width: 48 }): SessionConfig {
  return {
    height: size.height,
    width: size.width,
    window,
    overlap,
    steps,
    guidance,
    sigmaMin: 0.002,
    sigmaMax: 700,
    latentChannels: 4,
    downsample: 8,
    scalingFactor: 0.18215,
    noiseAugStrength: 0.02,
    decodeChunk: 8,
    embeddingDim: 8,
    clipSize: 32,
    clipMean: [0.48145466, 0.4578275, 0.40821073],
    clipStd: [0.26862954, 0.26130258, 0.27577711],
  };
}

// ---------------------------------------------------------------------------------------------
// Fake model stages: pure functions of their inputs (so both implementations see identical
// outputs for identical inputs), and sensitive to everything the real models are sensitive to:
// per-frame content, the embedding, the timestep, the frame position and neighbours inside a
// UNet call (so window boundaries matter), and the chunk inside a decode call.

interface CallLog {
  encodeImage: number[];
  encodeLatent: number[];
  denoise: number[];
  decode: number[];
}

class FakeStages implements ModelStages {
  readonly log: CallLog = { encodeImage: [], encodeLatent: [], denoise: [], decode: [] };
  private readonly imgWeights: Float64Array;

  constructor(
    private readonly embeddingDim: number,
    private readonly clipSize: number,
  ) {
    const n = 3 * clipSize * clipSize;
    this.imgWeights = new Float64Array(embeddingDim * n);
    for (let d = 0; d < embeddingDim; d++) {
      for (let i = 0; i < n; i++) this.imgWeights[d * n + i] = Math.sin(0.37 * i * (d + 1) + 1.3 * d) / Math.sqrt(n);
    }
  }

  async encodeImage(pixels: Float32Array, n: number): Promise<Float32Array> {
    this.log.encodeImage.push(n);
    const size = 3 * this.clipSize * this.clipSize;
    assert.equal(pixels.length, n * size, 'encodeImage input size');
    const D = this.embeddingDim;
    const out = new Float32Array(n * D);
    for (let f = 0; f < n; f++) {
      for (let d = 0; d < D; d++) {
        let s = 0;
        const wo = d * size;
        const po = f * size;
        for (let i = 0; i < size; i++) s += pixels[po + i] * this.imgWeights[wo + i];
        out[f * D + d] = Math.tanh(s);
      }
    }
    return out;
  }

  async encodeLatent(pixels: Float32Array, n: number, height: number, width: number): Promise<Float32Array> {
    this.log.encodeLatent.push(n);
    assert.equal(pixels.length, n * 3 * height * width, 'encodeLatent input size');
    const h = height / 8;
    const w = width / 8;
    const plane = height * width;
    const out = new Float32Array(n * 4 * h * w);
    for (let f = 0; f < n; f++) {
      for (let c = 0; c < 3; c++) {
        for (let y = 0; y < h; y++) {
          for (let x = 0; x < w; x++) {
            let s = 0;
            for (let dy = 0; dy < 8; dy++) {
              const row = f * 3 * plane + c * plane + (y * 8 + dy) * width + x * 8;
              for (let dx = 0; dx < 8; dx++) s += pixels[row + dx];
            }
            out[((f * 4 + c) * h + y) * w + x] = s / 64;
          }
        }
      }
      // The fourth channel: a fixed mix of the other three.
      for (let p = 0; p < h * w; p++) {
        const b = f * 4 * h * w;
        out[b + 3 * h * w + p] = 0.5 * (out[b + p] - out[b + 2 * h * w + p]) + 0.1;
      }
    }
    return out;
  }

  async denoise(sample: Float32Array, timestep: number, embeddings: Float32Array, frames: number, h: number, w: number): Promise<Float32Array> {
    this.log.denoise.push(frames);
    const P = h * w;
    const D = embeddings.length / frames;
    assert.equal(sample.length, frames * 8 * P, 'denoise sample size');
    assert.equal(D, this.embeddingDim, 'denoise embedding size');
    const out = new Float32Array(frames * 4 * P);
    const at = (t: number, c: number, p: number) => sample[(t * 8 + c) * P + p];
    for (let t = 0; t < frames; t++) {
      const pos = t / frames;
      for (let c = 0; c < 4; c++) {
        for (let p = 0; p < P; p++) {
          const a = at(t, c, p);
          const cond = at(t, 4 + c, p);
          const mix = at(t, (c + 1) % 4, p);
          const prev = t > 0 ? at(t - 1, c, p) : 0;
          const next = t < frames - 1 ? at(t + 1, c, p) : 0;
          const e = embeddings[t * D + ((c + p) % D)];
          out[(t * 4 + c) * P + p] = Math.tanh(0.9 * a + 0.6 * cond - 0.3 * mix + 0.25 * (prev + next) + 0.5 * e + 0.2 * timestep + 0.3 * pos);
        }
      }
    }
    return out;
  }

  async decode(latents: Float32Array, frames: number, h: number, w: number): Promise<Float32Array> {
    this.log.decode.push(frames);
    const P = h * w;
    assert.equal(latents.length, frames * 4 * P, 'decode input size');
    const H = h * 8;
    const W = w * 8;
    const out = new Float32Array(frames * 3 * H * W);
    const lat = (t: number, c: number, p: number) => latents[(t * 4 + c) * P + p];
    for (let t = 0; t < frames; t++) {
      for (let c = 0; c < 3; c++) {
        for (let y = 0; y < H; y++) {
          for (let x = 0; x < W; x++) {
            const p = (y >> 3) * w + (x >> 3);
            let chunkMean = 0;
            for (let j = 0; j < frames; j++) chunkMean += lat(j, c, p);
            chunkMean /= frames;
            const z = lat(t, c, p);
            const prevF = t > 0 ? lat(t - 1, c, p) : z;
            const sub = (((y & 7) - 3.5) / 8) * lat(t, (c + 1) % 4, p) + (((x & 7) - 3.5) / 16) * lat(t, 3, p);
            out[((t * 3 + c) * H + y) * W + x] = Math.tanh(0.12 * z + 0.05 * lat(t, 3, p) + 0.06 * chunkMean + 0.04 * prevF + 0.03 * sub + 0.1 * (t / frames));
          }
        }
      }
    }
    return out;
  }
}

// ---------------------------------------------------------------------------------------------
// The reference pipeline, whole video in memory, written from the spec.

interface ReferenceOptions {
  /** Deliberate mistakes, to show the comparison can fail. */
  mutate?: 'reverse-weights' | 'no-roll' | 'window-chunks';
}

interface ReferenceResult {
  depth: Float32Array[];
  /** Final stitched latents (scaled latent space), one per frame. */
  latents: Float32Array[];
  segments: Array<{ start: number; length: number }>;
}

async function referencePipeline(
  frames: Float32Array[],
  cfg: SessionConfig,
  stages: ModelStages,
  noise: NoiseSource,
  opt: ReferenceOptions = {},
): Promise<ReferenceResult> {
  const N = frames.length;
  const H = cfg.height;
  const Wpx = cfg.width;
  const h = H / cfg.downsample;
  const w = Wpx / cfg.downsample;
  const L = cfg.latentChannels * h * w;
  const pixelSize = 3 * H * Wpx;
  const D = cfg.embeddingDim;
  const chunk = 8; // decode_chunk_size

  // 2a. CLIP embeddings of the CLEAN frames, encoded in chunks of 8.
  const clip = new ClipPreprocessor(H, Wpx, cfg.clipSize, cfg.clipSize);
  const clipSize = 3 * cfg.clipSize * cfg.clipSize;
  const E = new Float32Array(N * D);
  for (let c0 = 0; c0 < N; c0 += chunk) {
    const n = Math.min(chunk, N - c0);
    const buf = new Float32Array(n * clipSize);
    for (let i = 0; i < n; i++) clip.run(frames[c0 + i], buf, i * clipSize);
    E.set(await stages.encodeImage(buf, n), c0 * D);
  }

  // 2b. First random draw: pixel noise [N,3,H,W] (in frame order); VAE input = v + 0.02 * eps.
  const eps = new Float32Array(pixelSize);
  const augmented = new Float32Array(N * pixelSize);
  for (let i = 0; i < N; i++) {
    noise.pixel(i, eps);
    for (let j = 0; j < pixelSize; j++) augmented[i * pixelSize + j] = frames[i][j] + cfg.noiseAugStrength * eps[j];
  }
  const C = new Float32Array(N * L);
  for (let c0 = 0; c0 < N; c0 += chunk) {
    const n = Math.min(chunk, N - c0);
    C.set(await stages.encodeLatent(augmented.subarray(c0 * pixelSize, (c0 + n) * pixelSize), n, H, Wpx), c0 * L);
  }

  // 3. Sampler constants (float32 sigmas, as the scheduler holds them).
  const sigmas = toFloat32Sigmas(karrasSigmas(cfg.steps, cfg.sigmaMin, cfg.sigmaMax));
  const initSigma = f32(Math.sqrt(sigmas[0] * sigmas[0] + 1));

  // 4. Segments.
  let W = cfg.window;
  let O = cfg.overlap;
  if (N <= W) {
    W = N;
    O = 0;
  }
  const S = W - O;

  // Second random draw: ONE latent block of W frames, scaled by init_noise_sigma.
  const unit = noise.latentBlock(W, L);
  let Z = new Float32Array(W * L);
  for (let j = 0; j < W * L; j++) Z[j] = unit[j] * initSigma;

  const latentsAll: Float32Array[] = [];
  const segments: Array<{ start: number; length: number }> = [];
  const guided = cfg.guidance > 1;
  for (let start = 0; start < N - O; start += S) {
    const end = Math.min(start + W, N);
    const len = end - start;
    const first = segments.length === 0;
    segments.push({ start, length: len });

    // Initial latents: Z[:len]; for later segments the first O frames are the previous
    // result + (Z/init_sigma) * sigmas[0].
    const x = new Float32Array(len * L);
    x.set(Z.subarray(0, len * L));
    if (!first) {
      for (let j = 0; j < O; j++) {
        const prev = latentsAll[latentsAll.length - O + j];
        for (let q = 0; q < L; q++) x[j * L + q] = prev[q] + f32(f32(Z[j * L + q] / initSigma) * sigmas[0]);
      }
    }

    const ehs = E.slice(start * D, end * D);
    const zeroEhs = new Float32Array(ehs.length);
    const sample = new Float32Array(len * 2 * L);
    for (let i = 0; i < cfg.steps; i++) {
      const sigma = sigmas[i];
      const sigmaNext = sigmas[i + 1];
      const cin = 1 / Math.sqrt(sigma * sigma + 1);
      const cskip = 1 / (sigma * sigma + 1);
      const cout = -sigma / Math.sqrt(sigma * sigma + 1);
      const timestep = f32(cNoise(sigma));
      // UNet input [x * c_in, C] per frame.
      for (let t = 0; t < len; t++) {
        for (let q = 0; q < L; q++) sample[t * 2 * L + q] = x[t * L + q] * cin;
        sample.set(C.subarray((start + t) * L, (start + t + 1) * L), t * 2 * L + L);
      }
      let F = await stages.denoise(sample, timestep, ehs, len, h, w);
      if (guided) {
        // Unconditional pass: zero condition latents and zero embeddings.
        for (let t = 0; t < len; t++) sample.fill(0, t * 2 * L + L, (t + 1) * 2 * L);
        const Fu = await stages.denoise(sample, timestep, zeroEhs, len, h, w);
        const g = new Float32Array(F.length);
        for (let q = 0; q < F.length; q++) g[q] = Fu[q] + cfg.guidance * (F[q] - Fu[q]);
        F = g;
      }
      // Euler step on the v-prediction denoised estimate.
      for (let q = 0; q < x.length; q++) {
        const d = cskip * x[q] + cout * F[q];
        x[q] = sigmaNext === 0 ? d : x[q] + ((sigmaNext - sigma) / sigma) * (x[q] - d);
      }
    }

    // Stitch: latents_all[-O:] = cur[:O]*w + latents_all[-O:]*(1-w); append cur[O:].
    if (first) {
      for (let t = 0; t < len; t++) latentsAll.push(x.slice(t * L, (t + 1) * L));
    } else {
      const wts = torchLinspace01(O);
      if (opt.mutate === 'reverse-weights') wts.reverse();
      for (let j = 0; j < O; j++) {
        const k = latentsAll.length - O + j;
        const prev = latentsAll[k];
        const wj = wts[j];
        const blended = new Float32Array(L);
        for (let q = 0; q < L; q++) blended[q] = f32(wj * x[j * L + q]) + f32(f32(1 - wj) * prev[q]);
        latentsAll[k] = blended;
      }
      for (let t = O; t < len; t++) latentsAll.push(x.slice(t * L, (t + 1) * L));
    }

    // Rotate the noise block: Z := concat(Z[-O:], Z[:S]) (with O = 0 this keeps Z as is).
    if (opt.mutate !== 'no-roll') {
      const rolled = new Float32Array(W * L);
      rolled.set(Z.subarray((W - O) * L, W * L), 0);
      rolled.set(Z.subarray(0, S * L), O * L);
      Z = rolled;
    }
  }
  assert.equal(latentsAll.length, N, 'reference: stitched latents cover every frame');

  // 5. Decode all stitched latents / 0.18215 in chunks of 8 from frame 0; clamp((x+1)/2); mean RGB.
  const depth: Float32Array[] = [];
  const plane = H * Wpx;
  const starts: number[] = [];
  if (opt.mutate === 'window-chunks') {
    for (const s of segments) starts.push(s.start);
  } else {
    for (let c0 = 0; c0 < N; c0 += chunk) starts.push(c0);
  }
  for (let ci = 0; ci < starts.length; ci++) {
    const c0 = starts[ci];
    if (c0 < depth.length) continue;
    const n = Math.min(chunk, N - c0, (starts[ci + 1] ?? N) - c0);
    const z = new Float32Array(n * L);
    for (let t = 0; t < n; t++) for (let q = 0; q < L; q++) z[t * L + q] = latentsAll[c0 + t][q] / cfg.scalingFactor;
    const rgb = await stages.decode(z, n, h, w);
    for (let t = 0; t < n; t++) {
      const d = new Float32Array(plane);
      for (let p = 0; p < plane; p++) {
        let s = 0;
        for (let c = 0; c < 3; c++) s += Math.min(1, Math.max(0, (rgb[(t * 3 + c) * plane + p] + 1) / 2));
        d[p] = s / 3;
      }
      depth.push(d);
    }
  }
  return { depth, latents: latentsAll, segments };
}

// ---------------------------------------------------------------------------------------------
// Helpers

/** Deterministic video: smooth moving pattern plus seeded texture, CHW float32 in [-1, 1]. */
function makeVideo(n: number, height: number, width: number, seed = 7): Float32Array[] {
  const rng = new Prng(seed, 99);
  const out: Float32Array[] = [];
  const plane = height * width;
  for (let t = 0; t < n; t++) {
    const f = new Float32Array(3 * plane);
    const tex = rng.fillNormal(new Float32Array(3 * plane), 0.15);
    for (let c = 0; c < 3; c++) {
      for (let y = 0; y < height; y++) {
        for (let x = 0; x < width; x++) {
          const i = c * plane + y * width + x;
          const v = 0.6 * Math.sin(0.21 * x + 0.13 * y * (c + 1) + 0.4 * t) + tex[i];
          f[i] = Math.max(-1, Math.min(1, v));
        }
      }
    }
    out.push(f);
  }
  return out;
}

interface SessionRun {
  outputs: SessionOutput[];
  /** Outputs returned by each push (index = pushed frame index), then by end(). */
  perPush: number[][];
  atEnd: number[];
  windows: Array<{ index: number; start: number; length: number }>;
  stages: FakeStages;
}

async function runSession(frames: Float32Array[], cfg: SessionConfig, probe: SessionProbe = {}, seed = 1234): Promise<SessionRun> {
  const stages = new FakeStages(cfg.embeddingDim, cfg.clipSize);
  const windows: SessionRun['windows'] = [];
  const session = new DepthSession(cfg, stages, new SeededNoise(seed), {
    onWindow: (info) => {
      windows.push(info);
      probe.onWindow?.(info);
    },
    onStitched: probe.onStitched,
  });
  const outputs: SessionOutput[] = [];
  const perPush: number[][] = [];
  for (const f of frames) {
    // The session may reuse nothing of the caller's buffer: hand it a copy it may keep.
    const got = await session.push(f.slice());
    perPush.push(got.map((o) => o.index));
    outputs.push(...got);
  }
  const last = await session.end();
  outputs.push(...last);
  return { outputs, perPush, atEnd: last.map((o) => o.index), windows, stages };
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length, 'length');
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= m)) m = Number.isNaN(d) ? Infinity : d;
  }
  return m;
}

function expectedSegments(N: number, W: number, O: number): Array<{ start: number; length: number }> {
  if (N <= W) return N > 0 ? [{ start: 0, length: N }] : [];
  const out = [];
  for (let s = 0; s < N - O; s += W - O) out.push({ start: s, length: Math.min(s + W, N) - s });
  return out;
}

// ---------------------------------------------------------------------------------------------

describe('DepthSession vs the whole-video reference (fake stages)', () => {
  const Ns = [1, 5, 8, 9, 16, 17, 23, 40];
  const WOs: Array<[number, number]> = [
    [8, 2],
    [8, 6],
    [5, 1],
    [16, 4],
    [4, 0], // overlap 0 with N > W: the reference asserts; DepthSession allows it (see the report).
  ];
  const cfgSize = { height: 32, width: 48 };
  const videos = new Map<number, Float32Array[]>();
  const video = (n: number) => {
    if (!videos.has(n)) videos.set(n, makeVideo(n, cfgSize.height, cfgSize.width));
    return videos.get(n)!;
  };

  for (const [W, O] of WOs) {
    for (const steps of [1, 3]) {
      for (const guidance of [1, 1.2]) {
        it(`W=${W} O=${O} steps=${steps} guidance=${guidance}: every N in {${Ns.join(',')}} matches`, async (t) => {
          let overall = 0;
          for (const N of Ns) {
            const cfg = makeConfig(W, O, steps, guidance, cfgSize);
            const frames = video(N);
            const run = await runSession(frames, cfg);
            const refStages = new FakeStages(cfg.embeddingDim, cfg.clipSize);
            const ref = await referencePipeline(frames, cfg, refStages, new SeededNoise(1234));
            const tag = `N=${N} W=${W} O=${O} steps=${steps} g=${guidance}`;

            // Every frame exactly once, in order.
            assert.deepEqual(
              run.outputs.map((o) => o.index),
              Array.from({ length: N }, (_, i) => i),
              `${tag}: output order`,
            );
            // Same window layout as the reference loop.
            assert.deepEqual(
              run.windows.map(({ start, length }) => ({ start, length })),
              ref.segments,
              `${tag}: windows`,
            );
            assert.deepEqual(ref.segments, expectedSegments(N, W, O), `${tag}: reference layout`);
            // Same depth.
            let worst = 0;
            for (let i = 0; i < N; i++) worst = Math.max(worst, maxAbsDiff(run.outputs[i].depth, ref.depth[i]));
            assert.ok(worst <= 1e-6, `${tag}: max |depth difference| ${worst} > 1e-6`);
            overall = Math.max(overall, worst);

            // Model call accounting.
            const log = run.stages.log;
            assert.deepEqual(log.encodeImage, new Array(N).fill(1), `${tag}: one image-encoder call per frame`);
            assert.deepEqual(log.encodeLatent, new Array(N).fill(1), `${tag}: one VAE-encoder call per frame`);
            const perStep = guidance > 1 ? 2 : 1;
            assert.equal(log.denoise.length, ref.segments.length * steps * perStep, `${tag}: UNet calls`);
            const expectFrames = ref.segments.flatMap((s) => new Array(steps * perStep).fill(s.length));
            assert.deepEqual(log.denoise, expectFrames, `${tag}: UNet frames per call`);
            const chunks = Array.from({ length: Math.ceil(N / 8) }, (_, i) => Math.min(8, N - 8 * i));
            assert.deepEqual(log.decode, chunks, `${tag}: decode chunks aligned to global frame 0`);

            // Streaming: every push emits exactly the full decode chunks that became final.
            // After k complete windows, frames < k*S are final (S = W - O).
            // (N == W: the first window runs on the W-th push, and frames < W - O are final then.)
            if (N >= W) {
              const S = W - O;
              let emitted = 0;
              for (let p = 0; p < N; p++) {
                emitted += run.perPush[p].length;
                const k = p + 1 >= W ? Math.floor((p + 1 - W) / S) + 1 : 0;
                const final = k * S;
                assert.equal(emitted, Math.floor(final / 8) * 8, `${tag}: frames emitted after push ${p}`);
              }
            } else {
              assert.equal(run.perPush.flat().length, 0, `${tag}: a video shorter than a window emits only at end()`);
            }
          }
          t.diagnostic(`max |depth difference| over all N: ${overall}`);
        });
      }
    }
  }

  it('the comparison is sensitive: deliberate reference mistakes are detected', async () => {
    const cfg = makeConfig(8, 2, 1, 1, cfgSize);
    const frames = video(23);
    const run = await runSession(frames, cfg);
    for (const mutate of ['reverse-weights', 'no-roll', 'window-chunks'] as const) {
      const ref = await referencePipeline(frames, cfg, new FakeStages(cfg.embeddingDim, cfg.clipSize), new SeededNoise(1234), { mutate });
      let worst = 0;
      for (let i = 0; i < frames.length; i++) worst = Math.max(worst, maxAbsDiff(run.outputs[i].depth, ref.depth[i]));
      assert.ok(worst > 1e-4, `mutation ${mutate} should change the depth, max diff only ${worst}`);
    }
    // A different seed changes the result as well.
    const other = await runSession(frames, cfg, {}, 999);
    let worst = 0;
    for (let i = 0; i < frames.length; i++) worst = Math.max(worst, maxAbsDiff(run.outputs[i].depth, other.outputs[i].depth));
    assert.ok(worst > 1e-4, `seed should matter, max diff ${worst}`);
  });

  it('larger frames (64x64, 2 steps, CFG) also match', async () => {
    const cfg = makeConfig(8, 3, 2, 1.2, { height: 64, width: 64 });
    const frames = makeVideo(19, 64, 64, 3);
    const run = await runSession(frames, cfg);
    const ref = await referencePipeline(frames, cfg, new FakeStages(cfg.embeddingDim, cfg.clipSize), new SeededNoise(1234));
    let worst = 0;
    for (let i = 0; i < frames.length; i++) worst = Math.max(worst, maxAbsDiff(run.outputs[i].depth, ref.depth[i]));
    assert.ok(worst <= 1e-6, `max |depth difference| ${worst}`);
  });
});

describe('DepthSession streaming', () => {
  it('W=8 O=2: nothing after 8 frames, frames 0..7 after the 14th frame, the rest at end()', async () => {
    const cfg = makeConfig(8, 2, 1, 1);
    const frames = makeVideo(14, cfg.height, cfg.width);
    const run = await runSession(frames, cfg);
    for (let p = 0; p < 13; p++) assert.deepEqual(run.perPush[p], [], `push ${p} emits nothing`);
    assert.deepEqual(run.perPush[13], [0, 1, 2, 3, 4, 5, 6, 7]);
    assert.deepEqual(run.atEnd, [8, 9, 10, 11, 12, 13]);
    // Windows ran when they filled: [0,8) at push 7, [6,14) at push 13, none at end().
    assert.deepEqual(
      run.windows.map((w) => [w.start, w.length]),
      [
        [0, 8],
        [6, 8],
      ],
    );
    const ref = await referencePipeline(frames, cfg, new FakeStages(cfg.embeddingDim, cfg.clipSize), new SeededNoise(1234));
    for (let i = 0; i < 14; i++) assert.ok(maxAbsDiff(run.outputs[i].depth, ref.depth[i]) <= 1e-6, `frame ${i}`);
  });

  it('SessionProbe.onStitched sees the stitched (blended) latents of every overlap frame', async () => {
    const cfg = makeConfig(8, 2, 2, 1);
    const N = 23;
    const frames = makeVideo(N, cfg.height, cfg.width);
    const seen = new Map<number, Float32Array>();
    const order: number[] = [];
    await runSession(frames, cfg, {
      onStitched: (index, latent) => {
        order.push(index);
        seen.set(index, latent.slice());
      },
    });
    const ref = await referencePipeline(frames, cfg, new FakeStages(cfg.embeddingDim, cfg.clipSize), new SeededNoise(1234));
    // Overlaps of windows 1.. : [6,8), [12,14), [18,20)
    const expected = ref.segments.slice(1).flatMap((s) => [s.start, s.start + 1]);
    assert.deepEqual(order, expected);
    for (const [i, lat] of seen) {
      const d = maxAbsDiff(lat, ref.latents[i]);
      assert.ok(d <= 1e-6, `stitched latent ${i} differs from the reference by ${d}`);
    }
  });

  it('keepLatents hands out, with each depth frame, the stitched latent the reference decodes', async () => {
    const cfg = { ...makeConfig(8, 3, 2, 1.2), keepLatents: true };
    const N = 21; // windows [0,8) [5,13) [10,18) [15,21): the last one short
    const frames = makeVideo(N, cfg.height, cfg.width);
    const run = await runSession(frames, cfg);
    const ref = await referencePipeline(frames, cfg, new FakeStages(cfg.embeddingDim, cfg.clipSize), new SeededNoise(1234));
    assert.equal(run.outputs.length, N);
    for (const o of run.outputs) {
      assert.ok(o.latent, `frame ${o.index} has a latent`);
      const d = maxAbsDiff(o.latent!, ref.latents[o.index]);
      assert.ok(d <= 1e-6, `latent ${o.index} differs from the reference's stitched latent by ${d}`);
    }
    const plain = await runSession(frames, makeConfig(8, 3, 2, 1.2));
    assert.equal(plain.outputs[0].latent, undefined, 'no latents unless asked');
  });

  it('memory stays bounded: 500 frames with W=8 O=2 keep at most a window of conditioning and latents', async () => {
    // Test-only peek at two private fields (TypeScript `private` is compile-time only):
    // `cond` (per-frame conditioning still needed) and `latents` (stitched latents not yet
    // decoded or still needed as overlap). Renaming them makes this test fail loudly.
    const cfg = makeConfig(8, 2, 1, 1, { height: 16, width: 16 });
    const stages = new FakeStages(cfg.embeddingDim, cfg.clipSize);
    const session = new DepthSession(cfg, stages, new SeededNoise(5));
    const peek = session as unknown as { cond: unknown[]; latents: unknown[] };
    assert.ok(Array.isArray(peek.cond) && Array.isArray(peek.latents), 'DepthSession internals renamed: update this test');
    const frame = makeVideo(1, 16, 16)[0];
    let maxCond = 0;
    let maxLatents = 0;
    let next = 0;
    const heap0 = process.memoryUsage().heapUsed;
    for (let i = 0; i < 500; i++) {
      for (const o of await session.push(frame.slice())) assert.equal(o.index, next++);
      maxCond = Math.max(maxCond, peek.cond.length);
      maxLatents = Math.max(maxLatents, peek.latents.length);
    }
    const heapGrowth = process.memoryUsage().heapUsed - heap0;
    for (const o of await session.end()) assert.equal(o.index, next++);
    assert.equal(next, 500);
    assert.ok(maxCond <= cfg.window, `conditioning held for ${maxCond} frames`);
    assert.ok(maxLatents <= cfg.window + cfg.decodeChunk, `latents held for ${maxLatents} frames`);
    // Loose sanity bound only (GC timing): 500 frames of this size would be far below it anyway.
    assert.ok(heapGrowth < 64 * 1024 * 1024, `heap grew by ${heapGrowth} bytes`);
  });

  it('rejects a frame of the wrong size and a push after end()', async () => {
    const cfg = makeConfig(8, 2, 1, 1);
    const session = new DepthSession(cfg, new FakeStages(cfg.embeddingDim, cfg.clipSize), new SeededNoise(1));
    await assert.rejects(session.push(new Float32Array(10)), /expected 3x32x48/);
    await session.push(new Float32Array(3 * 32 * 48));
    const out = await session.end();
    assert.equal(out.length, 1);
    await assert.rejects(session.push(new Float32Array(3 * 32 * 48)), /already ended/);
  });
});

it('stitching ablation modes: full is the default, init-only and average differ from it', async () => {
  const frames = makeVideo(20, 32, 48);
  const base = makeConfig(8, 3, 2, 1);
  const run = async (stitch?: 'full' | 'init-only' | 'average') => (await runSession(frames, { ...base, stitch })).outputs.map((o) => o.depth);
  const [dflt, full, initOnly, average] = await Promise.all([run(), run('full'), run('init-only'), run('average')]);
  for (let i = 0; i < 20; i++) assert.equal(maxAbsDiff(dflt[i], full[i]), 0, `default == full at ${i}`);
  const diff = (a: Float32Array[], b: Float32Array[]) => Math.max(...a.map((x, i) => maxAbsDiff(x, b[i])));
  assert.ok(diff(full, initOnly) > 0, 'init-only blends differently from full');
  assert.ok(diff(initOnly, average) > 0, 'average drops the anchored initialisation');
});

it('a window-level backend: one denoiseWindow call per window with the sampler settings, the same depth as per-step stages', async () => {
  const cfg = makeConfig(8, 3, 3, 1.2);
  const frames = makeVideo(21, cfg.height, cfg.width);
  const stages = new FakeStages(cfg.embeddingDim, cfg.clipSize);
  const local = new StagesBackend(stages);
  const calls: Array<{ frames: number; sampler: SamplerSettings }> = [];
  const backend: ModelBackend = {
    encodeFrames: (inputs, n, height, width) => local.encodeFrames(inputs, n, height, width),
    denoiseWindow: (req) => {
      calls.push({ frames: req.frames, sampler: req.sampler });
      return local.denoiseWindow(req);
    },
    decodeChunk: (latents, n, h, w) => local.decodeChunk(latents, n, h, w),
    stats: () => local.stats(),
  };
  const session = new DepthSession(cfg, backend, new SeededNoise(1234));
  const outputs: SessionOutput[] = [];
  for (const f of frames) outputs.push(...(await session.push(f.slice())));
  outputs.push(...(await session.end()));
  const settings = { steps: 3, sigmaMin: 0.002, sigmaMax: 700, guidance: 1.2 };
  assert.deepEqual(
    calls,
    [8, 8, 8, 6].map((n) => ({ frames: n, sampler: settings })),
    'one call per window [0,8) [5,13) [10,18) [15,21)',
  );
  assert.equal(stages.log.denoise.length, 4 * 3 * 2, 'the backend ran every step and the guidance pass');
  const perStep = await runSession(frames, cfg);
  for (let i = 0; i < frames.length; i++) assert.equal(maxAbsDiff(outputs[i].depth, perStep.outputs[i].depth), 0, `frame ${i}`);
});
