import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { z } from 'zod';

import { loadPipelineFile, parsePipeline } from '../src/graph/pipeline-file.js';
import { Graph, NodeFailure } from '../src/graph/runtime.js';
import { defineNode } from '../src/graph/node-kind.js';
import { nowMs, type DepthFrame, type Packet, type VideoFrame } from '../src/graph/packets.js';
import { builtinRegistry } from '../src/nodes/index.js';
import { cameraLaunch, checkCameraDevice } from '../src/nodes/sources/camera.js';
import { depthToU16 } from '../src/nodes/sinks/png-sequence.js';
import { readAppSink } from '../src/media/appsink-reader.js';
import { decodeToRgbLaunch } from '../src/media/launch.js';
import { createPipeline } from '../src/media/gst.js';
import { decodePng, encodePngRGB } from '../src/io/png16.js';
import { readNpz } from '../src/io/npz-writer.js';
import { createLogger } from '../src/util/log.js';

// File and folder sources and the file sinks, with real GStreamer: a generated H.264 clip read
// losslessly behind a block edge, a PNG folder, and depth written to MP4 / PNG / NPZ files that
// are decoded back. Every graph runs to its end or is stopped explicitly.

const ROOT = resolve(import.meta.dirname, '..');
const log = createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'silent', pretty: false });
const tmp = mkdtempSync(join(tmpdir(), 'dcl-file-io-'));
const CLIP = join(tmp, 'clip.mp4');
const CLIP_FRAMES = 45;

before(() => {
  execFileSync('gst-launch-1.0', [
    '-q',
    'videotestsrc',
    `num-buffers=${CLIP_FRAMES}`,
    'pattern=ball',
    '!',
    'video/x-raw,width=160,height=120,framerate=30/1',
    '!',
    'videoconvert',
    '!',
    'x264enc',
    'speed-preset=ultrafast',
    '!',
    'mp4mux',
    '!',
    'filesink',
    `location=${CLIP}`,
  ]);
});
const graphs = new Set<Graph>();
after(async () => {
  for (const g of graphs) await g.stop();
  rmSync(tmp, { recursive: true, force: true });
});

// --- test node kinds -------------------------------------------------------------------------

const collected = new Map<string, Packet[]>();
/** Records every packet; `delayMs` makes it deliberately slow. */
const collectNode = defineNode({
  kind: 't-collect',
  role: 'sink',
  description: 'records packets (test)',
  inputs: { in: 'any' },
  outputs: {},
  options: z.object({ id: z.string(), delayMs: z.number().default(0) }).strict(),
  create(o) {
    const list: Packet[] = [];
    collected.set(o.id, list);
    return {
      async process(_port: string, p: Packet) {
        list.push(p);
        if (o.delayMs > 0 && p.type === 'video') await delay(o.delayMs);
      },
    };
  },
});

/** Disparity test pattern in [0, 1], different per frame; hits 0 and 1 exactly. */
function depthPattern(i: number, w: number, h: number): Float32Array {
  const d = new Float32Array(w * h);
  for (let k = 0; k < d.length; k++) d[k] = ((k * 13 + i * 101) % 1000) / 999;
  return d;
}
const emitted = new Map<string, number>();
/** Emits `frames` synthetic depth frames (-1: until stopped), `intervalMs` apart. */
const depthSourceNode = defineNode({
  kind: 't-depth',
  role: 'source',
  description: 'synthetic depth frames (test)',
  inputs: {},
  outputs: { depth: 'depth' },
  options: z.object({ frames: z.number().int().default(-1), width: z.number().int(), height: z.number().int(), intervalMs: z.number().default(0) }).strict(),
  create(o, ctx) {
    return {
      async run() {
        for (let i = 0; o.frames < 0 || i < o.frames; i++) {
          if (ctx.signal.aborted) return;
          const f: DepthFrame = {
            type: 'depth',
            streamId: ctx.name,
            seq: ctx.sequence.value++,
            ptsMs: (i * 1000) / 15,
            arrivalMs: nowMs(),
            width: o.width,
            height: o.height,
            data: depthPattern(i, o.width, o.height),
            window: 0,
          };
          await ctx.emit('depth', f);
          emitted.set(ctx.name, i + 1);
          if (o.intervalMs > 0) await delay(o.intervalMs);
        }
      },
    };
  },
});

