import { OptionError } from '../../util/errors.js';
// Live output cannot use the reference's whole-video min-max. Instead each frame is mapped with
// a robust range (low/high percentiles) that adapts slowly: an exponential moving average over
// frames. Stitching already makes consecutive windows agree in latent space, so a slow range
// is enough to keep window boundaries free of jumps while following real scene changes.

export interface LiveNormaliserOptions {
  /** Fraction of pixels clipped at each end of the range (robust to outliers). */
  readonly clip?: number;
  /** EMA weight of the newest frame's range (0 < alpha <= 1); smaller adapts more slowly. */
  readonly alpha?: number;
  readonly bins?: number;
}

export class LiveNormaliser {
  private lo = NaN;
  private hi = NaN;
  private readonly clip: number;
  private readonly alpha: number;
  private readonly hist: Uint32Array;

  constructor(opts: LiveNormaliserOptions = {}) {
    this.clip = opts.clip ?? 0.02;
    this.alpha = opts.alpha ?? 0.05;
    if (!(this.alpha > 0 && this.alpha <= 1)) throw new OptionError(`alpha must be in (0, 1], got ${this.alpha}`);
    if (!(this.clip >= 0 && this.clip < 0.5)) throw new OptionError(`clip must be in [0, 0.5), got ${this.clip}`);
    this.hist = new Uint32Array(opts.bins ?? 1024);
  }

  /** Start over (a new sequence after a discontinuity). */
  reset(): void {
    this.lo = NaN;
    this.hi = NaN;
  }

  get range(): { lo: number; hi: number } {
    return { lo: this.lo, hi: this.hi };
  }

  /** Normalise raw disparity in [0,1] in place and return it. */
  apply(depth: Float32Array): Float32Array {
    const [plo, phi] = robustRange(depth, this.clip, this.hist);
    if (Number.isNaN(this.lo)) {
      this.lo = plo;
      this.hi = phi;
    } else {
      this.lo += this.alpha * (plo - this.lo);
      this.hi += this.alpha * (phi - this.hi);
    }
    const span = this.hi - this.lo;
    const inv = span > 1e-6 ? 1 / span : 0;
    for (let i = 0; i < depth.length; i++) {
      const v = (depth[i] - this.lo) * inv;
      depth[i] = v < 0 ? 0 : v > 1 ? 1 : v;
    }
    return depth;
  }
}

/** Low and high percentiles (clip and 1-clip) of values in [0,1], by histogram. */
export function robustRange(values: Float32Array, clip: number, hist: Uint32Array = new Uint32Array(1024)): [number, number] {
  const bins = hist.length;
  hist.fill(0);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    const b = v <= 0 ? 0 : v >= 1 ? bins - 1 : Math.floor(v * bins);
    hist[b]++;
  }
  const n = values.length;
  const loCount = clip * n;
  const hiCount = (1 - clip) * n;
  let acc = 0;
  let lo = 0;
  let hi = 1;
  let foundLo = false;
  for (let b = 0; b < bins; b++) {
    acc += hist[b];
    if (!foundLo && acc > loCount) {
      lo = b / bins;
      foundLo = true;
    }
    if (acc >= hiCount) {
      hi = (b + 1) / bins;
      break;
    }
  }
  return [lo, hi];
}
