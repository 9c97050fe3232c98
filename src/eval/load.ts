/**
 * Loading predictions and ground truth for evaluation (the I/O half of src/eval; the metrics
 * themselves are pure, in metrics.ts).
 *
 * Predictions (relative disparity, near = large):
 *   - an .npz with key `depth` (this project's and the reference's output; any single-array
 *     .npz works too), or an .npy; shape [N, H, W], [N, 1, H, W] or [H, W];
 *     float32/float64 as is, uint16 / 65535, uint8 / 255;
 *   - a folder of PNGs (16-bit: value / 65535, 8-bit: value / 255; first channel), sorted by
 *     name with numbers compared numerically;
 *   - a folder holding exactly one `*_depth.npz` (an `infer` output folder) and no PNGs.
 * Ground truth (metric depth; <= 0 or NaN = invalid):
 *   - a folder of single-channel PNGs (uint16, e.g. millimetres) times depthScale (default 0.001);
 *   - an .npz (key `disparity` as in the reference benchmark -- which despite the name holds
 *     metric depth -- or `depth`, or the only array) or .npy, shape as above; float arrays
 *     times depthScale (default 1), integer arrays times depthScale (default 0.001).
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { readNpz } from '../io/npz-writer.js';
import { parseNpy, type NpyArray } from '../io/npy.js';
import { decodePng } from '../io/png16.js';
import { UserError } from '../util/errors.js';

/** Bad evaluation input (missing/empty/unreadable files, shape mismatch): the CLI maps it to exit code 2. */
export class EvalInputError extends UserError {
  constructor(message: string) {
    super(message);
    this.name = 'EvalInputError';
  }
}

export interface DepthSequence {
  /** One row-major Float32Array of width*height values per frame. */
  frames: Float32Array[];
  width: number;
  height: number;
  /** What was read (a file, or a folder). */
  source: string;
}

/** Default GT scale for integer data (uint16 millimetres -> metres). */
export const DEFAULT_INT_DEPTH_SCALE = 0.001;

/** Names compared like listFrames in media/frame-folder.ts: numbers numerically (frame_2 < frame_10). */
export function compareNames(a: string, b: string): number {
  return a.localeCompare(b, 'en', { numeric: true });
}

async function kindOf(path: string, what: string): Promise<'file' | 'dir'> {
  let st;
  try {
    st = await stat(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new EvalInputError(code === 'ENOENT' ? `${what} not found: ${path}` : `cannot read ${what} ${path}: ${code ?? String(e)}`);
  }
  if (st.isDirectory()) return 'dir';
  if (st.isFile()) return 'file';
  throw new EvalInputError(`${what} is neither a file nor a folder: ${path}`);
}

/** Files of `dir` whose extension (lower-cased) is in `exts`, sorted numeric-aware, as full paths. */
export async function listFiles(dir: string, exts: readonly string[], what: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new EvalInputError(code === 'ENOENT' ? `${what} not found: ${dir}` : `cannot read ${what} ${dir}: ${code ?? String(e)}`);
  }
  return names
    .filter((n) => exts.includes(extname(n).toLowerCase()) && !n.startsWith('.'))
    .sort(compareNames)
    .map((n) => join(dir, n));
}

/** Splits an [N,H,W], [N,1,H,W] or [H,W] array into frames, converting with `convert`. */
function arrayToFrames(arr: NpyArray, where: string, convert: (v: number) => number): DepthSequence {
  const s = arr.shape;
  let n: number;
  let h: number;
  let w: number;
  if (s.length === 3) [n, h, w] = s;
  else if (s.length === 4 && s[1] === 1) [n, , h, w] = s;
  else if (s.length === 2) [n, h, w] = [1, s[0], s[1]];
  else throw new EvalInputError(`${where}: expected shape [N, H, W], [N, 1, H, W] or [H, W], got [${s.join(', ')}]`);
  if (n === 0 || h === 0 || w === 0) throw new EvalInputError(`${where}: empty array, shape [${s.join(', ')}]`);
  const size = h * w;
  const frames: Float32Array[] = [];
  for (let t = 0; t < n; t++) {
    const f = new Float32Array(size);
    const src = arr.data;
    const off = t * size;
    for (let i = 0; i < size; i++) f[i] = convert(src[off + i]);
    frames.push(f);
  }
  return { frames, width: w, height: h, source: where };
}

async function readArrayFile(path: string, keys: readonly string[], what: string): Promise<NpyArray> {
  const ext = extname(path).toLowerCase();
  try {
    if (ext === '.npy') {
      const buf = await readFile(path);
      return parseNpy(new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength));
    }
    if (ext === '.npz') {
      const all = await readNpz(path);
      for (const k of keys) if (all[k]) return all[k];
      const names = Object.keys(all);
      if (names.length === 1) return all[names[0]];
      throw new EvalInputError(
        `${what} ${path}: no array named ${keys.map((k) => `'${k}'`).join(' or ')} (arrays: ${names.length ? names.join(', ') : 'none'})`,
      );
    }
  } catch (e) {
    if (e instanceof EvalInputError) throw e;
    throw new EvalInputError(`${what} ${path}: ${(e as Error).message}`);
  }
  throw new EvalInputError(`${what} ${path}: unsupported file type '${ext}' (expected .npz, .npy or a folder of PNGs)`);
}

