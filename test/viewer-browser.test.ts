import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Graph } from '../src/graph/runtime.js';
import { browserFixture, skipWithoutChromium } from './helpers/browser.js';

// The viewer in a real browser (Debian's Chromium through playwright-core): the page connects,
// depth, RGB and ground-truth frames arrive and are drawn (canvas pixels are checked), the
// running AbsRel is shown, and a screenshot is kept.

const skip = skipWithoutChromium;
const fx = browserFixture();

test('the viewer draws live RGB and depth frames', { skip, timeout: 90_000 }, async () => {
  const yaml = `
name: viewer-test
server: { host: 127.0.0.1, port: 0 }
nodes:
  source: { kind: synthetic, options: { seed: 3, width: 128, height: 128, fps: 15 } }
  depth: { kind: depth, options: { model: tiny-random, window: 6, overlap: 2, steps: 1, maxRes: 128, stride: 1 } }
  ws: { kind: websocket }
edges:
  - { from: source, to: depth, queue: { capacity: 16, policy: block } }
  - { from: depth, to: ws, queue: { capacity: 16, policy: drop-oldest } }
`;
  const graph = await fx.startGraph(yaml, 'viewer-test.yaml', 'warn');
  const url = `http://127.0.0.1:${graph.address!.port}/`;
  const page = await fx.browser().newPage({ viewport: { width: 1100, height: 420 } });
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  const notFound: string[] = [];
  page.on('response', (r) => {
    if (r.status() === 404) notFound.push(r.url());
  });
  await page.goto(url);
  await page.waitForFunction(() => (window as unknown as { dclViewer: { frames: number } }).dclViewer.frames >= 5, undefined, { timeout: 60_000 });
  const status = await page.textContent('#status');
  assert.equal(status, 'live');
  // The default pack has random weights: the page says so in a banner.
  await page.waitForSelector('#banner:not([hidden])', { timeout: 10_000 });
  assert.match((await page.textContent('#banner')) ?? '', /tiny-random" has random weights .*its depth is noise/);
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
  })()`)) as {
    rgb: { w: number; h: number; colours: number; opaque: number };
    depth: { w: number; h: number; colours: number; opaque: number };
    fps: string;
    latency: string;
  };
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
  assert.deepEqual(notFound, [], 'no 404 (favicon included)');
  assert.deepEqual(errors, []);
  await page.close();
  await graph.stop();
});

/** Start a pipeline and open the viewer on it. */
async function openViewer(yaml: string): Promise<{ page: import('playwright-core').Page; errors: string[]; g: Graph }> {
  const g = await fx.startGraph(yaml, 'viewer-test.yaml');
  const page = await fx.browser().newPage({ viewport: { width: 1100, height: 420 } });
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
  depth: { kind: depth, options: { model: tiny-random, window: 6, overlap: 2, steps: 1, maxRes: 128, stride: 3 } }
  ws: { kind: websocket }
edges:
  - { from: source, to: depth, queue: { capacity: 4, policy: drop-oldest } }
  - { from: depth, to: ws, queue: { capacity: 16, policy: drop-oldest } }
`);
  // framesComputed > 0: the /healthz answer shown was taken after the first depth came out (before it, the
  // depth node says it waits for its first window, and 20 frames can arrive between two polls).
  await page.waitForFunction(
    `window.dclViewer.frames >= 20 && document.getElementById('stride').textContent === '3'
    && window.dclViewer.health?.nodes?.depth?.details?.framesComputed > 0`,
    undefined,
    { timeout: 60_000 },
  );
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
  await page.waitForFunction(
    `document.getElementById('status').className === 'down' && document.getElementById('status').textContent.startsWith('source reconnecting')`,
    undefined,
    { timeout: 30_000 },
  );
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

