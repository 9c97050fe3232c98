import { OptionError } from '../../util/errors.js';
// Parity-critical: the model-input resize; guarded by test/image-preprocess.test.ts and test/vs-reference.test.ts.

/**
 * Model-input resize: packed RGB uint8 (rows padded to `srcStride` bytes, as
 * GStreamer pads RGB rows to 4 bytes) -> planar CHW float32 in [-1, 1].
 *
 * Bilinear with half-pixel centres (align_corners=false, the cv2 INTER_LINEAR /
 * ffmpeg convention): src = (dst + 0.5) * in/out - 0.5, clamped to the edges.
 * The reference resizes inside decord's FFmpeg scaler, whose filter differs
 * (and widens when downscaling), so this is close to but not bit-identical with
 * the reference input; exact parity is not a goal here.
 */

/** Per-axis sampling table: for each output index, two source taps and the weight of the second. */
interface AxisTable {
  readonly srcSize: number;
  readonly dstSize: number;
  readonly i0: Int32Array;
  readonly i1: Int32Array;
  readonly t: Float64Array;
}

function buildAxisTable(srcSize: number, dstSize: number): AxisTable {
  const i0 = new Int32Array(dstSize);
  const i1 = new Int32Array(dstSize);
  const t = new Float64Array(dstSize);
  const scale = srcSize / dstSize;
  for (let d = 0; d < dstSize; d++) {
    const f = (d + 0.5) * scale - 0.5;
    let a = Math.floor(f);
    let w = f - a;
    if (a < 0) {
      a = 0;
      w = 0;
    } else if (a >= srcSize - 1) {
      a = srcSize - 1;
      w = 0;
    }
    i0[d] = a;
    i1[d] = Math.min(a + 1, srcSize - 1);
    t[d] = w;
  }
  return { srcSize, dstSize, i0, i1, t };
}

// Frame sizes are fixed for a stream, so one cached table per axis avoids
// rebuilding (and allocating) them on every frame.
let xTable: AxisTable | undefined;
let yTable: AxisTable | undefined;

function axisX(s: number, d: number): AxisTable {
  if (xTable === undefined || xTable.srcSize !== s || xTable.dstSize !== d) xTable = buildAxisTable(s, d);
  return xTable;
}

function axisY(s: number, d: number): AxisTable {
  if (yTable === undefined || yTable.srcSize !== s || yTable.dstSize !== d) yTable = buildAxisTable(s, d);
  return yTable;
}

/** uint8 -> [-1, 1]: v/255*2 - 1. */
const SCALE = 2 / 255;

function checkArgs(src: Uint8Array, sw: number, sh: number, srcStride: number, dw: number, dh: number, out: Float32Array): void {
  for (const [name, v] of [
    ['sw', sw],
    ['sh', sh],
    ['dw', dw],
    ['dh', dh],
  ] as const) {
    if (!Number.isInteger(v) || v < 1) throw new OptionError(`${name} must be a positive integer, got ${v}`);
  }
  if (!Number.isInteger(srcStride) || srcStride < 3 * sw) throw new OptionError(`srcStride ${srcStride} < 3 * width (${3 * sw})`);
  const need = (sh - 1) * srcStride + 3 * sw;
  if (src.length < need) throw new OptionError(`source buffer too short: ${src.length} < ${need}`);
  if (out.length < 3 * dw * dh) throw new OptionError(`output buffer too short: ${out.length} < ${3 * dw * dh}`);
}

/** Same-size path: only repack HWC uint8 to CHW float. */
function copyRGB(src: Uint8Array, w: number, h: number, srcStride: number, out: Float32Array): void {
  const plane = w * h;
  let o = 0;
  for (let y = 0; y < h; y++) {
    let p = y * srcStride;
    for (let x = 0; x < w; x++, p += 3, o++) {
      out[o] = src[p] * SCALE - 1;
      out[plane + o] = src[p + 1] * SCALE - 1;
      out[2 * plane + o] = src[p + 2] * SCALE - 1;
    }
  }
}

