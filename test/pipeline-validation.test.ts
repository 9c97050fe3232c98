import { exitCodeFor } from '../src/util/errors.js';
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { z } from 'zod';

import { loadPipelineFile, parsePipeline, type LoadOptions } from '../src/graph/pipeline-file.js';
import { PipelineError } from '../src/graph/pipeline-error.js';
import { NodeRegistry } from '../src/graph/registry.js';
import { defineNode } from '../src/graph/node-kind.js';
import { BUILTIN_NODES, builtinRegistry } from '../src/nodes/index.js';
import { buildProgram } from '../src/cli/main.js';
import { ensureBuilt } from './helpers/build-cli.js';

const ROOT = resolve(import.meta.dirname, '..');
const CLI = join(ROOT, 'bin', 'depthcrafter-live.js');

// Small node kinds for validation only (they are never run).
const countSrc = defineNode({
  kind: 't-count',
  role: 'source',
  description: 'test source',
  inputs: {},
  outputs: { video: 'video' },
  options: z.object({ count: z.number().int().min(1), label: z.string().default('x') }).strict(),
  create: () => ({}),
});
const videoSink = defineNode({
  kind: 't-video-sink',
  role: 'sink',
  description: 'takes video',
  inputs: { in: 'video' },
  outputs: {},
  options: z.object({}).strict(),
  create: () => ({}),
});
const depthSink = defineNode({
  kind: 't-depth-sink',
  role: 'sink',
  description: 'takes depth',
  inputs: { in: 'depth' },
  outputs: {},
  options: z.object({}).strict(),
  create: () => ({}),
});
const pass = defineNode({
  kind: 't-pass',
  role: 'transform',
  description: 'pass-through',
  inputs: { in: 'any' },
  outputs: { out: 'any' },
  options: z.object({}).strict(),
  create: () => ({}),
});
const twoIn = defineNode({
  kind: 't-two-in',
  role: 'sink',
  description: 'two inputs',
  inputs: { left: 'video', right: 'video' },
  outputs: {},
  options: z.object({}).strict(),
  create: () => ({}),
});

function registry(): NodeRegistry {
  return new NodeRegistry([...BUILTIN_NODES, countSrc, videoSink, depthSink, pass, twoIn] as never[]);
}

const FILE = 'pipelines/my-test.yaml';

/** Parse and return the PipelineError (failing the test when there is none). */
function mistake(yaml: string, opts: LoadOptions = {}): PipelineError {
  try {
    parsePipeline(yaml, FILE, registry(), { env: {}, ...opts });
  } catch (e) {
    assert.ok(e instanceof PipelineError, `expected a PipelineError, got ${String(e)}`);
    assert.equal(e.file, FILE);
    assert.ok(e.message.startsWith(`${FILE}: `), `message names the file: ${e.message}`);
    assert.equal(exitCodeFor(e), 2, 'a broken pipeline file is a user error: exit code 2');
    return e;
  }
  assert.fail('the pipeline was accepted');
}

function assertNames(e: PipelineError, node: string | undefined, field: string | undefined, detail: RegExp): void {
  assert.equal(e.node, node, e.message);
  assert.equal(e.field, field, e.message);
  if (node !== undefined) assert.ok(e.message.includes(`node "${node}"`), `message names the node: ${e.message}`);
  if (field !== undefined) assert.ok(e.message.includes(`field "${field}"`), `message names the field: ${e.message}`);
  assert.match(e.message, detail);
}

const GOOD = `
name: good
server: { enabled: false }
nodes:
  src:
    kind: t-count
    options: { count: 3 }
  mid:
    kind: t-pass
  out:
    kind: t-video-sink
edges:
  - from: src.video
    to: mid.in
  - from: mid
    to: out.in
    queue: { capacity: 2, policy: block }
`;

