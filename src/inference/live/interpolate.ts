import { OptionError } from '../../util/errors.js';
// Depth for frames the model skipped by design: linear in time between the two computed
// neighbours, in the live-normalised disparity that subscribers see.

/** out = (1 - t) a + t b, elementwise; t in [0, 1]. */
export function lerpDepth(a: Float32Array, b: Float32Array, t: number, out: Float32Array = new Float32Array(a.length)): Float32Array {
  if (a.length !== b.length || out.length !== a.length)
    throw new OptionError(`cannot interpolate frames of ${a.length} and ${b.length} values into ${out.length}`);
  const s = 1 - t;
  for (let i = 0; i < a.length; i++) out[i] = s * a[i] + t * b[i];
  return out;
}

/** Where a frame at `ptsMs` lies between computed frames at `fromMs` and `toMs` (0..1). */
export function timeFraction(fromMs: number, toMs: number, ptsMs: number): number {
  const span = toMs - fromMs;
  if (!(span > 0)) return 0.5;
  const t = (ptsMs - fromMs) / span;
  return t < 0 ? 0 : t > 1 ? 1 : t;
}