function makeGraph(yaml: string): Graph {
  const registry = builtinRegistry().add(collectNode).add(depthSourceNode);
  const g = new Graph(parsePipeline(`name: t\nserver: { enabled: false }\n${yaml}`, 'file-io-test.yaml', registry, { env: {} }), { log });
  graphs.add(g);
  return g;
}

async function runToEnd(g: Graph, ms = 60_000): Promise<void> {
  await g.start();
  let t: NodeJS.Timeout | undefined;
  await Promise.race([g.done, new Promise((_, reject) => (t = setTimeout(() => reject(new Error(`graph did not finish within ${ms} ms`)), ms)))]);
  clearTimeout(t);
  graphs.delete(g);
}

async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await delay(10);
  }
}

/** Decode a video file fully; returns its frames' sizes. */
async function decodeVideo(path: string): Promise<Array<{ width: number; height: number; data: Uint8Array }>> {
  const out: Array<{ width: number; height: number; data: Uint8Array }> = [];
  await readAppSink({
    launch: decodeToRgbLaunch(path),
    streamId: 'check',
    log,
    signal: new AbortController().signal,
    onFrame: (f) => {
      out.push({ width: f.width, height: f.height, data: f.data.slice() });
    },
  });
  return out;
}

const videoFrames = (id: string) => (collected.get(id) ?? []).filter((p): p is VideoFrame => p.type === 'video');

// --- sources ---------------------------------------------------------------------------------

describe('file source', () => {
  test('behind a block edge into a slow sink, every frame arrives exactly once, in order', { timeout: 60_000 }, async () => {
    const g = makeGraph(`
nodes:
  src: { kind: file, options: { path: ${JSON.stringify(CLIP)} } }
  slow: { kind: t-collect, options: { id: lossless, delayMs: 8 } }
edges:
  - { from: src.video, to: slow.in, queue: { capacity: 2, policy: block } }
`);
    await runToEnd(g);
    const frames = videoFrames('lossless');
    assert.deepEqual(
      frames.map((f) => f.seq),
      Array.from({ length: CLIP_FRAMES }, (_, i) => i),
      'seq 0..44, no gaps, no duplicates',
    );
    for (const f of frames) {
      assert.equal(f.width, 160);
      assert.equal(f.height, 120);
      assert.equal(f.data.length, 160 * 120 * 3, 'packed RGB');
    }
    for (let i = 1; i < frames.length; i++) assert.ok(Math.abs(frames[i].ptsMs - frames[i - 1].ptsMs - 1000 / 30) < 0.01, 'pts from the frame rate');
    assert.equal(await g.metrics.value('dcl_edge_dropped_total', { edge: 'src.video->slow.in' }), 0);
  });

  test('loop: a discontinuity at the end of the file, seq and pts keep increasing; width/height scale', { timeout: 60_000 }, async () => {
    const g = makeGraph(`
nodes:
  src: { kind: file, options: { path: ${JSON.stringify(CLIP)}, loop: true, width: 80, height: 60 } }
  sink: { kind: t-collect, options: { id: loop } }
edges:
  - { from: src.video, to: sink.in, queue: { capacity: 4, policy: block } }
`);
    await g.start();
    await until(() => videoFrames('loop').length >= CLIP_FRAMES + 10, 30_000, 'frames of the second pass');
    await g.stop();
    graphs.delete(g);
    const all = collected.get('loop')!;
    const i = all.findIndex((p) => p.type === 'discontinuity');
    assert.equal(i, CLIP_FRAMES, 'the discontinuity follows the last frame of the first pass');
    const disc = all[i];
    assert.ok(disc.type === 'discontinuity' && disc.nextSeq === CLIP_FRAMES);
    const frames = videoFrames('loop');
    frames.forEach((f, k) => assert.equal(f.seq, k));
    for (let k = 1; k < frames.length; k++) assert.ok(frames[k].ptsMs > frames[k - 1].ptsMs, 'pts increase across the loop');
    assert.ok(frames.every((f) => f.width === 80 && f.height === 60 && f.data.length === 80 * 60 * 3));
  });

  test('a missing file gives a clear error naming it', async () => {
    const g = makeGraph(`
nodes:
  src: { kind: file, options: { path: ${JSON.stringify(join(tmp, 'nope.mp4'))} } }
  sink: { kind: t-collect, options: { id: missing } }
edges:
  - { from: src.video, to: sink.in }
`);
    await assert.rejects(g.start(), (e: Error) => e instanceof NodeFailure && /nope\.mp4: no such file/.test(e.message));
    graphs.delete(g);
  });
});

