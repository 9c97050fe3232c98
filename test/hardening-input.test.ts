import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { parsePipeline } from '../src/graph/pipeline-file.js';
import { PipelineError } from '../src/graph/pipeline-error.js';
import { builtinRegistry } from '../src/nodes/index.js';
import { hostAllowed } from '../src/server/http-hub.js';
import { checkPipeline } from '../src/graph/check.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// Pipeline-file defects a careless user or a hostile file could hit (hardening issue, items 6, 7, 10).

const RTSP = `
nodes:
  cam:
    kind: rtsp
    options:
      url: rtsp://cam.local/s
      user: \${RTSP_USER}
      password: \${RTSP_PASSWORD}
  ws: { kind: websocket }
edges:
  - { from: cam, to: ws }
`;

function pipelineError(f: () => unknown): PipelineError {
  try {
    f();
  } catch (e) {
    assert.ok(e instanceof PipelineError, `a PipelineError, got ${String(e)}`);
    return e;
  }
  assert.fail('no error');
}

describe('values from the environment and --set keep their text where a string is wanted', () => {
  test('a numeric password, a user called "true", a hex-looking password', () => {
    for (const [user, password] of [
      ['admin', '604791'],
      ['true', '0x1F'],
      ['007', '1e5'],
    ]) {
      const p = parsePipeline(RTSP, 'cam.yaml', builtinRegistry(), { env: { RTSP_USER: user, RTSP_PASSWORD: password } });
      const o = p.nodes.find((n) => n.name === 'cam')!.options as { user: string; password: string };
      assert.equal(o.password, password);
      assert.equal(o.user, user);
    }
    const q = parsePipeline(RTSP, 'cam.yaml', builtinRegistry(), { env: { RTSP_USER: 'a', RTSP_PASSWORD: 'b' }, overrides: ['cam.password=123456'] });
    assert.equal((q.nodes.find((n) => n.name === 'cam')!.options as { password: string }).password, '123456');
  });
  test('numbers from the environment still become numbers where numbers are wanted', () => {
    const p = parsePipeline(
      `server:\n  port: \${PORT}\nnodes:\n  src:\n    kind: test-pattern\n    options:\n      width: \${W}\n  ws: { kind: websocket }\nedges:\n  - { from: src, to: ws }\n`,
      'p.yaml',
      builtinRegistry(),
      { env: { PORT: '9100', W: '320' } },
    );
    assert.equal(p.server.port, 9100);
    assert.equal((p.nodes.find((n) => n.name === 'src')!.options as { width: number }).width, 320);
  });
  test('an ill-typed value from the environment is named but not shown; long values are cut', () => {
    const e = pipelineError(() =>
      parsePipeline(
        `nodes:\n  src:\n    kind: test-pattern\n    options:\n      width: \${W}\n  ws: { kind: websocket }\nedges:\n  - { from: src, to: ws }\n`,
        'p.yaml',
        builtinRegistry(),
        { env: { W: 'hunter2' } },
      ),
    );
    assert.match(e.message, /field "options\.width": expected number, got string \(the value comes from the environment and is not shown\)/);
    assert.doesNotMatch(e.message, /hunter2/);
    const huge = 'x'.repeat(5_000_000);
    const f = pipelineError(() => parsePipeline(`nodes:\n  src: { kind: ${huge} }\n`, 'p.yaml', builtinRegistry(), { env: {} }));
    assert.ok(f.message.length < 1000, `message of ${f.message.length} characters`);
    const g = pipelineError(() =>
      parsePipeline(
        `nodes:\n  src: { kind: test-pattern, options: { width: '${huge}' } }\n  ws: { kind: websocket }\nedges:\n  - { from: src, to: ws }\n`,
        'p.yaml',
        builtinRegistry(),
        { env: {} },
      ),
    );
    assert.ok(g.message.length < 1000, `message of ${g.message.length} characters`);
  });
});