describe('pipeline validation: one test per kind of mistake', () => {
  test('the reference pipeline is valid (so every mistake below is the only one)', () => {
    const p = parsePipeline(GOOD, FILE, registry(), { env: {} });
    assert.deepEqual(
      p.nodes.map((n) => n.name),
      ['src', 'mid', 'out'],
    );
    assert.deepEqual(
      p.edges.map((e) => e.label),
      ['src.video->mid.in', 'mid.out->out.in'],
    );
    assert.equal(p.edges[0].policy, 'drop-oldest');
    assert.equal(p.edges[0].capacity, 8);
    assert.equal(p.edges[1].policy, 'block');
    assert.equal(p.edges[1].capacity, 2);
    assert.deepEqual(p.nodes[0].options, { count: 3, label: 'x' });
    assert.equal(p.name, 'good');
  });

  test('invalid YAML names the line', () => {
    const yaml = ['name: bad', 'nodes:', '  src:', '    kind: t-count', '    options: { count: 3', 'edges: []', ''].join('\n');
    const e = mistake(yaml);
    assert.match(e.message, /invalid YAML at line \d+/);
    const line = Number(/line (\d+)/.exec(e.message)![1]);
    assert.ok(line >= 5 && line <= 6, `line ${line} should point at the unclosed flow mapping (line 5)`);
  });

  test('duplicate keys are a YAML mistake too', () => {
    const e = mistake('nodes:\n  a: { kind: t-count, options: { count: 1 } }\n  a: { kind: t-count, options: { count: 1 } }\n');
    assert.match(e.message, /invalid YAML at line 3/);
  });

  test('unknown node kind, with "did you mean" and the line', () => {
    const e = mistake(GOOD.replace('kind: t-pass', 'kind: t-pas'));
    assertNames(e, 'mid', 'kind', /unknown node kind "t-pas": did you mean "t-pass"\? \(known kinds: .*t-pass.*\) \(line 9\)$/);
    assert.equal(e.line, 9);
    assert.doesNotMatch(mistake(GOOD.replace('kind: t-pass', 'kind: zzzzzz')).message, /did you mean/, 'no guess when nothing is close');
  });

  test('unknown option', () => {
    const e = mistake(GOOD.replace('{ count: 3 }', '{ count: 3, colour: red }'));
    assert.equal(e.node, 'src');
    assert.ok(e.field?.startsWith('options'), e.message);
    assert.match(e.message, /node "src", field "options[^"]*": unknown option "colour" \(options: count, label\) \(kind t-count\) \(line 7\)/);
    const typo = mistake(GOOD.replace('{ count: 3 }', '{ count: 3, lable: y }'));
    assert.match(typo.message, /unknown option "lable": did you mean "label"\? \(kind t-count\)/);
    assert.match(mistake(GOOD.replace('edges:', 'edgs:')).message, /unknown option "edgs": did you mean "edges"\?/);
  });

  test('ill-typed option (a string for a number)', () => {
    const e = mistake(GOOD.replace('{ count: 3 }', '{ count: "ten" }'));
    assertNames(e, 'src', 'options.count', /expected number, got string "ten"/);
  });

  test('ill-typed option on a builtin kind (width as text)', () => {
    const e = mistake('nodes:\n  source: { kind: test-pattern, options: { width: wide } }\n  ws: { kind: websocket }\nedges:\n  - { from: source, to: ws }\n');
    assertNames(e, 'source', 'options.width', /expected number, got string "wide" \(kind test-pattern\)/);
  });

  test('missing required option', () => {
    const e = mistake(GOOD.replace('options: { count: 3 }', 'options: { label: y }'));
    assertNames(e, 'src', 'options.count', /required number is missing/);
  });

  test('edge to a missing node', () => {
    const e = mistake(GOOD.replace('to: out.in', 'to: ghost.in'));
    assertNames(e, undefined, 'edges[1].to', /edge refers to a missing node "ghost" \(nodes: src, mid, out\)/);
  });

  test('edge to a missing port', () => {
    const e = mistake(GOOD.replace('to: mid.in', 'to: mid.input'));
    assertNames(e, 'mid', 'edges[0].to', /has no input port "input" \(input ports: in\)/);
  });

  test('edge from a missing output port', () => {
    const e = mistake(GOOD.replace('from: src.video', 'from: src.depth'));
    assertNames(e, 'src', 'edges[0].from', /has no output port "depth" \(output ports: video\)/);
  });

  test('a bare node name is ambiguous when the node has several inputs', () => {
    const e = mistake(`
nodes:
  a: { kind: t-count, options: { count: 1 } }
  b: { kind: t-count, options: { count: 1 } }
  two: { kind: t-two-in }
edges:
  - { from: a, to: two }
  - { from: b, to: two.right }
`);
    assertNames(e, 'two', 'edges[0].to', /several input ports \(left, right\): write two\.PORT/);
  });

  test('a cycle', () => {
    const e = mistake(`
nodes:
  src: { kind: t-count, options: { count: 1 } }
  a: { kind: t-pass }
  b: { kind: t-pass }
  join: { kind: t-two-in }
edges:
  - { from: src, to: join.left }
  - { from: a.out, to: b.in }
  - { from: b.out, to: a.in }
  - { from: a.out, to: join.right }
`);
    // "join" is downstream of the cycle, not on it.
    assertNames(e, 'a', 'edges', /the edges form a cycle through nodes "a", "b"; a pipeline must be acyclic \(line \d+\)$/);
  });

  test('an output type that does not fit the input type (video -> depth)', () => {
    const e = mistake(`
nodes:
  src: { kind: t-count, options: { count: 1 } }
  d: { kind: t-depth-sink }
edges:
  - { from: src.video, to: d.in }
`);
    assertNames(
      e,
      'd',
      'edges[0].to',
      /edge src\.video -> d\.in: output "video" carries video frames but input "in" of node "d" \(t-depth-sink\) takes depth frames/,
    );
  });

  test('an "any" output (a pass-through) may feed a typed input; packets are checked at run time', () => {
    const p = parsePipeline(GOOD, FILE, registry(), { env: {} });
    assert.equal(p.edges[1].label, 'mid.out->out.in');
    // The builtin stride between a video source and a typed input is the common case.
    const q = parsePipeline(
      'nodes:\n  src: { kind: test-pattern }\n  s: { kind: stride }\n  v: { kind: t-video-sink }\nedges:\n  - { from: src, to: s }\n  - { from: s, to: v }\n',
      FILE,
      registry(),
      { env: {} },
    );
    assert.deepEqual(
      q.nodes.map((n) => n.name),
      ['src', 's', 'v'],
    );
  });

  test('an unconnected input', () => {
    const e = mistake(GOOD.replace(/ {2}- from: mid\n {4}to: out.in\n {4}queue: \{ capacity: 2, policy: block \}\n/, ''));
    assertNames(e, 'out', 'edges', /input "in" is not connected: add an edge to out\.in/);
  });

  test('two edges into one input', () => {
    const e = mistake(`
nodes:
  a: { kind: t-count, options: { count: 1 } }
  b: { kind: t-count, options: { count: 1 } }
  sink: { kind: t-video-sink }
edges:
  - { from: a, to: sink.in }
  - { from: b, to: sink.in }
`);
    assertNames(e, 'sink', 'edges[1].to', /input "in" is fed by two edges \(edges\[0\] and edges\[1\]\)/);
  });

  test('a missing environment variable with no default', () => {
    const e = mistake(GOOD.replace('{ count: 3 }', '{ count: 3, label: "${DCL_TEST_UNSET_VAR}" }'));
    assertNames(e, 'src', 'options.label', /environment variable DCL_TEST_UNSET_VAR is not set/);
    // Inside a longer string too.
    const e2 = mistake(GOOD.replace('{ count: 3 }', '{ count: 3, label: "cam-${DCL_TEST_UNSET_VAR}-x" }'));
    assertNames(e2, 'src', 'options.label', /DCL_TEST_UNSET_VAR/);
    // An empty variable counts as unset.
    const e3 = mistake(GOOD.replace('{ count: 3 }', '{ count: "${DCL_EMPTY}" }'), { env: { DCL_EMPTY: '' } });
    assertNames(e3, 'src', 'options.count', /DCL_EMPTY is not set/);
  });

  test('a bad queue policy and a bad server port name the field', () => {
    const e = mistake(GOOD.replace('policy: block', 'policy: leaky'));
    assert.equal(e.field, 'edges.1.queue.policy', e.message);
    assert.ok(e.message.includes('field "edges.1.queue.policy"'), e.message);
    const e2 = mistake(GOOD.replace('server: { enabled: false }', 'server: { port: 70000 }'));
    assert.equal(e2.field, 'server.port', e2.message);
  });

  test('a --set override for a node that does not exist', () => {
    const e = mistake(GOOD, { overrides: ['nosuch.count=3'] });
    assertNames(e, 'nosuch', undefined, /--set "nosuch\.count=3": no node named "nosuch"/);
  });

  test('a --set override without "="', () => {
    const e = mistake(GOOD, { overrides: ['src.count'] });
    assert.match(e.message, /--set "src\.count" must look like node\.option=value/);
  });

  test('an option made ill-typed by --set names the node and field', () => {
    const e = mistake(GOOD, { overrides: ['src.count=many'] });
    assertNames(e, 'src', 'options.count', /expected number, got string "many"/);
  });
});

