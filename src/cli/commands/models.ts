import type { Command } from 'commander';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { PROJECT_ROOT } from '../../util/project-root.js';
import { UsageError } from '../usage-error.js';
import { intOption } from '../options.js';

// `models get depthcrafter`: the one command from nothing to the real weights as a checked model pack.
// 1. the export environment (a venv with tools/requirements-export.txt, made once), 2.-3. download and
// export (tools/get_depthcrafter.py: huggingface_hub's snapshot_download, then tools/export_depthcrafter.py),
// 4. the pack loaded with the project's loader and a few frames run through the engine.
// `models list`: the packs in a models folder. Heavy modules (the loader, ONNX Runtime) load only when used.

const KNOWN = ['depthcrafter'] as const;
const REQUIREMENTS = join(PROJECT_ROOT, 'tools', 'requirements-export.txt');
const DRIVER = join(PROJECT_ROOT, 'tools', 'get_depthcrafter.py');
const MODULES = ['torch', 'diffusers', 'transformers', 'onnx', 'onnxruntime', 'huggingface_hub'];
const DEVICES = ['cpu', 'cuda', 'tensorrt', 'webgpu'] as const;
type Device = (typeof DEVICES)[number];

interface GetOptions {
  variant?: string;
  dtype?: string;
  out: string;
  python?: string;
  venv: string;
  revision: string;
  svdRevision: string;
  exportDevice?: string;
  checkDevice: string;
  check: boolean;
  threads?: number;
  force?: boolean;
  json?: boolean;
}

export function registerModels(program: Command): void {
  const models = program.command('models').description('Model packs: download and export the real DepthCrafter weights, list the packs');

  models
    .command('get')
    .description(
      'Download a model from the Hugging Face Hub, export it to a model pack and check it (depthcrafter: tencent/DepthCrafter + the SVD-xt VAE and image encoder)',
    )
    .argument('<model>', `model to get: ${KNOWN.join(', ')}`)
    .option('--variant <variant>', 'fp16: the fp16 weight files where the repos have them, and an fp16 pack')
    .option('--dtype <dtype>', 'pack dtype: float16 | float32 (default: float16 with --variant fp16, else float32)')
    .option('-o, --out <dir>', 'pack folder to write', join('models', 'depthcrafter'))
    .option('--python <path>', 'a Python that already has tools/requirements-export.txt (no venv is made)')
    .option('--venv <dir>', 'the export environment to use or create', join(PROJECT_ROOT, '.venv-export'))
    .option('--revision <rev>', 'revision of tencent/DepthCrafter', 'main')
    .option('--svd-revision <rev>', 'revision of stabilityai/stable-video-diffusion-img2vid-xt', 'main')
    .option('--export-device <device>', 'where the export traces the models (default: cuda when PyTorch has it, else cpu)')
    .option('--check-device <device>', 'execution provider of the check run: cpu | cuda | tensorrt | webgpu', 'cpu')
    .option('--threads <n>', 'ONNX Runtime intra-op threads per session in the check run', intOption('--threads'))
    .option('--no-check', 'skip loading the pack and running a few frames through it')
    .option('--force', 'export again into a folder that already holds a pack')
    .option('--json', 'print the result as JSON on stdout')
    .action(async (model: string, o: GetOptions) => getModel(model, o));

  models
    .command('list')
    .description("List the model packs in a folder with their manifest's name, version, dtype, randomWeights and trainingDomain")
    .option('--dir <dir>', "folder of packs (default: ./models, else the project's models/)")
    .option('--json', 'print the list as JSON on stdout')
    .action(async (o: { dir?: string; json?: boolean }) => listModels(o));
}

// ---------------------------------------------------------------------------------------------
// models get

