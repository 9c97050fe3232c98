import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import type { Logger } from 'pino';
import { inferVideo } from '../../inference/offline/infer.js';
import { DEFAULT_PACK } from '../../inference/pack/default-pack.js';
import { resolvePackArg } from '../../graph/input-paths.js';
import { MANIFEST_FILE, parsePackManifest } from '../../inference/pack/manifest.js';
import type { PackDevice } from '../../inference/pack/load-pack.js';
import { segmentLayout } from '../../inference/math/segments.js';
import { boundariesFromSegments, evaluateSequence, NoValidPixelsError, flickerNoGt, resizeSequence, type SequenceMetrics } from '../../eval/metrics.js';
import { checkFrameCounts, EvalInputError, loadGroundTruth, loadPrediction, type DepthSequence } from '../../eval/load.js';
import { createLogger } from '../../util/log.js';
import { UsageError } from '../usage-error.js';
import { intOption, positiveOption } from '../options.js';

// `eval`: the DepthCrafter benchmark protocol (spec §7) on one sequence, plus temporal
// consistency. Two forms:
//   eval --pred PRED [--gt GT]       score an existing prediction (.npz/.npy/PNG folder)
//   eval --dataset DIR               run inferVideo on DIR/rgb, then score against DIR/depth
// Definitions: docs/evaluation.md.

const nonNegative = (name: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`${name} must be a non-negative number`);
  return n;
};
const intList = (name: string) => (v: string) => {
  const parts = v
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  const out = parts.map(Number);
  if (out.some((n) => !Number.isInteger(n) || n < 0)) throw new InvalidArgumentError(`${name} must be a comma-separated list of frame indices`);
  return out;
};

interface EvalCliOptions {
  pred?: string;
  gt?: string;
  dataset?: string;
  depthScale?: number;
  maxDepth: number;
  minDepth: number;
  boundaries?: number[];
  strict?: boolean;
  json?: boolean;
  perFrame?: boolean;
  model: string;
  device: PackDevice;
  threads?: number;
  window?: number;
  overlap?: number;
  steps?: number;
  guidance?: number;
  maxRes?: number;
  seed: number;
  keepPred?: string;
}

/** What `eval --json` prints (NaN values become null). */
export interface EvalReport {
  absrel: number | null;
  delta1: number | null;
  rmse: number | null;
  frames: number;
  framesWithValid: number | null;
  temporal: number | null;
  temporalBoundary: number | null;
  flickerNoGt: number | null;
  flickerNoGtBoundary: number | null;
  scale: number | null;
  shift: number | null;
  validPixels: number | null;
  validFraction: number | null;
  boundaries: number[];
  maxDepth: number;
  minDepth: number;
  pred: string;
  gt: string | null;
  predSize: { width: number; height: number };
  gtSize: { width: number; height: number } | null;
  inference?: { frames: number; width: number; height: number; window: number; overlap: number; steps: number | null; seconds: number; npz: string | null };
  perFrame?: Array<{ index: number; valid: number; absrel: number | null; delta1: number | null; rmse: number | null }>;
}