describe('pipeline validation: accepted files', () => {
  test('${VAR:-default} takes the YAML type of the text (a number)', () => {
    const yaml = GOOD.replace('{ count: 3 }', '{ count: "${DCL_COUNT:-12}", label: "cam-${DCL_NAME:-front}" }').replace(
      'server: { enabled: false }',
      'server: { enabled: "${DCL_SERVER:-false}", port: "${DCL_PORT:-0}" }',
    );
    const p = parsePipeline(yaml, FILE, registry(), { env: {} });
    assert.deepEqual(p.nodes[0].options, { count: 12, label: 'cam-front' });
    assert.equal(p.server.port, 0);
    assert.equal(p.server.enabled, false);

    const q = parsePipeline(yaml, FILE, registry(), { env: { DCL_COUNT: '33', DCL_NAME: 'rear', DCL_PORT: '9100', DCL_SERVER: 'true' } });
    assert.deepEqual(q.nodes[0].options, { count: 33, label: 'cam-rear' });
    assert.equal(typeof (q.nodes[0].options as { count: unknown }).count, 'number');
    assert.equal(q.server.port, 9100);
    assert.equal(q.server.enabled, true);
  });

  test('--set overrides are typed: source.width=640 is the number 640; server.port=9000', () => {
    const file = join(ROOT, 'pipelines', 'test-pattern.yaml');
    const p = loadPipelineFile(file, builtinRegistry(), {
      overrides: ['source.width=640', 'server.port=9000', 'source.live=false', 'source.pattern=snow'],
      env: {},
    });
    const o = p.nodes.find((n) => n.name === 'source')!.options as Record<string, unknown>;
    assert.equal(o.width, 640);
    assert.equal(typeof o.width, 'number');
    assert.equal(o.live, false);
    assert.equal(o.pattern, 'snow');
    assert.equal(p.server.port, 9000);
    assert.equal(p.name, 'test-pattern');
    // Without overrides the file's values (and env defaults) apply.
    const d = loadPipelineFile(file, builtinRegistry(), { env: {} });
    assert.equal((d.nodes.find((n) => n.name === 'source')!.options as Record<string, unknown>).width, 320);
    assert.equal(d.server.port, 8080);
  });

  test('an override on a node that had no options block', () => {
    const p = parsePipeline(GOOD, FILE, registry(), { env: {}, overrides: ['src.count=7'] });
    assert.deepEqual(p.nodes[0].options, { count: 7, label: 'x' });
  });

  test('loadPipelineFile on a file that does not exist names the file', () => {
    const missing = join(tmpdir(), 'dcl-no-such-dir', 'nope.yaml');
    assert.throws(
      () => loadPipelineFile(missing, registry()),
      (e: unknown) => e instanceof PipelineError && e.message.startsWith(`${missing}: cannot read the file (ENOENT)`),
    );
  });

  // Values for the environment variables that shipped pipelines reference without a default.
  const SAMPLE_ENV: Record<string, string> = {
    RTSP_URL: 'rtsp://127.0.0.1:8554/test',
    VIDEO: '/tmp/dcl-sample.mp4',
    VIDEO_FILE: '/tmp/dcl-sample.mp4',
    INPUT: '/tmp/dcl-sample.mp4',
    OUTPUT: '/tmp/dcl-out',
    OUT: '/tmp/dcl-out',
    OUT_DIR: '/tmp/dcl-out',
    MODEL_PACK: join(ROOT, 'models'),
    PACK: join(ROOT, 'models'),
    DEVICE: '/dev/video0',
    CAMERA: '/dev/video0',
  };

  test('every file in pipelines/ validates with the builtin registry', () => {
    const dir = join(ROOT, 'pipelines');
    const files = readdirSync(dir)
      .filter((f) => /\.ya?ml$/.test(f))
      .sort();
    assert.ok(files.includes('test-pattern.yaml'), `pipelines/ should hold test-pattern.yaml (found ${files.join(', ')})`);
    for (const f of files) {
      const path = join(dir, f);
      const env: NodeJS.ProcessEnv = { ...SAMPLE_ENV };
      // Any other variable referenced without a default gets a placeholder, so only real mistakes fail.
      for (const m of readFileSync(path, 'utf8').matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g)) env[m[1]] ??= `placeholder-${m[1].toLowerCase()}`;
      let p;
      try {
        p = loadPipelineFile(path, builtinRegistry(), { env });
      } catch (e) {
        assert.fail(`${f} does not validate: ${(e as Error).message}`);
      }
      assert.ok(p.nodes.length > 0, `${f} has nodes`);
    }
  });
});

