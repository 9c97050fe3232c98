// Multi-stream pipelines through real parts: a streams: list expanded into per-stream nodes (real
// synthetic sources, real depth nodes on one shared inference worker with models/tiny-random),
// one websocket sink with real WebSocket clients choosing streams, GET /streams, streams added
// and removed over HTTP while the others run, and a stream whose source fails while the others go on.

import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { z } from 'zod';
import { WebSocket } from 'ws';
import { pino } from 'pino';
import { parsePipeline, type Pipeline } from '../src/graph/pipeline-file.js';
import { Graph } from '../src/graph/runtime.js';
import { NodeRegistry } from '../src/graph/registry.js';
import { BUILTIN_NODES } from '../src/nodes/index.js';
import { defineNode } from '../src/graph/node-kind.js';
import { PipelineError } from '../src/graph/pipeline-error.js';
import { decodeFrameMessage, type FrameHeader } from '../src/protocol/frame-message.js';
import { nowMs } from '../src/graph/packets.js';
import { until, within } from './helpers/wait.js';

const log = pino({ level: 'silent' });

/** A source that fails (without restart) after `failAfter` frames: a stream with a fault. */
const flakyNode = defineNode({
  kind: 'flaky',
  role: 'source',
  description: 'test source that fails',
  inputs: {},
  outputs: { video: 'video' },
  options: z.object({ failAfter: z.number().int().default(5), width: z.number().int().default(64), height: z.number().int().default(64) }).strict(),
  create(o, ctx) {
    return {
      async run() {
        for (let i = 0; ; i++) {
          if (i === o.failAfter) throw new Error(`flaky camera broke after ${o.failAfter} frames`);
          const t = nowMs();
          await ctx.emit('video', {
            type: 'video',
            streamId: ctx.stream,
            seq: ctx.sequence.value++,
            ptsMs: i * 50,
            arrivalMs: t,
            width: o.width,
            height: o.height,
            data: new Uint8Array(o.width * o.height * 3).fill(i * 20),
          });
          await new Promise((r) => setTimeout(r, 50));
        }
      },
    };
  },
});

/** A source whose frame size changes after `changeAfter` frames (a camera switching resolution). */
const resizingNode = defineNode({
  kind: 'resizing',
  role: 'source',
  description: 'test source that changes its frame size',
  inputs: {},
  outputs: { video: 'video' },
  options: z.object({ changeAfter: z.number().int().default(10), frames: z.number().int().default(30) }).strict(),
  create(o, ctx) {
    return {
      async run() {
        for (let i = 0; i < o.frames && !ctx.signal.aborted; i++) {
          const [w, h] = i < o.changeAfter ? [64, 64] : [48, 32];
          await ctx.emit('video', {
            type: 'video',
            streamId: ctx.stream,
            seq: ctx.sequence.value++,
            ptsMs: i * 50,
            arrivalMs: nowMs(),
            width: w,
            height: h,
            data: new Uint8Array(w * h * 3).fill(i * 7),
          });
          await new Promise((r) => setTimeout(r, 50));
        }
      },
    };
  },
});

const registry = () => new NodeRegistry([...BUILTIN_NODES, flakyNode, resizingNode]);
const graphs: Graph[] = [];
after(async () => {
  for (const g of graphs) await g.stop();
});

const DEPTH = '{ kind: depth, options: { model: models/tiny-random, window: 6, overlap: 2, steps: 1, maxRes: 64, stride: 1 } }';
const synthetic = (name: string, seed: number) =>
  `  - { name: ${name}, source: { kind: synthetic, options: { seed: ${seed}, width: 64, height: 64, fps: 20 } } }`;

function pipelineText(streams: string[], admin = false): string {
  return `name: multi-test
server: { host: 127.0.0.1, port: 0, admin: ${admin} }
streams:
${streams.join('\n')}
nodes:
  depth: ${DEPTH}
  ws: { kind: websocket, options: { viewer: false } }
edges:
  - { from: streams.video, to: depth.video, queue: { capacity: 8, policy: drop-oldest } }
  - { from: depth.depth, to: ws.frames, queue: { capacity: 64, policy: drop-oldest } }
`;
}

