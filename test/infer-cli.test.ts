// End to end through the built CLI: `depthcrafter-live infer` on a GStreamer-made clip and a
// folder of PNG frames, with the tiny random-weight pack. Checks the outputs (npz + two MP4s),
// determinism, temporal sampling, external noise, and the exit code 2 + message of bad input.

import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';

import { readNpz, NpzWriter } from '../src/io/npz-writer.js';
import { parseNpy } from '../src/io/npy.js';
import { encodePngRGB } from '../src/io/png16.js';
import { readAppSink } from '../src/media/appsink-reader.js';
import { decodeToRgbLaunch } from '../src/media/launch.js';
import { modelResolution } from '../src/inference/math/resolution.js';
import { Prng } from '../src/inference/math/prng.js';
import { resizeBilinearPlane } from '../src/inference/image/resize.js';

const execFileP = promisify(execFile);
const ROOT = process.cwd();
const BIN = path.join(ROOT, 'bin', 'depthcrafter-live.js');
const PACK = path.join(ROOT, 'models', 'tiny-random');

let tmp = '';
let clip = '';

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

function runCli(args: string[]): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, 'infer', ...args], { cwd: ROOT, env: { ...process.env, UV_THREADPOOL_SIZE: '16' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b) => (stdout += b));
    child.stderr.on('data', (b) => (stderr += b));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Runs infer and expects success; returns the parsed --json result. */
async function infer(
  input: string,
  out: string,
  extra: string[] = [],
): Promise<Record<string, any>> /* eslint-disable-line @typescript-eslint/no-explicit-any -- the CLI's JSON summary */ {
  const r = await runCli([input, '-o', out, '--model', PACK, '--window', '12', '--overlap', '4', '--steps', '1', '--max-res', '128', '--json', ...extra]);
  assert.equal(r.code, 0, `infer ${input} ${extra.join(' ')} failed (exit ${r.code}): ${r.stderr}`);
  const line = r.stdout.trim().split('\n').pop()!;
  return JSON.parse(line);
}

async function loadDepth(file: string): Promise<{ shape: number[]; dtype: string; data: Float32Array }> {
  const arrays = await readNpz(file);
  assert.deepEqual(Object.keys(arrays), ['depth'], 'npz keys');
  const a = arrays.depth;
  assert.ok(a.data instanceof Float32Array, 'depth is float32 data');
  return { shape: a.shape, dtype: a.dtype, data: a.data as Float32Array };
}

function rangeOf(data: Float32Array): { min: number; max: number } {
  let min = Infinity;
  let max = -Infinity;
  for (const v of data) {
    if (v < min) min = v;
    if (v > max) max = v;
  }
  return { min, max };
}

function sameBits(a: Float32Array, b: Float32Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return false;
  return true;
}

/** Decodes an MP4 back to RGB frames with the project's reader; returns the count and frame size. */
async function countFrames(file: string): Promise<{ frames: number; width: number; height: number }> {
  let width = 0;
  let height = 0;
  const r = await readAppSink({
    launch: decodeToRgbLaunch(file),
    streamId: 'check',
    log: pino({ level: 'silent' }),
    signal: new AbortController().signal,
    onFrame: (f) => {
      width = f.width;
      height = f.height;
    },
  });
  return { frames: r.frames, width, height };
}

// 192x128 at max-res 128 (spec section 1 rule).
const RES = modelResolution(128, 192, 128);
/** The clip's own size: the outputs' size by default (--output-size input). */
const INPUT = { height: 128, width: 192 };

