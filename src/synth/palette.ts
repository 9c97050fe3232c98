/** Random colours and materials for the generators. Colours are picked in display space and returned linear. */
import type { Rng } from './prng.js';
import type { Material, Rgb, TextureKind } from './scene.js';
import type { Vec3 } from './vec.js';

/** Display-space (gamma 2.2) value to linear. */
export const toLinear = (c: number): number => Math.pow(Math.min(1, Math.max(0, c)), 2.2);

/** HSV in [0, 1] (display space) to linear RGB. */
export function hsv(h: number, s: number, v: number): Rgb {
  h = ((h % 1) + 1) % 1;
  const i = Math.floor(h * 6);
  const f = h * 6 - i;
  const p = v * (1 - s);
  const q = v * (1 - f * s);
  const t = v * (1 - (1 - f) * s);
  const rgb: [number, number, number] = i === 0 ? [v, t, p] : i === 1 ? [q, v, p] : i === 2 ? [p, v, t] : i === 3 ? [p, q, v] : i === 4 ? [t, p, v] : [v, p, q];
  return [toLinear(rgb[0]), toLinear(rgb[1]), toLinear(rgb[2])];
}

export interface ColourRange {
  /** Hue centre and spread (fractions of the colour wheel); omit for any hue. */
  readonly hue?: readonly [number, number];
  readonly sat: readonly [number, number];
  readonly val: readonly [number, number];
}

export function colour(rng: Rng, r: ColourRange): Rgb {
  const h = r.hue ? r.hue[0] + rng.range(-r.hue[1], r.hue[1]) : rng.next();
  return hsv(h, rng.range(r.sat[0], r.sat[1]), rng.range(r.val[0], r.val[1]));
}

/** A second colour that reads as related to the first (darker/lighter, or a hue step away). */
export function companion(rng: Rng, r: ColourRange, a: Rgb): Rgb {
  if (rng.chance(0.5)) {
    const k = rng.chance(0.5) ? rng.range(0.25, 0.6) : rng.range(1.6, 2.6);
    return [Math.min(1, a[0] * k), Math.min(1, a[1] * k), Math.min(1, a[2] * k)];
  }
  return colour(rng, r);
}

export interface MaterialSpec {
  readonly kinds: readonly (readonly [TextureKind, number])[];
  readonly colours: ColourRange;
  /** Feature size range in metres. */
  readonly scale: readonly [number, number];
  /** Stripe / gradient axes to choose from (default: any of x, y, z or a diagonal). */
  readonly axes?: readonly Vec3[];
  readonly grain?: readonly [number, number];
}

const DEFAULT_AXES: readonly Vec3[] = [
  [1, 0, 0],
  [0, 1, 0],
  [0, 0, 1],
  [1, 1, 0],
  [0, 1, 1],
  [1, 0, 1],
];

export function material(rng: Rng, spec: MaterialSpec): Material {
  const texture = rng.weighted(spec.kinds);
  const a = colour(rng, spec.colours);
  const b = texture === 'tiles' ? companion(rng, { sat: [0, 0.15], val: [0.25, 0.9] }, a) : companion(rng, spec.colours, a);
  const scale = rng.range(spec.scale[0], spec.scale[1]);
  const axis = rng.pick(spec.axes ?? DEFAULT_AXES);
  const offset: Vec3 = [rng.range(0, scale), rng.range(0, scale), rng.range(0, scale)];
  const grain = spec.grain ? rng.range(spec.grain[0], spec.grain[1]) : 0;
  return { texture, a, b, scale, axis, offset, grain };
}