/**
 * Resizes packed RGB (sw x sh, row stride `srcStride` bytes) to planar CHW
 * float32 [3, dh, dw] in [-1, 1], written to out[0 .. 3*dw*dh).
 */
export function resizeBilinearRGB(src: Uint8Array, sw: number, sh: number, srcStride: number, dw: number, dh: number, out: Float32Array): Float32Array {
  checkArgs(src, sw, sh, srcStride, dw, dh, out);
  if (sw === dw && sh === dh) {
    copyRGB(src, sw, sh, srcStride, out);
    return out;
  }
  const xt = axisX(sw, dw);
  const yt = axisY(sh, dh);
  const plane = dw * dh;
  let o = 0;
  for (let dy = 0; dy < dh; dy++) {
    const r0 = yt.i0[dy] * srcStride;
    const r1 = yt.i1[dy] * srcStride;
    const ty = yt.t[dy];
    for (let dx = 0; dx < dw; dx++, o++) {
      const c0 = 3 * xt.i0[dx];
      const c1 = 3 * xt.i1[dx];
      const tx = xt.t[dx];
      for (let c = 0; c < 3; c++) {
        const top = src[r0 + c0 + c] + tx * (src[r0 + c1 + c] - src[r0 + c0 + c]);
        const bot = src[r1 + c0 + c] + tx * (src[r1 + c1 + c] - src[r1 + c0 + c]);
        out[c * plane + o] = (top + ty * (bot - top)) * SCALE - 1;
      }
    }
  }
  return out;
}

/**
 * One float32 plane (sw x sh, row-major) resized to dw x dh with the same bilinear half-pixel
 * rule: the offline output's way back from the model's processing size to the input frame's.
 * Values stay within the source's range (a convex combination of four taps).
 */
export function resizeBilinearPlane(src: Float32Array, sw: number, sh: number, dw: number, dh: number, out: Float32Array): Float32Array {
  for (const [name, v] of [
    ['sw', sw],
    ['sh', sh],
    ['dw', dw],
    ['dh', dh],
  ] as const) {
    if (!Number.isInteger(v) || v < 1) throw new OptionError(`${name} must be a positive integer, got ${v}`);
  }
  if (src.length < sw * sh) throw new OptionError(`source plane too short: ${src.length} < ${sw * sh}`);
  if (out.length < dw * dh) throw new OptionError(`output plane too short: ${out.length} < ${dw * dh}`);
  if (sw === dw && sh === dh) {
    out.set(src.subarray(0, sw * sh));
    return out;
  }
  // Own tables (not the RGB path's cache): the two resizes alternate in one thread.
  const xt = buildAxisTable(sw, dw);
  const yt = buildAxisTable(sh, dh);
  // Separable: each source row is resized horizontally once (in doubles, the same expression as
  // the direct form, so the result is bit-identical), then output rows blend two of them.
  let rowA = new Float64Array(dw);
  let rowB = new Float64Array(dw);
  let a = -1;
  let b = -1;
  const horizontal = (r: number, row: Float64Array): void => {
    const base = r * sw;
    for (let dx = 0; dx < dw; dx++) {
      const v0 = src[base + xt.i0[dx]];
      row[dx] = v0 + xt.t[dx] * (src[base + xt.i1[dx]] - v0);
    }
  };
  let o = 0;
  for (let dy = 0; dy < dh; dy++) {
    const r0 = yt.i0[dy];
    const r1 = yt.i1[dy];
    if (r0 !== a) {
      if (r0 === b) [rowA, rowB, a, b] = [rowB, rowA, b, a];
      else {
        horizontal(r0, rowA);
        a = r0;
      }
    }
    if (r1 !== b) {
      horizontal(r1, rowB);
      b = r1;
    }
    const ty = yt.t[dy];
    for (let dx = 0; dx < dw; dx++, o++) {
      const top = rowA[dx];
      out[o] = top + ty * (rowB[dx] - top);
    }
  }
  return out;
}
