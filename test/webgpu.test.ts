// The GPU code path for real: device "webgpu" (onnxruntime-node's WebGPU execution provider, Dawn on Vulkan) on the
// software Vulkan driver that scripts/setup-vulkan.sh unpacks into .vulkan/ (Mesa 25 lavapipe, bookworm-backports).
// Through the real parts: the built CLI's `infer` against `--device cpu` for the fp32 and fp16 tiny packs, the live
// depth node in a pipeline, and the error when no adapter exists. Skipped only when .vulkan/ is missing (CI runs
// scripts/setup.sh, which makes it).
//
// The first WebGPU run of a graph compiles its shaders (tens of seconds on lavapipe); Mesa keeps them in its on-disk
// cache (~/.cache/mesa_shader_cache_db), so later runs take a few seconds.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { z } from 'zod';

import { ensureBuilt, CLI, ROOT } from './helpers/build-cli.js';
import { readNpz } from '../src/io/npz-writer.js';
import { writeSynthSequence } from '../src/synth/write-sequence.js';
import { parsePipeline } from '../src/graph/pipeline-file.js';
import { Graph } from '../src/graph/runtime.js';
import { defineNode } from '../src/graph/node-kind.js';
import { builtinRegistry } from '../src/nodes/index.js';
import type { DepthFrame, Packet } from '../src/graph/packets.js';
import { createLogger } from '../src/util/log.js';
import { BUNDLED_VULKAN_SETUP, bundledVulkanIcd, lavapipeEnv } from '../src/inference/pack/vulkan-env.js';

const ICD = bundledVulkanIcd();
const SKIP = ICD ? false : `no .vulkan/icd.json (the software Vulkan driver): run \`${BUNDLED_VULKAN_SETUP}\` (scripts/setup.sh runs it)`;

// The in-process pipeline below creates its WebGPU sessions in a worker thread: the Vulkan loader reads the real
// process environment, which only the main thread writes, and it must be set before the first WebGPU session.
if (ICD)
  for (const [k, v] of Object.entries(lavapipeEnv(ICD))) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }

/** Largest |a - b| seen between CPU and WebGPU depth (offline depth is min-max normalised to [0,1]). */
const TOLERANCE = { float32: 1e-5, float16: 2e-3 } as const;

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
  seconds: number;
}

function runCli(args: string[], env: Record<string, string | undefined>): Promise<CliResult> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, env: { ...process.env, CI: '1', ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b) => (stdout += b));
    child.stderr.on('data', (b) => (stderr += b));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr, seconds: (performance.now() - t0) / 1000 }));
  });
}

function maxAbsDiff(a: Float32Array, b: Float32Array): { max: number; differing: number } {
  assert.equal(a.length, b.length, 'same number of values');
  let max = 0;
  let differing = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    assert.ok(Number.isFinite(d), `value ${i} is not finite (cpu ${a[i]}, webgpu ${b[i]})`);
    if (d > max) max = d;
    if (d !== 0) differing++;
  }
  return { max, differing };
}