describe('frames source', () => {
  test('reads a PNG folder in name order (frame_2 before frame_10), with fps timestamps', { timeout: 30_000 }, async () => {
    const dir = join(tmp, 'pngs');
    mkdirSync(dir);
    const n = 12;
    for (let i = 1; i <= n; i++) {
      const rgb = new Uint8Array(8 * 6 * 3);
      for (let k = 0; k < rgb.length; k += 3) rgb.set([i * 10, 255 - i, k % 256], k);
      writeFileSync(join(dir, `frame_${i}.png`), encodePngRGB(rgb, 8, 6));
    }
    writeFileSync(join(dir, 'notes.txt'), 'not an image');
    const g = makeGraph(`
nodes:
  src: { kind: frames, options: { dir: ${JSON.stringify(dir)}, fps: 10 } }
  sink: { kind: t-collect, options: { id: frames } }
edges:
  - { from: src.video, to: sink.in, queue: { capacity: 2, policy: block } }
`);
    await runToEnd(g);
    const frames = videoFrames('frames');
    assert.equal(frames.length, n);
    frames.forEach((f, k) => {
      assert.equal(f.seq, k);
      assert.equal(f.ptsMs, k * 100);
      assert.equal(f.width, 8);
      assert.equal(f.height, 6);
      assert.equal(f.data[0], (k + 1) * 10, `frame ${k} is frame_${k + 1}.png`);
      assert.equal(f.data[1], 255 - (k + 1));
    });
  });
});

test('several sources in one process: two file sources and a frame folder together', { timeout: 60_000 }, async () => {
  const dir = join(tmp, 'pngs-multi');
  mkdirSync(dir);
  for (let i = 0; i < 10; i++) writeFileSync(join(dir, `f${i}.png`), encodePngRGB(new Uint8Array(4 * 4 * 3).fill(i), 4, 4));
  const g = makeGraph(`
nodes:
  a: { kind: file, options: { path: ${JSON.stringify(CLIP)} } }
  b: { kind: file, options: { path: ${JSON.stringify(CLIP)}, width: 64, height: 48, queue: 2 } }
  c: { kind: frames, options: { dir: ${JSON.stringify(dir)} } }
  sa: { kind: t-collect, options: { id: multi-a, delayMs: 2 } }
  sb: { kind: t-collect, options: { id: multi-b } }
  sc: { kind: t-collect, options: { id: multi-c } }
edges:
  - { from: a.video, to: sa.in, queue: { capacity: 2, policy: block } }
  - { from: b.video, to: sb.in, queue: { capacity: 2, policy: block } }
  - { from: c.video, to: sc.in, queue: { capacity: 2, policy: block } }
`);
  await runToEnd(g);
  assert.equal(videoFrames('multi-a').length, CLIP_FRAMES);
  assert.equal(videoFrames('multi-b').length, CLIP_FRAMES);
  assert.ok(videoFrames('multi-b').every((f) => f.width === 64 && f.height === 48));
  assert.equal(videoFrames('multi-c').length, 10);
});

// --- sinks -----------------------------------------------------------------------------------

