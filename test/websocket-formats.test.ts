import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { WebSocket, type RawData } from 'ws';
import { pino } from 'pino';
import { z } from 'zod';
import jpeg from 'jpeg-js';

import { parsePipeline } from '../src/graph/pipeline-file.js';
import { Graph } from '../src/graph/runtime.js';
import { defineNode } from '../src/graph/node-kind.js';
import { builtinRegistry } from '../src/nodes/index.js';
import { nowMs, type DepthFrame, type VideoFrame } from '../src/graph/packets.js';
import { decodeFrameMessage, type FrameHeader } from '../src/protocol/frame-message.js';
import { INFERNO_LUT, TURBO_LUT } from '../src/io/colormap.js';
import { decodePng } from '../src/io/png16.js';

// Colour-mapped and encoded payloads of the WebSocket sink, end to end: a test source emits depth
// frames of known content (a horizontal ramp 0..1, with an RGB source frame attached) into the real
// sink on the pipeline's HTTP server, and real `ws` clients decode what they get.

const log = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });

// ---- a depth source the test drives: feed(n, fps) emits n more frames, end() finishes ----

interface Feed {
  readonly commands: Array<{ count: number; fps: number } | null>;
  wake: (() => void) | null;
}
const feeds = new Map<string, Feed>();

function feed(id: string, count: number, fps = 0): void {
  const f = feeds.get(id)!;
  f.commands.push({ count, fps });
  f.wake?.();
}
function endFeed(id: string): void {
  const f = feeds.get(id);
  if (!f) return;
  f.commands.push(null);
  f.wake?.();
}

/** Disparity ramp: d(x) = x / (W - 1), the same on every row. */
function ramp(w: number, h: number): Float32Array {
  const d = new Float32Array(w * h);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) d[y * w + x] = x / (w - 1);
  return d;
}
/** RGB: red across, green down, blue constant. */
function rgbPattern(w: number, h: number): Uint8Array {
  const rgb = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const o = (y * w + x) * 3;
      rgb[o] = Math.round((255 * x) / (w - 1));
      rgb[o + 1] = Math.round((255 * y) / (h - 1));
      rgb[o + 2] = 64;
    }
  }
  return rgb;
}

const depthFeed = defineNode({
  kind: 'test-depth-feed',
  role: 'source',
  description: 'depth ramp frames on demand (test only)',
  inputs: {},
  outputs: { depth: 'depth' },
  options: z.object({ feed: z.string(), width: z.number().int(), height: z.number().int() }).strict(),
  create(o, ctx) {
    const f: Feed = { commands: [], wake: null };
    feeds.set(o.feed, f);
    const depth = ramp(o.width, o.height);
    const rgb = rgbPattern(o.width, o.height);
    ctx.signal.addEventListener('abort', () => f.wake?.(), { once: true });
    return {
      async run() {
        for (;;) {
          while (f.commands.length === 0 && !ctx.signal.aborted) await new Promise<void>((r) => (f.wake = r));
          const cmd = f.commands.shift();
          if (!cmd || ctx.signal.aborted) return;
          const t0 = performance.now();
          for (let i = 0; i < cmd.count && !ctx.signal.aborted; i++) {
            if (cmd.fps > 0) {
              const wait = t0 + (i * 1000) / cmd.fps - performance.now();
              if (wait > 0) await delay(wait);
            }
            const seq = ctx.sequence.value++;
            const arrivalMs = nowMs();
            const source: VideoFrame = { type: 'video', streamId: 'feed', seq, ptsMs: seq * 40, arrivalMs, width: o.width, height: o.height, data: rgb };
            const frame: DepthFrame = {
              type: 'depth',
              streamId: 'feed',
              seq,
              ptsMs: seq * 40,
              arrivalMs,
              width: o.width,
              height: o.height,
              data: depth,
              window: Math.floor(seq / 8),
              source,
            };
            await ctx.emit('depth', frame);
          }
        }
      },
      close() {
        feeds.delete(o.feed);
      },
    };
  },
});

