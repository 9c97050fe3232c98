import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { z } from 'zod';
import { pino } from 'pino';

import { defineNode, type NodeContext } from '../src/graph/node-kind.js';
import { NodeRegistry } from '../src/graph/registry.js';
import { parsePipeline } from '../src/graph/pipeline-file.js';
import { Graph, NodeFailure, type GraphEvent } from '../src/graph/runtime.js';
import { nowMs, type Packet, type VideoFrame } from '../src/graph/packets.js';

// Test node kinds share state with the test through a probe named in their options.

interface Probe {
  /** Source: frames whose emit() was called, and how long the awaits took in total. */
  emitted: number;
  emitWaitMs: number;
  sourceStartedAt: number;
  sourceDoneAt: number;
  /** Source: in-flight frames (emitted, not yet seen by the sink) right after each emit resolved. */
  maxAhead: number;
  runs: number;
  failedOnce: boolean;
  /** Sink: seqs and every packet in arrival order. */
  seqs: number[];
  packets: Packet[];
  flushed: boolean;
  closed: number;
  sinkDoneAt: number;
}

const probes = new Map<string, Probe>();
function probe(name: string): Probe {
  let p = probes.get(name);
  if (!p) {
    p = {
      emitted: 0,
      emitWaitMs: 0,
      sourceStartedAt: 0,
      sourceDoneAt: 0,
      maxAhead: 0,
      runs: 0,
      failedOnce: false,
      seqs: [],
      packets: [],
      flushed: false,
      closed: 0,
      sinkDoneAt: 0,
    };
    probes.set(name, p);
  }
  return p;
}
let probeCounter = 0;
function freshProbe(): string {
  return `p${++probeCounter}`;
}

function tinyFrame(streamId: string, seq: number): VideoFrame {
  return { type: 'video', streamId, seq, ptsMs: seq * 10, arrivalMs: nowMs(), width: 2, height: 2, data: new Uint8Array(12).fill(seq & 0xff) };
}

const sourceOptions = z
  .object({
    probe: z.string(),
    /** -1: endless (until stopped). */
    frames: z.number().int().min(-1),
    /** Sink probe to compare against (in-flight measurement). */
    watch: z.string().optional(),
    /** Throw once, after this many frames (restart tests). */
    failAfter: z.number().int().optional(),
    /** Pause between frames, in ms (0: only the emit await). */
    intervalMs: z.number().min(0).default(0),
  })
  .strict();

function makeSource(o: z.infer<typeof sourceOptions>, ctx: NodeContext) {
  const pr = probe(o.probe);
  return {
    async run() {
      pr.runs++;
      pr.sourceStartedAt ||= performance.now();
      while (!ctx.signal.aborted && (o.frames < 0 || pr.emitted < o.frames)) {
        if (o.failAfter !== undefined && !pr.failedOnce && pr.emitted === o.failAfter) {
          pr.failedOnce = true;
          throw new Error(`camera unplugged after ${pr.emitted} frames`);
        }
        const f = tinyFrame(ctx.name, ctx.sequence.value++);
        pr.emitted++;
        const t0 = performance.now();
        await ctx.emit('video', f);
        pr.emitWaitMs += performance.now() - t0;
        if (o.watch) pr.maxAhead = Math.max(pr.maxAhead, pr.emitted - probe(o.watch).seqs.length);
        if (o.intervalMs > 0) await delay(o.intervalMs);
      }
      pr.sourceDoneAt = performance.now();
    },
  };
}

const countingSource = defineNode({
  kind: 'count-src',
  role: 'source',
  description: 'emits tiny video frames',
  inputs: {},
  outputs: { video: 'video' },
  options: sourceOptions,
  create: (o, ctx) => makeSource(o, ctx),
});

const restartableSource = defineNode({
  kind: 'flaky-src',
  role: 'source',
  description: 'emits tiny video frames, fails once',
  inputs: {},
  outputs: { video: 'video' },
  options: sourceOptions,
  restart: { maxRestarts: 3, initialDelayMs: 20, maxDelayMs: 40 },
  create: (o, ctx) => makeSource(o, ctx),
});

