import { roundHalfEven } from '../math/round-half-even.js';
import { OptionError } from '../../util/errors.js';

// The reference's temporal sampling: stride = max(round(avg_fps / target_fps), 1), keep frames
// 0, stride, 2*stride, ... and at most process_length of them. Output plays at target_fps.

export interface SamplingChoice {
  /** -1 or undefined: keep the source rate. */
  readonly targetFps?: number;
  /** -1 or undefined: all frames. */
  readonly processLength?: number;
}

export function frameStride(sourceFps: number, targetFps: number | undefined): number {
  if (targetFps === undefined || targetFps === -1) return 1;
  if (!(targetFps > 0)) throw new OptionError(`target fps must be positive or -1, got ${targetFps}`);
  return Math.max(roundHalfEven(sourceFps / targetFps), 1);
}

export function outputFps(sourceFps: number, targetFps: number | undefined): number {
  return targetFps === undefined || targetFps === -1 ? sourceFps : targetFps;
}

/** Whether source frame `index` is kept, and whether no later frame can be kept (reading may stop). */
export function keepFrame(index: number, stride: number, processLength: number | undefined): { keep: boolean; done: boolean } {
  const limit = processLength === undefined || processLength === -1 ? Infinity : processLength;
  const rank = Math.floor(index / stride);
  return { keep: index % stride === 0 && rank < limit, done: rank + 1 >= limit };
}
