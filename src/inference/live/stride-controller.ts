import { OptionError } from '../../util/errors.js';
// Rate adaptation for a model slower than its source: compute depth for every k-th source frame,
// k the smallest integer that keeps the engine real time. Pure: the depth node feeds it what it
// measured and asks for k at each window boundary (so the new frames of one window share one
// spacing in time).

export interface StrideOptions {
  /** Largest k; beyond it the queue in front of the node sheds frames. */
  readonly maxStride: number;
  /** Raise k when the engine would be busier than this share of real time. */
  readonly raiseAbove?: number;
  /** Lower k only to a stride that would keep the engine at most this busy (hysteresis). */
  readonly lowerBelow?: number;
}

export interface StrideInputs {
  /** Source frames per second. */
  readonly sourceFps: number;
  /** Engine frames the engine completes per second of work (sustained, measured per window). */
  readonly throughputFps: number;
  /** Engine frames sent but not yet processed. */
  readonly backlog: number;
  /** New engine frames per window (W - O): the frames the next k applies to. */
  readonly period: number;
}

export class StrideController {
  private k = 1;
  private readonly raiseAbove: number;
  private readonly lowerBelow: number;

  constructor(private readonly opts: StrideOptions) {
    this.raiseAbove = opts.raiseAbove ?? 0.85;
    this.lowerBelow = opts.lowerBelow ?? 0.7;
    if (!(opts.maxStride >= 1)) throw new OptionError(`maxStride must be >= 1 (got ${opts.maxStride})`);
    if (!(this.lowerBelow < this.raiseAbove && this.raiseAbove <= 1)) throw new OptionError('need lowerBelow < raiseAbove <= 1');
  }

  get stride(): number {
    return this.k;
  }

  /** Engine load (share of real time) that stride k would give. */
  static load(k: number, sourceFps: number, throughputFps: number): number {
    return sourceFps / (k * throughputFps);
  }

  /** The stride for the next window's new frames. */
  next(m: StrideInputs): number {
    if (!(m.sourceFps > 0) || !(m.throughputFps > 0)) return this.k; // nothing measured yet
    const steady = Math.ceil(m.sourceFps / (this.raiseAbove * m.throughputFps) - 1e-9);
    // Work already queued must be done within the next window period too: k >= fps (backlog + P) / (thr P).
    const drain = Math.ceil((m.sourceFps * (m.backlog + m.period)) / (m.throughputFps * m.period) - 1e-9);
    const needed = Math.max(1, steady, drain);
    if (needed > this.k) this.k = needed;
    else {
      // Come down to the smallest k that would keep the engine at most `lowerBelow` busy (hysteresis: no flapping).
      let j = needed;
      while (j < this.k && StrideController.load(j, m.sourceFps, m.throughputFps) > this.lowerBelow) j++;
      this.k = j;
    }
    this.k = Math.min(this.k, this.opts.maxStride);
    return this.k;
  }
}

/** How a ThroughputMeter treats the first windows of a fresh worker. */
export interface MeterWarmup {
  /** Windows not sampled at all. */
  readonly skip?: number;
  /** Samples after those that replace the value instead of being averaged in (the newest wins while warming up). */
  readonly replace?: number;
}

/**
 * Engine throughput in frames per second of engine work, one sample per window (the frames of
 * a window period over the work they took), smoothed over windows. Warm-up: a fresh worker's
 * first window pays for first runs (ONNX Runtime's allocations per shape, JIT compilation) and
 * measured 3-5x the steady cost with the tiny pack, and the next ones 2-10x on a loaded machine
 * (the rest of the process warming up beside them); averaged in, they made the live node choose a
 * stride of 4-10 at its first decision and spend the next windows (8 engine frames each, up to 80
 * source frames) coming down again. `warmup.skip` windows are not sampled, the next `warmup.replace` samples
 * replace the value.
 */
export class ThroughputMeter {
  private frames = 0;
  private busyMs = 0;
  private value = NaN;
  private skipLeft: number;
  private replaceLeft: number;

  constructor(
    private readonly alpha = 0.3,
    warmup: MeterWarmup = {},
  ) {
    this.skipLeft = warmup.skip ?? 0;
    this.replaceLeft = warmup.replace ?? 0;
  }

  /** One frame's work in the engine; `windowRan` when it completed a window. */
  record(busyMs: number, windowRan: boolean): void {
    this.frames++;
    this.busyMs += busyMs;
    if (windowRan && this.skipLeft > 0) {
      this.skipLeft--;
      this.frames = 0;
      this.busyMs = 0;
      return;
    }
    if (!windowRan || this.busyMs <= 0) return;
    const sample = (this.frames * 1000) / this.busyMs;
    if (Number.isNaN(this.value) || this.replaceLeft > 0) {
      this.replaceLeft = Math.max(0, this.replaceLeft - 1);
      this.value = sample;
    } else this.value += this.alpha * (sample - this.value);
    this.frames = 0;
    this.busyMs = 0;
  }

  /** NaN until the first window completed. */
  get fps(): number {
    return this.value;
  }
}
