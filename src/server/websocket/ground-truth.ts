import { evaluateSequence, resizeBilinear } from '../../eval/metrics.js';

// Accuracy of a depth frame against its source's ground truth, for subscribers that ask for
// `gt`. Both halves of the payload contract live here: the encoder thread computes the payload
// (per-pixel work, never on the main thread) and the sink reads the figures back for the header.
// Layout: 8 bytes (float32 AbsRel, float32 delta1; NaN without valid pixels), then the GT
// disparity (1/depth) min-max normalised over valid pixels, float32, at the GT's own size.

/** Bytes of accuracy figures in front of the GT disparity. */
const ACCURACY_BYTES = 8;

export interface GroundTruthInput {
  /** Predicted disparity in [0,1], width x height. */
  readonly depth: Float32Array;
  readonly width: number;
  readonly height: number;
  /** Ground-truth depth in metres (0 = invalid), gtWidth x gtHeight. */
  readonly gtDepth: Float32Array;
  readonly gtWidth: number;
  readonly gtHeight: number;
}

/**
 * The payload for one frame. The prediction is aligned per frame (scale and shift in disparity, the
 * evaluation protocol applied to one frame) after resizing it to the GT size.
 */
export function groundTruthPayload(job: GroundTruthInput): Uint8Array {
  const { gtDepth: gt, gtWidth: gw, gtHeight: gh } = job;
  let absrel = NaN;
  let delta1 = NaN;
  try {
    const pred = resizeBilinear(job.depth, job.width, job.height, gw, gh);
    // A cap above any scene depth: synthetic outdoor scenes reach about 80 m.
    const m = evaluateSequence([pred], [gt], gw, gh, { maxDepth: 1e4 });
    absrel = m.absrel;
    delta1 = m.delta1;
  } catch {
    // no valid ground-truth pixel in this frame
  }
  const out = new Float32Array(ACCURACY_BYTES / 4 + gt.length);
  out[0] = absrel;
  out[1] = delta1;
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < gt.length; i++) {
    if (gt[i] > 0) {
      const disp = 1 / gt[i];
      if (disp < lo) lo = disp;
      if (disp > hi) hi = disp;
    }
  }
  const span = hi > lo ? hi - lo : 1;
  for (let i = 0; i < gt.length; i++) out[2 + i] = gt[i] > 0 ? (1 / gt[i] - lo) / span : 0;
  return new Uint8Array(out.buffer);
}

/** Split a payload into its figures (rounded to 4 decimals; undefined when NaN) and the GT disparity bytes. */
export function readGroundTruthPayload(payload: Uint8Array): { absrel?: number; delta1?: number; disparity: Uint8Array } {
  // Copied out: the payload's offset need not be 4-byte aligned.
  const figures = new Float32Array(payload.buffer.slice(payload.byteOffset, payload.byteOffset + ACCURACY_BYTES));
  const round = (v: number) => (Number.isFinite(v) ? Math.round(v * 1e4) / 1e4 : undefined);
  return { absrel: round(figures[0]), delta1: round(figures[1]), disparity: payload.subarray(ACCURACY_BYTES) };
}
