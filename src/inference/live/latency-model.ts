import { OptionError } from '../../util/errors.js';
// Expected latency of the live depth node, from the engine's schedule (depth-session.ts):
//   - window n covers engine frames [nS, nS + W), S = W - O, and runs when engine frame nS + W - 1 arrives;
//   - after it, frames before (n + 1)S are final (the rest wait for the next window's stitching);
//   - depth is decoded in chunks of C frames aligned to global indices, once the whole chunk is final.
// So engine frame i comes out when engine frame  trigger(i) = floor((C*floor(i/C) + C - 1) / S) * S + W - 1
// arrives. With stride k, engine frame i is source frame k*i, and the k - 1 source frames skipped
// before it come out with it (interpolated). Adding the engine's work for one window period
// (S / throughput, an upper bound of the time from the triggering frame's arrival to its output):
//   latency(source frame) = wait / fps + S / throughput,
//   wait = k * (trigger(i) - i) + (k - j)   for the j-th frame after engine frame i - 1 (j = k: i itself).

export interface ScheduleShape {
  readonly window: number;
  readonly overlap: number;
  /** Decode chunk (the reference's 8). */
  readonly chunk: number;
  /** Stride: every k-th source frame is computed. */
  readonly stride: number;
}

/** Engine frame whose arrival makes engine frame i come out (steady state, i >= window). */
export function triggerFrame(i: number, s: Pick<ScheduleShape, 'window' | 'overlap' | 'chunk'>): number {
  const S = s.window - s.overlap;
  const chunkLast = s.chunk * Math.floor(i / s.chunk) + s.chunk - 1;
  return Math.floor(chunkLast / S) * S + s.window - 1;
}

/**
 * Waits, in source frames, from each source frame's arrival to the arrival of the frame that makes
 * it come out, over one steady-state period of the schedule. With `computedOnly`, only the
 * computed frames (fill: none).
 */
export function frameWaits(s: ScheduleShape, computedOnly = false): number[] {
  const S = s.window - s.overlap;
  if (!(S >= 1) || !(s.chunk >= 1) || !(s.stride >= 1)) throw new OptionError('need window > overlap, chunk >= 1, stride >= 1');
  const period = lcm(S, s.chunk);
  const first = period * Math.ceil(s.window / period); // a period in steady state
  const waits: number[] = [];
  for (let i = first; i < first + period; i++) {
    const engineWait = triggerFrame(i, s) - i;
    if (computedOnly) waits.push(s.stride * engineWait);
    else for (let j = 1; j <= s.stride; j++) waits.push(s.stride * engineWait + s.stride - j);
  }
  return waits;
}

export interface LatencyEstimate {
  readonly p50: number;
  readonly p95: number;
  readonly max: number;
  readonly mean: number;
}

/** Expected latency in seconds at `sourceFps`, the engine completing `throughputFps` engine frames per second of work. */
export function expectedLatency(s: ScheduleShape, sourceFps: number, throughputFps: number, computedOnly = false): LatencyEstimate {
  const compute = (s.window - s.overlap) / throughputFps;
  const waits = frameWaits(s, computedOnly).sort((a, b) => a - b);
  const at = (q: number) => waits[Math.min(waits.length - 1, Math.ceil(q * waits.length) - 1)] / sourceFps + compute;
  return {
    p50: at(0.5),
    p95: at(0.95),
    max: waits[waits.length - 1] / sourceFps + compute,
    mean: waits.reduce((a, b) => a + b, 0) / waits.length / sourceFps + compute,
  };
}

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}

function lcm(a: number, b: number): number {
  return (a / gcd(a, b)) * b;
}