interface PngFrame {
  data: Float32Array;
  width: number;
  height: number;
  depth: 8 | 16;
}

async function readPngChannel0(path: string, what: string, requireSingle: boolean): Promise<PngFrame> {
  let png;
  try {
    png = decodePng(await readFile(path));
  } catch (e) {
    throw new EvalInputError(`${what}: cannot decode ${path}: ${(e as Error).message}`);
  }
  if (requireSingle && png.channels !== 1) {
    throw new EvalInputError(`${what}: ${path} has ${png.channels} channels; expected a single-channel (grayscale) depth PNG`);
  }
  const n = png.width * png.height;
  const c = png.channels;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = png.data[i * c];
  return { data: out, width: png.width, height: png.height, depth: png.depth };
}

async function readPngFolder(dir: string, what: string, requireSingle: boolean, scaleFor: (bitDepth: 8 | 16) => number): Promise<DepthSequence | null> {
  const files = await listFiles(dir, ['.png'], what);
  if (files.length === 0) return null;
  const frames: Float32Array[] = [];
  let width = 0;
  let height = 0;
  for (const f of files) {
    const img = await readPngChannel0(f, what, requireSingle);
    if (frames.length === 0) {
      width = img.width;
      height = img.height;
    } else if (img.width !== width || img.height !== height) {
      throw new EvalInputError(`${what}: ${f} is ${img.width}x${img.height} but ${files[0]} is ${width}x${height}`);
    }
    const k = scaleFor(img.depth);
    const d = img.data;
    for (let i = 0; i < d.length; i++) d[i] *= k;
    frames.push(d);
  }
  return { frames, width, height, source: dir };
}

/** Loads a prediction (see the file header for the accepted forms). */
export async function loadPrediction(path: string): Promise<DepthSequence> {
  const what = 'prediction';
  const kind = await kindOf(path, what);
  if (kind === 'dir') {
    const seq = await readPngFolder(path, what, false, (bits) => (bits === 16 ? 1 / 65535 : 1 / 255));
    if (seq) return seq;
    const npz = (await listFiles(path, ['.npz'], what)).filter((f) => f.endsWith('_depth.npz'));
    if (npz.length === 1) return loadPrediction(npz[0]);
    if (npz.length > 1) throw new EvalInputError(`prediction folder ${path} holds several *_depth.npz files; pass one of them`);
    throw new EvalInputError(`prediction folder ${path} has no PNG frames and no *_depth.npz`);
  }
  const arr = await readArrayFile(path, ['depth'], what);
  const k = arr.dtype === 'uint16' ? 1 / 65535 : arr.dtype === 'uint8' ? 1 / 255 : 1;
  return arrayToFrames(arr, path, k === 1 ? (v) => v : (v) => v * k);
}

export interface LoadGtOptions {
  /**
   * Multiplier from stored values to metres. Default: 0.001 for integer data (uint16 PNG in
   * millimetres), 1 for float arrays (already metric).
   */
  depthScale?: number;
}

/** Loads metric GT depth (see the file header); 0 / negative / NaN values stay invalid. */
export async function loadGroundTruth(path: string, o: LoadGtOptions = {}): Promise<DepthSequence> {
  const what = 'ground truth';
  if (o.depthScale !== undefined && !(o.depthScale > 0 && Number.isFinite(o.depthScale))) {
    throw new EvalInputError(`depth scale must be a positive number, got ${o.depthScale}`);
  }
  const kind = await kindOf(path, what);
  if (kind === 'dir') {
    const scale = o.depthScale ?? DEFAULT_INT_DEPTH_SCALE;
    const seq = await readPngFolder(path, what, true, () => scale);
    if (!seq) throw new EvalInputError(`ground-truth folder ${path} has no PNG depth images`);
    return seq;
  }
  const arr = await readArrayFile(path, ['disparity', 'depth'], what);
  const isFloat = arr.dtype === 'float32' || arr.dtype === 'float64';
  const k = o.depthScale ?? (isFloat ? 1 : DEFAULT_INT_DEPTH_SCALE);
  return arrayToFrames(arr, path, (v) => v * k);
}

export interface FrameCountCheck {
  /** Frames to evaluate: min(N_pred, N_gt). */
  frames: number;
  /** Set when the counts differ (and not strict). */
  warning?: string;
}

/**
 * Frame count policy: evaluate min(N_pred, N_gt) and warn; with `strict`, a mismatch is an
 * EvalInputError.
 */
export function checkFrameCounts(nPred: number, nGt: number, strict: boolean): FrameCountCheck {
  if (nPred === nGt) return { frames: nPred };
  const msg = `frame count mismatch: prediction has ${nPred} frames, ground truth ${nGt}`;
  if (strict) throw new EvalInputError(`${msg} (--strict)`);
  return { frames: Math.min(nPred, nGt), warning: `${msg}; evaluating the first ${Math.min(nPred, nGt)}` };
}
