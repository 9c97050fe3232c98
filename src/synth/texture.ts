/**
 * Procedural solid textures. Materials are compiled into a flat Float64Array (one record of
 * MAT_STRIDE numbers each) so the per-pixel code reads numbers, not objects, and allocates nothing.
 *
 * Patterns are evaluated in 3D texture space. On flat faces the coordinate along the face normal is
 * replaced by a constant (`skipAxis`), which makes the pattern 2D there and keeps cell boundaries
 * from flickering where a face sits exactly on one. A simple level-of-detail rule fades a pattern
 * towards its mean colour when a pixel's footprint approaches the feature size, so far textures do
 * not alias into noise.
 */
import type { Material, TextureKind } from './scene.js';

export const MAT_STRIDE = 16;
const KIND_CODE: Record<TextureKind, number> = { solid: 0, checker: 1, stripes: 2, noise: 3, gradient: 4, tiles: 5 };

export function compileMaterials(materials: readonly Material[]): Float64Array {
  const out = new Float64Array(materials.length * MAT_STRIDE);
  materials.forEach((m, i) => {
    if (!(m.scale > 0)) throw new RangeError(`material ${i}: scale must be > 0, got ${m.scale}`);
    const o = i * MAT_STRIDE;
    const ax = m.axis ?? [1, 0, 0];
    const al = Math.hypot(ax[0], ax[1], ax[2]) || 1;
    const off = m.offset ?? [0, 0, 0];
    out[o] = KIND_CODE[m.texture];
    out.set(m.a, o + 1);
    out.set(m.b, o + 4);
    out[o + 7] = 1 / m.scale;
    out[o + 8] = ax[0] / al;
    out[o + 9] = ax[1] / al;
    out[o + 10] = ax[2] / al;
    out[o + 11] = off[0];
    out[o + 12] = off[1];
    out[o + 13] = off[2];
    out[o + 14] = Math.min(1, Math.max(0, m.grain ?? 0));
  });
  return out;
}

/** Hash of an integer lattice point to [0, 1). */
function lattice(ix: number, iy: number, iz: number): number {
  let h = Math.imul(ix, 0x8da6b343) ^ Math.imul(iy, 0xd8163841) ^ Math.imul(iz, 0xcb1ab31f);
  h = Math.imul(h ^ (h >>> 15), 0x2c1b3c6d);
  h = Math.imul(h ^ (h >>> 12), 0x297a2d39);
  return ((h ^ (h >>> 15)) >>> 0) / 4294967296;
}

/** Smooth value noise in [0, 1], period 2^32 cells. */
export function valueNoise(x: number, y: number, z: number): number {
  const fx = Math.floor(x);
  const fy = Math.floor(y);
  const fz = Math.floor(z);
  let tx = x - fx;
  let ty = y - fy;
  let tz = z - fz;
  tx = tx * tx * (3 - 2 * tx);
  ty = ty * ty * (3 - 2 * ty);
  tz = tz * tz * (3 - 2 * tz);
  const ix = fx | 0;
  const iy = fy | 0;
  const iz = fz | 0;
  const a = lattice(ix, iy, iz) + (lattice(ix + 1, iy, iz) - lattice(ix, iy, iz)) * tx;
  const b = lattice(ix, iy + 1, iz) + (lattice(ix + 1, iy + 1, iz) - lattice(ix, iy + 1, iz)) * tx;
  const c = lattice(ix, iy, iz + 1) + (lattice(ix + 1, iy, iz + 1) - lattice(ix, iy, iz + 1)) * tx;
  const d = lattice(ix, iy + 1, iz + 1) + (lattice(ix + 1, iy + 1, iz + 1) - lattice(ix, iy + 1, iz + 1)) * tx;
  const e = a + (b - a) * ty;
  const f = c + (d - c) * ty;
  return e + (f - e) * tz;
}

/** 0 below lo, 1 above hi, smooth in between. */
function smooth(lo: number, hi: number, x: number): number {
  if (x <= lo) return 0;
  if (x >= hi) return 1;
  const t = (x - lo) / (hi - lo);
  return t * t * (3 - 2 * t);
}