describe('file sinks', () => {
  test('mp4: decodes back to exactly the frames written (odd sizes cropped to even)', { timeout: 60_000 }, async () => {
    const even = join(tmp, 'out', 'even.mp4');
    const odd = join(tmp, 'out', 'odd.mp4');
    const g = makeGraph(`
nodes:
  d1: { kind: t-depth, options: { frames: 20, width: 64, height: 48 } }
  d2: { kind: t-depth, options: { frames: 7, width: 65, height: 49 } }
  m1: { kind: mp4, options: { path: ${JSON.stringify(even)} } }
  m2: { kind: mp4, options: { path: ${JSON.stringify(odd)}, colormap: turbo, fps: 30 } }
edges:
  - { from: d1.depth, to: m1.depth, queue: { capacity: 4, policy: block } }
  - { from: d2.depth, to: m2.depth, queue: { capacity: 4, policy: block } }
`);
    await runToEnd(g);
    const a = await decodeVideo(even);
    assert.equal(a.length, 20);
    assert.ok(a.every((f) => f.width === 64 && f.height === 48));
    // Colour-mapped, not grey: inferno's red channel differs from its blue channel.
    const f0 = a[0].data;
    let diff = 0;
    for (let k = 0; k < f0.length; k += 3) diff += Math.abs(f0[k] - f0[k + 2]);
    assert.ok(diff / (f0.length / 3) > 10, 'colour-mapped pixels');
    const b = await decodeVideo(odd);
    assert.equal(b.length, 7);
    assert.ok(b.every((f) => f.width === 64 && f.height === 48));
  });

  test('png-sequence: N 16-bit grey PNGs that decode back to round(d * 65535)', { timeout: 30_000 }, async () => {
    const dir = join(tmp, 'depth-png');
    const g = makeGraph(`
nodes:
  d: { kind: t-depth, options: { frames: 5, width: 16, height: 12 } }
  p: { kind: png-sequence, options: { dir: ${JSON.stringify(dir)}, prefix: disp } }
edges:
  - { from: d.depth, to: p.depth, queue: { capacity: 4, policy: block } }
`);
    await runToEnd(g);
    assert.deepEqual(readdirSync(dir).sort(), ['disp_000000.png', 'disp_000001.png', 'disp_000002.png', 'disp_000003.png', 'disp_000004.png']);
    for (let i = 0; i < 5; i++) {
      const png = decodePng(readFileSync(join(dir, `disp_00000${i}.png`)));
      assert.equal(png.depth, 16);
      assert.equal(png.channels, 1);
      assert.equal(png.width, 16);
      assert.equal(png.height, 12);
      const want = depthToU16(depthPattern(i, 16, 12));
      assert.deepEqual(Array.from(png.data), Array.from(want));
      assert.ok(want.includes(0) || want.includes(65535) || i > 0);
    }
  });

  test('npz: loads with readNpz as float32 [N, H, W] with the values written', { timeout: 30_000 }, async () => {
    const path = join(tmp, 'out', 'depth.npz');
    const g = makeGraph(`
nodes:
  d: { kind: t-depth, options: { frames: 7, width: 20, height: 10 } }
  n: { kind: npz, options: { path: ${JSON.stringify(path)} } }
edges:
  - { from: d.depth, to: n.depth, queue: { capacity: 4, policy: block } }
`);
    await runToEnd(g);
    const npz = await readNpz(path);
    assert.deepEqual(Object.keys(npz), ['depth']);
    assert.equal(npz.depth.dtype, 'float32');
    assert.deepEqual(npz.depth.shape, [7, 10, 20]);
    const data = npz.depth.data as Float32Array;
    for (let i = 0; i < 7; i++) assert.deepEqual(data.subarray(i * 200, (i + 1) * 200), depthPattern(i, 20, 10));
    assert.deepEqual(
      readdirSync(join(tmp, 'out')).filter((f) => f.endsWith('.tmp')),
      [],
      'temporary raw file removed',
    );
  });

  test('graph.stop() mid-stream leaves a playable MP4 and a complete npz with every frame written', { timeout: 60_000 }, async () => {
    const mp4 = join(tmp, 'stop', 'live.mp4');
    const npz = join(tmp, 'stop', 'live.npz');
    const g = makeGraph(`
nodes:
  live: { kind: t-depth, options: { width: 32, height: 24, intervalMs: 15 } }
  m: { kind: mp4, options: { path: ${JSON.stringify(mp4)} } }
  n: { kind: npz, options: { path: ${JSON.stringify(npz)}, compress: true } }
edges:
  - { from: live.depth, to: m.depth, queue: { capacity: 4, policy: block } }
  - { from: live.depth, to: n.depth, queue: { capacity: 4, policy: block } }
`);
    await g.start();
    await until(() => (emitted.get('live') ?? 0) >= 12, 20_000, '12 frames');
    await g.stop();
    graphs.delete(g);
    const written = emitted.get('live')!;
    assert.ok(written >= 12);
    const frames = await decodeVideo(mp4);
    assert.equal(frames.length, written, 'the MP4 holds every frame written before the stop');
    const arr = (await readNpz(npz)).depth;
    assert.deepEqual(arr.shape, [written, 24, 32]);
  });
});