export function registerEval(program: Command): void {
  program
    .command('eval')
    .description(
      'Score depth against ground truth with the DepthCrafter protocol (one scale+shift per sequence in disparity; AbsRel, delta1, RMSE) plus temporal consistency. ' +
        'Either --pred PRED [--gt GT], or --dataset DIR (runs inference on DIR/rgb, scores against DIR/depth). See docs/evaluation.md.',
    )
    .option('--pred <path>', 'prediction: .npz (key "depth", [N,H,W]), .npy, a folder of 16-bit PNGs (value/65535), or an infer output folder')
    .option('--gt <path>', 'ground truth: folder of uint16 depth PNGs (0 = invalid), or .npz/.npy of metric depth; without it only flicker is reported')
    .option('--dataset <dir>', 'folder with rgb/ (frames) and depth/ (uint16 PNGs): infer on rgb/, then evaluate against depth/')
    .option('--depth-scale <s>', 'GT value to metres (default 0.001 for uint16 PNG / integer arrays, 1 for float arrays)', positiveOption('--depth-scale'))
    .option('--max-depth <m>', 'GT valid below this depth (m); also the predicted-depth clip', positiveOption('--max-depth'), 10)
    .option('--min-depth <m>', 'GT valid above this depth (m)', nonNegative('--min-depth'), 1e-3)
    .option(
      '--boundaries <list>',
      'window start frames for temporalBoundary, e.g. 85,170 (dataset form: computed from --window/--overlap)',
      intList('--boundaries'),
    )
    .option('--strict', 'a frame count mismatch is an error (default: evaluate the common prefix and warn)')
    .option('--json', 'print one JSON object on stdout')
    .option('--per-frame', 'also print the per-frame table')
    .option('-m, --model <pack>', 'dataset form: model pack folder', DEFAULT_PACK)
    .option('--device <device>', 'dataset form: cpu | cuda | tensorrt | webgpu', 'cpu')
    .option('--threads <n>', 'dataset form: ONNX Runtime intra-op threads per session (default: one per core)', intOption('--threads'))
    .option('--window <n>', 'dataset form: frames per window', intOption('--window'))
    .option('--overlap <n>', 'dataset form: frames shared by consecutive windows', intOption('--overlap'))
    .option('--steps <n>', 'dataset form: denoising steps', intOption('--steps'))
    .option('--guidance <g>', 'dataset form: classifier-free guidance scale', positiveOption('--guidance'))
    .option('--max-res <n>', 'dataset form: longest side limit', intOption('--max-res'))
    .option('--seed <n>', 'dataset form: noise seed', intOption('--seed'), 42)
    .option('--keep-pred <dir>', 'dataset form: write the prediction here and keep it (default: a temporary folder, removed)')
    .action(async (o: EvalCliOptions) => {
      const log = createLogger({ level: o.json ? 'warn' : undefined });
      const report = o.dataset !== undefined ? await evalDataset(o, log) : await evalPrediction(o, log);
      if (o.json) process.stdout.write(`${JSON.stringify(report)}\n`);
      else process.stdout.write(formatReport(report, o.perFrame === true));
    });
}

async function evalPrediction(o: EvalCliOptions, log: Logger): Promise<EvalReport> {
  if (o.pred === undefined) throw new UsageError('eval needs --pred PRED [--gt GT] or --dataset DIR');
  const pred = await loadPrediction(o.pred);
  if (o.gt === undefined) return flickerOnly(pred, o);
  const gt = await loadGroundTruth(o.gt, { depthScale: o.depthScale });
  return score(pred, gt, o, o.boundaries ?? [], log);
}

