import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { WebSocket } from 'ws';
import type { Page } from 'playwright-core';
import { parsePipeline } from '../src/graph/pipeline-file.js';
import { builtinRegistry } from '../src/nodes/index.js';
import { intrinsics as synthIntrinsics } from '../src/synth/camera.js';
import { decodeFrameMessage, scaleIntrinsics, type FrameHeader } from '../src/protocol/frame-message.js';
import { within } from './helpers/wait.js';
import { browserFixture, skipWithoutChromium } from './helpers/browser.js';

// The viewer's tools in a real browser (Debian's Chromium, software WebGL) on a real pipeline (synthetic source,
// streaming depth node, WebSocket sink): the responsive layout keeps the source's aspect ratio, the colour bar
// matches the colour map, the 3D point cloud renders the frame with the source's intrinsics and changes when the
// camera is dragged, the snapshot is a PNG of RGB + depth, the recording a WebM, and nothing the page asks for
// is missing (no 404, favicon included). Then intrinsics end to end without a browser: the frames source's K.txt
// and K option reach the WebSocket headers.

const skip = skipWithoutChromium;
const fx = browserFixture();
const ROOT = process.cwd();
const startGraph = (yaml: string) => fx.startGraph(yaml, 'viewer-3d-test.yaml');

// Page-side helpers as strings: tsx would wrap named functions with __name, which the page lacks.
/** Reads the 3D canvas into window.__pic; returns its size and how many pixels are not the black background. */
const READ_CLOUD = `(() => {
  const c = document.getElementById('cloud');
  const t = document.createElement('canvas'); t.width = c.width; t.height = c.height;
  const ctx = t.getContext('2d'); ctx.drawImage(c, 0, 0);
  const d = ctx.getImageData(0, 0, t.width, t.height).data;
  let lit = 0;
  for (let i = 0; i < d.length; i += 4) if (d[i] + d[i + 1] + d[i + 2] > 24) lit++;
  const prev = window.__pic; window.__pic = d;
  let changed = 0;
  if (prev && prev.length === d.length) for (let i = 0; i < d.length; i += 4) {
    if (Math.abs(prev[i] - d[i]) + Math.abs(prev[i + 1] - d[i + 1]) + Math.abs(prev[i + 2] - d[i + 2]) > 30) changed++;
  }
  return { w: t.width, h: t.height, lit, changed, renders: window.dclViewer.cloud.renders };
})()`;
type CloudPic = { w: number; h: number; lit: number; changed: number; renders: number };

const box = async (page: Page, sel: string) => {
  const b = await page.locator(sel).boundingBox();
  assert.ok(b, `${sel} is laid out`);
  return b;
};