// --- camera (no camera here: launch string and device checks) ----------------------------------

describe('camera source', () => {
  test('launch string for given options (and GStreamer accepts it)', () => {
    assert.equal(
      cameraLaunch({ device: '/dev/video2', width: 320, height: 240, fps: 15 }),
      'v4l2src device="/dev/video2" ! videoconvert ! videoscale ! video/x-raw,format=RGB,width=320,height=240 ! videorate ! video/x-raw,framerate=15/1',
    );
    assert.match(cameraLaunch({ device: '/dev/my cam', width: 640, height: 480, fps: 25 }), /^v4l2src device="\/dev\/my cam" !.*,framerate=25\/1$/);
    // Parsed (not played: there is no camera here).
    const p = createPipeline(`${cameraLaunch({ device: '/dev/video0', width: 320, height: 240, fps: 15 })} ! appsink name=s max-buffers=1 drop=true`);
    assert.ok(p.findChild('s'));
  });

  test('a missing device gives a clear error naming the device', async () => {
    assert.throws(() => checkCameraDevice('/dev/video-missing'), { message: 'camera /dev/video-missing: no such device' });
    assert.throws(() => checkCameraDevice(CLIP), /not a camera device/);
    const g = makeGraph(`
nodes:
  cam: { kind: camera, options: { device: /dev/video-missing } }
  sink: { kind: t-collect, options: { id: cam } }
edges:
  - { from: cam.video, to: sink.in }
`);
    await assert.rejects(g.start(), (e: Error) => e instanceof NodeFailure && e.message.includes('camera /dev/video-missing: no such device'));
    graphs.delete(g);
  });
});

// --- pipeline files -----------------------------------------------------------------------------

describe('pipeline files', () => {
  const registry = builtinRegistry();
  test('pipelines/rtsp.yaml validates with RTSP_URL', () => {
    const p = loadPipelineFile(join(ROOT, 'pipelines', 'rtsp.yaml'), registry, { env: { RTSP_URL: 'rtsp://u:p@10.0.0.2:554/live' } });
    assert.deepEqual(
      p.nodes.map((n) => n.kind.kind),
      ['rtsp', 'depth', 'websocket'],
    );
    assert.equal((p.nodes[0].options as { url: string }).url, 'rtsp://u:p@10.0.0.2:554/live');
    assert.throws(() => loadPipelineFile(join(ROOT, 'pipelines', 'rtsp.yaml'), registry, { env: {} }), /RTSP_URL/);
  });
  test('pipelines/file.yaml validates with VIDEO, lossless into depth', () => {
    const p = loadPipelineFile(join(ROOT, 'pipelines', 'file.yaml'), registry, { env: { VIDEO: CLIP } });
    assert.deepEqual(
      p.nodes.map((n) => n.kind.kind),
      ['file', 'depth', 'websocket'],
    );
    const e = p.edges.find((x) => x.to.node === 'depth')!;
    assert.equal(e.policy, 'block');
  });
  test('pipelines/camera.yaml validates (CAMERA defaults to /dev/video0)', () => {
    const p = loadPipelineFile(join(ROOT, 'pipelines', 'camera.yaml'), registry, { env: {} });
    assert.deepEqual(
      p.nodes.map((n) => n.kind.kind),
      ['camera', 'depth', 'websocket'],
    );
    assert.equal((p.nodes[0].options as { device: string }).device, '/dev/video0');
    const q = loadPipelineFile(join(ROOT, 'pipelines', 'camera.yaml'), registry, { env: { CAMERA: '/dev/video2' } });
    assert.equal((q.nodes[0].options as { device: string }).device, '/dev/video2');
  });
});
