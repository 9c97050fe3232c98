import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join, resolve } from 'node:path';
import fc from 'fast-check';
import { parse as parseYaml, stringify } from 'yaml';
import { WebSocket } from 'ws';
import { parsePipeline } from '../src/graph/pipeline-file.js';
import { PipelineError } from '../src/graph/pipeline-error.js';
import { checkPipeline } from '../src/graph/check.js';
import { builtinRegistry } from '../src/nodes/index.js';
import { cliFixture, serving, startCli, TEST_PATTERN_PIPELINE } from './helpers/cli-process.js';
import { until, within } from './helpers/wait.js';

// Property-based robustness (seeded, repeatable): pipeline files mutated from the shipped ones
// and WebSocket/HTTP requests and messages built to be wrong. The invariants are the user's:
// a clear error naming the file (never a stack trace or another exception), fast, bounded; a
// server that keeps serving its well-behaved subscriber.

const ROOT = resolve(import.meta.dirname, '..');
const SEED = Number(process.env.DCL_FUZZ_SEED ?? 20261201);
const RUNS = Number(process.env.DCL_FUZZ_RUNS ?? 3000);
const ENV = { RTSP_URL: 'rtsp://127.0.0.1:8554/test', VIDEO: '/tmp/dcl-fuzz-missing.mp4' };
const shipped = readdirSync(join(ROOT, 'pipelines'))
  .filter((f) => f.endsWith('.yaml'))
  .map((f) => readFileSync(join(ROOT, 'pipelines', f), 'utf8'));
const scalar = fc.oneof(
  fc.integer({ min: -2, max: 70000 }),
  fc.double({ noNaN: false }),
  fc.boolean(),
  fc.constant(null),
  fc.string({ maxLength: 12 }),
  fc.constantFrom(
    'auto',
    'linear',
    'block',
    'drop-oldest',
    '/ws',
    'rtsp://x',
    '${NOPE}',
    '${PORT:-1}',
    '.inf',
    '1e308',
    '__proto__',
    'models/synthetic-small',
    '/dev/null',
  ),
);

/** One random edit of a pipeline document: replace, delete or add a value somewhere. */
const edit = fc.record({
  pathPick: fc.array(fc.nat(), { minLength: 1, maxLength: 5 }),
  op: fc.constantFrom('replace', 'delete', 'add', 'array', 'object'),
  value: scalar,
  key: fc.constantFrom(
    'kind',
    'options',
    'from',
    'to',
    'queue',
    'capacity',
    'policy',
    'window',
    'overlap',
    'stride',
    'fill',
    'path',
    'fps',
    'x',
    'nodes',
    'edges',
    'server',
  ),
});

function applyEdit(doc: unknown, e: { pathPick: number[]; op: string; value: unknown; key: string }): unknown {
  const root = structuredClone(doc) as Record<string, unknown>;
  let cur: unknown = root;
  for (const pick of e.pathPick) {
    if (cur === null || typeof cur !== 'object') break;
    const keys = Object.keys(cur as object);
    if (keys.length === 0) break;
    const k = keys[pick % keys.length];
    const next = (cur as Record<string, unknown>)[k];
    if (next === null || typeof next !== 'object' || pick % 3 === 0) {
      const obj = cur as Record<string, unknown>;
      if (e.op === 'replace') obj[k] = e.value;
      else if (e.op === 'delete') delete obj[k];
      else if (e.op === 'add') obj[e.key] = e.value;
      else if (e.op === 'array') obj[k] = [e.value, e.value];
      else obj[k] = { [e.key]: e.value };
      return root;
    }
    cur = next;
  }
  return root;
}

describe('pipeline files: mutated shipped files and garbage', () => {
  test(`${RUNS} mutated files: a Pipeline or one PipelineError naming the file, in under a second each`, async () => {
    let accepted = 0;
    let refused = 0;
    const base = shipped.map((t) => parseYaml(t) as unknown);
    await fc.assert(
      fc.asyncProperty(fc.nat({ max: base.length - 1 }), fc.array(edit, { minLength: 1, maxLength: 4 }), async (which, edits) => {
        let doc: unknown = base[which];
        for (const e of edits) doc = applyEdit(doc, e);
        const text = stringify(doc);
        const t0 = performance.now();
        try {
          const p = parsePipeline(text, 'fuzz.yaml', builtinRegistry(), { env: ENV });
          await checkPipeline(p);
          accepted++;
        } catch (err) {
          if (!(err instanceof PipelineError)) throw new Error(`not a PipelineError: ${String(err)}\n--- file:\n${text}`, { cause: err });
          assert.ok(err.message.startsWith('fuzz.yaml: '), err.message);
          assert.doesNotMatch(err.message, /\n\s+at |TypeError|ReferenceError|undefined is not/, err.message);
          assert.ok(err.message.length < 2000, `message of ${err.message.length} characters`);
          refused++;
        }
        assert.ok(performance.now() - t0 < 1000, `took ${(performance.now() - t0).toFixed(0)} ms:\n${text}`);
      }),
      { seed: SEED, numRuns: RUNS },
    );
    console.log(`fuzz pipeline files: ${RUNS} cases, ${accepted} accepted, ${refused} refused with a PipelineError, 0 other outcomes`);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });

  test(`${RUNS} random texts: a Pipeline or a PipelineError`, () => {
    const text = fc.oneof(
      fc.string({ maxLength: 200 }),
      fc
        .array(
          fc.constantFrom(
            'nodes:',
            'edges:',
            '  a: { kind: test-pattern }',
            '- { from: a, to: b }',
            '&x',
            '*x',
            '<<: *x',
            '{',
            '[',
            ':',
            '- ',
            '  ',
            '\n',
            '"',
            "'",
            '!!binary',
            '%YAML 1.2',
            '---',
          ),
          { maxLength: 40 },
        )
        .map((xs) => xs.join('\n')),
    );
    fc.assert(
      fc.property(text, (t) => {
        try {
          parsePipeline(t, 'garbage.yaml', builtinRegistry(), { env: {} });
        } catch (err) {
          if (!(err instanceof PipelineError)) throw new Error(`not a PipelineError: ${String(err)}\n--- text:\n${t}`, { cause: err });
          assert.ok(err.message.startsWith('garbage.yaml: '));
        }
      }),
      { seed: SEED, numRuns: RUNS },
    );
  });
});