async function evalDataset(o: EvalCliOptions, log: Logger): Promise<EvalReport> {
  if (o.pred !== undefined || o.gt !== undefined) throw new UsageError('--dataset cannot be combined with --pred or --gt');
  const dir = o.dataset as string;
  if (!existsSync(dir)) throw new UsageError(`dataset folder not found: ${dir}`);
  if (!statSync(dir).isDirectory()) throw new UsageError(`dataset is not a folder: ${dir}`);
  const rgbDir = join(dir, 'rgb');
  const depthDir = join(dir, 'depth');
  if (!existsSync(rgbDir)) throw new UsageError(`dataset folder has no rgb/ subfolder: ${rgbDir}`);
  if (!existsSync(depthDir)) throw new UsageError(`dataset folder has no depth/ subfolder: ${depthDir}`);
  // Load GT first: a bad GT folder fails before minutes of inference.
  const gt = await loadGroundTruth(depthDir, { depthScale: o.depthScale });

  const packDir = resolvePackArg(o.model);
  const manifest = readManifest(packDir);
  const window = o.window ?? manifest.defaults.window;
  const overlap = o.overlap ?? manifest.defaults.overlap;
  const outDir = o.keepPred ?? mkdtempSync(join(tmpdir(), 'dcl-eval-'));
  const tty = process.stderr.isTTY === true && !o.json;
  let lastDraw = 0;
  try {
    const result = await inferVideo({
      input: rgbDir,
      outDir,
      packDir,
      device: o.device,
      threads: o.threads,
      choices: { window: o.window, overlap: o.overlap, steps: o.steps, guidance: o.guidance, seed: o.seed, maxRes: o.maxRes },
      writeVideos: false,
      compressNpz: o.keepPred !== undefined,
      log,
      onProgress: tty
        ? (fin, fout, total) => {
            const now = performance.now();
            if (now - lastDraw < 200 && fout !== total) return;
            lastDraw = now;
            process.stderr.write(`\r  inference: frames in ${fin}${total ? `/${total}` : ''}, depth out ${fout}   `);
          }
        : undefined,
    });
    if (tty) process.stderr.write('\n');
    if (!result.files.npz) throw new Error('internal: inference wrote no .npz');
    const pred = await loadPrediction(result.files.npz);
    const boundaries = o.boundaries ?? boundariesFromSegments(segmentLayout(result.frames, window, overlap));
    const report = score(pred, gt, o, boundaries, log);
    report.inference = {
      frames: result.frames,
      width: result.width,
      height: result.height,
      window: Math.min(window, result.frames),
      overlap: result.frames <= window ? 0 : overlap,
      steps: o.steps ?? manifest.defaults.steps,
      seconds: result.seconds,
      npz: o.keepPred !== undefined ? result.files.npz : null,
    };
    report.pred = o.keepPred !== undefined ? result.files.npz : `${basename(resolve(rgbDir))} (inferred)`;
    return report;
  } finally {
    if (o.keepPred === undefined) rmSync(outDir, { recursive: true, force: true });
  }
}

function readManifest(packDir: string) {
  const path = join(packDir, MANIFEST_FILE);
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UsageError(code === 'ENOENT' ? `model pack manifest not found: ${path}` : `cannot read model pack manifest ${path}: ${(e as Error).message}`);
  }
  return parsePackManifest(json, path, packDir);
}

function nullable(v: number): number | null {
  return Number.isFinite(v) ? v : null;
}

function score(pred: DepthSequence, gt: DepthSequence, o: EvalCliOptions, boundaries: number[], log: Logger): EvalReport {
  const counts = checkFrameCounts(pred.frames.length, gt.frames.length, o.strict === true);
  if (counts.warning) log.warn(counts.warning);
  const n = counts.frames;
  const preds = resizeSequence(pred.frames.slice(0, n), pred.width, pred.height, gt.width, gt.height);
  const gts = gt.frames.slice(0, n);
  let m: SequenceMetrics;
  try {
    m = evaluateSequence(preds, gts, gt.width, gt.height, { maxDepth: o.maxDepth, minDepth: o.minDepth, boundaries });
  } catch (e) {
    if (e instanceof NoValidPixelsError) {
      throw new EvalInputError(
        `no valid ground-truth pixels in ${gt.source} (valid: ${o.minDepth} < depth < ${o.maxDepth} m after --depth-scale; check --depth-scale/--max-depth)`,
      );
    }
    throw e;
  }
  return {
    absrel: nullable(m.absrel),
    delta1: nullable(m.delta1),
    rmse: nullable(m.rmse),
    frames: m.frames,
    framesWithValid: m.framesWithValid,
    temporal: nullable(m.temporal),
    temporalBoundary: nullable(m.temporalBoundary),
    flickerNoGt: nullable(m.flickerNoGt),
    flickerNoGtBoundary: nullable(m.flickerNoGtBoundary),
    scale: m.scale,
    shift: m.shift,
    validPixels: m.validPixels,
    validFraction: m.validPixels / (n * gt.width * gt.height),
    boundaries: boundaries.filter((b) => b >= 1 && b < n),
    maxDepth: o.maxDepth,
    minDepth: o.minDepth,
    pred: pred.source,
    gt: gt.source,
    predSize: { width: pred.width, height: pred.height },
    gtSize: { width: gt.width, height: gt.height },
    perFrame: m.perFrame.map((f) => ({ index: f.index, valid: f.valid, absrel: nullable(f.absrel), delta1: nullable(f.delta1), rmse: nullable(f.rmse) })),
  };
}

