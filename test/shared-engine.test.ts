// Many streams on one inference worker (real ONNX Runtime, models/tiny-random): the round-robin
// turns (a stream never waits for more than one window of each other stream), per-stream state
// isolation (a stream's depth is bit-identical whether or not another stream shares the worker),
// per-stream failures, and the pure parts (RoundRobinQueues, EngineShare, SharedResources).

import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';

import { DepthEngine, type EngineDepth } from '../src/inference/engine/depth-engine.js';
import { EngineHost } from '../src/inference/engine/engine-host.js';
import { RoundRobinQueues } from '../src/inference/engine/round-robin.js';
import { EngineShare } from '../src/inference/engine/engine-share.js';
import { SharedResources } from '../src/graph/shared-resources.js';

const PACK = path.join('models', 'tiny-random');
const W = 96;
const H = 64;
const choices = { window: 6, overlap: 2, steps: 1, maxRes: 64 };

function frames(count: number, seed: number): Uint8Array[] {
  return Array.from({ length: count }, (_, i) => {
    const out = new Uint8Array(W * H * 3);
    let s = (seed * 7919 + i * 104729) >>> 0 || 1;
    for (let j = 0; j < out.length; j++) {
      s ^= s << 13;
      s ^= s >>> 17;
      s ^= s << 5;
      out[j] = s & 0xff;
    }
    return out;
  });
}

function sameDepth(a: EngineDepth[], b: EngineDepth[]): boolean {
  if (a.length !== b.length) return false;
  return a.every(
    (d, i) =>
      d.index === b[i].index &&
      Buffer.from(d.depth.buffer, d.depth.byteOffset, d.depth.byteLength).equals(Buffer.from(b[i].depth.buffer, b[i].depth.byteOffset, b[i].depth.byteLength)),
  );
}

async function collect(engine: DepthEngine, input: Uint8Array[]): Promise<EngineDepth[]> {
  const out: EngineDepth[] = [];
  engine.onDepth = (d) => out.push(d);
  for (const f of input) await engine.push(f.slice(), W, H);
  await engine.end();
  return out;
}

describe('round-robin queues', () => {
  it('between two heavy turns of one stream every other stream with work gets one turn', () => {
    const q = new RoundRobinQueues<{ heavy: boolean; tag: string }>();
    // Stream 1 floods: 4 windows of 3 messages each (the last heavy); stream 2 and 3 one window each, queued after.
    for (let w = 0; w < 4; w++) for (let m = 0; m < 3; m++) q.add(1, { heavy: m === 2, tag: `1:${w}` });
    for (const s of [2, 3]) for (let m = 0; m < 3; m++) q.add(s, { heavy: m === 2, tag: `${s}:0` });
    const heavy: string[] = [];
    for (let id = q.next(); id !== null; id = q.next()) {
      const item = q.take(id)!;
      if (item.heavy) heavy.push(item.tag);
      if (item.heavy || q.pending(id) === 0) q.endTurn(id);
    }
    assert.deepEqual(heavy, ['1:0', '2:0', '3:0', '1:1', '1:2', '1:3']);
  });

  it('a removed stream leaves with its queue; an idle stream keeps its place', () => {
    const q = new RoundRobinQueues<number>();
    q.add(1, 1);
    q.add(2, 2);
    q.add(2, 3);
    assert.deepEqual(q.remove(2), [2, 3]);
    assert.equal(q.next(), 1);
    q.take(1);
    assert.equal(q.next(), null);
  });
});

describe('engine share', () => {
  it('a stream counts on what the others leave, never less than 1/N', () => {
    let now = 0;
    const share = new EngineShare(10_000, () => now);
    share.add(1);
    assert.equal(share.shareOf(1), 1, 'alone: the whole worker');
    share.add(2);
    share.add(3);
    now = 10_000;
    // Over 10 s stream 2 kept the worker busy 2 s, stream 3 not at all.
    share.record(2, 2000);
    assert.ok(Math.abs(share.shareOf(1) - 0.8) < 1e-9);
    share.record(3, 7000);
    assert.ok(Math.abs(share.shareOf(1) - 1 / 3) < 1e-9, 'busy others: the equal split');
    now = 25_000;
    assert.equal(share.shareOf(1), 1, 'old work is forgotten');
    share.remove(2);
    share.remove(3);
    assert.equal(share.shareOf(1), 1);
  });
});

