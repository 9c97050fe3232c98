// `fleet edge`: a camera only an edge box reaches, published as JPEG on the bus and served by a
// worker elsewhere. In one process first (nats-jpeg-publish into nats-frames through a real
// nats-server: what arrives is what was sent; bursts, malformed messages and corrupt JPEGs), then
// with real processes: an edge with --register, a fleet worker and a gateway whose WebSocket
// subscriber gets the depth of the edge's camera; killing the edge shows it down, a new edge
// resumes it.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import pino from 'pino';
import jpeg from 'jpeg-js';
import WebSocket from 'ws';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { headers as natsHeaders } from '@nats-io/nats-core';
import { parsePipeline } from '../src/graph/pipeline-file.js';
import { builtinRegistry } from '../src/nodes/index.js';
import { Graph } from '../src/graph/runtime.js';
import { nowMs, type Packet, type VideoFrame } from '../src/graph/packets.js';
import { decodeFrameMessage, encodeFrameMessage, type FrameHeader } from '../src/protocol/frame-message.js';
import { checkJpeg, JpegDecoder } from '../src/nodes/sources/nats-frames.js';
import { encodeJob } from '../src/nodes/sinks/encode-worker.js';
import { startCli, killAll, type CliProcess } from './helpers/cli-process.js';
import { ensureBuilt } from './helpers/build-cli.js';
import { natsServerAvailable, startNats, type NatsFixture } from './helpers/nats-server.js';
import { until } from './helpers/wait.js';

const SKIP = natsServerAvailable ? false : 'nats-server is not installed (apt-get install nats-server; scripts/setup.sh installs it)';
const log = pino({ level: 'silent' });
const TTL = 3000;
const DEPTH = ['--set', 'depth.model=tiny-random', '--set', 'depth.window=8', '--set', 'depth.overlap=2', '--set', 'depth.steps=1', '--set', 'depth.maxRes=64'];

function graphOf(text: string): Graph {
  return new Graph(parsePipeline(text, 'edge-test.yaml', builtinRegistry(), { env: {} }), { log, noServer: true });
}

function quantile(xs: readonly number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
}

function testJpeg(width: number, height: number, shade = 0): Uint8Array {
  const rgba = new Uint8Array(width * height * 4);
  for (let i = 0; i < width * height; i++) {
    rgba[i * 4] = (i % width) * 3 + shade;
    rgba[i * 4 + 1] = Math.floor(i / width) * 3;
    rgba[i * 4 + 2] = 128;
    rgba[i * 4 + 3] = 255;
  }
  return jpeg.encode({ data: rgba, width, height }, 85).data;
}

