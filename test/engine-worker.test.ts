// The real inference worker with real ONNX Runtime on the tiny random-weight pack
// (models/tiny-random: exact I/O contract, meaningless depth): ordering, sizes, value range,
// determinism, model-call accounting and error reporting across the worker boundary.

import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';

import { DepthEngine, type EngineDepth, type EngineOptions, type SequenceInfo } from '../src/inference/engine/depth-engine.js';
import { ModelPackError } from '../src/inference/pack/manifest.js';
import { loadModelPack } from '../src/inference/pack/load-pack.js';
import { OrtStages } from '../src/inference/backend/ort-stages.js';
import { DepthSession } from '../src/inference/engine/depth-session.js';
import { sequenceSetup } from '../src/inference/engine/session-config.js';
import { resizeBilinearRGB } from '../src/inference/image/resize.js';

const PACK = path.join('models', 'tiny-random');

/** Deterministic random RGB bytes (xorshift32). */
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

function clipFrames(count: number, width: number, height: number, seed = 11): Uint8Array[] {
  return Array.from({ length: count }, (_, i) => randomRgb(width * height * 3, seed * 1000 + i));
}

interface Collected {
  depth: EngineDepth[];
  sequences: SequenceInfo[];
}

/** Pushes the frames as one sequence and waits for every depth frame. Frames are copied (push transfers buffers). */
async function runSequence(engine: DepthEngine, frames: Uint8Array[], width: number, height: number, stride?: number): Promise<Collected> {
  const got: Collected = { depth: [], sequences: [] };
  engine.onDepth = (d) => got.depth.push(d);
  engine.onSequence = (s) => got.sequences.push(s);
  for (const f of frames) await engine.push(f.slice(), width, height, stride);
  await engine.end();
  return got;
}

async function withEngine<T>(opts: Partial<EngineOptions>, fn: (e: DepthEngine) => Promise<T>): Promise<T> {
  const engine = await DepthEngine.open({ packDir: PACK, threads: 1, ...opts });
  try {
    return await fn(engine);
  } finally {
    await engine.close();
  }
}

const W = 160;
const H = 96;
const choices = { window: 8, overlap: 3, steps: 2, maxRes: 128 };

function identical(a: EngineDepth[], b: EngineDepth[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i].depth;
    const y = b[i].depth;
    if (x.length !== y.length) return false;
    for (let j = 0; j < x.length; j++) if (!Object.is(x[j], y[j])) return false;
  }
  return true;
}