const slowSink = defineNode({
  kind: 'slow-sink',
  role: 'sink',
  description: 'records what it gets, slowly',
  inputs: { in: 'any' },
  outputs: {},
  options: z.object({ probe: z.string(), delayMs: z.number().min(0).default(0) }).strict(),
  create(o) {
    const pr = probe(o.probe);
    return {
      async process(_port: string, p: Packet) {
        pr.packets.push(p);
        if (p.type === 'video' || p.type === 'depth') {
          pr.seqs.push(p.seq);
          if (o.delayMs > 0) await delay(o.delayMs);
        }
      },
      flush() {
        pr.flushed = true;
        pr.sinkDoneAt = performance.now();
      },
      close() {
        pr.closed++;
      },
    };
  },
});

const failingTransform = defineNode({
  kind: 'fail-on',
  role: 'transform',
  description: 'throws on frame K',
  inputs: { in: 'video' },
  outputs: { out: 'video' },
  options: z.object({ at: z.number().int() }).strict(),
  create(o, ctx) {
    return {
      async process(_port: string, p: Packet) {
        if ((p.type === 'video' || p.type === 'depth') && p.seq === o.at) throw new Error(`kaboom on frame ${o.at}`);
        await ctx.emit('out', p);
      },
    };
  },
});

const passThrough = defineNode({
  kind: 'pass',
  role: 'transform',
  description: 'forwards every packet',
  inputs: { in: 'any' },
  outputs: { out: 'any' },
  options: z.object({}).strict(),
  create(_o, ctx) {
    return {
      async process(_port: string, p: Packet) {
        await ctx.emit('out', p);
      },
    };
  },
});

const depthOnlySink = defineNode({
  kind: 'depth-sink',
  role: 'sink',
  description: 'takes depth only',
  inputs: { in: 'depth' },
  outputs: {},
  options: z.object({}).strict(),
  create: () => ({ process() {} }),
});

const registry = new NodeRegistry([countingSource, restartableSource, slowSink, failingTransform, passThrough, depthOnlySink] as never[]);
const log = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });

function graphFrom(yaml: string, opts: { server?: boolean } = {}): Graph {
  const server = opts.server ? 'server: { host: 127.0.0.1, port: 0 }\n' : 'server: { enabled: false }\n';
  const p = parsePipeline(`name: runtime-test\n${server}${yaml}`, 'runtime-test.yaml', registry, { env: {} });
  return new Graph(p, { log });
}

function range(n: number, from = 0): number[] {
  return Array.from({ length: n }, (_, i) => from + i);
}

/** Fail (rather than hang) when a promise does not settle in time. */
async function within<T>(ms: number, what: string, p: Promise<T>): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, rej) => (t = setTimeout(() => rej(new Error(`${what}: not done within ${ms} ms`)), ms)))]);
  } finally {
    clearTimeout(t);
  }
}

async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}`);
    await delay(5);
  }
}

describe('graph runtime', () => {
  test('fan-out: one source to two sinks, both get every frame in order', async () => {
    const [src, a, b] = [freshProbe(), freshProbe(), freshProbe()];
    const g = graphFrom(`
nodes:
  src: { kind: count-src, options: { probe: ${src}, frames: 60 } }
  a: { kind: slow-sink, options: { probe: ${a} } }
  b: { kind: slow-sink, options: { probe: ${b}, delayMs: 1 } }
edges:
  - { from: src, to: a, queue: { capacity: 4, policy: block } }
  - { from: src, to: b, queue: { capacity: 4, policy: block } }
`);
    const events: GraphEvent[] = [];
    g.events$.subscribe((e) => events.push(e));
    await g.start();
    await within(10_000, 'graph', g.done);
    assert.deepEqual(probe(a).seqs, range(60));
    assert.deepEqual(probe(b).seqs, range(60));
    assert.ok(probe(a).flushed && probe(b).flushed);
    assert.equal(probe(a).closed, 1);
    // EOS is handled by the runtime: sinks never see it; the last event is "finished".
    assert.ok(probe(a).packets.every((p) => p.type === 'video'));
    assert.deepEqual(
      events
        .filter((e) => e.type === 'node-finished')
        .map((e) => (e as { node: string }).node)
        .sort(),
      ['a', 'b', 'src'],
    );
    assert.equal(events.at(-1)?.type, 'finished');
    assert.equal(await g.metrics.value('dcl_node_frames_out_total', { node: 'src' }), 60);
    assert.equal(await g.metrics.value('dcl_node_frames_in_total', { node: 'a' }), 60);
    assert.equal(await g.metrics.value('dcl_node_frames_in_total', { node: 'b' }), 60);
  });

  test('block: a slow sink loses nothing and the source is paused', async () => {
    const [src, sink] = [freshProbe(), freshProbe()];
    const N = 40;
    const DELAY = 5;
    const CAP = 3;
    const g = graphFrom(`