describe('edge frames through NATS in one process (nats-jpeg-publish -> nats-frames)', { skip: SKIP, timeout: 120_000 }, () => {
  let nats: NatsFixture;
  const graphs: Graph[] = [];

  before(async () => {
    nats = await startNats();
  });
  after(async () => {
    for (const g of graphs) await g.stop().catch(() => {});
    nats?.stop();
  });

  it("frames arrive with the edge's seq, pts, size, intrinsics and arrival time; pixels within JPEG error", async (t) => {
    const worker = graphOf(`
name: worker
nodes:
  cam: { kind: nats-frames, options: { url: "${nats.url}", staleMs: 1000 } }
edges: []
`);
    graphs.push(worker);
    const got: Array<{ f: VideoFrame; at: number }> = [];
    const controls: Packet[] = [];
    worker.output$('cam', 'video').subscribe((p) => (p.type === 'video' ? got.push({ f: p, at: nowMs() }) : controls.push(p)));
    await worker.start();
    assert.equal(worker.status.get('cam')?.state, 'starting');

    const FRAMES = 45;
    const edge = graphOf(`
name: edge
nodes:
  cam: { kind: synthetic, options: { seed: 3, width: 160, height: 120, fps: 15, frames: ${FRAMES} } }
  pub: { kind: nats-jpeg-publish, options: { url: "${nats.url}", quality: 85, workers: 2 } }
edges:
  - { from: cam.video, to: pub.frames, queue: { capacity: 2, policy: drop-oldest } }
`);
    graphs.push(edge);
    const sent = new Map<number, VideoFrame>();
    edge.output$('cam', 'video').subscribe((p) => p.type === 'video' && sent.set(p.seq, p));
    // The bus itself: the edge's own latency (camera arrival -> published, encoding included) and the bus's.
    const raw = await connect({ servers: nats.url });
    const onBus: Array<{ edgeMs: number; busMs: number }> = [];
    raw.subscribe('dcl.frames.cam', {
      callback: (_e, m) => {
        const { header } = decodeFrameMessage(m.data);
        onBus.push({ edgeMs: header.latencyMs, busMs: nowMs() - header.publishedMs! });
      },
    });
    await raw.flush();
    await edge.start();
    await edge.done;
    const published = await until(
      async () => {
        const m = (await edge.metrics.registry.getSingleMetric('dcl_bus_published_total')!.get()).values.find((v) => v.labels.stream === 'cam');
        return m ? m.value : undefined;
      },
      5000,
      'the published count',
    );
    await until(
      () => got.length >= published,
      10_000,
      `${published} frames at the worker`,
      () => `${got.length}`,
    );
    // Frames that find both encoders busy (threads starting, a loaded machine) are dropped by design.
    assert.ok(published >= 10, `published ${published} of ${FRAMES}`);
    assert.equal(got.length, published, 'every published frame arrived');
    assert.equal(controls.length, 0, 'no discontinuity from one edge');
    const errors: number[] = [];
    for (const { f } of got) {
      const s = sent.get(f.seq);
      assert.ok(s, `seq ${f.seq} was sent`);
      assert.equal(f.streamId, 'cam');
      assert.equal(f.ptsMs, s.ptsMs);
      assert.deepEqual([f.width, f.height], [160, 120]);
      assert.deepEqual(f.intrinsics, s.intrinsics);
      assert.ok(Math.abs(f.arrivalMs - s.arrivalMs) < 0.01, `arrival ${f.arrivalMs} = the edge's ${s.arrivalMs}`);
      assert.equal(f.data.length, 160 * 120 * 3);
      let sum = 0;
      for (let i = 0; i < f.data.length; i++) sum += Math.abs(f.data[i] - s.data[i]);
      errors.push(sum / f.data.length);
    }
    assert.ok(Math.max(...errors) < 8, `mean absolute error per channel up to ${Math.max(...errors).toFixed(2)} (JPEG q85)`);
    const seqs = got.map((g) => g.f.seq);
    assert.deepEqual(
      seqs,
      [...seqs].sort((a, b) => a - b),
      'in order',
    );
    const latency = got.map(({ f, at }) => at - f.arrivalMs);
    const st = worker.status.get('cam')!;
    assert.equal(st.state, 'ok');
    await raw.close();
    t.diagnostic(
      `160x120 synthetic at 15 fps, ${published}/${FRAMES} published: edge arrival -> decoded at the worker p50 ${quantile(latency, 0.5).toFixed(1)} ms, p95 ${quantile(latency, 0.95).toFixed(1)} ms ` +
        `(edge arrival -> published p50 ${quantile(
          onBus.map((b) => b.edgeMs),
          0.5,
        ).toFixed(1)} ms, bus p50 ${quantile(
          onBus.map((b) => b.busMs),
          0.5,
        ).toFixed(1)} ms); ` +
        `decode (push -> appsink, GStreamer threads) ${st.details?.decodeMs} ms; MAE ${(errors.reduce((a, b) => a + b, 0) / errors.length).toFixed(2)}`,
    );
    // No frames for staleMs: down.
    await until(() => worker.status.get('cam')?.state === 'down', 5000, 'the camera to show down');
  });

  it('a burst beyond the queue drops the oldest (counted on the next frame); malformed messages are ignored; a new edge is a discontinuity', async () => {
    const QUEUE = 3;
    const worker = graphOf(`
name: worker
nodes:
  burst: { kind: nats-frames, options: { url: "${nats.url}", queue: ${QUEUE} } }
edges: []
`);
    graphs.push(worker);
    const got: VideoFrame[] = [];
    const controls: Packet[] = [];
    worker.output$('burst', 'video').subscribe((p) => (p.type === 'video' ? got.push(p) : controls.push(p)));
    await worker.start();
    const nc = await connect({ servers: nats.url });
    try {
      const img = testJpeg(64, 48);
      const header = (seq: number, over: Partial<FrameHeader> = {}): FrameHeader => ({
        kind: 'rgb',
        stream: 'burst',
        seq,
        ptsMs: seq * 100,
        width: 64,
        height: 48,
        format: 'jpeg',
        latencyMs: 1,
        publishedMs: nowMs(),
        ...over,
      });
      const h1 = natsHeaders();
      h1.set('Dcl-Edge', 'edge-1');
      // Malformed: not DCL1, another kind, a truncated JPEG, the wrong size, not a JPEG at all.
      nc.publish('dcl.frames.burst', new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9]));
      nc.publish('dcl.frames.burst', encodeFrameMessage(header(0, { kind: 'depth', format: 'f32' }), new Uint8Array(64 * 48 * 4)));
      nc.publish('dcl.frames.burst', encodeFrameMessage(header(0), img.subarray(0, img.length >> 1)));
      nc.publish('dcl.frames.burst', encodeFrameMessage(header(0, { width: 32 }), img));
      nc.publish('dcl.frames.burst', encodeFrameMessage(header(0), new Uint8Array(100)));
      const N = 40;
      for (let i = 0; i < N; i++) nc.publish('dcl.frames.burst', encodeFrameMessage(header(i), img), { headers: h1 });
      await nc.flush();
      await until(
        () => got.length > 0 && got[got.length - 1].seq === N - 1,
        10_000,
        'the last frame of the burst',
        () => JSON.stringify(got.map((f) => f.seq)),
      );
      const dropped = got.reduce((a, f) => a + (f.droppedBefore ?? 0), 0);
      assert.ok(got.length < N, `${got.length} of ${N} frames through: the burst overflowed the queue of ${QUEUE}`);
      assert.equal(got.length + dropped, N, `every message of the burst is a frame or counted as dropped (${got.length} + ${dropped})`);
      const seqs = got.map((f) => f.seq);
      assert.deepEqual(
        seqs,
        [...seqs].sort((a, b) => a - b),
      );
      for (let i = 1; i < got.length; i++)
        assert.equal(got[i].droppedBefore ?? 0, got[i].seq - got[i - 1].seq - 1, `frame ${got[i].seq} says how many were dropped before it`);
      assert.equal(controls.length, 0);

      // Another edge (a restarted one) numbering from 0 again: a discontinuity, then its frames.
      const h2 = natsHeaders();
      h2.set('Dcl-Edge', 'edge-2');
      nc.publish('dcl.frames.burst', encodeFrameMessage(header(0), testJpeg(64, 48, 40)), { headers: h2 });
      await until(() => got.length > 0 && got[got.length - 1].seq === 0, 5000, "the new edge's first frame");
      assert.equal(controls.length, 1);
      assert.equal(controls[0].type, 'discontinuity');
      assert.match((controls[0] as { reason: string }).reason, /edge of camera burst restarted \(edge-1 -> edge-2\)/);
    } finally {
      await nc.close();
    }
  });
});

