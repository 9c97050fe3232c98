import { OptionError } from '../../util/errors.js';
// Parity-critical: the reference's window layout; guarded by test/engine-math.test.ts and test/depth-session.test.ts.

/** Frames per UNet pass the reference supports (its default window). */
export const MAX_WINDOW = 110;

export interface Segment {
  /** First absolute frame index (inclusive). */
  readonly start: number;
  /** One past the last absolute frame index. */
  readonly end: number;
}

/**
 * Checks window/overlap settings. With `frameCount` given, also enforces
 * overlap >= 1 when the video is longer than one window (the reference asserts
 * on that case; without overlap the windows could not be stitched).
 */
export function validateWindow(window: number, overlap: number, frameCount?: number): void {
  if (!Number.isInteger(window) || window < 1 || window > MAX_WINDOW) {
    throw new OptionError(`window must be an integer in 1..${MAX_WINDOW}, got ${window}`);
  }
  if (!Number.isInteger(overlap) || overlap < 0 || overlap >= window) {
    throw new OptionError(`overlap must be an integer with 0 <= overlap < window (${window}), got ${overlap}`);
  }
  if (frameCount !== undefined && frameCount > window && overlap < 1) {
    throw new OptionError(`overlap must be >= 1 when the video (${frameCount} frames) is longer than the window (${window})`);
  }
}

/** Overlap actually used: 0 when the whole video fits in one window (spec §4). */
export function effectiveOverlap(n: number, window: number, overlap: number): number {
  return n <= window ? 0 : overlap;
}

/**
 * Window layout for n frames (spec §4): segment k = [k*S, min(k*S + W, n)) with
 * stride S = W - O, while start < n - O. Every segment after the first shares
 * exactly O leading frames with its predecessor, only the last can be short,
 * and the last always has length >= O + 1.
 */
export function segmentLayout(n: number, window: number, overlap: number): Segment[] {
  if (!Number.isInteger(n) || n < 0) throw new OptionError(`frame count must be a non-negative integer, got ${n}`);
  validateWindow(window, overlap, n);
  if (n === 0) return [];
  if (n <= window) return [{ start: 0, end: n }];
  const stride = window - overlap;
  const segments: Segment[] = [];
  for (let start = 0; start < n - overlap; start += stride) {
    segments.push({ start, end: Math.min(start + window, n) });
  }
  return segments;
}