test('the viewer: responsive panels, colour bar, 3D point cloud with orbit, snapshot PNG, WebM recording, no 404', { skip, timeout: 180_000 }, async () => {
  // 160x96 (5:3) at maxRes 128: the depth comes out at the model's own size (multiples of 64), not the source's shape.
  const g = await startGraph(`
server: { host: 127.0.0.1, port: 0 }
nodes:
  source: { kind: synthetic, options: { seed: 3, width: 160, height: 96, fps: 15 } }
  depth: { kind: depth, options: { model: tiny-random, window: 6, overlap: 2, steps: 1, maxRes: 128, stride: 1 } }
  ws: { kind: websocket }
edges:
  - { from: source, to: depth, queue: { capacity: 16, policy: block } }
  - { from: depth, to: ws, queue: { capacity: 16, policy: drop-oldest } }
`);
  const base = `http://127.0.0.1:${g.address!.port}/`;
  const page = await fx.browser().newPage({ viewport: { width: 1280, height: 800 } });
  const errors: string[] = [];
  const missing: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('response', (r) => {
    if (r.status() >= 400) missing.push(`${r.status()} ${r.url()}`);
  });
  page.on('requestfailed', (r) => missing.push(`failed ${r.url()} ${r.failure()?.errorText ?? ''}`));
  await page.goto(base);
  await page.waitForFunction(
    `window.dclViewer.frames >= 5 && window.dclViewer.cloud && window.dclViewer.cloud.frames >= 3 && window.dclViewer.cloud.renders >= 1`,
    undefined,
    { timeout: 90_000 },
  );

  // The favicon: browsers ask for /favicon.ico whatever the page links; both answer.
  for (const path of ['favicon.ico', 'favicon.svg']) {
    const r = await fetch(base + path);
    assert.equal(r.status, 200, path);
    assert.match(r.headers.get('content-type') ?? '', /^image\/svg\+xml/);
    assert.match(await r.text(), /^<svg /);
  }
  assert.match((await page.evaluate(`document.querySelector('link[rel=icon]').href`)) as string, /favicon\.svg$/);
  // three.js comes from this server (node_modules), not a CDN.
  const three = await fetch(base + 'vendor/three/three.module.js');
  assert.equal(three.status, 200);
  assert.match(three.headers.get('content-type') ?? '', /javascript/);
  assert.equal((await fetch(base + 'vendor/three/../../package.json')).status, 404, 'only the listed files are served');

  // Layout: the panels fill the page width, every canvas shows the source's 5:3 shape (the depth, 128 wide, included).
  const depthHeader = (await page.evaluate(`window.dclViewer.lastDepth[0]`)) as FrameHeader;
  assert.notEqual(depthHeader.width / depthHeader.height, 160 / 96, "the depth is not at the source's shape (the test needs it)");
  const panels = await Promise.all(['#rgbFigure', '#depthFigure', '#gtFigure', '#cloudFigure'].map((s) => box(page, s)));
  const right = Math.max(...panels.map((b) => b.x + b.width));
  assert.ok(right > 1280 - 40, `the panels fill the width (right edge at ${right} of 1280)`);
  for (const b of panels) assert.ok(b.width > 250, `each panel is wide (${b.width})`);
  for (const id of ['#rgb', '#depth', '#gt', '#cloud']) {
    const b = await box(page, id);
    assert.ok(Math.abs(b.width / b.height - 160 / 96) < 0.03, `${id} keeps the source's aspect ratio (${b.width}x${b.height})`);
  }
  // A narrow window (a phone): one panel a row, full width and in shape.
  await page.setViewportSize({ width: 500, height: 900 });
  await page.waitForFunction(`document.getElementById('rgbFigure').getBoundingClientRect().width > 400`, undefined, { timeout: 10_000 });
  const narrow = await box(page, '#rgb');
  assert.ok(Math.abs(narrow.width / narrow.height - 160 / 96) < 0.03, `narrow: RGB in shape (${narrow.width}x${narrow.height})`);
  await page.setViewportSize({ width: 1280, height: 800 });
  await page.waitForFunction(`document.getElementById('rgbFigure').getBoundingClientRect().width < 400`, undefined, { timeout: 10_000 });

  // The colour bar: far on the left, near on the right, in the colour map's colours; it follows the selection.
  const bar = (await page.evaluate(`(() => {
    const c = document.getElementById('colorbarCanvas'); const d = c.getContext('2d').getImageData(0, 0, 256, 1).data;
    const r = document.getElementById('colorbar').getBoundingClientRect(), dr = document.getElementById('depth').getBoundingClientRect();
    const far = document.querySelector('#colorbar .far').getBoundingClientRect(), near = document.querySelector('#colorbar .near').getBoundingClientRect();
    return { near: document.querySelector('#colorbar .near').textContent, far: document.querySelector('#colorbar .far').textContent,
      left: Array.from(d.slice(0, 3)), right: Array.from(d.slice(255 * 4, 255 * 4 + 3)), lut: window.dclViewer.lut,
      underDepth: r.top >= dr.bottom - 1 && r.top - dr.bottom < 30 && r.width > 0.9 * dr.width, farLeft: far.right < near.left };
  })()`)) as { near: string; far: string; left: number[]; right: number[]; lut: number[]; underDepth: boolean; farLeft: boolean };
  assert.equal(bar.near, 'near');
  assert.equal(bar.far, 'far');
  assert.ok(bar.underDepth, 'the colour bar is right under the depth view, as wide');
  assert.ok(bar.farLeft, '"far" on the left, "near" on the right');
  assert.deepEqual(bar.left, bar.lut.slice(0, 3), 'left = the colour of disparity 0 (far)');
  assert.deepEqual(bar.right, bar.lut.slice(255 * 3, 255 * 3 + 3), 'right = the colour of disparity 1 (near)');
  await page.selectOption('#colormap', 'gray');
  assert.deepEqual(
    await page.evaluate(`Array.from(document.getElementById('colorbarCanvas').getContext('2d').getImageData(255, 0, 1, 1).data.slice(0, 3))`),
    [255, 255, 255],
  );
  await page.selectOption('#colormap', 'inferno');

  // 3D: the synthetic source's own camera (fov 60 at 160x96), scaled by the server to the depth's size.
  const cloud =
    (await page.evaluate(`({ from: window.dclViewer.cloud.intrinsicsFrom, K: window.dclViewer.cloud.K, header: window.dclViewer.lastDepth[0].intrinsics,
    info: document.getElementById('cloudInfo').textContent })`)) as { from: string; K: Record<string, number>; header: Record<string, number>; info: string };
  assert.equal(cloud.from, 'source');
  const want = scaleIntrinsics(synthIntrinsics(160, 96, 60), { width: 160, height: 96 }, depthHeader);
  for (const k of ['fx', 'fy', 'cx', 'cy'] as const) assert.ok(Math.abs(cloud.header[k] - want[k]) < 1e-3, `${k}: ${cloud.header[k]} vs ${want[k]}`);
  assert.match(cloud.info, /intrinsics from the source/);

  // Pause freezes the views (frames keep arriving), so the picture changes only when the camera moves.
  await page.click('#pause');
  const paused = (await page.evaluate(`window.dclViewer.cloud.frames`)) as number;
  const frames = (await page.evaluate(`window.dclViewer.frames`)) as number;
  await page.waitForFunction(`window.dclViewer.cloud.pending === false`, undefined, { timeout: 10_000 });
  const a = (await page.evaluate(READ_CLOUD)) as CloudPic;
  assert.ok(a.lit > 0.3 * a.w * a.h, `the point cloud covers the view from the source camera (${a.lit} of ${a.w * a.h} pixels)`);
  await page.evaluate(`window.__picA = window.__pic`);
  await page.waitForFunction(`window.dclViewer.frames >= ${frames + 4}`, undefined, { timeout: 60_000 });
  const still = (await page.evaluate(READ_CLOUD)) as CloudPic;
  assert.equal(still.changed, 0, 'paused: new frames do not change the picture');
  assert.equal(await page.evaluate(`window.dclViewer.cloud.frames`), paused);
  // Orbit with the mouse (OrbitControls on the canvas): the picture changes.
  const c = await box(page, '#cloud');
  await page.mouse.move(c.x + c.width / 2, c.y + c.height / 2);
  await page.mouse.down();
  await page.mouse.move(c.x + c.width / 2 + 30, c.y + c.height / 2 + 8, { steps: 6 });
  await page.mouse.up();
  await page.waitForFunction(`window.dclViewer.cloud.renders > ${still.renders} && window.dclViewer.cloud.pending === false`, undefined, { timeout: 10_000 });
  const orbited = (await page.evaluate(READ_CLOUD)) as CloudPic;
  assert.ok(orbited.changed > 0.2 * orbited.w * orbited.h, `orbiting changes the picture (${orbited.changed} of ${orbited.w * orbited.h} pixels)`);
  assert.ok(orbited.lit > 0.05 * orbited.w * orbited.h, `and still shows the cloud (${orbited.lit} pixels)`);
  const dir = join(ROOT, '.tmp');
  mkdirSync(dir, { recursive: true });
  await page.screenshot({ path: join(dir, 'viewer-3d-test.png') });
  // Reset view brings back the source camera's picture.
  await page.click('#cloudReset');
  await page.waitForFunction(`window.dclViewer.cloud.renders > ${orbited.renders} && window.dclViewer.cloud.pending === false`, undefined, { timeout: 10_000 });
  await page.evaluate(`window.__pic = window.__picA`);
  const reset = (await page.evaluate(READ_CLOUD)) as CloudPic;
  assert.ok(reset.changed < 0.01 * reset.w * reset.h, `reset view: the first picture again (${reset.changed} pixels differ)`);

  // Snapshot: a PNG of the RGB frame and its depth side by side, both at the source's size.
  const [snap] = await Promise.all([page.waitForEvent('download', { timeout: 15_000 }), page.click('#snapshot')]);
  assert.match(snap.suggestedFilename(), /^depthcrafter-source-\d+\.png$/);
  const png = readFileSync((await snap.path())!);
  assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'PNG signature');
  const img = PNG.sync.read(png);
  assert.equal(img.width, 2 * 160);
  assert.equal(img.height, 96);
  const colours = new Set<number>();
  for (let i = 0; i < img.data.length; i += 4) colours.add((img.data[i] << 16) | (img.data[i + 1] << 8) | img.data[i + 2]);
  assert.ok(colours.size > 50, `the snapshot holds the pictures (${colours.size} colours)`);

  // Record: resume, record the depth view for a few frames, stop: a WebM (EBML header) downloads.
  await page.click('#pause');
  assert.equal(await page.evaluate(`window.dclViewer.paused`), false);
  await page.click('#record');
  assert.equal(await page.evaluate(`window.dclViewer.recording`), true);
  const recFrames = (await page.evaluate(`window.dclViewer.frames`)) as number;
  await page.waitForFunction(`window.dclViewer.frames >= ${recFrames + 10}`, undefined, { timeout: 60_000 });
  const [rec] = await Promise.all([page.waitForEvent('download', { timeout: 15_000 }), page.click('#record')]);
  assert.match(rec.suggestedFilename(), /^depthcrafter-source-\d+\.webm$/);
  const webm = readFileSync((await rec.path())!);
  assert.deepEqual([...webm.subarray(0, 4)], [0x1a, 0x45, 0xdf, 0xa3], 'WebM (EBML) signature');
  assert.ok(webm.length > 1000, `the recording holds video (${webm.length} bytes)`);

  assert.deepEqual(missing, [], 'nothing the page loaded was missing');
  assert.deepEqual(errors, []);
  await page.close();
  await g.stop();
});