describe('JpegDecoder (GStreamer appsrc ! jpegdec ! appsink)', { timeout: 60_000 }, () => {
  it('decodes in push order; an image it cannot decode (an error, or silently dropped) restarts the pipeline and the next decodes', async () => {
    const out: Array<{ tag: string; w: number; h: number; px: number }> = [];
    const resets: Array<{ n: number; why: string }> = [];
    const dec = new JpegDecoder<string>(log, 500, {
      onFrame: (tag, rgb, w, h) => out.push({ tag, w, h, px: rgb[0] }),
      onReset: (n, e) => resets.push({ n, why: e.message }),
    });
    try {
      dec.push(testJpeg(64, 48), 'a');
      dec.push(testJpeg(66, 50, 60), 'b');
      await until(() => out.length === 2, 10_000, 'two frames');
      assert.deepEqual(
        out.map((o) => [o.tag, o.w, o.h]),
        [
          ['a', 64, 48],
          ['b', 66, 50],
        ],
      );
      assert.ok(out[1].px > out[0].px + 30, 'the second image is the brighter one');
      // jpegdec drops this one without an error: the watchdog replaces the pipeline.
      dec.push(new Uint8Array([0xff, 0xd8, 1, 2, 3, 4, 5, 0xff, 0xd9]), 'garbage');
      await until(() => resets.length === 1, 10_000, 'the decoder to give up on the garbage');
      assert.equal(resets[0].n, 1);
      assert.match(resets[0].why, /no frame out of the JPEG decoder within 500 ms/);
      dec.push(testJpeg(64, 48), 'c');
      await until(() => out.length === 3, 10_000, 'a frame from the new pipeline');
      assert.equal(out[2].tag, 'c');
      // A truncated image is an error of the pipeline.
      const img = testJpeg(64, 48);
      dec.push(img.subarray(0, img.length >> 1), 'truncated');
      await until(() => resets.length === 2, 10_000, 'the pipeline to fail on a truncated image');
      dec.push(testJpeg(64, 48), 'd');
      await until(() => out.length === 4, 10_000, 'a frame after the error');
      assert.deepEqual(
        out.map((o) => o.tag),
        ['a', 'b', 'c', 'd'],
      );
      assert.equal(dec.inFlight, 0);
    } finally {
      dec.close();
    }
  });

  it('checkJpeg reads the size from the frame header and refuses truncated or foreign data', () => {
    const img = testJpeg(64, 48);
    checkJpeg(img, 64, 48);
    assert.throws(() => checkJpeg(img, 48, 64), /JPEG is 64x48, its header says 48x64/);
    assert.throws(() => checkJpeg(img.subarray(0, 100), 64, 48), /truncated/);
    assert.throws(() => checkJpeg(new Uint8Array(20), 64, 48), /not a JPEG/);
    assert.throws(() => checkJpeg(new Uint8Array([0xff, 0xd8, 1, 2, 3, 4, 5, 0xff, 0xd9]), 64, 48), /marker expected|no frame header/);
  });

  it('decode cost per frame: GStreamer (off the main thread) vs jpeg-js (on it)', async (t) => {
    for (const [w, h] of [
      [320, 240],
      [640, 480],
      [1280, 720],
    ]) {
      const img = testJpeg(w, h);
      let wake: () => void = () => {};
      let mainMs = 0;
      const dec = new JpegDecoder<number>(log, 5000, {
        onFrame: () => {
          const t0 = performance.now();
          wake();
          mainMs += performance.now() - t0;
        },
        onReset: () => {},
      });
      const N = 24;
      const walls: number[] = [];
      try {
        for (let i = 0; i < N; i++) {
          const frame = new Promise<void>((r) => (wake = r));
          const t0 = performance.now();
          dec.push(img, i);
          if (i >= 2) mainMs += performance.now() - t0; // the first pushes build the pipeline
          await frame;
          walls.push(performance.now() - t0);
        }
      } finally {
        dec.close();
      }
      const j0 = performance.now();
      for (let i = 0; i < 3; i++) jpeg.decode(img, { useTArray: true, formatAsRGBA: false });
      const jsMs = (performance.now() - j0) / 3;
      // The edge's encoding (what an encoder thread of nats-jpeg-publish does per frame), timed here.
      const rgb = new Uint8Array(w * h * 3).fill(90);
      const e0 = performance.now();
      for (let i = 0; i < 3; i++) encodeJob({ rgb, width: w, height: h, format: 'jpeg', quality: 80 });
      const encMs = (performance.now() - e0) / 3;
      t.diagnostic(
        `${w}x${h} (${(img.length / 1024).toFixed(0)} KiB): GStreamer push -> RGB frame on the main thread p50 ${quantile(walls.slice(2), 0.5).toFixed(2)} ms, main-thread work ${(mainMs / (N - 2)).toFixed(3)} ms/frame; jpeg-js (all on the main thread) ${jsMs.toFixed(1)} ms/frame; edge encoding (jpeg-js, in an encoder thread) ${encMs.toFixed(1)} ms/frame`,
      );
    }
  });
});