test('the viewer shows every stream of a multi-stream pipeline as a grid, and one stream large on a click', { skip, timeout: 240_000 }, async () => {
  const { page, errors, g } = await openViewer(`
name: viewer-grid
server: { host: 127.0.0.1, port: 0 }
streams:
  - { name: a, source: { kind: synthetic, options: { seed: 1, width: 128, height: 128, fps: 10 } } }
  - { name: b, source: { kind: synthetic, options: { seed: 2, width: 128, height: 128, fps: 10 } } }
  - { name: c, source: { kind: synthetic, options: { seed: 3, width: 128, height: 128, fps: 10 } } }
nodes:
  depth: { kind: depth, options: { model: tiny-random, window: 6, overlap: 2, steps: 1, stride: 1 } }
  ws: { kind: websocket }
edges:
  - { from: streams.video, to: depth.video, queue: { capacity: 16, policy: drop-oldest } }
  - { from: depth.depth, to: ws.frames, queue: { capacity: 64, policy: drop-oldest } }
`);
  await page.setViewportSize({ width: 1100, height: 520 });
  // The grid: a tile per stream, each drawing its stream's JPEG depth.
  await page.waitForFunction(`window.dclViewer.mode === 'grid' && ['a', 'b', 'c'].every((s) => window.dclViewer.tiles[s] >= 2)`, undefined, {
    timeout: 120_000,
  });
  // A string, not a function: tsx would wrap named helpers with __name, which the page lacks.
  const tiles = (await page.evaluate(`Array.from(document.querySelectorAll('.tile'), (el) => {
    const c = el.querySelector('canvas');
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    const colours = new Set();
    for (let i = 0; i < d.length; i += 4) colours.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
    return { name: el.dataset.stream, state: el.querySelector('.state').textContent, info: el.querySelector('.info').textContent,
      w: c.width, h: c.height, colours: colours.size };
  })`)) as Array<{ name: string; state: string; info: string; w: number; h: number; colours: number }>;
  assert.deepEqual(
    tiles.map((t) => t.name),
    ['a', 'b', 'c'],
  );
  for (const t of tiles) {
    assert.ok(['starting', 'ok', 'degraded'].includes(t.state), `tile ${t.name} shows its state (${t.state})`);
    assert.match(t.info, /fps · stride\u00a0(\d+|–) · p95\u00a0/, `tile ${t.name} shows its rates`);
    assert.equal(t.w, 128, `tile ${t.name} holds the depth image`);
    assert.equal(t.h, 128);
    assert.ok(t.colours > 20, `tile ${t.name} shows many colours (${t.colours})`);
  }
  assert.match((await page.textContent('#status')) ?? '', /^3 streams/);
  // The tiles share the page width between them and keep the streams' (square) shape.
  const boxes = (await page.evaluate(
    `Array.from(document.querySelectorAll('.tile canvas'), (c) => { const r = c.getBoundingClientRect(); return { right: r.right, w: r.width, h: r.height }; })`,
  )) as Array<{ right: number; w: number; h: number }>;
  assert.ok(Math.max(...boxes.map((b) => b.right)) > 1100 - 40, `the tiles fill the width (${JSON.stringify(boxes)})`);
  for (const b of boxes) assert.ok(Math.abs(b.w / b.h - 1) < 0.02, `a tile keeps its stream's aspect ratio (${b.w}x${b.h})`);
  const dir = join(process.cwd(), '.tmp');
  mkdirSync(dir, { recursive: true });
  await page.screenshot({ path: join(dir, 'viewer-grid.png') });
  // The grid's colour map is the server's: switching it asks for gray JPEGs (R = G = B, give or take JPEG rounding).
  await page.selectOption('#colormap', 'gray');
  await page.waitForFunction(
    `(() => {
    const d = document.querySelector('.tile[data-stream="a"] canvas').getContext('2d').getImageData(0, 0, 128, 128).data;
    for (let i = 0; i < d.length; i += 4 * 97) if (Math.abs(d[i] - d[i + 1]) > 3 || Math.abs(d[i + 1] - d[i + 2]) > 3) return false;
    return true;
  })()`,
    undefined,
    { timeout: 30_000 },
  );

  // A click opens stream b large: RGB and f32 depth of b only, its depth node's stats in the header.
  await page.click('.tile[data-stream="b"]');
  await page.waitForFunction(
    `window.dclViewer.mode === 'one' && window.dclViewer.selected === 'b' && !window.dclViewer.switching && window.dclViewer.frames >= 8
    && document.getElementById('stride').textContent === '1'`,
    undefined,
    { timeout: 60_000 },
  );
  const one = (await page.evaluate(`(() => {
    const c = document.getElementById('depth');
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    const colours = new Set();
    for (let i = 0; i < d.length; i += 4) colours.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
    return { streams: [...window.dclViewer.lastStreams], colours: colours.size, gridHidden: document.getElementById('grid').hidden,
      back: !document.getElementById('back').hidden, title: document.getElementById('selected').textContent,
      sourceFps: document.getElementById('sourceFps').textContent, url: location.search };
  })()`)) as { streams: string[]; colours: number; gridHidden: boolean; back: boolean; title: string; sourceFps: string; url: string };
  assert.deepEqual(one.streams, ['b'], 'only stream b arrives after the click');
  assert.ok(one.colours > 20, `the large depth canvas shows many colours (${one.colours})`);
  assert.equal(one.gridHidden, true);
  assert.equal(one.back, true);
  assert.equal(one.title, '· b');
  assert.ok(Math.abs(Number(one.sourceFps) - 10) < 1.5, `b's source fps shown (${one.sourceFps})`);
  assert.equal(one.url, '?stream=b');

  // "Back" returns to the grid and its subscription: every stream's tiles draw again.
  const counts = (await page.evaluate(`({ ...window.dclViewer.tiles })`)) as Record<string, number>;
  await page.click('#back');
  await page.waitForFunction(
    `window.dclViewer.mode === 'grid' && window.dclViewer.selected === null && ['a', 'b', 'c'].every((s) => window.dclViewer.tiles[s] >= ${JSON.stringify(counts)}[s] + 2)`,
    undefined,
    { timeout: 60_000 },
  );
  assert.deepEqual(((await page.evaluate(`[...window.dclViewer.lastStreams]`)) as string[]).sort(), ['a', 'b', 'c']);
  // Escape closes the large view too.
  await page.click('.tile[data-stream="c"]');
  await page.waitForFunction(`window.dclViewer.mode === 'one' && window.dclViewer.selected === 'c'`, undefined, { timeout: 30_000 });
  await page.keyboard.press('Escape');
  await page.waitForFunction(`window.dclViewer.mode === 'grid'`, undefined, { timeout: 30_000 });

  // ?stream=NAME opens that stream large directly.
  const direct = await fx.browser().newPage({ viewport: { width: 1100, height: 420 } });
  direct.on('pageerror', (e) => errors.push(e.message));
  await direct.goto(`http://127.0.0.1:${g.address!.port}/?stream=c`);
  await direct.waitForFunction(`window.dclViewer.mode === 'one' && window.dclViewer.selected === 'c' && window.dclViewer.frames >= 5`, undefined, {
    timeout: 60_000,
  });
  assert.deepEqual(await direct.evaluate(`[...window.dclViewer.lastStreams]`), ['c']);
  assert.deepEqual(errors, []);
  await direct.close();
  await page.close();
  await g.stop();
});