async function startGraph(text: string): Promise<{ graph: Graph; base: string; port: number }> {
  const graph = new Graph(parsePipeline(text, 'multi-test.yaml', registry(), { env: {} }), { log });
  graphs.push(graph);
  await graph.start();
  const port = graph.address!.port;
  return { graph, base: `http://127.0.0.1:${port}`, port };
}

interface Client {
  readonly headers: FrameHeader[];
  readonly ws: WebSocket;
  close(): void;
}

function client(port: number, query: string): Promise<Client> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws?${query}`);
    const headers: FrameHeader[] = [];
    ws.on('message', (data: Buffer, isBinary) => {
      if (isBinary) headers.push(decodeFrameMessage(data).header);
    });
    ws.once('open', () => resolve({ headers, ws, close: () => ws.close() }));
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => reject(new Error(`${res.statusCode}: ${body.trim()}`)));
    });
    ws.once('error', reject);
  });
}

const depthOf = (c: Client, stream: string) => c.headers.filter((h) => h.kind === 'depth' && h.stream === stream);

async function streamsOf(base: string): Promise<Array<{ name: string; state: string; message?: string; fpsIn: number; fpsOut: number; nodes: string[] }>> {
  const r = (await (await fetch(`${base}/streams`)).json()) as {
    streams: Array<{ name: string; state: string; fpsIn: number; fpsOut: number; nodes: string[] }>;
  };
  return r.streams;
}

describe('pipeline files with a streams: list', () => {
  test('each stream gets its own copy of the nodes fed from "streams", with its overrides; shared nodes stay one', () => {
    const p: Pipeline = parsePipeline(
      `streams:
  - { name: a, source: { kind: synthetic, options: { seed: "\${SEED}" } } }
  - { name: b, source: { kind: test-pattern }, overrides: { depth: { steps: 3 } } }
nodes:
  depth: ${DEPTH}
  ws: { kind: websocket }
edges:
  - { from: streams.video, to: depth.video }
  - { from: depth, to: ws }