let feedCount = 0;
function graphFor(width: number, height: number, ws: Record<string, unknown>): { g: Graph; id: string } {
  const id = `feed-${++feedCount}`;
  const yaml = `
name: ws-formats-test
server: { host: 127.0.0.1, port: 0 }
nodes:
  source:
    kind: test-depth-feed
    options: ${JSON.stringify({ feed: id, width, height })}
  ws:
    kind: websocket
    options: ${JSON.stringify(ws)}
edges:
  - { from: source.depth, to: ws.frames, queue: { capacity: 4, policy: block } }
`;
  const g = new Graph(parsePipeline(yaml, 'ws-formats-test.yaml', builtinRegistry().add(depthFeed), { env: {} }), { log });
  return { g, id };
}

const running = new Map<Graph, string>();
async function start(g: Graph, id: string): Promise<string> {
  running.set(g, id);
  await g.start();
  assert.ok(g.address, 'the graph listens');
  return `ws://127.0.0.1:${g.address.port}/ws`;
}
async function stop(g: Graph): Promise<void> {
  const id = running.get(g);
  if (id) endFeed(id);
  await withTimeout(10_000, 'graph stop', g.stop());
  running.delete(g);
}
after(async () => {
  for (const g of [...running.keys()]) await stop(g);
});

async function withTimeout<T>(ms: number, what: string, p: Promise<T>): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, rej) => (t = setTimeout(() => rej(new Error(`${what}: not within ${ms} ms`)), ms)))]);
  } finally {
    clearTimeout(t);
  }
}

async function until(cond: () => boolean, ms: number, what: () => string): Promise<void> {
  const end = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > end) throw new Error(`timed out waiting for ${what()}`);
    await delay(10);
  }
}

interface Client {
  readonly ws: WebSocket;
  readonly msgs: Array<{ header: FrameHeader; payload: Uint8Array }>;
  readonly stats: Array<{ sent: number; dropped: number }>;
  readonly errors: string[];
  depth(): Array<{ header: FrameHeader; payload: Uint8Array }>;
}

function connect(url: string): Promise<Client> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    const msgs: Client['msgs'] = [];
    const stats: Client['stats'] = [];
    const errors: string[] = [];
    ws.on('message', (data: RawData, isBinary) => {
      if (!isBinary) {
        const m = JSON.parse(String(data)) as { type: string; sent: number; dropped: number };
        if (m.type === 'stats') stats.push(m);
        else errors.push(`unexpected text ${String(data).slice(0, 80)}`);
        return;
      }
      try {
        const { header, payload } = decodeFrameMessage(data as Buffer);
        msgs.push({ header, payload: Uint8Array.from(payload) });
      } catch (e) {
        errors.push((e as Error).message);
      }
    });
    ws.once('open', () => resolve({ ws, msgs, stats, errors, depth: () => msgs.filter((m) => m.header.kind === 'depth') }));
    ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    ws.once('error', reject);
  });
}

function pixelOf(img: Uint8Array, w: number, x: number, y: number): number[] {
  const o = (y * w + x) * 3;
  return [img[o], img[o + 1], img[o + 2]];
}
function lutEntry(lut: Uint8Array, i: number): number[] {
  return [lut[i * 3], lut[i * 3 + 1], lut[i * 3 + 2]];
}
function near(a: number[], b: number[], tol: number): boolean {
  return a.every((v, i) => Math.abs(v - b[i]) <= tol);
}
function meanAbs(a: Uint8Array, b: Uint8Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += Math.abs(a[i] - b[i]);
  return s / a.length;
}
function decodeJpegRGB(buf: Uint8Array): { width: number; height: number; data: Uint8Array } {
  return jpeg.decode(buf, { useTArray: true, formatAsRGBA: false });
}
/** Expected colour-mapped image with the reference index rule. */
function mapped(d: Float32Array, lut: Uint8Array): Uint8Array {
  const out = new Uint8Array(d.length * 3);
  for (let i = 0; i < d.length; i++) {
    const k = Math.min(255, Math.max(0, Math.trunc(d[i] * 255)));
    out.set(lut.subarray(k * 3, k * 3 + 3), i * 3);
  }
  return out;
}