describe('engine worker on models/tiny-random', () => {
  it('21 frames of 160x96 -> 21 depth frames 128x128 in order, in [0,1], deterministic per seed, with exact call counts', async () => {
    const frames = clipFrames(21, W, H);
    let first!: Collected;
    let second!: Collected;
    await withEngine({ choices: { ...choices, seed: 42 } }, async (engine) => {
      assert.equal(engine.packName, 'tiny-random');
      first = await runSequence(engine, frames, W, H);

      assert.equal(first.sequences.length, 1);
      assert.deepEqual(first.sequences[0].resolution, { height: 128, width: 128 });
      assert.equal(first.sequences[0].window, 8);
      assert.equal(first.sequences[0].overlap, 3);
      assert.equal(first.sequences[0].steps, 2);
      assert.deepEqual(
        first.depth.map((d) => d.index),
        Array.from({ length: 21 }, (_, i) => i),
      );
      for (const d of first.depth) {
        assert.equal(d.width, 128);
        assert.equal(d.height, 128);
        assert.equal(d.depth.length, 128 * 128);
        let min = Infinity;
        let max = -Infinity;
        for (const v of d.depth) {
          assert.ok(v >= 0 && v <= 1, `frame ${d.index}: value ${v} outside [0,1]`);
          if (v < min) min = v;
          if (v > max) max = v;
        }
        assert.equal(d.min, min, 'reported min');
        assert.equal(d.max, max, 'reported max');
      }
      // The random pack still gives non-constant output.
      assert.ok(
        first.depth.some((d) => d.max > d.min),
        'depth is constant everywhere',
      );

      const { stats } = await engine.stats();
      assert.equal(stats.framesIn.encodeImage, 21);
      assert.equal(stats.framesIn.encodeLatent, 21);
      assert.equal(stats.framesIn.encodeImage / 21, 1, 'image-encoder frames per input frame');
      assert.equal(stats.framesIn.encodeLatent / 21, 1, 'VAE-encoder frames per input frame');
      // Windows [0,8) [5,13) [10,18) [15,21): 4 windows x 2 steps, no CFG.
      assert.equal(stats.calls.denoise, 4 * 2);
      assert.equal(stats.framesIn.denoise, (8 + 8 + 8 + 6) * 2);
      // Decode chunks of 8 aligned to frame 0: 8, 8, 5.
      assert.equal(stats.calls.decode, 3);
      assert.equal(stats.framesIn.decode, 21);

      // A second sequence on the same engine starts afresh with the same seed: bit-identical.
      second = await runSequence(engine, frames, W, H);
    });
    assert.ok(identical(first.depth, second.depth), 'same seed, same frames: depth must be bit-identical');

    const otherSeed = await withEngine({ choices: { ...choices, seed: 7 } }, (engine) => runSequence(engine, frames, W, H));
    assert.equal(otherSeed.depth.length, 21);
    assert.ok(!identical(first.depth, otherSeed.depth), 'a different seed must change the depth');

    // A fresh engine with the first seed reproduces the first run too.
    const again = await withEngine({ choices: { ...choices, seed: 42 } }, (engine) => runSequence(engine, frames, W, H));
    assert.ok(identical(first.depth, again.depth), 'same seed on a new engine must be bit-identical');
  });

  it('an RGB frame with a row stride (width 101, stride 304) gives the same depth as the packed frame', async () => {
    const width = 101;
    const height = 40;
    const stride = 304;
    const packed = clipFrames(3, width, height, 5);
    const padded = packed.map((p) => {
      const out = new Uint8Array(stride * height).fill(255);
      for (let y = 0; y < height; y++) out.set(p.subarray(y * width * 3, (y + 1) * width * 3), y * stride);
      return out;
    });
    await withEngine({ choices: { window: 8, overlap: 3, steps: 1, maxRes: 128, seed: 3 } }, async (engine) => {
      const a = await runSequence(engine, padded, width, height, stride);
      assert.deepEqual(a.sequences[0].resolution, { height: 64, width: 128 });
      assert.deepEqual(
        a.depth.map((d) => d.index),
        [0, 1, 2],
      );
      for (const d of a.depth) assert.equal(d.depth.length, 64 * 128);
      const b = await runSequence(engine, packed, width, height);
      assert.ok(identical(a.depth, b.depth), 'row padding must be ignored');
    });
  });

  it('frames prepared in the frame-preparation worker give the depth of a DepthSession preparing them itself, bit for bit', async () => {
    const frames = clipFrames(11, W, H, 7);
    const opts = { ...choices, seed: 4 };
    const viaWorkers = await withEngine({ choices: opts }, (engine) => runSequence(engine, frames, W, H));
    // The same frames through an in-process session on the same pack: resize and push() inline.
    const pack = await loadModelPack(PACK, { device: 'cpu', intraOpNumThreads: 1 });
    try {
      const { res, cfg, noise } = sequenceSetup(pack.manifest, opts, undefined, H, W);
      const session = new DepthSession(cfg, new OrtStages(pack), noise);
      const chw = new Float32Array(3 * res.height * res.width);
      const inline: Float32Array[] = [];
      for (const f of frames) {
        resizeBilinearRGB(f, W, H, W * 3, res.width, res.height, chw);
        for (const o of await session.push(chw)) inline.push(o.depth);
      }
      for (const o of await session.end()) inline.push(o.depth);
      assert.equal(viaWorkers.depth.length, 11);
      assert.ok(
        identical(
          viaWorkers.depth,
          inline.map((depth, index) => ({ index, depth }) as EngineDepth),
        ),
        'same depth',
      );
    } finally {
      await pack.release();
    }
  });

  it('a missing pack folder: open() rejects naming the path', async () => {
    const missing = path.join('models', 'no-such-pack-here');
    await assert.rejects(DepthEngine.open({ packDir: missing }), (e: Error) => {
      assert.ok(e.message.includes(missing), `message should name ${missing}: ${e.message}`);
      assert.ok(e instanceof ModelPackError, `expected a ModelPackError, got ${e.name}`);
      return true;
    });
  });

  it('window 111 is refused when the engine opens, naming the window', async () => {
    await assert.rejects(DepthEngine.open({ packDir: PACK, threads: 1, choices: { window: 111, overlap: 3, steps: 1, maxRes: 128 } }), (e: Error) => {
      assert.match(e.message, /window 111/);
      assert.ok(e instanceof RangeError, `expected a RangeError, got ${e.name}`);
      return true;
    });
  });

  it('overlap >= window is refused when the engine opens, naming the overlap', async () => {
    await assert.rejects(
      DepthEngine.open({ packDir: PACK, threads: 1, choices: { window: 8, overlap: 8, steps: 1, maxRes: 128 } }),
      /overlap .*< window \(8\), got 8/,
    );
  });
});
