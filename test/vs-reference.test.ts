// bench/vs-reference.ts: our engine against the reference DepthCrafter pipeline on the same tiny models and noise.
// The run itself is opt-in, like test/export-depthcrafter.test.ts: it needs a Python with torch, diffusers,
// transformers, onnx and onnxruntime (DCL_EXPORT_PYTHON, default .venv-export/bin/python; PYTHONPATH passes through)
// and a local copy of github.com/Tencent/DepthCrafter named by DCL_REFERENCE_DIR (never committed); it is skipped
// with the reason otherwise (CI has neither). The table's arithmetic is checked everywhere.

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';

import { formatTable, runComparison, segmentCount, type ComparisonResult, type RunPair } from '../bench/vs-reference.js';
import { findPython } from './helpers/find-python.js';

function skipReason(): string | false {
  const ref = process.env.DCL_REFERENCE_DIR;
  if (!ref) return 'DCL_REFERENCE_DIR is not set (a local copy of github.com/Tencent/DepthCrafter)';
  if (!existsSync(path.join(ref, 'depthcrafter', 'depth_crafter_ppl.py'))) return `DCL_REFERENCE_DIR=${ref} has no depthcrafter/depth_crafter_ppl.py`;
  const { python, why } = findPython();
  return python ? false : `torch/diffusers/transformers/onnx not importable (${why}); set DCL_EXPORT_PYTHON and PYTHONPATH to run`;
}

describe('bench/vs-reference table', () => {
  it("counts the reference's windows", () => {
    assert.equal(segmentCount(10, 16, 4), 1);
    assert.equal(segmentCount(24, 16, 4), 2);
    assert.equal(segmentCount(200, 16, 4), 17);
    assert.equal(segmentCount(400, 16, 4), 33);
  });

  it('gives per-frame CPU, the ref/ours ratio per A/B pair (median, min-max) and the marginal cost', () => {
    const m = (cpuS: number, wallS: number, rss: number) => ({
      rc: 0,
      userS: cpuS,
      sysS: 0,
      cpuS,
      wallS,
      maxRssBytes: rss * 2 ** 20,
      stdoutLast: '',
      stderrTail: '',
      load1: 1,
    });
    const pair = (r: number, ours: number, ref: number): RunPair => ({
      repeat: r,
      order: r % 2 ? 'reference-first' : 'ours-first',
      ours: { ...m(ours, ours, 500), inferSeconds: ours - 1 },
      reference: { ...m(ref, ref * 1.2, 800), pipelineSeconds: ref - 4, pipelineCpuS: ref - 4, torchThreads: 1 },
      depthMaxAbsDiff: 2e-5,
      depthMeanAbsDiff: 1e-6,
    });
    const res = {
      settings: { width: 192, height: 128, window: 16, overlap: 4, steps: 3, guidance: 1, torchThreads: 1, vaeLayers: 1, git: 'abc', cores: 2, cpu: 'x' },
      loadStart: [1, 1, 1],
      loadEnd: [1, 1, 1],
      results: [
        { frames: 100, segments: 9, pairs: [pair(0, 10, 20), pair(1, 10, 15), pair(2, 10, 30)] },
        { frames: 200, segments: 17, pairs: [pair(0, 18, 34), pair(1, 18, 34), pair(2, 18, 34)] },
      ],
    } as unknown as ComparisonResult;
    const t = formatTable(res);
    assert.match(t, /\| 100 \| ours \| 100 \| \| 10\.0 \|/);
    assert.match(t, /\| 100 \| reference \| 200 \(150-300\) \| \*\*2\.00 \(1\.50-3\.00\)\*\* \|/);
    assert.match(t, /\| 200 \| reference \| 170 \| \*\*1\.89\*\* \|/);
    assert.match(t, /marginal CPU per frame from 100 to 200 frames \(fixed costs cancel\): ours 80 ms, reference 140 ms, ratio 1\.75/);
  });
});

const SKIP = skipReason();

describe('bench/vs-reference on a 24-frame clip (reference pipeline vs infer, same noise)', { skip: SKIP }, () => {
  it('runs both sides, measures them and gets the same depth', { timeout: 600_000 }, async () => {
    const work = await mkdtemp(path.join(tmpdir(), 'dcl-vsref-'));
    try {
      const res = await runComparison({
        reference: process.env.DCL_REFERENCE_DIR!,
        frames: [24],
        repeat: 1,
        width: 128,
        height: 64,
        window: 16,
        overlap: 4,
        steps: 2,
        guidance: 1,
        torchThreads: 1,
        vaeLayers: 1,
        work,
        seed: 3,
        ownNoiseRun: false,
        log: () => {},
      });
      const [fc] = res.results;
      assert.equal(fc!.frames, 24);
      assert.equal(fc!.segments, 2);
      const [p] = fc!.pairs;
      assert.ok(p!.depthMaxAbsDiff < 1e-3, `depth differs by ${p!.depthMaxAbsDiff}`);
      for (const side of [p!.ours, p!.reference]) {
        assert.ok(side.cpuS > 0 && side.wallS > 0 && side.maxRssBytes > 50 * 2 ** 20, JSON.stringify(side));
      }
      assert.equal(p!.reference.torchThreads, 1);
      assert.ok(p!.reference.pipelineCpuS > 0 && p!.reference.pipelineCpuS < p!.reference.cpuS);
      assert.match(formatTable(res), /\| 24 \| reference \| \d+ \| \*\*\d+\.\d\d\*\* \|/);
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  });
});