`,
      'x.yaml',
      registry(),
      { env: { SEED: '12' } },
    );
    assert.deepEqual(p.nodes.map((n) => n.name).sort(), ['a/depth', 'a/source', 'b/depth', 'b/source', 'ws']);
    assert.deepEqual(p.edges.map((e) => e.label).sort(), [
      'a/depth.depth->ws.frames',
      'a/source.video->a/depth.video',
      'b/depth.depth->ws.frames',
      'b/source.video->b/depth.video',
    ]);
    const opt = (n: string) => p.nodes.find((x) => x.name === n)!.options as Record<string, unknown>;
    assert.equal(opt('a/source').seed, 12, 'environment values reach stream options');
    assert.equal(opt('a/depth').steps, 1);
    assert.equal(opt('b/depth').steps, 3, 'a stream override');
    assert.equal(p.nodes.find((x) => x.name === 'b/depth')!.stream, 'b');
    assert.deepEqual(p.streams?.perStream, ['depth']);
  });

  test('--set reaches a stream entry by name (streams.NAME.field=value), keeping text where a string is wanted', () => {
    const text = `streams:\n${synthetic('a', 1)}\n  - { name: cam, source: { kind: rtsp, options: { url: "rtsp://h/x" } } }\nnodes:\n  depth: ${DEPTH}\n  ws: { kind: websocket }\nedges:\n  - { from: streams.video, to: depth.video }\n  - { from: depth, to: ws }\n`;
    const p = parsePipeline(text, 'x.yaml', registry(), {
      env: {},
      overrides: ['streams.a.source.options.fps=5', 'streams.cam.source.options.password=604791', 'depth.steps=2'],
    });
    const opt = (n: string) => p.nodes.find((x) => x.name === n)!.options as Record<string, unknown>;
    assert.equal(opt('a/source').fps, 5);
    assert.equal(opt('cam/source').password, '604791');
    assert.equal(opt('a/depth').steps, 2);
    assert.equal(opt('cam/depth').steps, 2);
    assert.throws(() => parsePipeline(text, 'x.yaml', registry(), { env: {}, overrides: ['streams.nope.source.kind=x'] }), /no stream named "nope"/);
  });

  const bad = (text: string, re: RegExp) =>
    assert.throws(
      () => parsePipeline(text, 'bad.yaml', registry(), { env: {} }),
      (e: unknown) => e instanceof PipelineError && re.test(e.message),
    );
  const body = `nodes:\n  depth: ${DEPTH}\n  ws: { kind: websocket }\nedges:\n  - { from: streams.video, to: depth.video }\n  - { from: depth, to: ws }\n`;
  test('mistakes in a streams: list are named', () => {
    bad(`streams:\n${synthetic('a', 1)}\n${synthetic('a', 2)}\n${body}`, /stream "a" is listed twice/);
    bad(`streams:\n  - { name: a, source: { kind: depth } }\n${body}`, /stream "a": kind "depth" is not a source/);
    bad(
      `streams:\n  - { name: a, source: { kind: synthetic }, overrides: { ws: { path: /x } } }\n${body}`,
      /overrides name "ws", which is not a per-stream node/,
    );
    bad(`streams:\n  - { name: "a b", source: { kind: synthetic } }\n${body}`, /stream names are 1-64 letters/);
    bad(`streams:\n  - { name: a, source: { kind: synthetic, options: { fps: -1 } } }\n${body}`, /node "a\/source".*options\.fps/);
    bad(body, /edges use "streams" but the pipeline has no streams: list/);
    bad(
      `streams:\n${synthetic('a', 1)}\nnodes:\n  src: { kind: synthetic }\n  ws: { kind: websocket }\nedges:\n  - { from: src, to: ws }\n`,
      /no edge starts at "streams"/,
    );
  });
});

describe('a multi-stream pipeline serving one WebSocket', () => {
  test('subscribers choose streams with ?stream= (or a subscribe message); /streams lists them; labels name the stream', { timeout: 120_000 }, async () => {
    const { base, port } = await startGraph(pipelineText([synthetic('a', 1), synthetic('b', 2)]));
    const all = await client(port, 'format=f32');
    const onlyB = await client(port, 'format=f32&stream=b');
    await until(() => depthOf(all, 'a').length >= 6 && depthOf(all, 'b').length >= 6 && depthOf(onlyB, 'b').length >= 6, 90_000, 'depth of both streams');
    assert.deepEqual(new Set(onlyB.headers.map((h) => h.stream)), new Set(['b']), 'a subscriber of b gets b only');
    await assert.rejects(client(port, 'stream=a,nope'), /400: unknown stream "nope" \(streams: a, b\)/);

    // A subscribe message switches a live connection to stream a.
    onlyB.ws.send(JSON.stringify({ type: 'subscribe', stream: ['a'] }));
    const mark = onlyB.headers.length;
    await until(() => onlyB.headers.slice(mark).some((h) => h.stream === 'a'), 60_000, 'frames of a after switching');
    const afterSwitch = onlyB.headers.slice(onlyB.headers.findIndex((h, i) => i >= mark && h.stream === 'a'));
    assert.ok(
      afterSwitch.every((h) => h.stream === 'a'),
      'no frame of b after the first of a',
    );

    const streams = await streamsOf(base);
    assert.deepEqual(
      streams.map((s) => s.name),
      ['a', 'b'],
    );
    for (const s of streams) {
      assert.ok(['ok', 'degraded'].includes(s.state), `${s.name}: ${s.state}`);
      assert.ok(s.fpsIn > 5 && s.fpsOut > 0, `${s.name}: fps in ${s.fpsIn} out ${s.fpsOut}`);
      assert.deepEqual(s.nodes, [`${s.name}/source`, `${s.name}/depth`]);
    }
    const metrics = await (await fetch(`${base}/metrics`)).text();
    assert.match(metrics, /dcl_depth_frames_total\{node="b\/depth",stream="b",kind="computed"\} [1-9]/);
    assert.match(metrics, /dcl_node_frames_out_total\{node="a\/source",stream="a"\} [1-9]/);
    all.close();
    onlyB.close();
  });

  test('streams added and removed over HTTP start and stop without touching the others', { timeout: 150_000 }, async () => {
    const { base, port } = await startGraph(pipelineText([synthetic('a', 1)], true));
    const sub = await client(port, 'format=f32&stream=*');
    await until(() => depthOf(sub, 'a').length >= 6, 60_000, 'depth of a');

    const post = (body: unknown) => fetch(`${base}/streams`, { method: 'POST', body: JSON.stringify(body) });
    const added = await post({ name: 'late', source: { kind: 'synthetic', options: { seed: 4, width: 64, height: 64, fps: 20 } } });
    assert.equal(added.status, 201, await added.clone().text());
    assert.equal(((await added.json()) as { name: string }).name, 'late');
    await until(() => depthOf(sub, 'late').length >= 6, 60_000, 'depth of the added stream');

    // Refusals name what is wrong.
    const dup = await post({ name: 'late', source: { kind: 'synthetic' } });
    assert.equal(dup.status, 409);
    assert.match(await dup.text(), /stream \\"late\\" exists already/);
    const unknownKind = await post({ name: 'x', source: { kind: 'nope' } });
    assert.equal(unknownKind.status, 400);
    assert.match(await unknownKind.text(), /unknown node kind \\"nope\\"/);
    const badOption = await post({ name: 'y', source: { kind: 'synthetic', options: { fps: 'fast' } } });
    assert.equal(badOption.status, 400);
    assert.match(await badOption.text(), /y\/source.*fps/);
    const notJson = await fetch(`${base}/streams`, { method: 'POST', body: '{name:' });
    assert.equal(notJson.status, 400);
    assert.equal((await fetch(`${base}/streams/ghost`, { method: 'DELETE' })).status, 404);
    assert.deepEqual(
      (await streamsOf(base)).map((s) => s.name),
      ['a', 'late'],
      'refused additions leave no trace',
    );

    const aBefore = depthOf(sub, 'a').length;
    const removed = await fetch(`${base}/streams/late`, { method: 'DELETE' });
    assert.equal(removed.status, 204);
    assert.deepEqual(
      (await streamsOf(base)).map((s) => s.name),
      ['a'],
    );
    const lateCount = depthOf(sub, 'late').length;
    await until(() => depthOf(sub, 'a').length >= aBefore + 12, 60_000, 'a goes on after the removal');
    assert.equal(depthOf(sub, 'late').length, lateCount, 'nothing more of the removed stream');
    // Stream a ran through both changes in one sequence: its frames kept increasing sequence numbers, no restart.
    const seqs = depthOf(sub, 'a').map((h) => h.seq);
    assert.ok(
      seqs.every((s, i) => i === 0 || s > seqs[i - 1]),
      'a: increasing seqs',
    );
    const metrics = await (await fetch(`${base}/metrics`)).text();
    assert.match(metrics, /dcl_depth_sequences_total\{node="a\/depth",stream="a",reason="start"\} 1\n/);
    assert.match(metrics, /dcl_depth_sequences_total\{node="a\/depth",stream="a",reason="discontinuity"\} 0\n/);

    // The same name may come back.
    assert.equal((await post({ name: 'late', source: { kind: 'synthetic', options: { seed: 5, width: 64, height: 64, fps: 20 } } })).status, 201);
    const again = depthOf(sub, 'late').length;
    await until(() => depthOf(sub, 'late').length >= again + 6, 60_000, 'the re-added stream');
    sub.close();
  });

  test('stream changes need server.admin, a loopback client and the token when DCL_TOKEN is set', { timeout: 60_000 }, async () => {
    const plain = await startGraph(pipelineText([synthetic('a', 1)], false));
    const r = await fetch(`${plain.base}/streams`, { method: 'POST', body: '{}' });
    assert.equal(r.status, 403);
    assert.match(await r.text(), /set server.admin: true/);
    await plain.graph.stop();
    process.env.DCL_TOKEN = 's3cret-token';
    try {
      const guarded = await startGraph(pipelineText([synthetic('a', 1)], true));
      assert.equal((await fetch(`${guarded.base}/streams/a`, { method: 'DELETE' })).status, 401);
      assert.equal((await fetch(`${guarded.base}/streams/a`, { method: 'DELETE', headers: { authorization: 'Bearer s3cret-token' } })).status, 204);
      await guarded.graph.stop();
    } finally {
      delete process.env.DCL_TOKEN;
    }
  });

  test("one stream's frame size change restarts its own sequence only", { timeout: 120_000 }, async () => {
    const { graph, base, port } = await startGraph(
      pipelineText([synthetic('steady', 1), '  - { name: switcher, source: { kind: resizing, options: { changeAfter: 10, frames: 30 } } }']),
    );
    const sub = await client(port, 'format=f32');
    await until(
      async () => (await graph.metrics.value('dcl_depth_sequences_total', { node: 'switcher/depth', reason: 'size' })) === 1,
      60_000,
      'a new sequence at the size change',
    );
    await until(() => depthOf(sub, 'switcher').length >= 20, 60_000, 'depth of the new size');
    const steadyAt = depthOf(sub, 'steady').length;
    await until(() => depthOf(sub, 'steady').length >= steadyAt + 12, 60_000, 'steady goes on');
    const metrics = await (await fetch(`${base}/metrics`)).text();
    assert.match(metrics, /dcl_depth_sequences_total\{node="switcher\/depth",stream="switcher",reason="size"\} 1\n/);
    assert.match(metrics, /dcl_depth_sequences_total\{node="steady\/depth",stream="steady",reason="size"\} 0\n/);
    assert.match(metrics, /dcl_depth_sequences_total\{node="steady\/depth",stream="steady",reason="start"\} 1\n/);
    const seqs = depthOf(sub, 'steady').map((h) => h.seq);
    assert.ok(
      seqs.every((q, i) => i === 0 || q > seqs[i - 1]),
      'steady: increasing seqs, one sequence',
    );
    sub.close();
    await graph.stop();
  });

  test('a stream whose source fails stops alone: the others go on, /streams and /healthz say so', { timeout: 120_000 }, async () => {
    const { graph, base, port } = await startGraph(
      pipelineText([synthetic('good', 1), '  - { name: bad, source: { kind: flaky, options: { failAfter: 8 } } }']),
    );
    const failed: string[] = [];
    graph.events$.subscribe((e) => e.type === 'stream-failed' && failed.push(e.stream));
    const sub = await client(port, 'format=f32');
    await until(() => failed.includes('bad'), 60_000, 'the flaky stream to fail');
    const goodAtFailure = depthOf(sub, 'good').length;
    await until(() => depthOf(sub, 'good').length >= goodAtFailure + 12, 60_000, 'good goes on after bad failed');
    const views = await streamsOf(base);
    const bad = views.find((v) => v.name === 'bad')!;
    assert.equal(bad.state, 'failed');
    assert.match(bad.message ?? '', /node "bad\/source" failed: flaky camera broke after 8 frames/);
    const good = views.find((v) => v.name === 'good')!.state;
    assert.ok(good === 'ok' || good === 'degraded', `good serves on (${good}; degraded when this machine made it drop frames)`);
    const health = await fetch(`${base}/healthz`);
    assert.equal(health.status, 200, 'one failed camera degrades the server, it does not take it down');
    assert.equal(((await health.json()) as { status: string }).status, 'degraded');
    // The depth the failed stream produced before its fault reached subscribers; the graph still stops cleanly.
    assert.ok(depthOf(sub, 'bad').length > 0);
    sub.close();
    await within(30_000, 'graceful stop', graph.stop());
    await graph.done;
  });
});