/** Depth headers a gateway subscriber receives, with their arrival times (wall clock). */
function subscribe(wsUrl: string): { ws: WebSocket; got: Array<FrameHeader & { at: number; wall: number }> } {
  const ws = new WebSocket(wsUrl);
  ws.on('error', () => {});
  const got: Array<FrameHeader & { at: number; wall: number }> = [];
  ws.on('message', (data, isBinary) => {
    if (!isBinary) return;
    const { header } = decodeFrameMessage(data as Buffer);
    if (header.kind === 'depth') got.push({ ...header, at: performance.now(), wall: nowMs() });
  });
  return { ws, got };
}

interface EdgeFrame {
  readonly seq: number;
  readonly ptsMs: number;
  readonly edge: string;
  readonly publishedMs: number;
  readonly at: number;
}

function fleetCli(nats: string, args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [join(import.meta.dirname, '..', 'bin', 'depthcrafter-live.js'), 'fleet', ...args, '--nats', nats, '--lease-ttl', String(TTL)],
      { encoding: 'utf8' },
      (err, stdout, stderr) => resolve({ status: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }),
    );
  });
}

describe('fleet edge, bad input', () => {
  it('an edge: URL, worker options without --register, a bad source option: exit 2 naming the problem', async () => {
    ensureBuilt();
    const bad = 'nats://127.0.0.1:1';
    const self = await fleetCli(bad, ['edge', 'usb1', 'edge:']);
    assert.equal(self.status, 2, self.stderr);
    assert.match(self.stderr, /the URL of the camera itself/);
    const sets = await fleetCli(bad, ['edge', 'usb1', 'test:', '--set', 'depth.maxRes=128']);
    assert.equal(sets.status, 2, sets.stderr);
    assert.match(sets.stderr, /depth\.\*: options of the worker's nodes go into the camera list, with --register/);
    const opt = await fleetCli(bad, ['edge', 'usb1', 'test:?colour=red']);
    assert.equal(opt.status, 2, opt.stderr);
    assert.match(opt.stderr, /colour/);
  });
});

describe('fleet edge -> worker -> gateway (real processes)', { skip: SKIP, timeout: 240_000 }, () => {
  let nats: NatsFixture;
  let bus: NatsConnection;
  const busFrames: EdgeFrame[] = [];
  const children: CliProcess[] = [];
  let edge: CliProcess;
  let gatewayHttp = '';
  let sub: ReturnType<typeof subscribe>;
  const startEdge = () => {
    const e = startCli(['fleet', 'edge', 'usb1', 'test:?pattern=ball&width=96&height=96&fps=8', '--register', '--nats', nats.url, '--lease-ttl', String(TTL)]);
    children.push(e);
    return e;
  };
  const streams = async () =>
    ((await (await fetch(`${gatewayHttp}streams`)).json()) as { streams: Array<{ name: string; state: string; message?: string }> }).streams;

  before(
    async () => {
      ensureBuilt();
      nats = await startNats();
      bus = await connect({ servers: nats.url });
      bus.subscribe('dcl.frames.usb1', {
        callback: (err, m) => {
          if (err) return;
          const { header } = decodeFrameMessage(m.data);
          busFrames.push({
            seq: header.seq,
            ptsMs: header.ptsMs,
            edge: m.headers?.get('Dcl-Edge') ?? '?',
            publishedMs: header.publishedMs!,
            at: performance.now(),
          });
        },
      });
      children.push(startCli(['fleet', 'worker', '--nats', nats.url, '--id', 'wE', '--capacity', '2', '--lease-ttl', String(TTL), ...DEPTH]));
      const gw = startCli(['fleet', 'gateway', '--nats', nats.url, '--port', '0', '--lease-ttl', String(TTL)]);
      children.push(gw);
      const line = await until(
        () => gw.lines.find((l) => typeof l.msg === 'string' && l.msg.startsWith('fleet gateway serving at')),
        30_000,
        'the gateway to listen',
        () => gw.stderr.slice(-3000),
      );
      gatewayHttp = String(line.url);
      sub = subscribe(`${gatewayHttp.replace(/^http/, 'ws')}ws?format=f32`);
      edge = startEdge();
    },
    { timeout: 120_000 },
  );

  after(async () => {
    sub?.ws.close();
    killAll(children);
    await bus?.close();
    nats?.stop();
  });

  it("the registered edge camera is served by the worker and its depth reaches the gateway, with the edge's seq and pts", async (t) => {
    await until(
      () => sub.got.filter((h) => h.stream === 'usb1').length >= 6,
      90_000,
      'depth frames of usb1 at the gateway',
      () => `bus frames ${busFrames.length}; edge: ${edge.stderr.slice(-1500)}`,
    );
    const list = await fleetCli(nats.url, ['camera', 'list', '--json']);
    assert.equal(list.status, 0, list.stderr);
    assert.deepEqual((JSON.parse(list.stdout) as { cameras: unknown[] }).cameras, [{ name: 'usb1', url: 'edge:', worker: 'wE' }]);
    const depth = sub.got.filter((h) => h.stream === 'usb1');
    const edgeId = busFrames[0].edge;
    assert.ok(
      busFrames.every((f) => f.edge === edgeId),
      'one edge',
    );
    const lat: number[] = [];
    for (const h of depth) {
      const f = busFrames.find((b) => b.seq === h.seq);
      assert.ok(f, `depth seq ${h.seq} is a frame the edge published`);
      assert.equal(h.ptsMs, f.ptsMs, `seq ${h.seq}: the edge's pts`);
      assert.equal(h.worker, 'wE');
      assert.deepEqual([h.width, h.height], [64, 64]);
      lat.push(h.wall - f.publishedMs);
    }
    t.diagnostic(
      `edge publish -> depth at the gateway's subscriber: p50 ${quantile(lat, 0.5).toFixed(0)} ms, max ${Math.max(...lat).toFixed(0)} ms (depth window 8 frames at 8 fps); worker latency from the edge's camera (header) p50 ${quantile(
        depth.map((h) => h.latencyMs),
        0.5,
      ).toFixed(0)} ms`,
    );
    await until(async () => (await streams()).find((s) => s.name === 'usb1')?.state === 'ok', 20_000, 'usb1 ok at /streams');
  });

  it('killing the edge shows the camera down; a new edge resumes it (a discontinuity at the subscriber)', async (t) => {
    const killedAt = performance.now();
    edge.child.kill('SIGKILL');
    let last = '';
    await until(
      async () => {
        const s = (await streams()).find((x) => x.name === 'usb1');
        last = JSON.stringify(s);
        return s?.state === 'down';
      },
      60_000,
      'usb1 down at the gateway',
      () => last,
    );
    const downAfter = performance.now() - killedAt;
    // The worker says why: its source has no frames from the edge.
    await until(
      async () => {
        const f = (await (await fetch(`${gatewayHttp}fleet`)).json()) as { cameras: Array<{ name: string; workerState: string; worker: string | null }> };
        last = JSON.stringify(f);
        return f.cameras.find((c) => c.name === 'usb1')?.workerState === 'down';
      },
      30_000,
      "the worker's state of usb1: down",
      () => last,
    );

    const restartAt = performance.now();
    edge = startEdge();
    const resumed = await until(
      () => sub.got.find((h) => h.stream === 'usb1' && h.at > restartAt && h.discont),
      90_000,
      'a depth frame of the new edge at the gateway',
      () => edge.stderr.slice(-1500),
    );
    await until(() => sub.got.filter((h) => h.stream === 'usb1' && h.at >= resumed.at).length >= 4, 30_000, 'frames after the restart');
    const newEdge = busFrames[busFrames.length - 1].edge;
    assert.notEqual(newEdge, busFrames[0].edge, 'a new edge id');
    for (const h of sub.got.filter((x) => x.stream === 'usb1' && x.at >= resumed.at)) {
      assert.ok(
        busFrames.some((b) => b.edge === newEdge && b.seq === h.seq && b.ptsMs === h.ptsMs),
        `seq ${h.seq} is the new edge's`,
      );
    }
    await until(async () => (await streams()).find((s) => s.name === 'usb1')?.state === 'ok', 20_000, 'usb1 ok again');
    t.diagnostic(
      `edge killed: usb1 down at the gateway after ${(downAfter / 1000).toFixed(1)} s (lease TTL ${TTL / 1000} s: stale after 2 TTL); new edge: depth again after ${((resumed.at - restartAt) / 1000).toFixed(1)} s`,
    );
  });
});