describe('depthcrafter-live infer (built CLI, tiny-random pack)', () => {
  before(async () => {
    await execFileP('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: ROOT });
    tmp = await mkdtemp(path.join(tmpdir(), 'dc-infer-cli-'));
    clip = path.join(tmp, 'ball.mp4');
    await execFileP('gst-launch-1.0', [
      '-q',
      'videotestsrc',
      'num-buffers=30',
      'pattern=ball',
      '!',
      'video/x-raw,width=192,height=128,framerate=30/1',
      '!',
      'videoconvert',
      '!',
      'x264enc',
      '!',
      'mp4mux',
      '!',
      'filesink',
      `location=${clip}`,
    ]);
    assert.ok(existsSync(clip), 'test clip was not written');
  });

  after(async () => {
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  let firstDepth: Float32Array | null = null;

  it('a 30-frame clip at --output-size model: npz [30,H,W] float32 normalised to [0,1], two MP4s of 30 frames; same seed is bit-identical', async (t) => {
    assert.deepEqual(RES, { height: 64, width: 128 });
    const out = path.join(tmp, 'out-a');
    const res = await infer(clip, out, ['--output-size', 'model']);
    assert.equal(res.name, 'ball');
    assert.equal(res.frames, 30);
    assert.equal(res.width, RES.width);
    assert.equal(res.height, RES.height);
    assert.deepEqual(res.model, RES);
    assert.equal(res.fps, 30);
    // 30 frames, window 12, overlap 4: windows at 0, 8, 16, 24 -> 4 UNet calls at 1 step.
    assert.equal(res.stats.calls.denoise, 4);
    assert.equal(res.stats.framesIn.encodeImage, 30);
    assert.equal(res.stats.framesIn.encodeLatent, 30);

    const npzPath = path.join(out, 'ball_depth.npz');
    assert.equal(res.files.npz, npzPath);
    const d = await loadDepth(npzPath);
    assert.equal(d.dtype, 'float32');
    assert.deepEqual(d.shape, [30, RES.height, RES.width]);
    const { min, max } = rangeOf(d.data);
    assert.equal(min, 0, 'normalised min');
    assert.equal(max, 1, 'normalised max');
    firstDepth = d.data;

    for (const name of ['ball_vis.mp4', 'ball_depth.mp4']) {
      const v = await countFrames(path.join(out, name));
      assert.equal(v.frames, 30, `${name} frame count`);
      assert.equal(v.width, RES.width, `${name} width`);
      assert.equal(v.height, RES.height, `${name} height`);
    }

    // numpy reads the archive too (when the system Python has numpy).
    const py = '/usr/bin/python3';
    let numpyOk = false;
    if (existsSync(py)) {
      try {
        await execFileP(py, ['-c', 'import numpy']);
        numpyOk = true;
      } catch {
        /* no numpy */
      }
    }
    if (numpyOk) {
      const { stdout } = await execFileP(py, [
        '-c',
        'import sys, json, numpy as np\n' +
          'z = np.load(sys.argv[1])\n' +
          'd = z["depth"]\n' +
          'print(json.dumps({"keys": list(z.keys()), "dtype": str(d.dtype), "shape": list(d.shape), "min": float(d.min()), "max": float(d.max()), "sum": float(d.astype(np.float64).sum())}))',
        npzPath,
      ]);
      const info = JSON.parse(stdout);
      assert.deepEqual(info.keys, ['depth']);
      assert.equal(info.dtype, 'float32');
      assert.deepEqual(info.shape, [30, RES.height, RES.width]);
      assert.equal(info.min, 0);
      assert.equal(info.max, 1);
      let sum = 0;
      for (const v of d.data) sum += v;
      assert.ok(Math.abs(info.sum - sum) <= 1e-6 * Math.max(1, sum), `numpy sum ${info.sum} vs ${sum}`);
    } else {
      t.diagnostic('skipped the numpy.load check: /usr/bin/python3 with numpy is not available');
    }

    // Same seed (default 42) again: identical data. Another seed: different data.
    const again = await infer(clip, path.join(tmp, 'out-b'), ['--no-videos', '--output-size', 'model']);
    assert.equal(again.frames, 30);
    assert.ok(sameBits(firstDepth, (await loadDepth(path.join(tmp, 'out-b', 'ball_depth.npz'))).data), 'same seed must give identical depth');
    await infer(clip, path.join(tmp, 'out-c'), ['--no-videos', '--output-size', 'model', '--seed', '1']);
    assert.ok(!sameBits(firstDepth, (await loadDepth(path.join(tmp, 'out-c', 'ball_depth.npz'))).data), 'another seed must change the depth');
  });

  it("by default the outputs have the input's size: the model-size depth resized back (bilinear), videos too", async () => {
    assert.ok(firstDepth, 'needs the first test');
    const out = path.join(tmp, 'out-in');
    const res = await infer(clip, out);
    assert.deepEqual({ width: res.width, height: res.height }, INPUT);
    assert.deepEqual(res.model, RES);
    const d = await loadDepth(path.join(out, 'ball_depth.npz'));
    assert.deepEqual(d.shape, [30, INPUT.height, INPUT.width]);
    const plane = INPUT.width * INPUT.height;
    const want = new Float32Array(plane);
    for (let f = 0; f < 30; f++) {
      resizeBilinearPlane(firstDepth.subarray(f * RES.width * RES.height), RES.width, RES.height, INPUT.width, INPUT.height, want);
      assert.ok(sameBits(want, d.data.subarray(f * plane, (f + 1) * plane)), `frame ${f}: the model-size depth resized`);
    }
    for (const name of ['ball_vis.mp4', 'ball_depth.mp4']) {
      const v = await countFrames(path.join(out, name));
      assert.deepEqual([v.frames, v.width, v.height], [30, INPUT.width, INPUT.height], name);
    }
    const bad = await runCli([clip, '-o', path.join(tmp, 'out-bad'), '--output-size', 'native']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--output-size must be input or model \(got native\)/);
  });

  it('an odd-sized input: the npz keeps its exact size, the videos the largest even size (H.264 4:2:0), stored npz by default', async () => {
    const frames = path.join(tmp, 'odd-frames');
    await mkdir(frames, { recursive: true });
    await execFileP('gst-launch-1.0', [
      '-q',
      'videotestsrc',
      'num-buffers=4',
      'pattern=ball',
      '!',
      'video/x-raw,width=35,height=23',
      '!',
      'pngenc',
      '!',
      'multifilesink',
      `location=${path.join(frames, '%03d.png')}`,
    ]);
    const out = path.join(tmp, 'out-odd');
    const res = await infer(frames, out);
    assert.deepEqual({ width: res.width, height: res.height }, { width: 35, height: 23 });
    const d = await loadDepth(path.join(out, 'odd-frames_depth.npz'));
    assert.deepEqual(d.shape, [4, 23, 35]);
    for (const name of ['odd-frames_vis.mp4', 'odd-frames_depth.mp4']) {
      const v = await countFrames(path.join(out, name));
      assert.deepEqual([v.frames, v.width, v.height], [4, 34, 22], name);
    }
    // Stored, not deflated (the ZIP method field of the first local header is 0).
    const head = await readFile(path.join(out, 'odd-frames_depth.npz'));
    assert.equal(head.readUInt16LE(8), 0, 'npz member is stored');
    const deflated = await infer(frames, path.join(tmp, 'out-odd-z'), ['--compress', '--no-videos']);
    const z = await readFile(deflated.files.npz);
    assert.equal(z.readUInt16LE(8), 8, '--compress deflates the member');
    assert.deepEqual(Array.from((await loadDepth(deflated.files.npz)).data), Array.from(d.data), 'same depth either way');
  });

  it('--process-length 10 gives 10 frames', async () => {
    const out = path.join(tmp, 'out-pl');
    const res = await infer(clip, out, ['--process-length', '10', '--no-videos']);
    assert.equal(res.frames, 10);
    const d = await loadDepth(path.join(out, 'ball_depth.npz'));
    assert.deepEqual(d.shape, [10, INPUT.height, INPUT.width]);
  });

  it('a pack with random weights says so on stderr; the default pack (synthetic-small, trained) does not, but names its domain', async () => {
    const args = (out: string, model: string[]) => [
      clip,
      '-o',
      out,
      '--window',
      '12',
      '--overlap',
      '4',
      '--steps',
      '1',
      '--max-res',
      '128',
      '--process-length',
      '6',
      '--no-videos',
      ...model,
    ];
    const random = await runCli(args(path.join(tmp, 'out-rw1'), ['--model', PACK]));
    assert.equal(random.code, 0, random.stderr);
    assert.match(random.stderr, /pack \\?"tiny-random\\?" has random weights .*its depth is noise/);
    // Not a terminal: plain progress lines, the writing phase included.
    assert.match(random.stderr, /^inferring: depth \d+\/6 \d+% \(decoded \d+\), [\d.]+ frames\/s/m);
    assert.match(random.stderr, /^writing ball_depth\.npz \(6 frames\)/m);
    const trained = await runCli(args(path.join(tmp, 'out-rw2'), []));
    assert.equal(trained.code, 0, trained.stderr);
    assert.doesNotMatch(trained.stderr, /random weights/);
    assert.match(trained.stderr, /synthetic-small/, 'the default pack is synthetic-small');
    // A bare pack name finds the project's models/.
    const bare = await runCli(args(path.join(tmp, 'out-rw3'), ['--model', 'tiny-random']));
    assert.equal(bare.code, 0, bare.stderr);
    assert.match(bare.stderr, /pack \\?"tiny-random\\?" has random weights/);
  });

  it('--save-latents writes the stitched latents [N,4,h,w] next to the depth, and changes nothing else', async () => {
    const out = path.join(tmp, 'out-lat');
    const res = await infer(clip, out, ['--process-length', '10', '--no-videos', '--save-latents']);
    assert.equal(res.files.latents, path.join(out, 'ball_latents.npy'));
    const lat = parseNpy(await readFile(res.files.latents));
    assert.equal(lat.dtype, 'float32');
    assert.deepEqual(lat.shape, [10, 4, RES.height / 8, RES.width / 8]);
    let nonZero = 0;
    for (const v of lat.data as Float32Array) {
      assert.ok(Number.isFinite(v));
      if (v !== 0) nonZero++;
    }
    assert.ok(nonZero > lat.data.length / 2, 'latents are not blank');
    const plain = await loadDepth(path.join(tmp, 'out-pl', 'ball_depth.npz'));
    assert.ok(sameBits(plain.data, (await loadDepth(path.join(out, 'ball_depth.npz'))).data), 'same depth as without --save-latents');
    assert.deepEqual(
      readdirSync(out).filter((n) => n.startsWith('.')),
      [],
      'the spill files and temporaries are removed',
    );
  });

  it('--target-fps 15 on a 30 fps clip keeps every second frame (15 frames, played at 15 fps)', async () => {
    const out = path.join(tmp, 'out-fps');
    const res = await infer(clip, out, ['--target-fps', '15']);
    assert.equal(res.frames, 15);
    assert.equal(res.fps, 15);
    const d = await loadDepth(path.join(out, 'ball_depth.npz'));
    assert.deepEqual(d.shape, [15, INPUT.height, INPUT.width]);
    assert.equal((await countFrames(path.join(out, 'ball_depth.mp4'))).frames, 15);
  });

  it('a folder of 12 PNG frames gives 12 depth frames', async () => {
    const dir = path.join(tmp, 'pngs');
    await mkdir(dir);
    const w = 96;
    const h = 64;
    const rng = new Prng(3, 1);
    for (let i = 0; i < 12; i++) {
      const rgb = new Uint8Array(w * h * 3);
      for (let p = 0; p < rgb.length; p++) rgb[p] = rng.nextUint32() & 0xff;
      // frame_2 must sort before frame_10: names are unpadded on purpose.
      await writeFile(path.join(dir, `frame_${i}.png`), encodePngRGB(rgb, w, h));
    }
    const out = path.join(tmp, 'out-png');
    const res = await infer(dir, out, ['--no-videos']);
    assert.equal(res.name, 'pngs');
    assert.equal(res.frames, 12);
    const d = await loadDepth(path.join(out, 'pngs_depth.npz'));
    assert.deepEqual(d.shape, [12, h, w]);
    const { min, max } = rangeOf(d.data);
    assert.ok(min >= 0 && max <= 1 && max > min, `depth in [0,1]: ${min}..${max}`);
    assert.deepEqual(res.model, modelResolution(h, w, 128));
  });

  it('--noise FILE.npz: the external noise is used (different --seed values give identical depth)', async () => {
    const N = 30;
    const { height: H, width: W } = RES;
    const noisePath = path.join(tmp, 'noise.npz');
    const npz = await NpzWriter.create(noisePath, { compress: false });
    const rng = new Prng(2024, 5);
    const pixel = rng.fillNormal(new Float32Array(N * 3 * H * W));
    const a = npz.beginArray('pixel', 'float32', [N, 3, H, W]);
    await a.write(pixel);
    await a.end();
    const latent = rng.fillNormal(new Float32Array(12 * 4 * (H / 8) * (W / 8)));
    const b = npz.beginArray('latent', 'float32', [1, 12, 4, H / 8, W / 8]);
    await b.write(latent);
    await b.end();
    await npz.close();

    const r1 = await infer(clip, path.join(tmp, 'out-n1'), ['--no-videos', '--noise', noisePath, '--seed', '1']);
    const r2 = await infer(clip, path.join(tmp, 'out-n2'), ['--no-videos', '--noise', noisePath, '--seed', '2']);
    assert.equal(r1.frames, 30);
    assert.equal(r2.frames, 30);
    const d1 = (await loadDepth(path.join(tmp, 'out-n1', 'ball_depth.npz'))).data;
    const d2 = (await loadDepth(path.join(tmp, 'out-n2', 'ball_depth.npz'))).data;
    assert.ok(sameBits(d1, d2), 'with external noise the seed must not matter');
    if (firstDepth) assert.ok(!sameBits(d1, firstDepth), 'external noise should differ from the seeded noise');
  });

  describe('bad input: exit code 2 and a message naming the problem', () => {
    const expectUsageError = async (args: string[], pattern: RegExp | string, notPattern?: RegExp) => {
      const r = await runCli(args);
      if (notPattern) assert.doesNotMatch(r.stderr, notPattern);
      assert.equal(r.code, 2, `exit code for ${args.join(' ')}: ${r.code}, stderr: ${r.stderr}`);
      if (typeof pattern === 'string') assert.ok(r.stderr.includes(pattern), `stderr should mention ${pattern}: ${r.stderr}`);
      else assert.match(r.stderr, pattern);
      assert.doesNotMatch(r.stderr, /^\s+at /m, 'no stack trace for a usage error');
    };
    const base = () => ['-o', path.join(tmp, 'out-err'), '--model', PACK, '--steps', '1', '--max-res', '128'];

    it('a missing video path', async () => {
      const missing = path.join(tmp, 'missing.mp4');
      await expectUsageError([missing, ...base()], missing);
    });

    it('an unreadable video (a text file named x.mp4)', async () => {
      const bad = path.join(tmp, 'x.mp4');
      await writeFile(bad, 'this is not a video\n');
      await expectUsageError([bad, ...base()], bad);
    });

    it('an empty folder (zero frames)', async () => {
      const empty = path.join(tmp, 'empty');
      await mkdir(empty, { recursive: true });
      await expectUsageError([empty, ...base()], empty);
    });

    it('--window 111', async () => {
      await expectUsageError([clip, ...base(), '--window', '111'], /window 111/, /cannot decode/);
    });

    it('--overlap 12 with --window 12', async () => {
      await expectUsageError([clip, ...base(), '--window', '12', '--overlap', '12'], /overlap.*\(12\), got 12/, /cannot decode/);
    });

    it('a missing --model folder', async () => {
      const missing = path.join(tmp, 'no-pack');
      await expectUsageError([clip, ...base(), '--model', missing], missing);
    });

    it('a corrupt pack (unet.onnx overwritten with garbage)', async () => {
      const pack = path.join(tmp, 'corrupt-pack');
      await cp(PACK, pack, { recursive: true });
      await writeFile(path.join(pack, 'unet.onnx'), 'garbage, not a protobuf');
      await expectUsageError([clip, ...base(), '--model', pack], path.join(pack, 'unet.onnx'));
    });
  });
});