nodes:
  src: { kind: count-src, options: { probe: ${src}, frames: ${N}, watch: ${sink} } }
  sink: { kind: slow-sink, options: { probe: ${sink}, delayMs: ${DELAY} } }
edges:
  - { from: src, to: sink, queue: { capacity: ${CAP}, policy: block } }
`);
    await g.start();
    await within(20_000, 'graph', g.done);
    const s = probe(src);
    const k = probe(sink);
    assert.deepEqual(k.seqs, range(N), 'every frame, in order');
    assert.equal(await g.metrics.value('dcl_edge_dropped_total', { edge: 'src.video->sink.in' }), 0);
    // Paused: emit() awaited about as long as the sink took for the frames that did not fit in the queue.
    assert.ok(s.emitWaitMs >= (N - CAP - 2) * DELAY * 0.8, `source waited ${s.emitWaitMs.toFixed(0)} ms in emit()`);
    // Never more than the queue capacity (plus the frame being handed over) ahead of the sink.
    assert.ok(s.maxAhead <= CAP + 2, `source ran ${s.maxAhead} frames ahead of the sink (capacity ${CAP})`);
    // The source could not finish long before the sink.
    assert.ok(s.sourceDoneAt >= k.sinkDoneAt - (CAP + 2) * DELAY * 3, 'the source finished together with the sink');
  });

  test('drop-oldest: a fast source is never blocked, drops are counted, the newest frames arrive', async () => {
    const [src, sink] = [freshProbe(), freshProbe()];
    const N = 300;
    const DELAY = 4;
    const g = graphFrom(`
nodes:
  src: { kind: count-src, options: { probe: ${src}, frames: ${N} } }
  sink: { kind: slow-sink, options: { probe: ${sink}, delayMs: ${DELAY} } }
edges:
  - { from: src, to: sink, queue: { capacity: 4, policy: drop-oldest } }
`);
    await g.start();
    await within(20_000, 'graph', g.done);
    const s = probe(src);
    const k = probe(sink);
    const sourceMs = s.sourceDoneAt - s.sourceStartedAt;
    assert.equal(s.emitted, N);
    assert.ok(sourceMs < (N * DELAY) / 10, `source took ${sourceMs.toFixed(1)} ms for ${N} frames (a blocked one would take ~${N * DELAY} ms)`);
    assert.ok(s.emitWaitMs < (N * DELAY) / 10, `emit() awaits took ${s.emitWaitMs.toFixed(1)} ms`);
    const dropped = await g.metrics.value('dcl_edge_dropped_total', { edge: 'src.video->sink.in' });
    assert.ok(dropped > N / 2, `dropped ${dropped}`);
    assert.equal(k.seqs.length + dropped, N, 'received + dropped == emitted');
    for (let i = 1; i < k.seqs.length; i++) assert.ok(k.seqs[i] > k.seqs[i - 1], 'received frames keep their order');
    assert.equal(k.seqs.at(-1), N - 1, 'the newest frame is kept');
    assert.ok(k.flushed);
    const text = await g.metrics.registry.metrics();
    assert.match(text, new RegExp(`dcl_edge_dropped_total\\{edge="src\\.video->sink\\.in",reason="overflow"\\} ${dropped}\\b`));
  });

  test('drop-newest: a fast source is never blocked, the sink gets the first frames', async () => {
    const [src, sink] = [freshProbe(), freshProbe()];
    const N = 300;
    const DELAY = 4;
    const CAP = 4;
    const g = graphFrom(`
nodes:
  src: { kind: count-src, options: { probe: ${src}, frames: ${N} } }
  sink: { kind: slow-sink, options: { probe: ${sink}, delayMs: ${DELAY} } }
edges:
  - { from: src, to: sink, queue: { capacity: ${CAP}, policy: drop-newest } }