/** No GT: only the flicker of the raw prediction (its own units). */
function flickerOnly(pred: DepthSequence, o: EvalCliOptions): EvalReport {
  const boundaries = (o.boundaries ?? []).filter((b) => b >= 1 && b < pred.frames.length);
  const clipped = pred.frames.map((f) => f.map((v) => (v >= 1e-3 ? v : 1e-3)));
  const fl = flickerNoGt(clipped, { boundaries });
  return {
    absrel: null,
    delta1: null,
    rmse: null,
    frames: pred.frames.length,
    framesWithValid: null,
    temporal: null,
    temporalBoundary: null,
    flickerNoGt: nullable(fl.flicker),
    flickerNoGtBoundary: nullable(fl.flickerBoundary),
    scale: null,
    shift: null,
    validPixels: null,
    validFraction: null,
    boundaries,
    maxDepth: o.maxDepth,
    minDepth: o.minDepth,
    pred: pred.source,
    gt: null,
    predSize: { width: pred.width, height: pred.height },
    gtSize: null,
  };
}

function fmt(v: number | null, digits = 4): string {
  return v === null ? '-' : v.toFixed(digits);
}

export function formatReport(r: EvalReport, perFrame = false): string {
  const rows: Array<[string, string]> = [];
  const b = r.boundaries.length
    ? `  (${r.boundaries.length} pair${r.boundaries.length > 1 ? 's' : ''} at frames ${r.boundaries.join(', ')})`
    : '  (no window boundaries)';
  if (r.gt !== null) {
    rows.push(['AbsRel', fmt(r.absrel)]);
    rows.push(['delta1', fmt(r.delta1)]);
    rows.push(['RMSE (m)', fmt(r.rmse)]);
    rows.push(['temporal (1/m)', fmt(r.temporal, 5)]);
    rows.push(['temporal at boundaries', fmt(r.temporalBoundary, 5) + b]);
    rows.push(['flicker, no GT (1/m)', fmt(r.flickerNoGt, 5)]);
    rows.push([
      'frames',
      `${r.frames} (${r.framesWithValid} with valid GT, ${r.validFraction === null ? '-' : (100 * r.validFraction).toFixed(1)}% valid pixels)`,
    ]);
    rows.push(['scale / shift', `${fmt(r.scale, 6)} / ${fmt(r.shift, 6)} (pred -> disparity, 1/m)`]);
  } else {
    rows.push(['flicker, no GT', fmt(r.flickerNoGt, 5) + ' (prediction units)']);
    rows.push(['flicker at boundaries', fmt(r.flickerNoGtBoundary, 5) + b]);
    rows.push(['frames', String(r.frames)]);
  }
  const width = Math.max(...rows.map(([k]) => k.length));
  let out = `prediction ${r.pred} (${r.predSize.width}x${r.predSize.height})\n`;
  if (r.gt !== null && r.gtSize) out += `ground truth ${r.gt} (${r.gtSize.width}x${r.gtSize.height}, valid ${r.minDepth} < depth < ${r.maxDepth} m)\n`;
  if (r.inference) {
    const i = r.inference;
    out += `inference ${i.frames} frames at ${i.width}x${i.height}, window ${i.window}, overlap ${i.overlap}, steps ${i.steps ?? '-'}, ${i.seconds.toFixed(1)} s\n`;
  }
  out += rows.map(([k, v]) => `  ${k.padEnd(width)}  ${v}\n`).join('');
  if (perFrame && r.perFrame) {
    out += '\n  frame   valid    AbsRel   delta1     RMSE\n';
    for (const f of r.perFrame) {
      out += `  ${String(f.index).padStart(5)} ${String(f.valid).padStart(7)} ${fmt(f.absrel).padStart(9)} ${fmt(f.delta1).padStart(8)} ${fmt(f.rmse).padStart(8)}\n`;
    }
  }
  return out;
}