/** Collect the headers of the first `n` frame messages of a pipeline's /ws. */
async function headers(port: number, n: number, query = 'rgb=1'): Promise<FrameHeader[]> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/ws?${query}`);
  const out: FrameHeader[] = [];
  try {
    return await within(
      60_000,
      `${n} frame messages`,
      new Promise<FrameHeader[]>((resolve, reject) => {
        ws.on('error', reject);
        ws.on('message', (data, isBinary) => {
          if (!isBinary) return;
          out.push(decodeFrameMessage(data as Buffer).header);
          if (out.length >= n) resolve(out);
        });
      }),
    );
  } finally {
    ws.close();
  }
}

function writeFrames(dir: string, w: number, h: number, count: number): void {
  mkdirSync(dir, { recursive: true });
  for (let i = 0; i < count; i++) {
    const png = new PNG({ width: w, height: h });
    for (let p = 0; p < w * h; p++) png.data.set([(p * 7 + i) & 255, (p * 3) & 255, 128, 255], 4 * p);
    writeFileSync(join(dir, `frame_${i}.png`), PNG.sync.write(png));
  }
}

test('intrinsics reach the WebSocket headers: K.txt beside a frames folder, the K option with kSize', { timeout: 120_000 }, async () => {
  const tmp = mkdtempSync(join(tmpdir(), 'dcl-k-'));
  try {
    // DATASET/rgb/*.png with DATASET/K.txt, as RGB-D datasets ship it.
    writeFrames(join(tmp, 'seq', 'rgb'), 40, 30, 3);
    writeFileSync(join(tmp, 'seq', 'K.txt'), '3.5e+01 0 1.95e+01\n0 3.6e+01 1.45e+01\n0 0 1\n');
    const yaml = (opts: string) => `