function cli(args: string[], env: NodeJS.ProcessEnv = {}): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 30_000,
    env: { ...process.env, CI: '1', ...env },
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('CLI validate, --help, --version', () => {
  let tmp: string;
  before(
    () => {
      ensureBuilt();
      tmp = mkdtempSync(join(tmpdir(), 'dcl-validate-'));
    },
    { timeout: 120_000 },
  );
  after(() => rmSync(tmp, { recursive: true, force: true }));

  test('a bad file exits 2 and stderr names the file, node and field', () => {
    const bad = join(tmp, 'bad.yaml');
    writeFileSync(bad, readFileSync(join(ROOT, 'pipelines', 'test-pattern.yaml'), 'utf8').replace('width: 320', 'width: "wide"'));
    const r = cli(['validate', bad]);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /^error: /);
    assert.ok(r.stderr.includes(bad), r.stderr);
    assert.ok(r.stderr.includes('node "source"'), r.stderr);
    assert.ok(r.stderr.includes('field "options.width"'), r.stderr);
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace for a user mistake');
  });

  test('an unknown kind and a missing env variable also exit 2', () => {
    const bad = join(tmp, 'kind.yaml');
    writeFileSync(bad, 'nodes:\n  cam:\n    kind: camera-x\n');
    const r = cli(['validate', bad]);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /node "cam", field "kind": unknown node kind "camera-x"/);

    const env = join(tmp, 'env.yaml');
    writeFileSync(
      env,
      'nodes:\n  source: { kind: test-pattern, options: { streamId: "${DCL_CLI_UNSET}" } }\n  ws: { kind: websocket }\nedges:\n  - { from: source, to: ws }\n',
    );
    const r2 = cli(['validate', env], { DCL_CLI_UNSET: '' });
    assert.equal(r2.status, 2, r2.stderr);
    assert.match(r2.stderr, /node "source", field "options\.streamId": environment variable DCL_CLI_UNSET is not set/);
  });

  test('pipelines/test-pattern.yaml validates: exit 0', () => {
    const r = cli(['validate', 'pipelines/test-pattern.yaml']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /pipelines\/test-pattern\.yaml: ok \(2 nodes, 1 edges\)/);
  });

  test('validate --set applies typed overrides (and a bad one exits 2)', () => {
    const ok = cli(['validate', 'pipelines/test-pattern.yaml', '--set', 'source.width=640', '--set', 'server.port=9000']);
    assert.equal(ok.status, 0, ok.stderr);
    const bad = cli(['validate', 'pipelines/test-pattern.yaml', '--set', 'source.width=640px']);
    assert.equal(bad.status, 2, bad.stderr);
    assert.match(bad.stderr, /node "source", field "options\.width": expected number, got string "640px"/);
  });

  test('a missing file exits 2', () => {
    const r = cli(['validate', join(tmp, 'absent.yaml')]);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /absent\.yaml: cannot read the file \(ENOENT\)/);
  });

  test('an unknown command and a missing argument exit 2', () => {
    assert.equal(cli(['frobnicate']).status, 2);
    assert.equal(cli(['validate']).status, 2);
  });

  test('--help on the program and on every command exits 0', () => {
    const top = cli(['--help']);
    assert.equal(top.status, 0, top.stderr);
    assert.match(top.stdout, /Usage: depthcrafter-live/);
    const names = buildProgram().commands.map((c) => c.name());
    assert.ok(names.includes('run') && names.includes('validate'), `commands: ${names.join(', ')}`);
    for (const name of names) {
      assert.ok(top.stdout.includes(name), `top-level help lists ${name}`);
      const r = cli([name, '--help']);
      assert.equal(r.status, 0, `${name} --help: ${r.stderr}`);
      assert.match(r.stdout, new RegExp(`Usage: depthcrafter-live ${name}`));
    }
  });

  test('--version and -v print the package version', () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    for (const flag of ['--version', '-v']) {
      const r = cli([flag]);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout.trim(), pkg.version);
    }
  });
});

