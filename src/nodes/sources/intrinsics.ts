import { readFileSync } from 'node:fs';
import { z } from 'zod';
import type { Intrinsics, VideoFrame } from '../../graph/packets.js';
import { scaleIntrinsics } from '../../protocol/frame-message.js';
import { OptionError } from '../../util/errors.js';

// A source's camera intrinsics (the `K` option of the camera, rtsp, file and frames sources): stamped on every
// frame as `intrinsics`, in pixels of that frame, so that a viewer can unproject depth into a point cloud
// (the WebSocket sink scales them to each message's size). K is given in pixels of the frames the node emits
// (after its own width/height scaling), or of `kSize` when it was calibrated at another resolution.

const finite = z.number().finite();

export const kOption = z
  .union([z.array(finite).length(4), z.array(z.array(finite).length(3)).length(3)])
  .optional()
  .superRefine((k, ctx) => {
    if (k === undefined) return;
    try {
      parseK(k);
    } catch (e) {
      ctx.addIssue({ code: 'custom', message: (e as Error).message });
    }
  })
  .describe(
    "Camera intrinsics in pixels: [fx, fy, cx, cy] or the 3x3 matrix [[fx, 0, cx], [0, fy, cy], [0, 0, 1]]; stamped on frames for the viewer's 3D view.",
  );

export const kSizeOption = z
  .array(z.number().int().min(1).max(65_536))
  .length(2)
  .optional()
  .describe('[width, height] of the image K was calibrated at, when that is not the size of the frames this node emits (K is scaled to them).');

/** [fx, fy, cx, cy] or a 3x3 matrix (no skew, last row 0 0 1) to intrinsics. */
export function parseK(k: readonly number[] | readonly (readonly number[])[]): Intrinsics {
  let out: Intrinsics;
  if (k.length === 4 && k.every((v) => typeof v === 'number')) {
    const [fx, fy, cx, cy] = k as readonly number[];
    out = { fx, fy, cx, cy };
  } else if (k.length === 3 && k.every((r) => Array.isArray(r) && r.length === 3)) {
    const m = k as readonly (readonly number[])[];
    if (m[1][0] !== 0 || m[2][0] !== 0 || m[2][1] !== 0 || m[2][2] !== 1) throw new OptionError('K as a matrix must be [[fx, 0, cx], [0, fy, cy], [0, 0, 1]]');
    if (m[0][1] !== 0) throw new OptionError('K with a skew (K[0][1] != 0) is not supported');
    out = { fx: m[0][0], fy: m[1][1], cx: m[0][2], cy: m[1][2] };
  } else {
    throw new OptionError('K must be [fx, fy, cx, cy] or a 3x3 matrix');
  }
  if (!(out.fx > 0 && out.fy > 0)) throw new OptionError(`K: fx and fy must be positive (got ${out.fx}, ${out.fy})`);
  if (![out.cx, out.cy].every(Number.isFinite)) throw new OptionError('K: cx and cy must be finite');
  return out;
}

/** A K.txt as written by many RGB-D datasets: the 3x3 matrix, whitespace separated (9 numbers). */
export function readKFile(path: string): Intrinsics {
  const nums = readFileSync(path, 'utf8')
    .trim()
    .split(/[\s,]+/)
    .map(Number);
  if (nums.length !== 9 || nums.some((v) => !Number.isFinite(v))) throw new Error(`${path}: expected a 3x3 matrix (9 numbers), got ${nums.length} values`);
  return parseK([nums.slice(0, 3), nums.slice(3, 6), nums.slice(6, 9)]);
}

/** Stamps a source's intrinsics on its frames, scaled from the calibration size to each frame's size. */
export class FrameIntrinsics {
  private last: { width: number; height: number; k: Intrinsics } | null = null;

  constructor(
    private readonly k: Intrinsics,
    private readonly size?: { width: number; height: number },
  ) {}

  static fromOptions(o: { K?: readonly number[] | readonly (readonly number[])[]; kSize?: readonly number[] }): FrameIntrinsics | null {
    if (o.K === undefined) return null;
    return new FrameIntrinsics(parseK(o.K), o.kSize ? { width: o.kSize[0], height: o.kSize[1] } : undefined);
  }

  /** The intrinsics for a frame of this size (cached: frames rarely change size). */
  forSize(width: number, height: number): Intrinsics {
    if (this.last?.width === width && this.last.height === height) return this.last.k;
    const k = this.size ? scaleIntrinsics(this.k, this.size, { width, height }) : this.k;
    this.last = { width, height, k };
    return k;
  }

  stamp(f: VideoFrame): VideoFrame {
    return { ...f, intrinsics: this.forSize(f.width, f.height) };
  }
}

/** `f` with the intrinsics stamped on it, or `f` itself without any. */
export function stampIntrinsics(f: VideoFrame, k: FrameIntrinsics | null): VideoFrame {
  return k ? k.stamp(f) : f;
}
