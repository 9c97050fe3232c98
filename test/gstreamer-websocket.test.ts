import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { WebSocket, type RawData } from 'ws';
import { pino } from 'pino';

import { parsePipeline } from '../src/graph/pipeline-file.js';
import { Graph } from '../src/graph/runtime.js';
import { builtinRegistry } from '../src/nodes/index.js';
import { decodeFrameMessage, type FrameHeader } from '../src/protocol/frame-message.js';
import type { VideoFrame } from '../src/graph/packets.js';

// Real GStreamer (videotestsrc through the appsink reader), the real WebSocket sink on the
// pipeline's HTTP server, and real `ws` clients. Every graph is stopped explicitly.

const log = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });

interface SourceOpts {
  width: number;
  height: number;
  live: boolean;
  fps?: number;
  frames?: number;
  pattern?: string;
}

function graphFor(src: SourceOpts, ws: Record<string, unknown> = {}): Graph {
  const yaml = `
name: gst-ws-test
server: { host: 127.0.0.1, port: 0 }
nodes:
  source:
    kind: test-pattern
    options: ${JSON.stringify({ pattern: src.pattern ?? 'smpte', width: src.width, height: src.height, live: src.live, fps: src.fps ?? 30, frames: src.frames ?? -1 })}
  ws:
    kind: websocket
    options: ${JSON.stringify(ws)}
edges:
  - { from: source.video, to: ws.frames, queue: { capacity: 4, policy: block } }
`;
  return new Graph(parsePipeline(yaml, 'gst-ws-test.yaml', builtinRegistry(), { env: {} }), { log });
}

const running = new Set<Graph>();
async function start(g: Graph): Promise<string> {
  running.add(g);
  await g.start();
  assert.ok(g.address, 'the graph listens');
  return `ws://127.0.0.1:${g.address.port}/ws`;
}
async function stop(g: Graph): Promise<void> {
  await withTimeout(10_000, 'graph stop', g.stop());
  running.delete(g);
}
after(async () => {
  for (const g of running) await g.stop();
});

async function withTimeout<T>(ms: number, what: string, p: Promise<T>): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, rej) => (t = setTimeout(() => rej(new Error(`${what}: not within ${ms} ms`)), ms)))]);
  } finally {
    clearTimeout(t);
  }
}