describe('input paths in a pipeline file', () => {
  test('resolve next to the file first, then the current folder, then (packs) the project and its models/', () => {
    const dir = mkdtempSync(join(tmpdir(), 'dcl-paths-'));
    try {
      mkdirSync(join(dir, 'frames-here'));
      mkdirSync(join(dir, 'mypack'));
      const file = join(dir, 'copied.yaml');
      const text = (model: string, frames: string) =>
        `nodes:\n  src: { kind: frames, options: { dir: ${frames} } }\n  depth: { kind: depth, options: { model: ${model} } }\n  ws: { kind: websocket }\nedges:\n  - { from: src, to: depth }\n  - { from: depth, to: ws }\n`;
      const opt = (p: ReturnType<typeof parsePipeline>, n: string) => p.nodes.find((x) => x.name === n)!.options as Record<string, unknown>;
      const next = parsePipeline(text('mypack', 'frames-here'), file, builtinRegistry(), { env: {} });
      assert.equal(opt(next, 'depth').model, join(dir, 'mypack'), 'a pack next to the pipeline file');
      assert.equal(opt(next, 'src').dir, join(dir, 'frames-here'), 'a folder next to the pipeline file');
      const bare = parsePipeline(text('synthetic-small', 'frames-here'), file, builtinRegistry(), { env: {} });
      assert.equal(opt(bare, 'depth').model, join(ROOT, 'models', 'synthetic-small'), "a bare pack name is one of the project's models/");
      const cwdRelative = parsePipeline(text('models/tiny-random', 'frames-here'), file, builtinRegistry(), { env: {} });
      assert.equal(opt(cwdRelative, 'depth').model, resolve('models/tiny-random'), 'the current folder as before');
      const missing = parsePipeline(text('nowhere', '/abs/frames'), file, builtinRegistry(), { env: {} });
      assert.equal(opt(missing, 'depth').model, 'nowhere', 'left as written when nothing exists (the checks name it)');
      assert.equal(opt(missing, 'src').dir, '/abs/frames');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