describe('WebSocket image and numeric payload formats', () => {
  test('jpeg, png, u16, f32 and jpeg RGB subscribers each get every frame, correctly encoded, each payload encoded once', async () => {
    const W = 64;
    const H = 48;
    const N = 12;
    // Lossless here: wait for the encoder rather than drop (a fast, finite source behind a block edge).
    const { g, id } = graphFor(W, H, { encodeWaitMs: 20_000 });
    const url = await start(g, id);
    const jpg = await connect(`${url}?format=jpeg`);
    const jpg2 = await connect(`${url}?format=jpeg&colormap=inferno`);
    const gray = await connect(`${url}?format=png&colormap=gray`);
    const u16 = await connect(`${url}?format=u16`);
    const f32 = await connect(`${url}?format=f32`);
    const withJpegRgb = await connect(`${url}?format=png&colormap=turbo&rgb=1&rgbFormat=jpeg`);
    const withRawRgb = await connect(`${url}?format=f32&rgb=1`);
    const all = [jpg, jpg2, gray, u16, f32, withJpegRgb, withRawRgb];
    feed(id, N);
    await until(
      () => all.every((c) => c.depth().length >= N),
      60_000,
      () => `${N} depth frames each (got ${all.map((c) => c.depth().length).join(', ')})`,
    );

    const depth = ramp(W, H);
    const rgb = rgbPattern(W, H);
    const seqs = Array.from({ length: N }, (_, i) => i);
    for (const c of all) {
      assert.deepEqual(c.errors, []);
      assert.deepEqual(
        c.depth().map((m) => m.header.seq),
        seqs,
        'every frame, in order',
      );
      for (const { header } of c.depth()) {
        assert.equal(header.width, W);
        assert.equal(header.height, H);
        assert.equal(header.stream, 'feed');
        assert.equal(header.window, Math.floor(header.seq / 8));
        assert.ok(header.latencyMs >= 0 && header.latencyMs < 60_000);
      }
    }

    // jpeg (inferno by default): the ramp's right end is LUT[255], its left end LUT[0], within JPEG error.
    for (const { header, payload } of jpg.depth()) {
      assert.equal(header.format, 'jpeg');
      assert.equal(header.colormap, 'inferno');
      const img = decodeJpegRGB(payload);
      assert.equal(img.width, W);
      assert.equal(img.height, H);
      for (const y of [0, H >> 1, H - 1]) {
        assert.ok(
          near(pixelOf(img.data, W, W - 1, y), lutEntry(INFERNO_LUT, 255), 24),
          `right end ${pixelOf(img.data, W, W - 1, y)} vs inferno[255] ${lutEntry(INFERNO_LUT, 255)}`,
        );
        assert.ok(
          near(pixelOf(img.data, W, 0, y), lutEntry(INFERNO_LUT, 0), 24),
          `left end ${pixelOf(img.data, W, 0, y)} vs inferno[0] ${lutEntry(INFERNO_LUT, 0)}`,
        );
      }
      const err = meanAbs(img.data, mapped(depth, INFERNO_LUT));
      assert.ok(err < 6, `mean JPEG error ${err.toFixed(2)} against the colour-mapped ramp`);
    }
    // The second inferno subscriber got the very same bytes (one encoding per frame).
    assert.deepEqual(
      jpg2.depth().map((m) => Buffer.from(m.payload).toString('base64')),
      jpg.depth().map((m) => Buffer.from(m.payload).toString('base64')),
    );

    // png + gray: exact, value = trunc(d * 255).
    for (const { header, payload } of gray.depth()) {
      assert.equal(header.format, 'png');
      assert.equal(header.colormap, 'gray');
      const img = decodePng(payload);
      assert.equal(img.width, W);
      assert.equal(img.height, H);
      assert.equal(img.depth, 8);
      const ch = img.channels;
      for (let i = 0; i < W * H; i++) {
        const want = Math.trunc(depth[i] * 255);
        for (let k = 0; k < Math.min(ch, 3); k++) if (img.data[i * ch + k] !== want) assert.fail(`pixel ${i} channel ${k}: ${img.data[i * ch + k]} != ${want}`);
      }
    }

    // u16 and f32: exact values.
    const wantU16 = Uint16Array.from(depth, (v) => (v <= 0 ? 0 : v >= 1 ? 65535 : Math.round(v * 65535)));
    for (const { header, payload } of u16.depth()) {
      assert.equal(header.format, 'u16');
      assert.equal(header.colormap, undefined);
      assert.equal(payload.byteLength, W * H * 2);
      assert.deepEqual(new Uint16Array(payload.buffer, payload.byteOffset, W * H), wantU16);
    }
    assert.equal(wantU16[W - 1], 65535);
    assert.equal(wantU16[0], 0);
    for (const { header, payload } of f32.depth()) {
      assert.equal(header.format, 'f32');
      assert.deepEqual(new Float32Array(payload.buffer, payload.byteOffset, W * H), depth);
    }

    // rgb=1&rgbFormat=jpeg: an rgb jpeg message right before each depth message, with the same seq.
    assert.equal(withJpegRgb.msgs.length, 2 * N);
    for (let i = 0; i < N; i++) {
      const r = withJpegRgb.msgs[2 * i];
      const d = withJpegRgb.msgs[2 * i + 1];
      assert.equal(r.header.kind, 'rgb');
      assert.equal(r.header.format, 'jpeg');
      assert.equal(d.header.kind, 'depth');
      assert.equal(d.header.format, 'png');
      assert.equal(d.header.colormap, 'turbo');
      assert.equal(r.header.seq, d.header.seq);
      const img = decodeJpegRGB(r.payload);
      assert.equal(img.width, W);
      const err = meanAbs(img.data, rgb);
      assert.ok(err < 6, `mean JPEG error ${err.toFixed(2)} of the RGB frame`);
      const dimg = decodePng(d.payload);
      const want = mapped(depth, TURBO_LUT);
      const got = new Uint8Array(W * H * 3);
      for (let p = 0; p < W * H; p++) for (let k = 0; k < 3; k++) got[p * 3 + k] = dimg.data[p * dimg.channels + k];
      assert.equal(meanAbs(got, want), 0, 'png is lossless');
    }
    // rgb=1 with the default rgb24: the source's bytes, then f32.
    assert.equal(withRawRgb.msgs.length, 2 * N);
    for (let i = 0; i < N; i++) {
      const r = withRawRgb.msgs[2 * i];
      assert.equal(r.header.format, 'rgb24');
      assert.equal(r.header.seq, withRawRgb.msgs[2 * i + 1].header.seq);
      assert.deepEqual(Buffer.from(r.payload), Buffer.from(rgb));
    }

    // Each (frame, format, colour map) was encoded once, however many subscribers wanted it.
    const encoded = (payload: string) => g.metrics.value('dcl_ws_encoded_total', { node: 'ws', payload });
    assert.equal(await encoded('depth-jpeg'), N, 'two inferno jpeg subscribers: one encoding per frame');
    assert.equal(await encoded('depth-png'), 2 * N, 'png gray and png turbo');
    assert.equal(await encoded('depth-u16'), N);
    assert.equal(await encoded('rgb-jpeg'), N);
    assert.equal(await g.metrics.value('dcl_ws_subscriber_dropped_total', { node: 'ws' }), 0);

    // A subscriber that switches format mid-stream gets the new format from the next frames on, in order.
    f32.ws.send(JSON.stringify({ type: 'subscribe', format: 'jpeg', colormap: 'gray' }));
    await delay(200);
    feed(id, 4);
    await until(
      () => f32.depth().length >= N + 4 && jpg.depth().length >= N + 4,
      30_000,
      () => 'frames after the switch',
    );
    const later = f32.depth().slice(N);
    assert.deepEqual(
      later.map((m) => m.header.seq),
      [N, N + 1, N + 2, N + 3],
    );
    for (const m of later) {
      assert.equal(m.header.format, 'jpeg');
      assert.equal(m.header.colormap, 'gray');
      const img = decodeJpegRGB(m.payload);
      assert.ok(near(pixelOf(img.data, W, W - 1, H >> 1), [255, 255, 255], 16));
      assert.ok(near(pixelOf(img.data, W, 0, H >> 1), [0, 0, 0], 16));
    }
    await stop(g);
  });

  test('a 100-frame burst at 256x256 with a jpeg subscriber leaves the main thread responsive; encoder overruns are counted drops', async () => {
    const S = 256;
    const BURST = 100;
    const { g, id } = graphFor(S, S, {}); // defaults: encodeWaitMs 0 (drop rather than wait)
    const url = await start(g, id);
    const jpg = await connect(`${url}?format=jpeg&colormap=turbo`);
    const raw = await connect(`${url}?format=f32`);
    // One frame first, so the encoder thread is up before the burst.
    feed(id, 1);
    await until(
      () => jpg.depth().length === 1 && raw.depth().length === 1,
      30_000,
      () => 'the warm-up frame',
    );

    const h = monitorEventLoopDelay({ resolution: 10 });
    h.enable();
    const t0 = performance.now();
    feed(id, BURST, 60);
    const total = BURST + 1;
    const accounted = (c: Client) => c.stats.some((s) => s.sent + s.dropped === total);
    await until(
      () => accounted(jpg) && accounted(raw),
      60_000,
      () => `every frame sent or dropped (stats ${JSON.stringify(jpg.stats.at(-1))}, ${JSON.stringify(raw.stats.at(-1))})`,
    );
    h.disable();
    const ms = (ns: number) => ns / 1e6;
    const p50 = ms(h.percentile(50));
    const p99 = ms(h.percentile(99));
    const max = ms(h.max);
    const jpgStats = jpg.stats.find((s) => s.sent + s.dropped === total)!;
    const rawStats = raw.stats.find((s) => s.sent + s.dropped === total)!;
    console.log(
      `# event-loop delay over a ${BURST}-frame burst at ${S}x${S} (60 fps, ${((performance.now() - t0) / 1000).toFixed(1)} s) with a jpeg subscriber: ` +
        `p50 ${p50.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms, max ${max.toFixed(1)} ms; jpeg subscriber: ${jpgStats.sent} sent, ${jpgStats.dropped} dropped; f32 subscriber: ${rawStats.sent} sent, ${rawStats.dropped} dropped`,
    );

    // Whatever reached the clients is complete and in order; the counts add up per subscriber.
    for (const [c, st] of [
      [jpg, jpgStats],
      [raw, rawStats],
    ] as const) {
      assert.deepEqual(c.errors, []);
      const seqs = c.depth().map((m) => m.header.seq);
      assert.equal(seqs.length, st.sent);
      for (let i = 1; i < seqs.length; i++) assert.ok(seqs[i] > seqs[i - 1], 'frames in order');
    }
    assert.ok(jpgStats.sent >= 2, `the jpeg subscriber got frames (${jpgStats.sent})`);
    const last = jpg.depth().at(-1)!;
    assert.equal(last.header.format, 'jpeg');
    assert.equal(decodeJpegRGB(last.payload).width, S);
    assert.equal(await g.metrics.value('dcl_ws_subscriber_dropped_total', { node: 'ws' }), jpgStats.dropped + rawStats.dropped);
    // Colour mapping and JPEG encoding of 256x256 frames run in the encoder thread; on the main thread each
    // encoding alone would block it for tens of ms per frame.
    assert.ok(p99 < 50, `event-loop delay p99 ${p99.toFixed(1)} ms`);
    await stop(g);
  });
});