`);
    await g.start();
    await within(20_000, 'graph', g.done);
    const s = probe(src);
    const k = probe(sink);
    const sourceMs = s.sourceDoneAt - s.sourceStartedAt;
    assert.ok(sourceMs < (N * DELAY) / 10, `source took ${sourceMs.toFixed(1)} ms for ${N} frames`);
    const dropped = await g.metrics.value('dcl_edge_dropped_total', { edge: 'src.video->sink.in' });
    assert.equal(k.seqs.length + dropped, N, 'received + dropped == emitted');
    assert.ok(dropped >= N - CAP - 2, `dropped ${dropped}`);
    assert.deepEqual(k.seqs.slice(0, CAP + 1), range(CAP + 1), 'the first frames are kept');
    assert.ok(!k.seqs.includes(N - 1), 'the newest frame was dropped');
  });

  test('graceful stop: every frame an endless source emitted reaches a slow sink, flush runs, done resolves', async () => {
    const [src, sink] = [freshProbe(), freshProbe()];
    const g = graphFrom(`
nodes:
  src: { kind: count-src, options: { probe: ${src}, frames: -1 } }
  mid: { kind: pass }
  sink: { kind: slow-sink, options: { probe: ${sink}, delayMs: 3 } }
edges:
  - { from: src, to: mid, queue: { capacity: 4, policy: block } }
  - { from: mid, to: sink, queue: { capacity: 4, policy: block } }
`);
    const events: GraphEvent[] = [];
    g.events$.subscribe((e) => events.push(e));
    await g.start();
    await until(() => probe(sink).seqs.length >= 20, 10_000, '20 frames at the sink');
    await within(10_000, 'stop', g.stop());
    await within(1000, 'done', g.done);
    const emitted = probe(src).emitted;
    const k = probe(sink);
    assert.ok(emitted >= 20);
    assert.deepEqual(k.seqs, range(emitted), `all ${emitted} emitted frames reached the sink`);
    assert.ok(k.flushed, 'sink flush() was called');
    assert.equal(k.closed, 1, 'sink close() was called once');
    assert.equal(events.at(-1)?.type, 'finished');
    assert.ok(!events.some((e) => e.type === 'failed' || e.type === 'node-error'));
  });

  test('an erroring node fails the graph: done rejects with NodeFailure naming the node and the message', async () => {
    const [src, sink] = [freshProbe(), freshProbe()];
    const g = graphFrom(`
nodes:
  src: { kind: count-src, options: { probe: ${src}, frames: 50 } }
  boom: { kind: fail-on, options: { at: 7 } }
  sink: { kind: slow-sink, options: { probe: ${sink} } }
edges:
  - { from: src, to: boom, queue: { capacity: 2, policy: block } }
  - { from: boom, to: sink, queue: { capacity: 2, policy: block } }
`);
    const events: GraphEvent[] = [];
    g.events$.subscribe({ next: (e) => events.push(e) });
    await g.start();
    await assert.rejects(within(10_000, 'done', g.done), (e: unknown) => {
      assert.ok(e instanceof NodeFailure, String(e));
      assert.equal(e.node, 'boom');
      assert.equal(e.message, 'node "boom" failed: kaboom on frame 7');
      assert.equal(e.cause.message, 'kaboom on frame 7');
      return true;
    });
    const failed = events.find((e) => e.type === 'failed');
    assert.ok(failed && failed.type === 'failed' && failed.node === 'boom');
    assert.ok(g.signal.aborted, 'the other nodes were told to stop');
    assert.ok(!probe(sink).seqs.includes(7), 'the failing frame never reached the sink');
    assert.ok(probe(sink).closed === 1, 'nodes are closed after a failure');
    // stop() after a failure returns (it does not throw or hang).
    await within(1000, 'stop after failure', g.stop());
  });

  test('a packet that does not fit the downstream input fails the emitting node', async () => {
    const src = freshProbe();
    const g = graphFrom(`
nodes:
  src: { kind: count-src, options: { probe: ${src}, frames: 3 } }
  mid: { kind: pass }
  d: { kind: depth-sink }
edges:
  - { from: src, to: mid }
  - { from: mid, to: d }
`);
    await g.start();
    await assert.rejects(
      within(10_000, 'done', g.done),
      (e: unknown) => e instanceof NodeFailure && e.node === 'mid' && /video packet on port "out" but edge mid\.out->d\.in takes depth frames/.test(e.message),
    );
  });

  test('a restartable source that throws once is restarted: discontinuity, increasing seqs, graph completes', async () => {
    const [src, sink] = [freshProbe(), freshProbe()];
    const N = 30;
    const g = graphFrom(`
nodes:
  cam: { kind: flaky-src, options: { probe: ${src}, frames: ${N}, failAfter: 10 } }
  sink: { kind: slow-sink, options: { probe: ${sink} } }