describe('device webgpu on lavapipe (software Vulkan)', { skip: SKIP }, () => {
  let tmp = '';
  let frames = '';
  const started = performance.now();

  before(
    async () => {
      ensureBuilt();
      tmp = await mkdtemp(path.join(tmpdir(), 'dc-webgpu-'));
      // Six 64x64 frames of a synthetic scene: the smallest resolution the engine takes (multiples of 64).
      await writeSynthSequence({ outDir: tmp, seed: 5, frames: 6, width: 64, height: 64, fps: 30, fovDeg: 60, worker: false });
      frames = path.join(tmp, 'rgb');
    },
    { timeout: 120_000 },
  );

  after(async () => {
    if (tmp) await rm(tmp, { recursive: true, force: true });
    console.log(`webgpu.test.ts: ${((performance.now() - started) / 1000).toFixed(1)} s in all`);
  });

  const inferArgs = (model: string, device: string, out: string): string[] => [
    'infer',
    frames,
    '-o',
    out,
    '--model',
    `models/${model}`,
    '--device',
    device,
    '--window',
    '4',
    '--overlap',
    '1',
    '--steps',
    '1',
    '--max-res',
    '64',
    '--no-videos',
    '--no-compress',
    '--json',
  ];

  for (const [model, dtype] of [
    ['tiny-random', 'float32'],
    ['tiny-random-fp16', 'float16'],
  ] as const) {
    it(`infer --device webgpu with ${model} (${dtype}) gives the CPU depth within ${TOLERANCE[dtype]}`, { timeout: 300_000 }, async (t) => {
      const outCpu = path.join(tmp, `${model}-cpu`);
      const outGpu = path.join(tmp, `${model}-webgpu`);
      // The CPU run is a second or so: run it alongside.
      const [cpu, gpu] = await Promise.all([runCli(inferArgs(model, 'cpu', outCpu), {}), runCli(inferArgs(model, 'webgpu', outGpu), lavapipeEnv(ICD!))]);
      assert.equal(cpu.code, 0, `infer --device cpu failed: ${cpu.stderr}`);
      assert.equal(gpu.code, 0, `infer --device webgpu failed (exit ${gpu.code}): ${gpu.stderr}`);
      const resCpu = JSON.parse(cpu.stdout.trim().split('\n').pop()!);
      const resGpu = JSON.parse(gpu.stdout.trim().split('\n').pop()!);
      assert.equal(resGpu.frames, 6);
      assert.deepEqual(resGpu.stats.calls, resCpu.stats.calls, 'the same engine work on both devices');

      const dCpu = (await readNpz(resCpu.files.npz)).depth;
      const dGpu = (await readNpz(resGpu.files.npz)).depth;
      assert.deepEqual(dGpu.shape, [6, 64, 64]);
      assert.deepEqual(dGpu.shape, dCpu.shape);
      assert.equal(dGpu.dtype, 'float32');
      const { max, differing } = maxAbsDiff(dCpu.data as Float32Array, dGpu.data as Float32Array);
      t.diagnostic(
        `${model}: max |cpu - webgpu| = ${max.toExponential(2)} (${differing}/${dGpu.data.length} values differ); ` +
          `webgpu ${gpu.seconds.toFixed(1)} s (inference ${resGpu.seconds.toFixed(1)} s), cpu ${cpu.seconds.toFixed(1)} s`,
      );
      assert.ok(max <= TOLERANCE[dtype], `${model}: max |cpu - webgpu| = ${max} > ${TOLERANCE[dtype]}`);
    });
  }

  it('the live depth node with device: webgpu produces every frame, close to the same pipeline on cpu', { timeout: 300_000 }, async (t) => {
    const run = async (device: string): Promise<{ depth: DepthFrame[]; seconds: number }> => {
      const packets: Packet[] = [];
      const collect = defineNode({
        kind: 'collect-webgpu-test',
        role: 'sink',
        description: 'collects packets',
        inputs: { in: 'any' },
        outputs: {},
        options: z.object({}).strict(),
        create: () => ({ process: (_port: string, p: Packet) => void packets.push(p) }),
      });
      const yaml = `
server: { enabled: false }
nodes:
  src: { kind: synthetic, options: { seed: 5, frames: 6, width: 64, height: 64, live: false, worker: never } }
  depth: { kind: depth, options: { model: models/tiny-random, device: ${device}, window: 4, overlap: 1, steps: 1, maxRes: 64, stride: 1, engine: own } }
  sink: { kind: collect-webgpu-test }
edges:
  - { from: src, to: depth, queue: { capacity: 8, policy: block } }
  - { from: depth, to: sink, queue: { capacity: 64, policy: block } }
`;
      const t0 = performance.now();
      const graph = new Graph(parsePipeline(yaml, 'webgpu.yaml', builtinRegistry().add(collect)), { log: createLogger({ level: 'silent' }) });
      await graph.start();
      await graph.done;
      return { depth: packets.filter((p): p is DepthFrame => p.type === 'depth'), seconds: (performance.now() - t0) / 1000 };
    };
    const gpu = await run('webgpu');
    const cpu = await run('cpu');
    assert.deepEqual(
      gpu.depth.map((f) => f.seq),
      [0, 1, 2, 3, 4, 5],
      'every frame comes out once, in order',
    );
    assert.deepEqual(
      cpu.depth.map((f) => f.seq),
      [0, 1, 2, 3, 4, 5],
    );
    let max = 0;
    for (let i = 0; i < gpu.depth.length; i++) {
      const g = gpu.depth[i]!;
      assert.equal(g.width, 64);
      assert.equal(g.height, 64);
      assert.equal(g.data.length, 64 * 64);
      max = Math.max(max, maxAbsDiff(cpu.depth[i]!.data, g.data).max);
    }
    t.diagnostic(`live depth node: max |cpu - webgpu| = ${max.toExponential(2)}; webgpu ${gpu.seconds.toFixed(1)} s, cpu ${cpu.seconds.toFixed(1)} s`);
    assert.ok(max <= TOLERANCE.float32, `live depth: max |cpu - webgpu| = ${max} > ${TOLERANCE.float32}`);
  });

  it('no adapter (VK_ICD_FILENAMES names a missing file): exit code 2 and a message naming webgpu and the adapter', { timeout: 120_000 }, async () => {
    const r = await runCli(inferArgs('tiny-random', 'webgpu', path.join(tmp, 'no-adapter')), lavapipeEnv(path.join(tmp, 'missing-icd.json')));
    assert.equal(r.code, 2, `exit code ${r.code}, stderr: ${r.stderr}`);
    assert.match(r.stderr, /^error: .*device "webgpu".*adapter/m);
    assert.match(r.stderr, /Not falling back to CPU/);
    assert.doesNotMatch(r.stderr, /^\s+at .*\.js/m, 'no JavaScript stack trace');
  });
});
