import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { NpzWriter } from '../src/io/npz-writer.js';
import { encodePng16Gray, encodePngRGB } from '../src/io/png16.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const CLI = join(ROOT, 'bin', 'depthcrafter-live.js');
const HOLOLENS = join(ROOT, '..', 'shared', 'data', 'rgbd-hololens-000');

const W = 64;
const H = 48;
const N = 8;

function build(): void {
  const r = spawnSync('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: ROOT, encoding: 'utf8', timeout: 180_000 });
  // Type errors in files being edited elsewhere do not stop tsc from emitting; a missing build does.
  if (r.status !== 0) process.stderr.write(`tsc exited ${r.status}:\n${r.stdout}${r.stderr}\n`);
  assert.ok(existsSync(join(ROOT, 'dist', 'cli', 'commands', 'eval.js')), `tsc did not produce dist/cli/commands/eval.js:\n${r.stdout}${r.stderr}`);
}

function cli(args: string[], timeout = 60_000): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout,
    env: { ...process.env, CI: '1', LOG_LEVEL: 'warn' },
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** GT depth in millimetres for frame t (1.0..~3.4 m, moving), with an invalid (0) block. */
function gtMm(t: number): Uint16Array {
  const d = new Uint16Array(W * H);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const invalid = x < 6 && y < 4;
      d[y * W + x] = invalid ? 0 : 1000 + 20 * x + 15 * y + 40 * t;
    }
  }
  return d;
}

async function writeNpz(path: string, frames: Float32Array[], shape: number[]): Promise<void> {
  const w = await NpzWriter.create(path);
  const a = w.beginArray('depth', 'float32', shape);
  for (const f of frames) await a.write(f);
  await a.end();
  await w.close();
}

/** Disparity as an affine map of 1/gt (what a perfect relative-disparity model would give). */
function predFrames(count: number): Float32Array[] {
  return Array.from({ length: count }, (_, t) => Float32Array.from(gtMm(t), (mm) => (mm > 0 ? 0.4 / (mm / 1000) + 0.05 : 0.3)));
}

function parseJson(stdout: string): Record<string, unknown> {
  const lines = stdout.trim().split('\n');
  assert.equal(lines.length, 1, `expected one JSON line on stdout, got:\n${stdout}`);
  return JSON.parse(lines[0]) as Record<string, unknown>;
}

function assertFiniteKeys(j: Record<string, unknown>, keys: string[]): void {
  for (const k of keys) assert.ok(typeof j[k] === 'number' && Number.isFinite(j[k]), `${k} should be a finite number, got ${String(j[k])}`);
}

