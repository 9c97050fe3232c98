import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { pino } from 'pino';

import { Rng } from '../src/synth/prng.js';
import { generateScene, SYNTH_VERSION } from '../src/synth/generate.js';
import { Renderer, renderScene } from '../src/synth/renderer.js';
import { intrinsics, cameraPose } from '../src/synth/camera.js';
import { hitBox, hitCylinder, hitPlane, hitSphere } from '../src/synth/intersect.js';
import { objectPose } from '../src/synth/motion.js';
import { depthToMillimetres } from '../src/synth/depth-export.js';
import type { Material, SceneDescription, SceneObject } from '../src/synth/scene.js';
import { defineNode } from '../src/graph/node-kind.js';
import { parsePipeline } from '../src/graph/pipeline-file.js';
import { Graph } from '../src/graph/runtime.js';
import type { VideoFrame } from '../src/graph/packets.js';
import { builtinRegistry } from '../src/nodes/index.js';
import { decodePng } from '../src/io/png16.js';

const ROOT = new URL('..', import.meta.url).pathname;

const GREY: Material = { texture: 'checker', a: [0.5, 0.5, 0.5], b: [0.2, 0.2, 0.2], scale: 1 };
const RED: Material = { texture: 'solid', a: [0.8, 0.1, 0.1], b: [0, 0, 0], scale: 1 };

/** An outdoor scene with an endless ground plane, no backdrop, a level camera at height h looking along +z. */
function flatScene(h: number, objects: SceneObject[] = []): SceneDescription {
  return {
    version: SYNTH_VERSION,
    seed: 0,
    kind: 'custom',
    environment: { kind: 'outdoor', ground: GREY, backdrop: null, sky: { zenith: [0.2, 0.4, 0.9], horizon: [0.8, 0.9, 1] } },
    objects,
    lighting: { ambient: 0.4, light: { kind: 'sun', direction: [0.3, 1, -0.5], intensity: 1 }, shadows: true, fog: null },
    camera: { position: [0, h, 0], yaw: { base: 0 } },
  };
}

const sphereAt = (pos: [number, number, number], radius: number, extra: Partial<SceneObject> = {}): SceneObject => ({
  name: 'ball',
  shape: { kind: 'sphere', radius },
  position: pos,
  rotation: [0, 0, 0],
  material: RED,
  motion: { kind: 'static' },
  ...extra,
});

function stats(depth: Float32Array): { valid: number; min: number; max: number; finite: boolean } {
  let valid = 0;
  let min = Infinity;
  let max = 0;
  let finite = true;
  for (const d of depth) {
    if (!Number.isFinite(d) || d < 0) finite = false;
    if (d > 0) {
      valid++;
      if (d < min) min = d;
      if (d > max) max = d;
    }
  }
  return { valid: valid / depth.length, min, max, finite };
}