describe('HTTP and WebSocket: hostile requests and messages against the real CLI', () => {
  const fx = cliFixture('dcl-fuzz-', TEST_PATTERN_PIPELINE);

  test('400 hostile upgrades, queries and messages: the server stays up and a well-behaved subscriber keeps its frames', async () => {
    const run = startCli(['run', fx.file], { DCL_TOKEN: 't0ken' });
    fx.children.push(run);
    const { ws, port } = await serving(run);
    const good = new WebSocket(`${ws}?token=t0ken`);
    let frames = 0;
    good.on('message', (_d, bin) => bin && frames++);
    await within(5000, 'open', new Promise((r, j) => good.once('open', r).once('error', j)));
    await until(() => frames >= 10, 10_000, 'frames');

    const header = fc.tuple(
      fc.constantFrom('Origin', 'Host', 'Authorization', 'Sec-WebSocket-Version', 'Sec-WebSocket-Key', 'X-Long', 'Upgrade'),
      fc.oneof(
        fc.string({ maxLength: 40 }),
        fc.nat({ max: 20000 }).map((n) => 'a'.repeat(n)),
      ),
    );
    const request = fc.record({
      path: fc.oneof(
        fc.constant('/ws'),
        fc.constant('/'),
        fc.constant('/metrics'),
        fc.string({ maxLength: 30 }).map((s) => `/${encodeURIComponent(s)}`),
      ),
      query: fc.array(fc.tuple(fc.constantFrom('format', 'rgb', 'rgbFormat', 'colormap', 'gt', 'token', 'x'), fc.string({ maxLength: 20 })), { maxLength: 4 }),
      headers: fc.array(header, { maxLength: 3 }),
      upgrade: fc.boolean(),
      leave: fc.constantFrom('reset', 'close', 'read'),
    });
    const message = fc.oneof(
      fc.string({ maxLength: 200 }),
      fc.json(),
      fc.uint8Array({ maxLength: 300 }),
      fc.constant('{"type":"subscribe","format":"nope"}'),
      fc.nat({ max: 9000 }).map((n) => JSON.stringify({ type: 'subscribe', [`k${'x'.repeat(n)}`]: 1 })),
    );

    const send = (r: { path: string; query: Array<[string, string]>; headers: Array<[string, string | number]>; upgrade: boolean; leave: string }) =>
      new Promise<void>((done) => {
        const q = r.query.map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join('&');
        const lines = [`GET ${r.path}${q ? `?${q}` : ''} HTTP/1.1`, `Host: 127.0.0.1:${port}`];
        if (r.upgrade) lines.push('Upgrade: websocket', 'Connection: Upgrade', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Version: 13');
        for (const [k, v] of r.headers) lines.push(`${k}: ${String(v).replace(/[\r\n]/g, ' ')}`);
        const s = connect(port, '127.0.0.1', () => {
          s.write(`${lines.join('\r\n')}\r\n\r\n`);
          if (r.leave === 'reset') setImmediate(() => s.resetAndDestroy());
          else if (r.leave === 'close') setImmediate(() => s.destroy());
          else setTimeout(() => s.destroy(), 50);
        });
        s.on('error', () => {});
        s.on('close', () => done());
      });
    const before = frames;
    const t0 = performance.now();
    await fc.assert(
      fc.asyncProperty(request, async (r) => send(r)),
      { seed: SEED, numRuns: 300 },
    );
    // Messages from connected subscribers: bad ones are closed, the server goes on.
    await fc.assert(
      fc.asyncProperty(message, async (m) => {
        const c = new WebSocket(`${ws}?token=t0ken`);
        c.on('error', () => {});
        await new Promise<void>((r) => c.once('open', () => r()).once('error', () => r()));
        if (c.readyState === c.OPEN) c.send(m as string | Uint8Array);
        await new Promise((r) => setTimeout(r, 5));
        c.terminate();
      }),
      { seed: SEED, numRuns: 100 },
    );
    const seconds = (performance.now() - t0) / 1000;
    const rate = (frames - before) / seconds;
    await until(() => frames >= before + 30, 10_000, 'frames after the fuzzing');
    const health = await fetch(`http://127.0.0.1:${port}/healthz`);
    assert.equal(health.status, 200);
    assert.equal(run.child.exitCode, null, run.stderr.slice(-3000));
    console.log(
      `fuzz HTTP/WebSocket: 400 cases in ${seconds.toFixed(1)} s; the good subscriber got ${frames - before} frames (${rate.toFixed(1)} fps) meanwhile, 0 crashes`,
    );
    assert.ok(rate > 10, `the good subscriber kept getting frames (${rate.toFixed(1)} fps of 30)`);
    good.close();
    run.child.kill('SIGTERM');
    assert.equal((await within(10_000, 'exit', run.exit)).code, 0);
  });
});