/**
 * Albedo of material `m` at texture-space point (x, y, z) into out[0..2].
 * skipAxis: 0/1/2 = the face normal's axis (flat faces), -1 for curved surfaces.
 * footprint: approximate size in metres of the pixel on the surface (level of detail).
 */
export function albedo(mats: Float64Array, m: number, x: number, y: number, z: number, skipAxis: number, footprint: number, out: Float64Array): void {
  const o = m * MAT_STRIDE;
  const kind = mats[o];
  const inv = mats[o + 7];
  let u = (x + mats[o + 11]) * inv;
  let v = (y + mats[o + 12]) * inv;
  let w = (z + mats[o + 13]) * inv;
  if (skipAxis === 0) u = 0.5;
  else if (skipAxis === 1) v = 0.5;
  else if (skipAxis === 2) w = 0.5;
  const blur = footprint * inv; // pixel size in feature units
  let mix = 0;
  let mean = 0.5;
  switch (kind) {
    case 1: // checker
      mix = (Math.floor(u) + Math.floor(v) + Math.floor(w)) & 1;
      break;
    case 2: { // stripes (half duty)
      const s = u * mats[o + 8] + v * mats[o + 9] + w * mats[o + 10];
      mix = s - Math.floor(s) < 0.5 ? 0 : 1;
      break;
    }
    case 3: { // noise: two octaves, the finer one faded with distance
      const fine = 1 - smooth(0.15, 0.5, blur);
      mix = (valueNoise(u, v, w) + 0.5 * fine * valueNoise(2.03 * u + 17.1, 2.03 * v + 5.3, 2.03 * w + 11.7)) / (1 + 0.5 * fine);
      mix = smooth(0.2, 0.8, mix);
      break;
    }
    case 4: { // gradient: a triangle wave, 0 -> 1 over one `scale`, back over the next
      const s = 0.5 * (u * mats[o + 8] + v * mats[o + 9] + w * mats[o + 10]);
      mix = Math.abs(2 * (s - Math.floor(s)) - 1);
      break;
    }
    case 5: { // tiles: colour a with grout lines of colour b (8% of the tile)
      const fu = u - Math.floor(u);
      const fv = v - Math.floor(v);
      const fw = w - Math.floor(w);
      const g = 0.04;
      const line =
        (skipAxis !== 0 && (fu < g || fu > 1 - g)) || (skipAxis !== 1 && (fv < g || fv > 1 - g)) || (skipAxis !== 2 && (fw < g || fw > 1 - g));
      mix = line ? 1 : 0;
      mean = skipAxis >= 0 ? 0.16 : 0.23;
      break;
    }
    default:
      mix = 0;
      mean = 0;
  }
  if (kind !== 0 && kind !== 3 && kind !== 4) {
    // Level of detail for hard-edged patterns: fade to the mean once a pixel covers a good part of a cell.
    const f = smooth(0.25, 0.9, blur);
    mix += (mean - mix) * f;
  } else if (kind === 4) {
    mix += (0.5 - mix) * smooth(0.5, 1.5, blur);
  }
  let r = mats[o + 1] + (mats[o + 4] - mats[o + 1]) * mix;
  let gg = mats[o + 2] + (mats[o + 5] - mats[o + 2]) * mix;
  let b = mats[o + 3] + (mats[o + 6] - mats[o + 3]) * mix;
  const grain = mats[o + 14];
  if (grain > 0) {
    // Fine multiplicative noise at 1/6 of the feature size, faded with distance.
    const k = grain * (1 - smooth(0.05, 0.2, blur)) * (2 * valueNoise(6.1 * u + 3.7, 6.1 * v + 9.2, 6.1 * w + 1.3) - 1);
    r *= 1 + k;
    gg *= 1 + k;
    b *= 1 + k;
  }
  out[0] = r;
  out[1] = gg;
  out[2] = b;
}
