import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { parsePipeline } from '../src/graph/pipeline-file.js';
import { Graph } from '../src/graph/runtime.js';
import { builtinRegistry } from '../src/nodes/index.js';
import { createLogger } from '../src/util/log.js';

// The viewer in a real browser (Debian's Chromium through playwright-core): the page connects,
// depth, RGB and ground-truth frames arrive and are drawn (canvas pixels are checked), the
// running AbsRel is shown, and a screenshot is kept.

const CHROMIUM = '/usr/bin/chromium';
const skip = existsSync(CHROMIUM) ? false : `Chromium not installed at ${CHROMIUM} (scripts/setup.sh installs it)`;
let browser: Browser | null = null;
/** Every graph a test started, stopped in after() even when a test failed half way. */
const graphs: Graph[] = [];

before(async () => {
  if (skip) return;
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});

after(async () => {
  await browser?.close();
  for (const g of graphs) await g.stop();
});

test('the viewer draws live RGB and depth frames', { skip, timeout: 90_000 }, async () => {
  const yaml = `
name: viewer-test
server: { host: 127.0.0.1, port: 0 }
nodes:
  source: { kind: synthetic, options: { seed: 3, width: 128, height: 128, fps: 15 } }
  depth: { kind: depth, options: { window: 6, overlap: 2, steps: 1, maxRes: 128, stride: 1 } }
  ws: { kind: websocket }
edges:
  - { from: source, to: depth, queue: { capacity: 16, policy: block } }
  - { from: depth, to: ws, queue: { capacity: 16, policy: drop-oldest } }
`;
  const graph = new Graph(parsePipeline(yaml, 'viewer-test.yaml', builtinRegistry()), { log: createLogger({ level: 'warn' }) });
  graphs.push(graph);
  await graph.start();
  const url = `http://127.0.0.1:${graph.address!.port}/`;
  const page = await browser!.newPage({ viewport: { width: 1100, height: 420 } });
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(url);
  await page.waitForFunction(() => (window as unknown as { dclViewer: { frames: number } }).dclViewer.frames >= 5, undefined, { timeout: 60_000 });
  const status = await page.textContent('#status');
  assert.equal(status, 'live');
  // Canvas pixels: the depth canvas holds colour-mapped values (not all one colour), the RGB canvas the test pattern.
  // A string, not a function: tsx would wrap named helpers with __name, which the page lacks.
  const stats = (await page.evaluate(`(() => {
    function read(id) {
      const c = document.getElementById(id);
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      const colours = new Set();
      let opaque = 0;
      for (let i = 0; i < d.length; i += 4) {
        colours.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
        if (d[i + 3] === 255) opaque++;
      }
      return { w: c.width, h: c.height, colours: colours.size, opaque };
    }
    return { rgb: read('rgb'), depth: read('depth'), fps: document.getElementById('fps').textContent, latency: document.getElementById('latency').textContent };
  })()`)) as { rgb: { w: number; h: number; colours: number; opaque: number }; depth: { w: number; h: number; colours: number; opaque: number }; fps: string; latency: string };
  assert.equal(stats.depth.w, 128);
  assert.equal(stats.depth.h, 128);
  assert.equal(stats.depth.opaque, 128 * 128, 'every depth pixel drawn');
  assert.ok(stats.depth.colours > 20, `depth canvas shows many colours (${stats.depth.colours})`);
  assert.ok(stats.rgb.colours > 2, `RGB canvas shows the pattern (${stats.rgb.colours})`);
  assert.ok(Number(stats.fps) > 0, `fps shown (${stats.fps})`);
  assert.match(stats.latency ?? '', /^\d+$/);
  // The synthetic source knows depth: the ground truth is drawn and the running AbsRel shown.
  await page.waitForFunction(`document.getElementById('absrel').textContent !== '–'`, undefined, { timeout: 30_000 });
  const gt = (await page.evaluate(`(() => {
    const c = document.getElementById('gt');
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    const colours = new Set();
    for (let i = 0; i < d.length; i += 4) colours.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
    return { hidden: document.getElementById('gtFigure').hidden, w: c.width, colours: colours.size,
      absrel: document.getElementById('absrel').textContent, delta1: document.getElementById('delta1').textContent };
  })()`)) as { hidden: boolean; w: number; colours: number; absrel: string; delta1: string };
  assert.equal(gt.hidden, false);
  assert.equal(gt.w, 128);
  assert.ok(gt.colours > 20, `ground-truth canvas shows many colours (${gt.colours})`);
  assert.ok(Number(gt.absrel) >= 0 && Number.isFinite(Number(gt.absrel)), `AbsRel shown (${gt.absrel})`);
  assert.ok(Number(gt.delta1) >= 0 && Number(gt.delta1) <= 1, `delta1 shown (${gt.delta1})`);
  // Switching the colour map redraws the depth canvas with other colours.
  const pixel = `Array.from(document.getElementById('depth').getContext('2d').getImageData(0, 0, 1, 1).data)`;
  const before = (await page.evaluate(pixel)) as number[];
  await page.selectOption('#colormap', 'gray');
  const afterPx = (await page.evaluate(pixel)) as number[];
  assert.equal(afterPx[0], afterPx[1], 'gray map has equal R and G');
  assert.ok(before.join() !== afterPx.join() || before[0] === before[1]);
  const dir = join(process.cwd(), '.tmp');
  mkdirSync(dir, { recursive: true });
  await page.screenshot({ path: join(dir, 'viewer.png') });
  assert.deepEqual(errors, []);
  await page.close();
  await graph.stop();
});