describe('synthetic scenes: generation and rendering', () => {
  test('PRNG: reproducible, forks independent of use, values in [0, 1)', () => {
    const a = new Rng(42);
    const b = new Rng(42);
    const xs = Array.from({ length: 100 }, () => a.next());
    assert.deepEqual(
      xs,
      Array.from({ length: 100 }, () => b.next()),
    );
    assert.ok(xs.every((x) => x >= 0 && x < 1));
    assert.notDeepEqual(
      xs.slice(0, 5),
      Array.from({ length: 5 }, () => new Rng(43).next()),
    );
    const c = new Rng(42);
    c.next();
    assert.equal(c.fork('x').next(), new Rng(42).fork('x').next());
  });

  test('determinism: same seed -> identical scene, RGB and depth; another seed differs', () => {
    const size = { width: 64, height: 48, fovDeg: 60 };
    assert.deepEqual(generateScene(5), generateScene(5));
    const a = renderScene(generateScene(5), 0.5, size);
    const b = renderScene(generateScene(5), 0.5, size);
    assert.deepEqual(a.rgb, b.rgb);
    assert.deepEqual(a.depth, b.depth);
    // A renderer reused across frames (buffers reused) gives the same frame as a fresh one.
    const r = new Renderer(generateScene(5), size);
    r.render(3);
    const c = r.render(0.5, new Uint8Array(64 * 48 * 3), new Float32Array(64 * 48));
    assert.deepEqual(c.depth, a.depth);
    assert.deepEqual(c.rgb, a.rgb);
    const d = renderScene(generateScene(6), 0.5, size);
    assert.notDeepEqual(d.depth, a.depth);
    assert.notDeepEqual(d.rgb, a.rgb);
  });

  test('intersections: plane, sphere, box and capped cylinder', () => {
    assert.equal(hitPlane(0, 2, 0, 0, -1, 1, 0, 1, 0, 0), 2);
    assert.equal(hitSphere(0, 0, -5, 0, 0, 1, 1), 4);
    assert.equal(hitSphere(0, 0, -5, 0, 0, 2, 1), 2); // unnormalised direction: t in units of d
    assert.equal(hitSphere(0, 3, -5, 0, 0, 1, 1), Infinity);
    assert.equal(hitBox(0, 0, -5, 0, 0, 1, 1, 2, 3), 2);
    assert.equal(hitBox(-5, 0, 0, 1, 0, 0, 1, 2, 3), 4);
    assert.equal(hitBox(0, 5, -5, 0, 0, 1, 1, 2, 3), Infinity);
    assert.equal(hitCylinder(0, 0, -5, 0, 0, 1, 1, 2), 4); // side
    assert.equal(hitCylinder(0, 5, 0, 0, -1, 0, 1, 2), 3); // top cap
    assert.equal(hitCylinder(0.9, 5, 0, 0, -1, 0, 1, 2), 3);
    assert.equal(hitCylinder(1.1, 5, 0, 0, -1, 0, 1, 2), Infinity);
    assert.equal(hitCylinder(0, 3, -5, 0, 0, 1, 1, 2), Infinity); // passes above
  });

  test('ground plane, level camera at height h: row v has planar depth h * fy / (v - cy), sky rows 0', () => {
    const h = 1.6;
    const W = 64;
    const H = 48;
    const { depth } = renderScene(flatScene(h), 0, { width: W, height: H, fovDeg: 70 });
    const K = intrinsics(W, H, 70);
    assert.equal(K.cx, (W - 1) / 2);
    assert.equal(K.cy, (H - 1) / 2);
    for (let v = 0; v < H; v++) {
      const expect = v > K.cy ? (h * K.fy) / (v - K.cy) : 0;
      for (const u of [0, 17, W - 1]) {
        const got = depth[v * W + u];
        if (expect === 0) assert.equal(got, 0, `row ${v} should be sky`);
        else assert.ok(Math.abs(got - expect) <= 1e-5 * expect, `row ${v} col ${u}: ${got} vs ${expect}`);
      }
    }
  });

  test('sphere straight ahead at distance D: centre pixel depth = D - r; planar depth on a fronto-parallel box face', () => {
    const W = 65;
    const H = 49; // odd sizes: the centre pixel's ray is the optical axis
    const D = 7.25;
    const r = 0.8;
    const size = { width: W, height: H, fovDeg: 50 };
    const { depth } = renderScene(flatScene(1.5, [sphereAt([0, 1.5, D], r)]), 0, size);
    const centre = depth[((H - 1) / 2) * W + (W - 1) / 2];
    assert.ok(Math.abs(centre - (D - r)) < 1e-5, `centre depth ${centre}, expected ${D - r}`);
    // Off-centre pixel: planar depth of the analytic ray-sphere hit.
    const K = intrinsics(W, H, 50);
    const u = (W - 1) / 2 + 6;
    const x = (u - K.cx) / K.fx;
    const t = hitSphere(0, 0, -D, x, 0, 1, r);
    assert.ok(Math.abs(depth[((H - 1) / 2) * W + u] - t) < 1e-5);

    // A box face facing the camera has the same planar depth in every pixel it covers (not the ray length).
    const box: SceneObject = {
      name: 'wall',
      shape: { kind: 'box', size: [3, 2, 0.5] },
      position: [0, 1.5, 6],
      rotation: [0, 0, 0],
      material: RED,
      motion: { kind: 'static' },
    };
    const b = renderScene(flatScene(1.5, [box]), 0, size).depth;
    const c = (H - 1) / 2;
    for (const [du, dv] of [
      [0, 0],
      [10, 5],
      [-12, -6],
      [14, 0],
    ]) {
      const d = b[(c + dv) * W + (W - 1) / 2 + du];
      assert.ok(Math.abs(d - 5.75) < 1e-5, `box face pixel (${du}, ${dv}) depth ${d}`);
    }
    // A standing cylinder: centre pixel depth = D - r.
    const cyl: SceneObject = {
      name: 'c',
      shape: { kind: 'cylinder', radius: 0.5, height: 2 },
      position: [0, 1.5, 4],
      rotation: [0, 0, 0],
      material: RED,
      motion: { kind: 'static' },
    };
    const cd = renderScene(flatScene(1.5, [cyl]), 0, size).depth;
    assert.ok(Math.abs(cd[c * W + (W - 1) / 2] - 3.5) < 1e-5);
  });

  test('objects move between frames (camera fixed), and generated scenes have moving objects', () => {
    const moving = sphereAt([0, 1.5, 6], 0.7, { motion: { kind: 'linear', delta: [2, 0, 0], period: 4, phase: 0 } });
    const r = new Renderer(flatScene(1.5, [moving]), { width: 48, height: 32, fovDeg: 60 });
    const a = r.render(0).depth.slice();
    const b = r.render(1).depth.slice();
    assert.notDeepEqual(a, b);
    for (const seed of [1, 2, 3, 4]) {
      const s = generateScene(seed);
      const movers = s.objects.filter((o) => o.motion.kind !== 'static' || (o.spin && o.spin.rate !== 0));
      assert.ok(movers.length >= 1, `seed ${seed} has no moving object`);
      const m = movers[0];
      assert.notDeepEqual(objectPose(m, 0), objectPose(m, 1 / 3), `seed ${seed}: ${m.name} does not move`);
      // The camera moves too.
      assert.notDeepEqual(cameraPose(s.camera, 0), cameraPose(s.camera, 1 / 3));
    }
  });

  test('generated scenes: valid-depth fraction and depth range are sane, images are not flat', () => {
    const kinds = new Set<string>();
    for (const seed of [1, 2, 3, 4, 5, 6]) {
      const s = generateScene(seed);
      kinds.add(s.kind);
      assert.ok(s.objects.length >= 8 && s.objects.length <= 22, `seed ${seed}: ${s.objects.length} objects`);
      const r = new Renderer(s, { width: 64, height: 48, fovDeg: 60 });
      for (const t of [0, 2.5, 11]) {
        const { rgb, depth } = r.render(t);
        const st = stats(depth);
        assert.ok(st.finite, `seed ${seed} t ${t}: negative or non-finite depth`);
        assert.ok(st.min > 0.05, `seed ${seed} t ${t}: min depth ${st.min}`);
        if (s.kind === 'indoor') {
          assert.equal(st.valid, 1, `indoor seed ${seed}: every pixel sees the room`);
          assert.ok(st.max < 15, `indoor seed ${seed}: max depth ${st.max}`);
        } else {
          assert.ok(st.valid > 0.3, `outdoor seed ${seed} t ${t}: valid fraction ${st.valid}`);
          assert.ok(st.max <= 100 && st.max > 15, `outdoor seed ${seed} t ${t}: max depth ${st.max}`);
        }
        let mean = 0;
        for (const v of rgb) mean += v;
        mean /= rgb.length;
        let vari = 0;
        for (const v of rgb) vari += (v - mean) ** 2;
        assert.ok(Math.sqrt(vari / rgb.length) > 5, `seed ${seed}: image nearly flat`);
      }
    }
    assert.deepEqual([...kinds].sort(), ['indoor', 'outdoor']);
    assert.equal(generateScene(1, 'outdoor').kind, 'outdoor');
    assert.equal(generateScene(2, 'indoor').kind, 'indoor');
  });

  test('render speed at 256x256 (printed)', () => {
    for (const seed of [1, 2]) {
      const s = generateScene(seed);
      const r = new Renderer(s, { width: 256, height: 256, fovDeg: 60 });
      const rgb = new Uint8Array(256 * 256 * 3);
      const depth = new Float32Array(256 * 256);
      for (let i = 0; i < 3; i++) r.render(i / 30, rgb, depth);
      const n = 15;
      const t0 = performance.now();
      for (let i = 0; i < n; i++) r.render((i + 3) / 30, rgb, depth);
      const ms = (performance.now() - t0) / n;
      console.log(
        `synthetic render 256x256 seed ${seed} (${s.kind}, ${s.objects.length} objects): ${(1000 / ms).toFixed(1)} frames/s (${ms.toFixed(1)} ms/frame)`,
      );
      assert.ok(ms < 1000);
    }
  });
});