describe('hostile pipeline files', () => {
  test('40,000 keys: refused or parsed in well under the 30 s the quadratic key check took', () => {
    const keys = Array.from({ length: 40_000 }, (_, i) => `  k${i}: 1`).join('\n');
    const t0 = performance.now();
    const e = pipelineError(() => parsePipeline(`name: big\nx:\n${keys}\nnodes: {}\n`, 'big.yaml', builtinRegistry(), { env: {} }));
    const ms = performance.now() - t0;
    // A third of the quadratic check's 30 s: still tells linear from quadratic, and holds on a loaded 2-core machine (5.4 s seen under stress).
    assert.ok(ms < 10_000, `took ${ms.toFixed(0)} ms`);
    assert.match(e.message, /^big\.yaml: /);
  });
  test('an alias bomb is a YAML mistake naming the file (exit 2), not an exception or a gigabyte', () => {
    const lines = ['a: &a ["x","x","x","x","x","x","x","x","x","x"]'];
    for (let i = 1; i < 12; i++)
      lines.push(
        `${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(10)
          .fill(`*${String.fromCharCode(96 + i)}`)
          .join(',')}]`,
      );
    const before = process.memoryUsage().rss;
    const e = pipelineError(() => parsePipeline(`${lines.join('\n')}\nnodes: {}\n`, 'bomb.yaml', builtinRegistry(), { env: {} }));
    assert.match(e.message, /^bomb\.yaml: invalid YAML: .*alias/i);
    assert.ok(process.memoryUsage().rss - before < 200 * 2 ** 20, 'memory stayed bounded');
    const unresolved = pipelineError(() => parsePipeline('a: *nothing\nnodes: {}\n', 'u.yaml', builtinRegistry(), { env: {} }));
    assert.match(unresolved.message, /^u\.yaml: invalid YAML/);
  });
  test('a file over 1 MiB is refused before parsing', () => {
    const e = pipelineError(() => parsePipeline(`# ${'x'.repeat(1 << 20)}\nnodes: {}\n`, 'huge.yaml', builtinRegistry(), { env: {} }));
    assert.match(e.message, /at most 1048576/);
  });
  test('--set cannot reach Object.prototype', () => {
    for (const set of ['src.__proto__.polluted=yes', '__proto__.polluted=yes', 'src.constructor.prototype.polluted=yes', 'toString.x=1']) {
      const e = pipelineError(() =>
        parsePipeline(`nodes:\n  src: { kind: test-pattern }\n  ws: { kind: websocket }\nedges:\n  - { from: src, to: ws }\n`, 'p.yaml', builtinRegistry(), {
          env: {},
          overrides: [set],
        }),
      );
      assert.match(e.message, /--set/, set);
      assert.equal(({} as Record<string, unknown>).polluted, undefined, set);
    }
  });
});

test('Host header check: IP addresses, localhost and listed names only (DNS rebinding)', () => {
  const none = new Set<string>();
  for (const h of ['127.0.0.1:8080', '127.0.0.1', '[::1]:8080', '[::1]', 'localhost:8080', 'LOCALHOST', 'app.localhost:1', '10.1.2.3:80', undefined, '']) {
    assert.ok(hostAllowed(h, none), String(h));
  }
  for (const h of [
    'attacker.example:8080',
    'attacker.example',
    '127.0.0.1.nip.io:8080',
    'localhost.attacker.example',
    '[::1',
    '127.0.0.1:80:80',
    'cam.example',
  ]) {
    assert.ok(!hostAllowed(h, none), h);
  }
  assert.ok(hostAllowed('cam.example:8080', new Set(['cam.example'])));
  assert.ok(hostAllowed('anything.example', new Set(['*'])));
});