server: { host: 127.0.0.1, port: 0 }
nodes:
  source: { kind: frames, options: { dir: ${JSON.stringify(join(tmp, 'seq', 'rgb'))}, fps: 10, loop: true, realtime: true${opts} } }
  ws: { kind: websocket, options: { viewer: false } }
edges:
  - { from: source, to: ws, queue: { capacity: 4, policy: drop-oldest } }
`;
    let g = await startGraph(yaml(''));
    let hs = await headers(g.address!.port, 2);
    for (const h of hs) {
      assert.equal(h.kind, 'rgb');
      assert.deepEqual(h.intrinsics, { fx: 35, fy: 36, cx: 19.5, cy: 14.5 }, 'K.txt read from the folder above the frames');
    }
    await g.stop();
    // The K option wins; calibrated at 80x60, it is scaled to the 40x30 frames (pixel centres at integers).
    g = await startGraph(yaml(', K: [[70, 0, 39.5], [0, 72, 29.5], [0, 0, 1]], kSize: [80, 60]'));
    hs = await headers(g.address!.port, 2);
    assert.deepEqual(hs[0].intrinsics, { fx: 35, fy: 36, cx: 19.5, cy: 14.5 });
    await g.stop();

    // The real RGB-D sequence in ../shared/data, when present: its K.txt reaches the headers as it is.
    const hololens = join(ROOT, '..', 'shared', 'data', 'rgbd-hololens-000');
    if (existsSync(join(hololens, 'K.txt'))) {
      g = await startGraph(yaml('').replace(JSON.stringify(join(tmp, 'seq', 'rgb')), JSON.stringify(join(hololens, 'rgb'))));
      hs = await headers(g.address!.port, 1);
      assert.equal(hs[0].width, 540);
      assert.ok(Math.abs(hs[0].intrinsics!.fx - 495.5678) < 1e-3 && Math.abs(hs[0].intrinsics!.cy - 169.1941) < 1e-3, JSON.stringify(hs[0].intrinsics));
      await g.stop();
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});

test('a bad K is refused when the pipeline is read, with its field', () => {
  const parse = (k: string) => () =>
    parsePipeline(
      `nodes:\n  source: { kind: frames, options: { dir: /tmp, K: ${k} } }\n  ws: { kind: websocket }\nedges:\n  - { from: source, to: ws }\n`,
      'k.yaml',
      builtinRegistry(),
    );
  assert.throws(parse('[[1, 0, 0], [0, 1, 0], [0, 0, 2]]'), /K.*\[\[fx, 0, cx\], \[0, fy, cy\], \[0, 0, 1\]\]/s);
  assert.throws(parse('[0, 1, 2, 3]'), /fx and fy must be positive/);
  assert.throws(parse('[1, 2, 3]'), /K/);
});
