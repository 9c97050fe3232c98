// Our engine against the reference DepthCrafter pipeline (its own Python code), on the same tiny exported models,
// the same frames and the same noise: CPU time per frame, frames/s and peak RSS of both, and their ratios.
//
//   node --import tsx bench/vs-reference.ts --reference /path/to/DepthCrafter \
//       [--frames 200,400] [--repeat 3] [--size 192x128] [--window 16] [--overlap 4] [--steps 3] [--guidance 1]
//       [--torch-threads 1] [--ours-threads N] [--vae-layers 1] [--ours-rev REV] [--work .tmp/vs-reference] [--json-out FILE]
//
// Opt-in, like test/export-depthcrafter.test.ts: it needs a Python with torch, diffusers, transformers, onnx and
// onnxruntime (tools/requirements-export.txt; DCL_EXPORT_PYTHON, default .venv-export/bin/python; PYTHONPATH passes
// through) and a local copy of github.com/Tencent/DepthCrafter (--reference or DCL_REFERENCE_DIR; never committed).
// Nothing is downloaded: the tiny models are built from the diffusers/transformers classes, the clip is rendered by
// the project's synthetic renderer, the noise is drawn by numpy. All of it is cached under --work.
//
// Each side is a separate child process measured by `tools/vs_reference.py measure` (os.wait4: user+sys CPU of the
// whole process, wall, peak RSS); the sides alternate A/B, B/A per repeat. How to run and the figures:
// docs/performance.md, "Comparison with the reference".
import { existsSync, mkdirSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { spawnSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { writeSynthSequence } from '../src/synth/write-sequence.js';
import { CLI, ROOT, ensureBuilt } from '../test/helpers/build-cli.js';
import { findPython } from '../test/helpers/find-python.js';

const TOOL = join(ROOT, 'tools', 'vs_reference.py');

export interface ComparisonOptions {
  reference: string;
  frames: number[];
  repeat: number;
  width: number;
  height: number;
  window: number;
  overlap: number;
  steps: number;
  guidance: number;
  torchThreads: number;
  /** ONNX Runtime intra-op threads per session; undefined: its default (one per core). */
  oursThreads?: number;
  vaeLayers: number;
  /** Measure ours at this git revision (exported with `git archive` and built under --work) instead of the checkout. */
  oursRev?: string;
  work: string;
  seed: number;
  /** Also run ours once per frame count on its own noise (seed, no noise file), for RSS without the file's arrays. */
  ownNoiseRun: boolean;
  python?: string;
  log?: (line: string) => void;
}

export interface Measured {
  rc: number;
  userS: number;
  sysS: number;
  cpuS: number;
  wallS: number;
  maxRssBytes: number;
  stdoutLast: string;
  stderrTail: string;
  /** 1-minute load average just before the run. */
  load1: number;
}

export interface RunPair {
  repeat: number;
  order: 'ours-first' | 'reference-first';
  ours: Measured & { inferSeconds: number; workerRssBytes?: number };
  reference: Measured & { pipelineSeconds: number; pipelineCpuS: number; torchThreads: number };
  depthMaxAbsDiff: number;
  depthMeanAbsDiff: number;
}

export interface FrameCountResult {
  frames: number;
  segments: number;
  pairs: RunPair[];
  oursOwnNoise?: Measured;
}

export interface ComparisonResult {
  settings: Omit<ComparisonOptions, 'log' | 'python'> & { python: string; git: string; cpu: string; cores: number };
  loadStart: number[];
  loadEnd: number[];
  results: FrameCountResult[];
}

function sh(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { cwd: ROOT, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${(r.stderr || r.error?.message || '').slice(-3000)}`);
  return r.stdout;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the JSON line of another program, read field by field
function lastJson(stdout: string): any {
  const lines = stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]!);
}

/** The reference's segment count (its `while start < n - overlap` loop). */
export function segmentCount(n: number, w: number, o: number): number {
  if (n <= w) return 1;
  let k = 0;
  for (let s = 0; s < n - o; s += w - o) k++;
  return k;
}

/**
 * The CLI that is measured as "ours": the checkout's (dist/ rebuilt when stale, as the tests do), or, with --ours-rev,
 * that revision's src/ exported by `git archive` into --work and built there (the checkout is left alone).
 */
function oursBuild(o: ComparisonOptions, log: (l: string) => void): { cli: string; git: string } {
  if (!o.oursRev) {
    ensureBuilt();
    const dirty = sh('git', ['status', '--porcelain', '--', 'src']).trim() !== '';
    return { cli: CLI, git: sh('git', ['rev-parse', '--short', 'HEAD']).trim() + (dirty ? ' + uncommitted src/ changes' : '') };
  }
  const sha = sh('git', ['rev-parse', '--short', `${o.oursRev}^{commit}`]).trim();
  const dir = join(o.work, `ours-${sha}`);
  const cli = join(dir, 'bin', 'depthcrafter-live.js');
  if (!existsSync(join(dir, 'dist', 'cli', 'main.js'))) {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    const t0 = performance.now();
    const tar = spawnSync('git', ['archive', '--format=tar', sha, 'src', 'bin', 'package.json', 'tsconfig.json'], { cwd: ROOT, maxBuffer: 1 << 30 });
    if (tar.status !== 0) throw new Error(`git archive ${sha} failed: ${tar.stderr}`);
    const x = spawnSync('tar', ['-x', '-C', dir], { input: tar.stdout });
    if (x.status !== 0) throw new Error(`tar -x failed: ${x.stderr}`);
    symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
    const tsc = spawnSync(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], { cwd: dir, encoding: 'utf8' });
    if (!existsSync(join(dir, 'dist', 'cli', 'main.js'))) throw new Error(`tsc of ${sha} produced no dist/cli/main.js: ${tsc.stdout}${tsc.stderr}`);
    log(`[vs-reference] built ours at ${sha} in ${dir} (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
  }
  return { cli, git: sha };
}

export async function runComparison(o: ComparisonOptions): Promise<ComparisonResult> {
  const log = o.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const python = o.python ?? findPython().python;
  if (!python) throw new Error(`no Python with torch/diffusers/transformers/onnx/onnxruntime: ${findPython().why}`);
  if (!existsSync(join(o.reference, 'depthcrafter', 'depth_crafter_ppl.py'))) {
    throw new Error(`--reference ${o.reference}: no depthcrafter/depth_crafter_ppl.py there (a checkout of github.com/Tencent/DepthCrafter)`);
  }
  const py = (...args: string[]) => lastJson(sh(python, [TOOL, ...args]));
  mkdirSync(o.work, { recursive: true });
  const { cli, git } = oursBuild(o, log);

  const prep = py('prepare', '--work', o.work, '--vae-layers', String(o.vaeLayers));
  log(`[vs-reference] models ${prep.tiny}, pack ${prep.pack}${prep.built.length ? ` (built: ${prep.built.join(', ')})` : ' (cached)'}`);

  // one clip of the longest length (the project's renderer), shorter ones as its first N frames (links)
  const size = `${o.width}x${o.height}`;
  const maxN = Math.max(...o.frames);
  const clip = join(o.work, `clip-${o.seed}-${maxN}-${size}`);
  if (!existsSync(join(clip, 'meta.json'))) {
    // written last: a clip without it is incomplete
    rmSync(clip, { recursive: true, force: true });
    const t0 = performance.now();
    await writeSynthSequence({ outDir: clip, seed: o.seed, frames: maxN, width: o.width, height: o.height, fps: 30, fovDeg: 60 });
    log(`[vs-reference] clip ${clip}: ${maxN} frames ${size} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }
  const pngs = readdirSync(join(clip, 'rgb'))
    .filter((n) => n.endsWith('.png'))
    .sort();
  if (pngs.length < maxN) throw new Error(`${clip}/rgb has ${pngs.length} frames, expected ${maxN} (remove it to rebuild)`);

  const result: ComparisonResult = {
    settings: { ...o, log: undefined, python, git, cpu: cpus()[0]?.model ?? '?', cores: cpus().length } as ComparisonResult['settings'],
    loadStart: loadavg(),
    loadEnd: [],
    results: [],
  };
  delete (result.settings as { log?: unknown }).log;
  log(`[vs-reference] ours ${git}; ${result.settings.cores} cores, ${result.settings.cpu}; load ${fmtLoad(result.loadStart)}`);

  const out = join(o.work, 'out');
  mkdirSync(out, { recursive: true });
  for (const n of o.frames) {
    const frames = join(o.work, `frames-${o.seed}-${n}-${size}`);
    if (!existsSync(frames) || readdirSync(frames).length !== n) {
      rmSync(frames, { recursive: true, force: true });
      mkdirSync(frames);
      for (const name of pngs.slice(0, n)) symlinkSync(resolve(clip, 'rgb', name), join(frames, name));
    }
    const noise = join(o.work, `noise-${o.seed}-${n}-${size}-w${o.window}.npz`);
    if (!existsSync(noise)) py('noise', '--out', noise, '--frames', String(n), '--window', String(o.window), '--size', size, '--seed', String(o.seed));

    const common = ['--window', String(o.window), '--overlap', String(o.overlap), '--steps', String(o.steps), '--guidance', String(o.guidance)];
    const measure = (cmd: string[]): Measured => {
      const load1 = loadavg()[0]!;
      const m = py('measure', '--', ...cmd) as Omit<Measured, 'load1'>;
      if (m.rc !== 0) throw new Error(`${cmd.join(' ')} failed (${m.rc}):\n${m.stderrTail}`);
      return { ...m, load1 };
    };
    const oursCmd = (dir: string, withNoise: boolean) => [
      process.execPath,
      cli,
      'infer',
      frames,
      '--model',
      prep.pack,
      ...common,
      ...(withNoise ? ['--noise', noise] : ['--seed', String(o.seed)]),
      '--no-videos',
      '--output-size',
      'model',
      '--json',
      '--out',
      dir,
      ...(o.oursThreads !== undefined ? ['--threads', String(o.oursThreads)] : []),
    ];
    const runOurs = (r: number) => {
      const dir = join(out, `ours-${n}-${r}`);
      rmSync(dir, { recursive: true, force: true });
      const m = measure(oursCmd(dir, true));
      const j = JSON.parse(m.stdoutLast);
      return { ...m, inferSeconds: j.inferSeconds as number, workerRssBytes: j.workerRssBytes as number | undefined, npz: j.files.npz as string };
    };
    const runRef = (r: number) => {
      const npz = join(out, `ref-${n}-${r}.npz`);
      const m = measure([
        python,
        TOOL,
        'reference',
        '--depthcrafter',
        o.reference,
        '--tiny',
        prep.tiny,
        '--frames-dir',
        frames,
        '--noise',
        noise,
        '--out',
        npz,
        ...common,
        '--threads',
        String(o.torchThreads),
      ]);
      const j = JSON.parse(m.stdoutLast);
      return { ...m, pipelineSeconds: j.seconds as number, pipelineCpuS: j.pipelineCpuS as number, torchThreads: j.torchThreads as number, npz };
    };
    const fc: FrameCountResult = { frames: n, segments: segmentCount(n, o.window, o.overlap), pairs: [] };
    for (let r = 0; r < o.repeat; r++) {
      const oursFirst = r % 2 === 0;
      let a, b;
      if (oursFirst) {
        a = runOurs(r);
        b = runRef(r);
      } else {
        b = runRef(r);
        a = runOurs(r);
      }
      const cmp = py('compare', a.npz, b.npz);
      if (cmp.error) throw new Error(`depth outputs differ in shape: ${cmp.error}`);
      const { npz: _a, ...ours } = a;
      const { npz: _b, ...reference } = b;
      const pair: RunPair = {
        repeat: r,
        order: oursFirst ? 'ours-first' : 'reference-first',
        ours,
        reference,
        depthMaxAbsDiff: cmp.maxAbsDiff,
        depthMeanAbsDiff: cmp.meanAbsDiff,
      };
      fc.pairs.push(pair);
      log(
        `[vs-reference] ${n} frames, repeat ${r + 1}/${o.repeat}: CPU ours ${ours.cpuS.toFixed(1)} s, reference ${reference.cpuS.toFixed(1)} s ` +
          `(x${(reference.cpuS / ours.cpuS).toFixed(2)}); wall ${ours.wallS.toFixed(1)} / ${reference.wallS.toFixed(1)} s; ` +
          `depth max |diff| ${cmp.maxAbsDiff.toExponential(2)}; load ${ours.load1.toFixed(2)}/${reference.load1.toFixed(2)}`,
      );
    }
    if (o.ownNoiseRun) {
      const dir = join(out, `ours-${n}-own`);
      rmSync(dir, { recursive: true, force: true });
      fc.oursOwnNoise = measure(oursCmd(dir, false));
      log(`[vs-reference] ${n} frames, ours on its own noise: CPU ${fc.oursOwnNoise.cpuS.toFixed(1)} s, peak RSS ${mib(fc.oursOwnNoise.maxRssBytes)} MiB`);
    }
    result.results.push(fc);
  }
  result.loadEnd = loadavg();
  return result;
}

// ---------------------------------------------------------------------------------------------
// the table

const median = (xs: number[]) => {
  const s = [...xs].sort((p, q) => p - q);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const range = (xs: number[], d: number) => {
  const [med, lo, hi] = [median(xs), Math.min(...xs), Math.max(...xs)].map((v) => v.toFixed(d));
  return lo !== hi ? `${med} (${lo}-${hi})` : med!;
};
const mib = (b: number) => (b / 2 ** 20).toFixed(0);
const fmtLoad = (l: number[]) => l.map((v) => v.toFixed(2)).join(' ');

export function formatTable(res: ComparisonResult): string {
  const s = res.settings;
  const lines: string[] = [];
  lines.push(
    `clip ${s.width}x${s.height} (synthetic), window ${s.window}, overlap ${s.overlap}, ${s.steps} steps, guidance ${s.guidance}, ` +
      `tiny fp32 models (VAE ${s.vaeLayers} layer/block); torch threads ${s.torchThreads}, ours ONNX Runtime intra-op threads ` +
      `${s.oursThreads ?? 'default (one per core)'}; ours at ${s.git}; ${s.cores} cores (${s.cpu})`,
  );
  lines.push(
    `load average (1/5/15 min) at start ${fmtLoad(res.loadStart)}, at end ${fmtLoad(res.loadEnd)}; ${res.results[0]?.pairs.length ?? 0} repeats, A/B alternating`,
  );
  lines.push('CPU = user+sys of the whole child process (start-up, model loading, reading frames, inference, writing the npz); median (min-max)');
  lines.push('');
  lines.push('| frames | side | CPU ms/frame | ratio ref/ours (CPU) | wall s | frames/s (wall) | ratio ref/ours (wall) | peak RSS MiB | depth max abs diff |');
  lines.push('|---|---|---|---|---|---|---|---|---|');
  for (const fc of res.results) {
    const n = fc.frames;
    const o = fc.pairs.map((p) => p.ours);
    const r = fc.pairs.map((p) => p.reference);
    const cpuRatio = fc.pairs.map((p) => p.reference.cpuS / p.ours.cpuS);
    const wallRatio = fc.pairs.map((p) => p.reference.wallS / p.ours.wallS);
    const diff = Math.max(...fc.pairs.map((p) => p.depthMaxAbsDiff));
    lines.push(
      `| ${n} | ours | ${range(
        o.map((m) => (m.cpuS / n) * 1000),
        0,
      )} | | ${range(
        o.map((m) => m.wallS),
        1,
      )} | ${range(
        o.map((m) => n / m.wallS),
        2,
      )} | | ${range(
        o.map((m) => m.maxRssBytes / 2 ** 20),
        0,
      )} | |`,
    );
    lines.push(
      `| ${n} | reference | ${range(
        r.map((m) => (m.cpuS / n) * 1000),
        0,
      )} | **${range(cpuRatio, 2)}** | ${range(
        r.map((m) => m.wallS),
        1,
      )} | ${range(
        r.map((m) => n / m.wallS),
        2,
      )} | ${range(wallRatio, 2)} | ${range(
        r.map((m) => m.maxRssBytes / 2 ** 20),
        0,
      )} | ${diff.toExponential(1)} |`,
    );
  }
  lines.push('');
  for (const fc of res.results) {
    const n = fc.frames;
    const r = fc.pairs.map((p) => p.reference);
    const inCall = r.map((m) => (m.pipelineCpuS / n) * 1000);
    const fixed = r.map((m) => m.cpuS - m.pipelineCpuS);
    lines.push(
      `${n} frames (${fc.segments} windows): reference pipeline call alone ${range(inCall, 0)} CPU ms/frame (the rest, start-up/loading/reading/saving: ${range(fixed, 1)} s); ` +
        `ours infer phase ${range(
          fc.pairs.map((p) => p.ours.inferSeconds),
          1,
        )} s wall; load during runs ${range(
          fc.pairs.flatMap((p) => [p.ours.load1, p.reference.load1]),
          2,
        )}` +
        (fc.oursOwnNoise
          ? `; ours on its own noise (no noise file): ${((fc.oursOwnNoise.cpuS / n) * 1000).toFixed(0)} CPU ms/frame, peak RSS ${mib(fc.oursOwnNoise.maxRssBytes)} MiB`
          : ''),
    );
  }
  if (res.results.length >= 2) {
    const [a, b] = [res.results[0]!, res.results[res.results.length - 1]!];
    const per = (pick: (p: RunPair) => number) => ((median(b.pairs.map(pick)) - median(a.pairs.map(pick))) / (b.frames - a.frames)) * 1000;
    const mo = per((p) => p.ours.cpuS);
    const mr = per((p) => p.reference.cpuS);
    lines.push(
      `marginal CPU per frame from ${a.frames} to ${b.frames} frames (fixed costs cancel): ours ${mo.toFixed(0)} ms, reference ${mr.toFixed(0)} ms, ratio ${(mr / mo).toFixed(2)}`,
    );
  }
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------------------
// command line

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      reference: { type: 'string', default: process.env.DCL_REFERENCE_DIR },
      frames: { type: 'string', default: '200,400' },
      repeat: { type: 'string', default: '3' },
      size: { type: 'string', default: '192x128' },
      window: { type: 'string', default: '16' },
      overlap: { type: 'string', default: '4' },
      steps: { type: 'string', default: '3' },
      guidance: { type: 'string', default: '1' },
      'torch-threads': { type: 'string', default: '1' },
      'ours-threads': { type: 'string' },
      'vae-layers': { type: 'string', default: '1' },
      'ours-rev': { type: 'string' },
      work: { type: 'string', default: join(ROOT, '.tmp', 'vs-reference') },
      seed: { type: 'string', default: '7' },
      'no-own-noise-run': { type: 'boolean', default: false },
      'json-out': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help || !values.reference) {
    process.stdout.write(
      'usage: node --import tsx bench/vs-reference.ts --reference /path/to/DepthCrafter [--frames 200,400] [--repeat 3]\n' +
        '  [--size WxH (192x128)] [--window 16] [--overlap 4] [--steps 3] [--guidance 1] [--torch-threads 1] [--ours-threads N]\n' +
        '  [--vae-layers 1] [--ours-rev REV (default: the checkout as it is)] [--work .tmp/vs-reference] [--seed 7] [--no-own-noise-run] [--json-out FILE]\n' +
        '  (--reference defaults to $DCL_REFERENCE_DIR; see docs/performance.md)\n',
    );
    process.exit(values.help ? 0 : 2);
  }
  const m = /^(\d+)x(\d+)$/.exec(values.size!);
  if (!m || Number(m[1]) % 64 || Number(m[2]) % 64)
    throw new Error(`--size must be WxH in multiples of 64 (the model size: no resize on either side), got ${values.size}`);
  const res = await runComparison({
    reference: resolve(values.reference),
    frames: values.frames!.split(',').map(Number),
    repeat: Number(values.repeat),
    width: Number(m[1]),
    height: Number(m[2]),
    window: Number(values.window),
    overlap: Number(values.overlap),
    steps: Number(values.steps),
    guidance: Number(values.guidance),
    torchThreads: Number(values['torch-threads']),
    oursThreads: values['ours-threads'] !== undefined ? Number(values['ours-threads']) : undefined,
    vaeLayers: Number(values['vae-layers']),
    oursRev: values['ours-rev'],
    work: resolve(values.work!),
    seed: Number(values.seed),
    ownNoiseRun: !values['no-own-noise-run'],
  });
  process.stdout.write(`${formatTable(res)}\n`);
  if (values['json-out']) {
    const { writeFileSync } = await import('node:fs');
    writeFileSync(values['json-out'], `${JSON.stringify(res, null, 2)}\n`);
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().catch((e) => {
    process.stderr.write(`vs-reference: ${(e as Error).message}\n`);
    process.exit(1);
  });
}