async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}`);
    await delay(10);
  }
}

interface Client {
  readonly ws: WebSocket;
  readonly frames: Array<{ header: FrameHeader; payload: Uint8Array; at: number }>;
  readonly stats: Array<{ type: string; sent: number; dropped: number }>;
  /** Protocol violations seen by the client (asserted empty by the tests). */
  readonly errors: string[];
  readonly closed: Promise<{ code: number; reason: string }>;
}

function connect(url: string, opts: ConstructorParameters<typeof WebSocket>[2] = {}): Promise<Client> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, opts);
    const frames: Client['frames'] = [];
    const stats: Client['stats'] = [];
    const errors: string[] = [];
    const closed = new Promise<{ code: number; reason: string }>((res) => ws.on('close', (code, reason) => res({ code, reason: reason.toString() })));
    ws.on('message', (data: RawData, isBinary) => {
      if (!isBinary) {
        // Text from the server: the once-a-second stats message.
        const msg = JSON.parse(String(data)) as { type: string; sent: number; dropped: number };
        if (msg.type === 'stats' && Number.isInteger(msg.sent) && Number.isInteger(msg.dropped)) stats.push(msg);
        else errors.push(`unexpected text message ${String(data).slice(0, 100)}`);
        return;
      }
      try {
        const { header, payload } = decodeFrameMessage(data as Buffer);
        frames.push({ header, payload, at: performance.now() });
      } catch (e) {
        errors.push(`undecodable frame message: ${(e as Error).message}`);
      }
    });
    ws.once('open', () => resolve({ ws, frames, stats, errors, closed }));
    ws.once('unexpected-response', (_req, res) => {
      reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { statusCode: res.statusCode }));
      res.resume();
    });
    ws.once('error', reject);
  });
}

/** Connect expecting a refusal; resolves with the HTTP status. */
function refusedStatus(url: string, opts: ConstructorParameters<typeof WebSocket>[2] = {}): Promise<number> {
  return connect(url, opts).then(
    (c) => {
      c.ws.terminate();
      throw new Error('the connection was accepted');
    },
    (e: { statusCode?: number }) => {
      if (e.statusCode === undefined) throw e;
      return e.statusCode;
    },
  );
}

describe('GStreamer test pattern to WebSocket subscribers', () => {
  test('odd frame sizes (322x241): packed rgb24 frames with increasing seq and the right pixels', async () => {
    const W = 322;
    const H = 241;
    // A live source at 30 fps, so the client (connected after start) sees a steady stream.
    const g = graphFor({ width: W, height: H, live: true, fps: 30, pattern: 'smpte' });
    const sourceFrames: VideoFrame[] = [];
    g.frames$('source', 'video').subscribe((f) => sourceFrames.push(f as VideoFrame));
    const url = await start(g);
    const c = await connect(url);
    const t0 = performance.now();
    await delay(1000);
    await stop(g);
    const { code } = await withTimeout(5000, 'client close', c.closed);
    assert.equal(code, 1001, 'subscribers are told the pipeline is stopping');

    const got = c.frames.filter((f) => f.at - t0 <= 1000);
    assert.ok(got.length >= 10, `only ${got.length} frames in 1 s at 30 fps`);
    for (const [i, { header, payload }] of c.frames.entries()) {
      assert.equal(header.kind, 'rgb');
      assert.equal(header.format, 'rgb24');
      assert.equal(header.width, W);
      assert.equal(header.height, H);
      assert.equal(header.stream, 'source');
      assert.equal(payload.byteLength, W * H * 3, 'rows are packed, not padded to 4 bytes');
      assert.ok(header.latencyMs >= 0 && header.latencyMs < 1000, `latency ${header.latencyMs}`);
      if (i > 0) assert.ok(header.seq > c.frames[i - 1].header.seq, 'seq strictly increases');
    }
    // The bytes the client got are the source's bytes.
    const last = c.frames.at(-1)!;
    const same = sourceFrames.find((f) => f.seq === last.header.seq);
    assert.ok(same, 'the source emitted the frame the client got');
    assert.deepEqual(Buffer.from(last.payload), Buffer.from(same.data));
    // SMPTE bars are vertical in the top two thirds: with the stride handled, rows there are identical
    // (a padded row read as packed would shift every row by 2 more bytes than the one above).
    const row = W * 3;
    const p = last.payload;
    const row0 = Buffer.from(p.subarray(0, row));
    for (const y of [1, 50, 100, 150]) assert.ok(row0.equals(Buffer.from(p.subarray(y * row, (y + 1) * row))), `row ${y} equals row 0`);
    const colours = new Set<string>();
    for (let x = 0; x < W; x++) colours.add(row0.subarray(x * 3, x * 3 + 3).toString('hex'));
    assert.ok(colours.size >= 7, `the top row holds the 7 bars (${colours.size} colours)`);
    assert.deepEqual(c.errors, []);
    c.ws.terminate();
  });

  test('a non-live finite source (frames: 20) ends by itself and its subscribers are closed', async () => {
    const g = graphFor({ width: 64, height: 48, live: false, frames: 20 });
    const sourceFrames: number[] = [];
    g.frames$('source', 'video').subscribe((f) => sourceFrames.push((f as VideoFrame).seq));
    await start(g);
    await withTimeout(10_000, 'graph done', g.done);
    running.delete(g);
    assert.deepEqual(
      sourceFrames,
      Array.from({ length: 20 }, (_, i) => i),
    );
    assert.equal(await g.metrics.value('dcl_node_frames_in_total', { node: 'ws' }), 20);
  });

  test('a malformed message closes only that connection (1007); another client keeps receiving', async () => {
    const g = graphFor({ width: 64, height: 48, live: true, fps: 30 });
    const url = await start(g);
    const bad = await connect(url);
    const good = await connect(url);
    await until(() => bad.frames.length > 0 && good.frames.length > 0, 5000, 'first frames');
    bad.ws.send('this is not JSON');
    const closed = await withTimeout(5000, 'bad client close', bad.closed);
    assert.equal(closed.code, 1007);
    assert.match(closed.reason, /malformed JSON/);
    const before = good.frames.length;
    await until(() => good.frames.length >= before + 5, 5000, 'frames after the other client was closed');
    assert.equal(good.ws.readyState, WebSocket.OPEN);

    // A well-formed subscribe message with a bad value is also a 1007, with the reason.
    const bad2 = await connect(url);
    bad2.ws.send(JSON.stringify({ type: 'subscribe', format: 'bmp' }));
    const c2 = await withTimeout(5000, 'bad2 close', bad2.closed);
    assert.equal(c2.code, 1007);
    assert.match(c2.reason, /format must be one of/);
    // A valid one keeps the connection.
    good.ws.send(JSON.stringify({ type: 'subscribe', format: 'f32', rgb: true }));
    const n = good.frames.length;
    await until(() => good.frames.length >= n + 3, 5000, 'frames after a valid subscribe');
    assert.equal(good.ws.readyState, WebSocket.OPEN);
    assert.deepEqual(good.errors, []);
    await stop(g);
  });

  test('a binary client message closes with 1003; an oversized one with 1009', async () => {
    const g = graphFor({ width: 32, height: 24, live: true, fps: 30 }, { maxClientMessageBytes: 128 });
    const url = await start(g);
    const bin = await connect(url);
    bin.ws.send(Buffer.from([1, 2, 3]));
    assert.equal((await withTimeout(5000, 'binary close', bin.closed)).code, 1003);

    const big = await connect(url);
    big.ws.send(JSON.stringify({ type: 'subscribe', pad: 'x'.repeat(400) }));
    assert.equal((await withTimeout(5000, 'oversized close', big.closed)).code, 1009);

    // Just under the limit is a normal (here: invalid) control message, not a 1009.
    const under = await connect(url);
    under.ws.send(JSON.stringify({ type: 'subscribe', pad: 'x'.repeat(60) }));
    const c = await withTimeout(5000, 'under-limit close', under.closed);
    assert.equal(c.code, 1007);
    assert.match(c.reason, /unknown field "pad"/);
    await stop(g);
  });

  test('with a token configured, a client without it gets 401 and one with ?token= is accepted', async () => {
    const VAR = 'DCL_TEST_WS_TOKEN';
    process.env[VAR] = 's3cret-token';
    try {
      const g = graphFor({ width: 32, height: 24, live: true, fps: 30 }, { tokenEnv: VAR });
      const url = await start(g);
      assert.equal(await refusedStatus(url), 401);
      assert.equal(await refusedStatus(`${url}?token=wrong`), 401);
      const ok = await connect(`${url}?token=s3cret-token`);
      await until(() => ok.frames.length > 0, 5000, 'a frame for the authorised client');
      const bearer = await connect(url, { headers: { authorization: 'Bearer s3cret-token' } });
      await until(() => bearer.frames.length > 0, 5000, 'a frame for the bearer client');
      await stop(g);
    } finally {
      delete process.env[VAR];
    }
  });

  test('without the token variable set, no token is needed', async () => {
    delete process.env.DCL_TEST_WS_TOKEN_UNSET;
    const g = graphFor({ width: 32, height: 24, live: true, fps: 30 }, { tokenEnv: 'DCL_TEST_WS_TOKEN_UNSET' });
    const url = await start(g);
    const c = await connect(url);
    await until(() => c.frames.length > 0, 5000, 'a frame');
    await stop(g);
  });

  test('a disallowed Origin is refused (403); an allowed or same origin is accepted', async () => {
    const g = graphFor({ width: 32, height: 24, live: true, fps: 30 }, { allowedOrigins: ['http://viewer.example'] });
    const url = await start(g);
    const port = g.address!.port;
    assert.equal(await refusedStatus(url, { headers: { origin: 'http://evil.example' } }), 403);
    const allowed = await connect(url, { headers: { origin: 'http://viewer.example' } });
    const same = await connect(url, { origin: `http://127.0.0.1:${port}` });
    await until(() => allowed.frames.length > 0 && same.frames.length > 0, 5000, 'frames for accepted origins');
    await stop(g);
  });

  test('an unknown WebSocket path is a 404 and a bad query a 400', async () => {
    const g = graphFor({ width: 32, height: 24, live: true, fps: 30 });
    const url = await start(g);
    assert.equal(await refusedStatus(url.replace(/\/ws$/, '/nope')), 404);
    assert.equal(await refusedStatus(`${url}?format=bmp`), 400);
    await stop(g);
  });

  test('a stalled subscriber does not slow a fast one; its drops are counted', async () => {
    // Large frames and a tiny per-subscriber buffer bound: the paused client's socket fills at once.
    const g = graphFor({ width: 640, height: 360, live: true, fps: 60, pattern: 'snow' }, { maxBufferedBytes: 1024 });
    const emitted: number[] = [];
    g.frames$('source', 'video').subscribe((f) => emitted.push((f as VideoFrame).seq));
    const url = await start(g);
    const slow = await connect(url);
    (slow.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    const fast = await connect(url);
    await until(() => fast.frames.length > 0, 5000, 'first frame for the fast client');
    const firstSeq = fast.frames[0].header.seq;
    await delay(2000);
    const lastSeq = emitted.at(-1)!;
    await until(() => fast.frames.some((f) => f.header.seq >= lastSeq), 3000, 'the fast client to catch up');
    const window = emitted.filter((s) => s >= firstSeq && s <= lastSeq);
    const fastGot = fast.frames.filter((f) => f.header.seq <= lastSeq).length;
    assert.ok(window.length >= 30, `the source emitted ${window.length} frames in 2 s`);
    assert.ok(fastGot >= window.length * 0.9, `fast client got ${fastGot} of ${window.length} frames`);

    const dropped = await g.metrics.value('dcl_ws_subscriber_dropped_total', { node: 'ws' });
    assert.ok(dropped >= window.length / 2, `dropped ${dropped} frames for the stalled client (of ${window.length})`);
    const text = await (await fetch(`http://127.0.0.1:${g.address!.port}/metrics`)).text();
    assert.match(text, /^dcl_ws_subscriber_dropped_total\{node="ws"\} \d+$/m);
    // The fast client is told, once a second, how many frames it was sent.
    assert.ok(fast.stats.length >= 1 && fast.stats.at(-1)!.sent > 0, JSON.stringify(fast.stats));
    assert.deepEqual(fast.errors, []);
    // Stopping does not wait for the stalled client's close handshake (ws would wait 30 s).
    const t0 = performance.now();
    await stop(g);
    const stopMs = performance.now() - t0;
    assert.ok(stopMs < 5000, `stop took ${stopMs.toFixed(0)} ms with a stalled subscriber`);
    slow.ws.terminate();
  });
});