// ---- the node, through a graph ------------------------------------------------------------------

const collected = new Map<string, VideoFrame[]>();
const collectNode = defineNode({
  kind: 'collect',
  role: 'sink',
  description: 'test sink: keeps every video frame',
  inputs: { in: 'video' },
  outputs: {},
  options: z.object({ id: z.string() }).strict(),
  create(o) {
    const list: VideoFrame[] = [];
    collected.set(o.id, list);
    return {
      process(_port, p) {
        if (p.type === 'video') list.push(p);
      },
    };
  },
});

async function runPipeline(id: string, options: Record<string, unknown>, logLines?: string[]): Promise<{ frames: VideoFrame[]; ms: number }> {
  const yaml = `
name: synth-${id}
server: { enabled: false }
nodes:
  src: { kind: synthetic, options: ${JSON.stringify(options)} }
  sink: { kind: collect, options: { id: ${id} } }
edges:
  - { from: src.video, to: sink.in, queue: { capacity: 4, policy: block } }
`;
  const registry = builtinRegistry().add(collectNode);
  const pipeline = parsePipeline(yaml, `${id}.yaml`, registry);
  const log = logLines ? pino({ level: 'debug' }, { write: (line: string) => void logLines.push(line) }) : pino({ level: 'silent' });
  const graph = new Graph(pipeline, { log, noServer: true });
  const t0 = performance.now();
  await graph.start();
  await graph.done;
  return { frames: collected.get(id)!, ms: performance.now() - t0 };
}