edges:
  - { from: cam, to: sink, queue: { capacity: 4, policy: block } }
`);
    const events: GraphEvent[] = [];
    g.events$.subscribe((e) => events.push(e));
    await g.start();
    await within(10_000, 'graph', g.done);
    const k = probe(sink);
    assert.equal(probe(src).runs, 2, 'run() was called again on a fresh instance');
    const errs = events.filter((e) => e.type === 'node-error');
    assert.equal(errs.length, 1);
    assert.ok(errs[0].type === 'node-error' && errs[0].willRestart && errs[0].node === 'cam' && /unplugged/.test(errs[0].error.message));
    const restarted = events.filter((e) => e.type === 'node-restarted');
    assert.deepEqual(restarted, [{ type: 'node-restarted', node: 'cam', attempt: 1 }]);
    const disc = k.packets.findIndex((p) => p.type === 'discontinuity');
    assert.equal(disc, 10, 'the discontinuity sits between the frames before and after the restart');
    const d = k.packets[disc];
    assert.ok(d.type === 'discontinuity' && d.streamId === 'cam' && /restart after error: camera unplugged/.test(d.reason));
    assert.deepEqual(k.seqs, range(N), 'sequence numbers continue across the restart');
    assert.equal(await g.metrics.value('dcl_node_restarts_total', { node: 'cam' }), 1);
    assert.equal(events.at(-1)?.type, 'finished');
  });

  test('a non-restartable source that throws fails the graph', async () => {
    const [src, sink] = [freshProbe(), freshProbe()];
    const g = graphFrom(`
nodes:
  cam: { kind: count-src, options: { probe: ${src}, frames: 30, failAfter: 5 } }
  sink: { kind: slow-sink, options: { probe: ${sink} } }
edges:
  - { from: cam, to: sink }
`);
    await g.start();
    await assert.rejects(
      within(10_000, 'done', g.done),
      (e: unknown) => e instanceof NodeFailure && e.node === 'cam' && /camera unplugged after 5 frames/.test(e.message),
    );
    assert.equal(probe(src).runs, 1);
  });

  test('/metrics serves Prometheus text and /healthz returns ok JSON while running', async () => {
    const [src, sink] = [freshProbe(), freshProbe()];
    const g = graphFrom(
      `
nodes:
  src: { kind: count-src, options: { probe: ${src}, frames: -1, intervalMs: 2 } }
  snk: { kind: slow-sink, options: { probe: ${sink} } }
edges:
  - { from: src, to: snk, queue: { capacity: 4, policy: block } }
`,
      { server: true },
    );
    await g.start();
    try {
      assert.ok(g.address && g.address.port > 0, 'listening on an ephemeral port');
      await until(() => probe(sink).seqs.length >= 5, 10_000, '5 frames');
      const base = `http://127.0.0.1:${g.address.port}`;
      const m = await fetch(`${base}/metrics`);
      assert.equal(m.status, 200);
      assert.match(m.headers.get('content-type') ?? '', /^text\/plain/);
      const text = await m.text();
      const line = /^dcl_node_frames_in_total\{node="snk"\} (\d+)$/m.exec(text);
      assert.ok(line, `frames_in line for snk in:\n${text.slice(0, 2000)}`);
      assert.ok(Number(line[1]) >= 5, line[0]);
      assert.match(text, /^# TYPE dcl_node_frames_in_total counter$/m);
      assert.match(text, /^dcl_node_frames_out_total\{node="src"\} \d+$/m);
      assert.match(text, /^dcl_edge_dropped_total\{edge="src\.video->snk\.in",reason="overflow"\} 0$/m);
      assert.match(text, /^dcl_node_up\{node="src"\} 1$/m);

      const h = await fetch(`${base}/healthz`);
      assert.equal(h.status, 200);
      assert.match(h.headers.get('content-type') ?? '', /application\/json/);
      assert.deepEqual(await h.json(), {
        status: 'ok',
        pipeline: 'runtime-test',
        stopping: false,
        nodes: { src: { kind: 'count-src', state: 'ok' }, snk: { kind: 'slow-sink', state: 'ok' } },
      });

      const nf = await fetch(`${base}/nope`);
      assert.equal(nf.status, 404);
      await nf.text();
    } finally {
      await within(10_000, 'stop', g.stop());
    }
    // The server is closed once the graph is done.
    await assert.rejects(fetch(`http://127.0.0.1:${g.address!.port}/healthz`));
  });
});