/** Start a pipeline and open the viewer on it. */
async function openViewer(yaml: string): Promise<{ page: import('playwright-core').Page; errors: string[]; g: Graph }> {
  const g = new Graph(parsePipeline(yaml, 'viewer-test.yaml', builtinRegistry()), { log: createLogger({ level: 'silent' }) });
  graphs.push(g);
  await g.start();
  const page = await browser!.newPage({ viewport: { width: 1100, height: 420 } });
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`http://127.0.0.1:${g.address!.port}/`);
  return { page, errors, g };
}

test('the viewer says when the model is slower than the camera: stride, interpolated share, sequences', { skip, timeout: 90_000 }, async () => {
  const { page, errors, g } = await openViewer(`
server: { host: 127.0.0.1, port: 0 }
nodes:
  source: { kind: synthetic, options: { seed: 3, width: 128, height: 128, fps: 15 } }
  depth: { kind: depth, options: { window: 6, overlap: 2, steps: 1, maxRes: 128, stride: 3 } }
  ws: { kind: websocket }
edges:
  - { from: source, to: depth, queue: { capacity: 4, policy: drop-oldest } }
  - { from: depth, to: ws, queue: { capacity: 16, policy: drop-oldest } }
`);
  await page.waitForFunction(`window.dclViewer.frames >= 20 && document.getElementById('stride').textContent === '3'`, undefined, { timeout: 60_000 });
  const shown = (await page.evaluate(`({ status: document.getElementById('status').textContent, cls: document.getElementById('status').className,
    interpolated: document.getElementById('interpolated').textContent, sequences: document.getElementById('sequences').textContent,
    sourceFps: document.getElementById('sourceFps').textContent })`)) as Record<string, string>;
  assert.equal(shown.status, 'model slower than the camera: every 3rd frame computed, the others interpolated');
  assert.equal(shown.cls, 'warn');
  const share = Number(/^(\d+) %$/.exec(shown.interpolated)?.[1]);
  assert.ok(share >= 50 && share <= 80, `about two thirds of the frames are interpolated (${shown.interpolated})`);
  assert.equal(shown.sequences, '1');
  assert.ok(Math.abs(Number(shown.sourceFps) - 15) < 1.5, `source fps shown (${shown.sourceFps})`);
  assert.deepEqual(errors, []);
  await page.close();
  await g.stop();
});

test('the viewer and /healthz say when the camera is down', { skip, timeout: 90_000 }, async () => {
  // Nothing listens on port 9: every connection attempt fails.
  const { page, errors, g } = await openViewer(`
server: { host: 127.0.0.1, port: 0 }
nodes:
  source: { kind: rtsp, options: { url: 'rtsp://127.0.0.1:9/cam', reconnect: { initialDelayMs: 200, maxDelayMs: 1000 } } }
  ws: { kind: websocket }
edges:
  - { from: source, to: ws, queue: { capacity: 4, policy: drop-oldest } }
`);
  await page.waitForFunction(`document.getElementById('status').className === 'down' && document.getElementById('status').textContent.startsWith('source reconnecting')`, undefined, { timeout: 30_000 });
  const text = await page.textContent('#status');
  assert.match(text ?? '', /^source reconnecting: reconnecting to rtsp:\/\/127\.0\.0\.1:9\/cam: /);
  const h = await fetch(`http://127.0.0.1:${g.address!.port}/healthz`);
  assert.equal(h.status, 503);
  const body = (await h.json()) as { status: string; nodes: Record<string, { state: string }> };
  assert.equal(body.status, 'down');
  assert.equal(body.nodes.source.state, 'down');
  assert.deepEqual(errors, []);
  await page.close();
  await g.stop();
});