describe('synthetic node', () => {
  test('emits VideoFrames with gtDepth, in order, equal to the renderer (main thread and worker)', async () => {
    const base = { seed: 4, width: 48, height: 32, frames: 5, live: false, fps: 10 };
    const { frames } = await runPipeline('inline', { ...base, worker: 'never' });
    assert.equal(frames.length, 5);
    const r = new Renderer(generateScene(4), { width: 48, height: 32, fovDeg: 60 });
    frames.forEach((f, i) => {
      assert.equal(f.seq, i);
      assert.equal(f.ptsMs, i * 100);
      assert.equal(f.streamId, 'src');
      assert.equal(f.width, 48);
      assert.equal(f.height, 32);
      assert.equal(f.data.length, 48 * 32 * 3);
      assert.ok(f.gtDepth instanceof Float32Array);
      assert.equal(f.gtDepth.length, 48 * 32);
      const ref = r.render(i / 10);
      assert.deepEqual(f.gtDepth, ref.depth);
      assert.deepEqual(f.data, ref.rgb);
    });
    const w = await runPipeline('worker', { ...base, worker: 'always', ahead: 2 });
    assert.equal(w.frames.length, 5);
    w.frames.forEach((f, i) => {
      assert.equal(f.seq, i);
      assert.deepEqual(f.gtDepth, frames[i].gtDepth);
      assert.deepEqual(f.data, frames[i].data);
    });
  });

  test('auto mode moves large frames to a worker and keeps the output identical', async () => {
    const opts = { seed: 2, width: 480, height: 360, frames: 4, live: false };
    const lines: string[] = [];
    const a = await runPipeline('auto', { ...opts, worker: 'auto' }, lines);
    assert.ok(
      lines.some((l) => l.includes('rendering in a worker thread')),
      'a 480x360 frame should move rendering to a worker',
    );
    const n = await runPipeline('never', { ...opts, worker: 'never' });
    assert.equal(a.frames.length, 4);
    a.frames.forEach((f, i) => {
      assert.deepEqual(f.gtDepth, n.frames[i].gtDepth);
      assert.deepEqual(f.data, n.frames[i].data);
    });
    // Small frames stay on the main thread.
    const small: string[] = [];
    await runPipeline('auto-small', { seed: 2, width: 16, height: 16, frames: 3, live: false }, small);
    assert.ok(!small.some((l) => l.includes('rendering in a worker thread')));
  });

  test('live: paced at fps', async () => {
    const { frames, ms } = await runPipeline('live', { seed: 1, width: 32, height: 24, frames: 4, live: true, fps: 20 });
    assert.equal(frames.length, 4);
    assert.ok(ms >= 140, `4 frames at 20 fps took only ${ms.toFixed(0)} ms`);
    const arrivals = frames.map((f) => f.arrivalMs);
    assert.ok(arrivals[3] - arrivals[0] >= 140);
  });

  test('options are validated', () => {
    assert.throws(() => parsePipeline('nodes: { s: { kind: synthetic, options: { fov: 200 } } }', 'bad.yaml', builtinRegistry()), /fov/);
    assert.throws(() => parsePipeline('nodes: { s: { kind: synthetic, options: { colour: 1 } } }', 'bad.yaml', builtinRegistry()), /colour|unrecognized/i);
  });
});