async function getModel(model: string, o: GetOptions): Promise<void> {
  if (!(KNOWN as readonly string[]).includes(model)) throw new UsageError(`unknown model "${model}" (known: ${KNOWN.join(', ')})`);
  if (o.variant !== undefined && o.variant !== 'fp16') throw new UsageError(`--variant must be fp16 (got ${o.variant})`);
  if (o.dtype !== undefined && o.dtype !== 'float16' && o.dtype !== 'float32') throw new UsageError(`--dtype must be float16 or float32 (got ${o.dtype})`);
  if (!(DEVICES as readonly string[]).includes(o.checkDevice))
    throw new UsageError(`--check-device must be one of ${DEVICES.join(', ')} (got ${o.checkDevice})`);
  const out = resolve(o.out);
  if (existsSync(join(out, 'manifest.json')) && !o.force) {
    throw new UsageError(`${o.out} already holds a model pack (manifest.json): pass --force to download and export again, or choose another --out`);
  }
  const t0 = performance.now();
  const say = (line: string) => process.stderr.write(`[models] ${line}\n`);

  // 1. the export environment
  const python = o.python ? givenPython(o.python) : await ensureVenv(resolve(o.venv), say);

  // 2.-3. download + export (the Python side)
  const tmp = mkdtempSync(join(tmpdir(), 'dcl-models-'));
  let result: DriverResult;
  try {
    const resultFile = join(tmp, 'result.json');
    // --env-checked: the modules were imported just above, the driver need not import torch & co. again
    const args = [DRIVER, '--out', out, '--result', resultFile, '--revision', o.revision, '--svd-revision', o.svdRevision, '--env-checked'];
    if (o.variant) args.push('--variant', o.variant);
    if (o.dtype) args.push('--dtype', o.dtype);
    if (o.exportDevice) args.push('--device', o.exportDevice);
    say(`download + export with ${python}`);
    const code = await runChild(python, args);
    result = readResult(resultFile, code);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  if (!result.ok) {
    // The repo and what to do are in the message; problems for the user to fix (network, token, disk) exit 2.
    throw result.user ? new UsageError(result.message) : new Error(result.message);
  }

  // 4. the check: the project's loader and a few frames through the engine
  const check = o.check ? await checkPack(out, o.checkDevice as Device, o.threads, say) : null;
  const { readPackManifest } = await import('../../inference/pack/manifest.js');
  const manifest = await readPackManifest(out);
  const seconds = (performance.now() - t0) / 1000;
  const summary = {
    model,
    pack: out,
    manifest: {
      name: manifest.name,
      version: manifest.version,
      dtype: manifest.dtype,
      randomWeights: manifest.randomWeights,
      trainingDomain: manifest.trainingDomain ?? null,
    },
    bytes: folderBytes(out),
    repos: result.repos,
    offline: result.offline,
    cacheDir: result.cacheDir,
    seconds: { ...result.seconds, check: check?.seconds ?? null, total: round1(seconds) },
    check,
  };
  if (o.json) {
    process.stdout.write(`${JSON.stringify(summary)}\n`);
    return;
  }
  const rel = relative(process.cwd(), out);
  const shown = rel && !rel.startsWith('..') ? rel : out;
  const lines = [`${model}: ${shown} (${manifest.dtype}, ${gb(summary.bytes)} on disk) in ${seconds.toFixed(1)} s`];
  for (const r of result.repos) {
    const how = r.offline ? 'from the cache (offline)' : r.downloadedBytes > 0 ? `${gb(r.downloadedBytes)} downloaded` : 'already in the cache';
    lines.push(`  ${r.repo}@${(r.commit ?? r.revision).slice(0, 10)}: ${r.files.length} files, ${how}`);
  }
  lines.push(`  export: ${result.seconds.export} s (download ${result.seconds.download} s); Hugging Face cache: ${result.cacheDir}`);
  if (check) {
    lines.push(
      `  check: loaded with loadModelPack on ${check.device} in ${check.loadSeconds} s; ${check.frames} frames at ${check.width}x${check.height} ` +
        `(window ${check.window}, ${check.steps} step) in ${check.runSeconds} s; depth finite, in [${check.depthMin.toFixed(3)}, ${check.depthMax.toFixed(3)}]`,
    );
  } else lines.push('  check: skipped (--no-check)');
  lines.push(`  run: npx depthcrafter-live infer VIDEO --model ${shown} --device cuda --out out/`);
  process.stdout.write(`${lines.join('\n')}\n`);
}

interface RepoResult {
  repo: string;
  revision: string;
  commit: string | null;
  files: string[];
  downloadedBytes: number;
  offline: boolean;
}

type DriverResult =
  | { ok: true; repos: RepoResult[]; offline: boolean; cacheDir: string; seconds: { download: number; export: number } }
  | { ok: false; kind: string; message: string; user: boolean };

function readResult(file: string, code: number): DriverResult {
  if (!existsSync(file)) throw new Error(`tools/get_depthcrafter.py failed (exit ${code}) without a result; its output is above`);
  return JSON.parse(readFileSync(file, 'utf8')) as DriverResult;
}

// ---------------------------------------------------------------------------------------------
// the export environment

interface PyProbe {
  missing: string[];
  version: string;
}

const PROBE = `import importlib, json, sys
missing = []
for m in ${JSON.stringify(MODULES)}:
    try:
        importlib.import_module(m)
    except Exception as e:
        missing.append(m + " (" + type(e).__name__ + ": " + (str(e).splitlines() or [""])[0][:160] + ")")
print(json.dumps({"missing": missing, "version": "%d.%d.%d" % sys.version_info[:3]}))`;

/** Which of the modules `python` cannot import; null when it does not run at all. */
function probe(python: string): PyProbe | null {
  const r = spawnSync(python, ['-c', PROBE], { encoding: 'utf8', timeout: 300_000 });
  if (r.error || r.status !== 0) return null;
  try {
    return JSON.parse(r.stdout.trim().split('\n').pop()!) as PyProbe;
  } catch {
    return null;
  }
}

function givenPython(python: string): string {
  const p = probe(python);
  if (!p) throw new UsageError(`--python ${python}: cannot run it (not found, or not a Python)`);
  if (p.missing.length) {
    throw new UsageError(
      `--python ${python} lacks ${p.missing.join('; ')}: install the export requirements into it (${python} -m pip install -r ${relative(process.cwd(), REQUIREMENTS)}), or leave out --python to use the project's venv`,
    );
  }
  return python;
}

async function ensureVenv(dir: string, say: (line: string) => void): Promise<string> {
  const python = join(dir, 'bin', 'python');
  if (existsSync(python)) {
    const p = probe(python);
    if (p && p.missing.length === 0) {
      say(`export environment: ${dir} (Python ${p.version}, packages present)`);
      return python;
    }
  } else {
    if (existsSync(dir)) throw new UsageError(`${dir} exists but is not a Python venv (no bin/python): remove it, or pass --venv / --python`);
    const base = process.env.PYTHON ?? 'python3';
    const r = spawnSync(base, ['-c', 'import sys, venv, ensurepip; print("%d.%d" % sys.version_info[:2])'], { encoding: 'utf8' });
    if (r.error)
      throw new UsageError(
        `no ${base} found to make the export environment: install Python 3.10 or later (Debian: apt-get install python3 python3-venv), or pass --python`,
      );
    if (r.status !== 0) {
      const why = r.stderr.trim().split('\n').pop();
      throw new UsageError(
        `${base} cannot make a venv (${why}): on Debian/Ubuntu apt-get install python3-venv, or pass --python to a Python that has the packages`,
      );
    }
    const [major, minor] = r.stdout.trim().split('.').map(Number);
    if (major < 3 || (major === 3 && minor < 10))
      throw new UsageError(`${base} is Python ${r.stdout.trim()}: the export needs 3.10 or later (3.11 verified); pass --python`);
    say(`export environment: making ${dir} (${base} -m venv)`);
    const code = await runChild(base, ['-m', 'venv', dir]);
    if (code !== 0 || !existsSync(python)) throw new UsageError(`${base} -m venv ${dir} failed (exit ${code}): on Debian/Ubuntu apt-get install python3-venv`);
  }
  say(
    `export environment: pip install -r ${relative(process.cwd(), REQUIREMENTS)} into ${dir} (torch, diffusers, transformers, onnx, onnxruntime, huggingface_hub)`,
  );
  const code = await runChild(python, ['-m', 'pip', 'install', '-r', REQUIREMENTS]);
  if (code !== 0) {
    throw new Error(
      `pip install -r tools/requirements-export.txt into ${dir} failed (exit ${code}); pip's output is above. ` +
        'It needs the package index (network) and git for diffusers (installed from github.com/huggingface/diffusers at a pinned commit). ' +
        `Without them, install the other lines of that file and a source tree of that commit (${dir}/bin/pip install ./diffusers) into ${dir} yourself: ` +
        'once torch, diffusers, transformers, onnx, onnxruntime and huggingface_hub import there it is used as it is; or pass --python',
    );
  }
  const p = probe(python);
  if (!p || p.missing.length) throw new Error(`${python} still lacks ${p ? p.missing.join('; ') : 'a working interpreter'} after pip install`);
  return python;
}

/** Run a child with its output on our stderr (stdout stays for the result); signals are passed on. */
async function runChild(cmd: string, args: string[]): Promise<number> {
  const child = spawn(cmd, args, { stdio: ['ignore', 2, 2], env: process.env });
  let signal: NodeJS.Signals | null = null;
  const onSignal = (sig: NodeJS.Signals) => {
    signal = sig;
    child.kill(sig);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const code = await new Promise<number>((res, rej) => {
      child.once('error', rej);
      child.once('exit', (c, s) => res(c ?? (s ? 128 : 1)));
    });
    if (signal) {
      const { InterruptedError } = await import('../../inference/offline/infer.js');
      const e = new InterruptedError(signal);
      e.message = `interrupted (${signal}): downloaded files stay in the Hugging Face cache and a new run resumes`;
      throw e;
    }
    return code;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new UsageError(`${cmd}: not found`);
    throw e;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

// ---------------------------------------------------------------------------------------------
// the check: load with the project's loader, run a few frames

export interface PackCheck {
  device: Device;
  frames: number;
  width: number;
  height: number;
  window: number;
  steps: number;
  loadSeconds: number;
  runSeconds: number;
  seconds: number;
  depthMin: number;
  depthMax: number;
  /** Mean over frames of each depth frame's standard deviation (0 would be a flat output). */
  depthStd: number;
}

export async function checkPack(dir: string, device: Device, threads: number | undefined, say: (line: string) => void): Promise<PackCheck> {
  const { loadModelPack } = await import('../../inference/pack/load-pack.js');
  const { OrtStages } = await import('../../inference/backend/ort-stages.js');
  const { DepthSession } = await import('../../inference/engine/depth-session.js');
  const { SeededNoise } = await import('../../inference/engine/noise-source.js');
  const { sessionConfig } = await import('../../inference/engine/session-config.js');
  const t0 = performance.now();
  say(`check: loading ${dir} with loadModelPack on ${device} (the real fp16 weights take about a minute and ~8 GB of memory on a CPU)`);
  const pack = await loadModelPack(dir, { device, intraOpNumThreads: threads });
  const loadSeconds = round1((performance.now() - t0) / 1000);
  try {
    const frames = 4;
    const height = 64;
    const width = 128; // multiples of 64: the real UNet halves the latents three times
    const cfg = sessionConfig(pack.manifest, { window: frames, overlap: 1, steps: 1, guidance: 1, seed: 0 }, { height, width });
    const session = new DepthSession(cfg, new OrtStages(pack), new SeededNoise(0));
    const t1 = performance.now();
    const outs = [];
    for (let i = 0; i < frames; i++) outs.push(...(await session.push(testFrame(i, height, width))));
    outs.push(...(await session.end()));
    const runSeconds = round1((performance.now() - t1) / 1000);
    if (outs.length !== frames) throw new Error(`check: ${frames} frames in, ${outs.length} depth frames out`);
    let lo = Infinity;
    let hi = -Infinity;
    let stdSum = 0;
    for (const o of outs) {
      let sum = 0;
      let sq = 0;
      for (const v of o.depth) {
        if (!Number.isFinite(v)) throw new Error(`check: depth frame ${o.index} has a non-finite value (${v}): the pack is broken`);
        if (v < lo) lo = v;
        if (v > hi) hi = v;
        sum += v;
        sq += v * v;
      }
      const mean = sum / o.depth.length;
      stdSum += Math.sqrt(Math.max(0, sq / o.depth.length - mean * mean));
    }
    const res: PackCheck = {
      device,
      frames,
      width,
      height,
      window: cfg.window,
      steps: cfg.steps,
      loadSeconds,
      runSeconds,
      seconds: round1((performance.now() - t0) / 1000),
      depthMin: lo,
      depthMax: hi,
      depthStd: stdSum / frames,
    };
    say(`check: ${frames} frames at ${width}x${height} in ${runSeconds} s, depth in [${lo.toFixed(3)}, ${hi.toFixed(3)}]`);
    if (res.depthStd === 0) say('check: warning: every depth frame is flat (constant)');
    return res;
  } finally {
    await pack.release();
  }
}

/** A small moving scene, CHW in [-1,1]: a vertical gradient (far at the top) with a square sliding across. */
function testFrame(i: number, height: number, width: number): Float32Array {
  const plane = height * width;
  const f = new Float32Array(3 * plane);
  const x0 = 8 + i * 6;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const inSquare = x >= x0 && x < x0 + 24 && y >= 24 && y < 48;
      const g = inSquare ? 0.9 : y / height;
      const p = y * width + x;
      f[p] = 2 * g - 1;
      f[plane + p] = 2 * (inSquare ? 0.3 : g * 0.8) - 1;
      f[2 * plane + p] = 2 * (inSquare ? 0.2 : 1 - g) - 1;
    }
  }
  return f;
}

// ---------------------------------------------------------------------------------------------
// models list

async function listModels(o: { dir?: string; json?: boolean }): Promise<void> {
  const dir = resolve(o.dir ?? (existsSync('models') && statSync('models').isDirectory() ? 'models' : join(PROJECT_ROOT, 'models')));
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new UsageError(`${o.dir ?? dir}: no such folder`);
  const { readPackManifest } = await import('../../inference/pack/manifest.js');
  const rows: Array<Record<string, unknown>> = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (!statSync(p).isDirectory() || !existsSync(join(p, 'manifest.json'))) continue;
    try {
      const m = await readPackManifest(p);
      rows.push({
        pack: name,
        path: p,
        name: m.name,
        version: m.version,
        dtype: m.dtype,
        randomWeights: m.randomWeights,
        trainingDomain: m.trainingDomain ?? null,
        bytes: folderBytes(p),
      });
    } catch (e) {
      rows.push({ pack: name, path: p, error: (e as Error).message });
    }
  }
  if (o.json) {
    process.stdout.write(`${JSON.stringify({ dir, packs: rows })}\n`);
    return;
  }
  if (rows.length === 0) {
    process.stdout.write(`no model packs in ${dir} (get the real weights: depthcrafter-live models get depthcrafter)\n`);
    return;
  }
  const table = [['PACK', 'NAME', 'VERSION', 'DTYPE', 'RANDOM WEIGHTS', 'TRAINING DOMAIN', 'SIZE']];
  for (const r of rows) {
    if (r.error) table.push([String(r.pack), `invalid: ${String(r.error)}`, '', '', '', '', '']);
    else
      table.push([
        String(r.pack),
        String(r.name),
        String(r.version),
        String(r.dtype),
        r.randomWeights ? 'yes' : 'no',
        String(r.trainingDomain ?? '-'),
        gb(r.bytes as number),
      ]);
  }
  const widths = table[0].map((_, c) => Math.max(...table.map((row) => (row[1].startsWith('invalid: ') && c === 1 ? 0 : row[c].length))));
  process.stdout.write(
    `${dir}\n${table
      .map((row) =>
        row
          .map((cell, c) => (c === row.length - 1 ? cell : cell.padEnd(widths[c])))
          .join('  ')
          .trimEnd(),
      )
      .join('\n')}\n`,
  );
}

// ---------------------------------------------------------------------------------------------

function folderBytes(dir: string): number {
  let n = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isFile()) n += statSync(join(dir, e.name)).size;
  return n;
}

function gb(bytes: number): string {
  return bytes >= 1e9 ? `${(bytes / 1e9).toFixed(2)} GB` : `${(bytes / 1e6).toFixed(1)} MB`;
}

function round1(s: number): number {
  return Math.round(s * 10) / 10;
}