describe('depthcrafter-live eval (built CLI)', () => {
  let tmp: string;
  let gtDir: string;
  let predNpz: string;

  before(async () => {
    build();
    tmp = mkdtempSync(join(tmpdir(), 'dcl-eval-cli-'));
    gtDir = join(tmp, 'gt');
    mkdirSync(gtDir);
    // Names d_5 .. d_12: plain string order would put d_10 first; the loader sorts numerically.
    for (let t = 0; t < N; t++) writeFileSync(join(gtDir, `d_${t + 5}.png`), encodePng16Gray(gtMm(t), W, H));
    predNpz = join(tmp, 'pred.npz');
    await writeNpz(predNpz, predFrames(N), [N, H, W]);
  });

  after(() => {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  test('--pred npz --gt PNG folder --json: an affine-exact prediction scores AbsRel 0, delta1 1', () => {
    const r = cli(['eval', '--pred', predNpz, '--gt', gtDir, '--depth-scale', '0.001', '--max-depth', '10', '--boundaries', '4', '--json']);
    assert.equal(r.status, 0, r.stderr);
    const j = parseJson(r.stdout);
    assertFiniteKeys(j, ['absrel', 'delta1', 'rmse', 'frames', 'temporal', 'temporalBoundary', 'scale', 'shift']);
    assert.ok((j.absrel as number) < 1e-5, `absrel ${String(j.absrel)}`);
    assert.equal(j.delta1, 1);
    assert.ok((j.rmse as number) < 1e-4, `rmse ${String(j.rmse)}`);
    assert.equal(j.frames, N);
    assert.ok((j.temporal as number) < 1e-5, `temporal ${String(j.temporal)}`);
    assert.deepEqual(j.boundaries, [4]);
    // s * (0.4/d + 0.05) + b = 1/d  =>  s = 2.5, b = -0.125.
    assert.ok(Math.abs((j.scale as number) - 2.5) < 1e-3 && Math.abs((j.shift as number) + 0.125) < 1e-3, `scale ${String(j.scale)} shift ${String(j.shift)}`);
    assert.ok(Math.abs((j.validFraction as number) - (W * H - 24) / (W * H)) < 1e-9);
  });

  test('without --json: a readable table', () => {
    const r = cli(['eval', '--pred', predNpz, '--gt', gtDir]);
    assert.equal(r.status, 0, r.stderr);
    for (const label of ['AbsRel', 'delta1', 'RMSE', 'temporal', 'temporal at boundaries', 'frames', 'scale / shift']) {
      assert.match(r.stdout, new RegExp(label.replace('/', '\\/')), `missing ${label} in:\n${r.stdout}`);
    }
  });

  test('a folder of 16-bit PNG predictions works too; --pred without --gt reports flicker only', () => {
    const dir = join(tmp, 'pred-png');
    mkdirSync(dir);
    const frames = predFrames(N);
    const max = Math.max(...frames.map((f) => Math.max(...f))); // one global scale keeps the sequence affine
    frames.forEach((f, t) => {
      writeFileSync(
        join(dir, `${t}.png`),
        encodePng16Gray(
          Uint16Array.from(f, (v) => Math.round((v / max) * 65535)),
          W,
          H,
        ),
      );
    });
    const r = cli(['eval', '--pred', dir, '--gt', gtDir, '--json']);
    assert.equal(r.status, 0, r.stderr);
    const j = parseJson(r.stdout);
    assert.ok((j.absrel as number) < 1e-3, `absrel ${String(j.absrel)} (16-bit quantisation only)`);
    assert.equal(j.frames, N);

    const f = cli(['eval', '--pred', dir, '--json']);
    assert.equal(f.status, 0, f.stderr);
    const jf = parseJson(f.stdout);
    assert.equal(jf.absrel, null);
    assertFiniteKeys(jf, ['flickerNoGt', 'frames']);
  });

  test('frame count mismatch: evaluates min(N_pred, N_gt) with a warning, fails with --strict', async () => {
    const longer = join(tmp, 'pred10.npz');
    await writeNpz(longer, predFrames(N + 2), [N + 2, H, W]);
    const r = cli(['eval', '--pred', longer, '--gt', gtDir, '--json']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(parseJson(r.stdout).frames, N);
    assert.match(r.stderr, /frame count mismatch: prediction has 10 frames, ground truth 8/);
    const s = cli(['eval', '--pred', longer, '--gt', gtDir, '--strict', '--json']);
    assert.equal(s.status, 2);
    assert.match(s.stderr, /frame count mismatch.*--strict/);
    assert.equal(s.stdout, '');
  });

  test('bad input exits 2 with a message naming the path', async () => {
    const missingPred = join(tmp, 'nope.npz');
    let r = cli(['eval', '--pred', missingPred, '--gt', gtDir]);
    assert.equal(r.status, 2);
    assert.ok(r.stderr.includes(`prediction not found: ${missingPred}`), r.stderr);

    const missingGt = join(tmp, 'no-gt');
    r = cli(['eval', '--pred', predNpz, '--gt', missingGt]);
    assert.equal(r.status, 2);
    assert.ok(r.stderr.includes(`ground truth not found: ${missingGt}`), r.stderr);

    const empty = join(tmp, 'empty');
    mkdirSync(empty);
    r = cli(['eval', '--pred', predNpz, '--gt', empty]);
    assert.equal(r.status, 2);
    assert.ok(r.stderr.includes(empty) && /no PNG/.test(r.stderr), r.stderr);
    r = cli(['eval', '--pred', empty, '--gt', gtDir]);
    assert.equal(r.status, 2);
    assert.ok(r.stderr.includes(empty), r.stderr);

    const badShape = join(tmp, 'bad-shape.npz');
    await writeNpz(badShape, [new Float32Array(2 * 3 * 4 * 5)], [2, 3, 4, 5]);
    r = cli(['eval', '--pred', badShape, '--gt', gtDir]);
    assert.equal(r.status, 2);
    assert.ok(r.stderr.includes(badShape) && /expected shape/.test(r.stderr), r.stderr);

    r = cli(['eval', '--gt', gtDir]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /--pred PRED .* or --dataset DIR/);

    r = cli(['eval', '--pred', predNpz, '--gt', gtDir, '--max-depth', '0.5']);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /no valid ground-truth pixels/);

    const missingDs = join(tmp, 'no-dataset');
    r = cli(['eval', '--dataset', missingDs]);
    assert.equal(r.status, 2);
    assert.ok(r.stderr.includes(missingDs), r.stderr);
  });

  test('--dataset on a tiny rgb/ + depth/ folder with the tiny-random pack: runs and prints the JSON keys', () => {
    const ds = join(tmp, 'ds');
    mkdirSync(join(ds, 'rgb'), { recursive: true });
    mkdirSync(join(ds, 'depth'));
    const frames = 6;
    for (let t = 0; t < frames; t++) {
      const rgb = new Uint8Array(W * H * 3);
      for (let i = 0; i < W * H; i++) {
        rgb[i * 3] = (i * 7 + t * 13) & 255;
        rgb[i * 3 + 1] = (i >> 3) & 255;
        rgb[i * 3 + 2] = (t * 40) & 255;
      }
      writeFileSync(join(ds, 'rgb', `${String(t).padStart(5, '0')}.png`), encodePngRGB(rgb, W, H));
      writeFileSync(join(ds, 'depth', `${String(t).padStart(5, '0')}.png`), encodePng16Gray(gtMm(t), W, H));
    }
    const r = cli(['eval', '--dataset', ds, '--max-res', '64', '--window', '4', '--overlap', '1', '--steps', '1', '--json'], 120_000);
    assert.equal(r.status, 0, r.stderr);
    const j = parseJson(r.stdout);
    assertFiniteKeys(j, ['absrel', 'delta1', 'rmse', 'frames', 'temporal', 'temporalBoundary', 'scale', 'shift', 'flickerNoGt']);
    assert.equal(j.frames, frames);
    // 6 frames, window 4, overlap 1: segments [0,4) and [3,6).
    assert.deepEqual(j.boundaries, [3]);
    assert.deepEqual(j.gtSize, { width: W, height: H });
  });

  test('--dataset on ../shared/data/rgbd-hololens-000 (real RGB-D) gives well-formed JSON', (t) => {
    if (!existsSync(join(HOLOLENS, 'rgb')) || !existsSync(join(HOLOLENS, 'depth'))) {
      t.skip(`${HOLOLENS} not present (../shared is not part of CI): real-data evaluation skipped`);
      return;
    }
    const r = cli(
      [
        'eval',
        '--dataset',
        HOLOLENS,
        '--max-res',
        '256',
        '--window',
        '16',
        '--overlap',
        '4',
        '--steps',
        '1',
        '--depth-scale',
        '0.001',
        '--max-depth',
        '10',
        '--json',
      ],
      300_000,
    );
    assert.equal(r.status, 0, r.stderr);
    const j = parseJson(r.stdout);
    assertFiniteKeys(j, ['absrel', 'delta1', 'rmse', 'frames', 'temporal', 'temporalBoundary', 'scale', 'shift']);
    assert.equal(j.frames, 60);
    assert.deepEqual(j.boundaries, [12, 24, 36, 48]);
    assert.deepEqual(j.gtSize, { width: 540, height: 360 });
    assert.ok((j.delta1 as number) >= 0 && (j.delta1 as number) <= 1);
    assert.equal((j.perFrame as unknown[]).length, 60);
  });
});