// ---- the CLI ------------------------------------------------------------------------------------

describe('synth CLI', () => {
  let dir = '';
  before(() => {
    const r = spawnSync('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: ROOT, encoding: 'utf8', timeout: 240_000 });
    // Type errors in files being edited elsewhere do not stop tsc from emitting; a missing build does.
    if (r.status !== 0) process.stderr.write(`tsc exited ${r.status}:\n${r.stdout}${r.stderr}\n`);
    assert.ok(existsSync(join(ROOT, 'dist', 'cli', 'commands', 'synth.js')), 'tsc did not build dist/cli/commands/synth.js');
    dir = mkdtempSync(join(tmpdir(), 'dcl-synth-'));
  });
  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const cli = (...args: string[]) =>
    spawnSync('node', [join(ROOT, 'bin', 'depthcrafter-live.js'), 'synth', ...args], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });

  test('writes RGB and 16-bit millimetre depth PNGs and meta.json that match the renderer', () => {
    const out = join(dir, 'seq');
    const r = cli('--seed', '3', '--frames', '3', '--size', '64x40', '--fps', '15', '--out', out);
    assert.equal(r.status, 0, r.stderr);
    const meta = JSON.parse(readFileSync(join(out, 'meta.json'), 'utf8'));
    assert.equal(meta.seed, 3);
    assert.equal(meta.width, 64);
    assert.equal(meta.height, 40);
    assert.equal(meta.frames, 3);
    assert.equal(meta.fov, 60);
    assert.equal(meta.depthScale, 0.001);
    const K = intrinsics(64, 40, 60);
    assert.deepEqual(meta.intrinsics, { fx: K.fx, fy: K.fy, cx: K.cx, cy: K.cy });
    assert.equal(meta.cameraToWorld.length, 3);
    const scene = generateScene(3);
    assert.deepEqual(meta.description, JSON.parse(JSON.stringify(scene)));
    const ren = new Renderer(scene, { width: 64, height: 40, fovDeg: 60 });
    for (let i = 0; i < 3; i++) {
      const name = `${String(i).padStart(6, '0')}.png`;
      const rgb = decodePng(readFileSync(join(out, 'rgb', name)));
      const dep = decodePng(readFileSync(join(out, 'depth', name)));
      assert.deepEqual([rgb.width, rgb.height, rgb.channels, rgb.depth], [64, 40, 3, 8]);
      assert.deepEqual([dep.width, dep.height, dep.channels, dep.depth], [64, 40, 1, 16]);
      const ref = ren.render(i / 15);
      assert.deepEqual(rgb.data, ref.rgb);
      let worst = 0;
      for (let k = 0; k < ref.depth.length; k++) {
        const want = ref.depth[k] > 0 ? ref.depth[k] * 1000 : 0;
        worst = Math.max(worst, Math.abs(dep.data[k] - Math.min(65535, want)));
        if (ref.depth[k] === 0) assert.equal(dep.data[k], 0);
      }
      assert.ok(worst <= 1, `depth PNG differs from the renderer by ${worst} mm`);
    }
  });

  test('depth to millimetres: rounding, invalid stays 0, clamp at 65535', () => {
    assert.deepEqual([...depthToMillimetres(Float32Array.from([0, 1.2344, 1.2346, 0.0001, 70, Number.NaN]))], [0, 1234, 1235, 1, 65535, 0]);
  });

  test('bad arguments exit with code 2', () => {
    const out = join(dir, 'bad');
    for (const args of [
      ['--size', '64'],
      ['--size', '4x4'],
      ['--frames', '0'],
      ['--scene', 'space'],
      ['--fov', '0'],
    ]) {
      const r = cli(...args, '--out', out);
      assert.equal(r.status, 2, `${args.join(' ')}: exit ${r.status}\n${r.stderr}`);
      assert.match(r.stderr, /error/i);
    }
  });
});
