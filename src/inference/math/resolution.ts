// Parity-critical: the reference's model resolution (Python rounding to 64); guarded by test/engine-math.test.ts.
import { roundHalfEven } from './round-half-even.js';
import { OptionError } from '../../util/errors.js';

export interface Resolution {
  readonly height: number;
  readonly width: number;
}

/** The VAE/UNet need multiples of 8; the reference reader snaps to 64. */
const MULTIPLE = 64;

function snap(v: number): number {
  // Deviation: the reference would produce 0 for sides < 32 px and then crash;
  // we keep at least one 64-px block so tiny inputs still run.
  return Math.max(MULTIPLE, roundHalfEven(v / MULTIPLE) * MULTIPLE);
}

/**
 * Model input size for a source frame of h0 x w0 (spec §1, dataset "open").
 * Each side is snapped to a multiple of 64 with Python rounding; if the larger
 * snapped side exceeds maxRes, both sides are rescaled from the ORIGINAL dims
 * and snapped again. Sides are rounded independently (stretch, no crop), and the
 * result can exceed maxRes when maxRes is not a multiple of 64.
 */
export function modelResolution(h0: number, w0: number, maxRes: number): Resolution {
  for (const [name, v] of [
    ['height', h0],
    ['width', w0],
    ['maxRes', maxRes],
  ] as const) {
    if (!Number.isFinite(v) || v <= 0) throw new OptionError(`${name} must be a positive number, got ${v}`);
  }
  let height = snap(h0);
  let width = snap(w0);
  if (Math.max(height, width) > maxRes) {
    const scale = maxRes / Math.max(h0, w0);
    // Same operation order as the reference: (orig * scale) / 64.
    height = snap(h0 * scale);
    width = snap(w0 * scale);
  }
  return { height, width };
}

/** Benchmark presets (H x W); max_res is ignored for these. Keys are case-sensitive as in the reference. */
export const DATASET_RESOLUTIONS: Readonly<Record<string, Resolution>> = Object.freeze({
  sintel: { height: 448, width: 1024 },
  scannet: { height: 640, width: 832 },
  KITTI: { height: 384, width: 1280 },
  bonn: { height: 512, width: 640 },
  NYUv2: { height: 448, width: 640 },
});

export function presetResolution(name: string): Resolution {
  if (!Object.hasOwn(DATASET_RESOLUTIONS, name)) {
    const valid = Object.keys(DATASET_RESOLUTIONS).join(', ');
    throw new OptionError(`unknown dataset preset "${name}"; valid presets (case-sensitive): ${valid}`);
  }
  return DATASET_RESOLUTIONS[name];
}