describe('shared resources', () => {
  it('one creation per key, disposed by the last user; a failed creation is forgotten', async () => {
    const r = new SharedResources();
    let created = 0;
    const disposed: number[] = [];
    const make = async () => ++created;
    const [a, b] = await Promise.all([r.acquire('k', make, (v) => void disposed.push(v)), r.acquire('k', make, (v) => void disposed.push(v))]);
    assert.equal(a.value, 1);
    assert.equal(b.value, 1);
    assert.equal(created, 1);
    assert.deepEqual([a.created, b.created], [true, false]);
    await a.release();
    await a.release();
    assert.deepEqual(disposed, []);
    await b.release();
    assert.deepEqual(disposed, [1]);
    assert.deepEqual(r.keys(), []);
    await assert.rejects(
      r.acquire(
        'bad',
        async () => {
          throw new Error('no pack');
        },
        () => {},
      ),
      /no pack/,
    );
    assert.deepEqual(r.keys(), [], 'a failed creation leaves nothing behind');
    const again = await r.acquire(
      'bad',
      async () => 5,
      () => {},
    );
    assert.equal(again.value, 5);
  });
});

describe('streams on one inference worker (models/tiny-random)', () => {
  it("a stream's depth is bit-identical alone and sharing the worker with another stream", async () => {
    const a = frames(14, 1);
    const b = frames(11, 2);
    const alone = await DepthEngine.open({ packDir: PACK, threads: 1, choices: { ...choices, seed: 5 }, maxInFlight: 64 });
    const ref = await collect(alone, a);
    await alone.close();
    assert.equal(ref.length, 14);

    const host = await EngineHost.start({ packDir: PACK, threads: 1 });
    try {
      const ea = await DepthEngine.onHost(host, { choices: { ...choices, seed: 5 }, maxInFlight: 64 });
      const eb = await DepthEngine.onHost(host, { choices: { ...choices, seed: 9, window: 5, overlap: 1 }, maxInFlight: 64, live: {} });
      assert.equal(host.streamCount, 2);
      const outA: EngineDepth[] = [];
      const outB: EngineDepth[] = [];
      ea.onDepth = (d) => outA.push(d);
      eb.onDepth = (d) => outB.push(d);
      // Interleaved, as two cameras would be.
      for (let i = 0; i < Math.max(a.length, b.length); i++) {
        if (i < a.length) await ea.push(a[i].slice(), W, H);
        if (i < b.length) await eb.push(b[i].slice(), W, H);
      }
      await Promise.all([ea.end(), eb.end()]);
      assert.equal(outB.length, 11);
      assert.ok(sameDepth(outA, ref), 'stream a: same bytes with and without stream b on the worker');
      await ea.close();
      await eb.close();
      assert.equal(host.streamCount, 0);
    } finally {
      await host.close();
    }
  });

  it('a stream waits for at most one window of a stream that queued many', async () => {
    const host = await EngineHost.start({ packDir: PACK, threads: 1 });
    try {
      const flood = await DepthEngine.onHost(host, { choices: { ...choices, seed: 1 }, maxInFlight: 1000 });
      const light = await DepthEngine.onHost(host, { choices: { ...choices, seed: 2 }, maxInFlight: 1000 });
      const order: string[] = [];
      host.onWindow = (id) => order.push(id === flood.streamId ? 'flood' : 'light');
      // The flood queues 5 windows' worth (6 + 4 x 4 frames) before the light stream queues one window.
      const pushes: Promise<void>[] = [];
      for (const f of frames(22, 3)) pushes.push(flood.push(f, W, H));
      for (const f of frames(6, 4)) pushes.push(light.push(f, W, H));
      await Promise.all(pushes);
      await Promise.all([flood.end(), light.end()]);
      assert.equal(order.filter((o) => o === 'flood').length, 5, order.join(' '));
      assert.ok(order.indexOf('light') <= 1, `the light stream's window ran after at most one flood window: ${order.join(' ')}`);
      await flood.close();
      await light.close();
    } finally {
      await host.close();
    }
  });

  it("one stream's failure in the worker fails that stream only", async () => {
    const host = await EngineHost.start({ packDir: PACK, threads: 1 });
    try {
      const bad = await DepthEngine.onHost(host, { choices, maxInFlight: 64 });
      const good = await DepthEngine.onHost(host, { choices, maxInFlight: 64 });
      const outGood: EngineDepth[] = [];
      good.onDepth = (d) => outGood.push(d);
      await bad.push(frames(1, 1)[0], W, H);
      // A frame of another size within one sequence is refused by the worker for that stream.
      await bad.push(new Uint8Array(32 * 32 * 3), 32, 32).catch(() => {});
      await assert.rejects(bad.end(), /frame size changed from 96x64 to 32x32/);
      await assert.rejects(bad.push(frames(1, 1)[0], W, H), /frame size changed/, 'a failed stream stays failed');
      for (const f of frames(8, 5)) await good.push(f, W, H);
      await good.end();
      assert.equal(outGood.length, 8, 'the other stream is served as before');
      assert.equal(host.error, null, 'the worker itself is fine');
      await bad.close();
      await good.close();
    } finally {
      await host.close();
    }
  });
});