describe('validate catches what run would fail on (checkPipeline)', () => {
  const check = (yaml: string) => checkPipeline(parsePipeline(yaml, 'p.yaml', builtinRegistry(), { env: {} }));
  const failsWith = async (yaml: string, re: RegExp) => {
    await assert.rejects(check(yaml), (e: Error) => {
      assert.ok(e instanceof PipelineError, String(e));
      assert.match(e.message, re);
      return true;
    });
  };
  const synth = `  src: { kind: synthetic, options: { width: 64, height: 64 } }\n`;

  test('one WebSocket path mounted by two sinks', async () => {
    await failsWith(
      `nodes:\n${synth}  a: { kind: websocket }\n  b: { kind: websocket }\nedges:\n  - { from: src, to: a }\n  - { from: src, to: b }\n`,
      /^p\.yaml: node "b", field "options\.path": WebSocket path \/ws is already used by node "a"$/,
    );
  });
  test('a window larger than the pack allows, a missing pack, guidance beyond reason', async () => {
    const depth = (opts: string) =>
      `nodes:\n${synth}  d: { kind: depth, options: { ${opts} } }\n  ws: { kind: websocket }\nedges:\n  - { from: src, to: d }\n  - { from: d, to: ws }\n`;
    await failsWith(
      depth('model: models/synthetic-small, window: 110, overlap: 25'),
      /node "d", field "options\.window": window 110 is larger than this pack allows \(32\) \(pack synthetic-small\)/,
    );
    await failsWith(depth('model: models/no-such-pack'), /node "d", field "options\.model": .*no-such-pack: model pack folder not found/);
    assert.throws(() => parsePipeline(depth('guidance: 1e308'), 'p.yaml', builtinRegistry(), { env: {} }), /field "options\.guidance"/);
    const ok = await check(depth('model: models/synthetic-small'));
    assert.deepEqual(ok.warnings, []);
  });
  test('a camera on something that is not a camera; a camera not plugged in is only a warning', async () => {
    const cam = (dev: string) => `nodes:\n  c: { kind: camera, options: { device: ${dev} } }\n  ws: { kind: websocket }\nedges:\n  - { from: c, to: ws }\n`;
    await failsWith(cam('/dev/null'), /node "c", field "options\.device": camera \/dev\/null: not a video device/);
    const r = await check(cam('/dev/video97'));
    assert.match(r.warnings.join('\n'), /camera \/dev\/video97: no such device/);
  });
  test('missing input files and folders', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dcl-check-'));
    try {
      await failsWith(
        `nodes:\n  f: { kind: frames, options: { dir: ${dir} } }\n  ws: { kind: websocket }\nedges:\n  - { from: f, to: ws }\n`,
        /field "options\.dir": frames .*: no PNG or JPEG images/,
      );
      await failsWith(
        `nodes:\n  f: { kind: frames, options: { dir: ${dir}/nope } }\n  ws: { kind: websocket }\nedges:\n  - { from: f, to: ws }\n`,
        /field "options\.dir"/,
      );
      await failsWith(
        `nodes:\n  f: { kind: file, options: { path: ${dir}/clip.mp4 } }\n  ws: { kind: websocket }\nedges:\n  - { from: f, to: ws }\n`,
        /field "options\.path": file .*clip\.mp4: no such file/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
  test('an RTSP host that does not resolve here is a warning', async () => {
    const r = await check(
      `nodes:\n  c: { kind: rtsp, options: { url: 'rtsp://no-such-camera.invalid/s' } }\n  ws: { kind: websocket }\nedges:\n  - { from: c, to: ws }\n`,
    );
    assert.match(r.warnings.join('\n'), /the RTSP host "no-such-camera\.invalid" does not resolve/);
  });
});

test('an .npz of the same depth is the same bytes every time (no timestamps inside)', async () => {
  const { NpzWriter } = await import('../src/io/npz-writer.js');
  const { readFileSync, readdirSync: ls } = await import('node:fs');
  const dir = mkdtempSync(join(tmpdir(), 'dcl-npz-'));
  try {
    const write = async (name: string) => {
      const w = await NpzWriter.create(join(dir, name), { compress: true });
      const a = w.beginArray('depth', 'float32', [2, 3, 4]);
      await a.write(Float32Array.from({ length: 24 }, (_, i) => i / 24));
      await a.end();
      await w.close();
      return readFileSync(join(dir, name));
    };
    const first = await write('a.npz');
    await new Promise((r) => setTimeout(r, 2100)); // ZIP times have a 2 s resolution
    const second = await write('b.npz');
    assert.ok(first.equals(second), 'identical bytes');
    assert.deepEqual(ls(dir).sort(), ['a.npz', 'b.npz'], 'no temporaries left');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
