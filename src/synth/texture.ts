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
import { Rng } from './prng.js';
import { OptionError } from '../util/errors.js';

export const MAT_STRIDE = 16;
const KIND_CODE: Record<TextureKind, number> = { solid: 0, checker: 1, stripes: 2, noise: 3, gradient: 4, tiles: 5 };

export function compileMaterials(materials: readonly Material[]): Float64Array {
  const out = new Float64Array(materials.length * MAT_STRIDE);
  materials.forEach((m, i) => {
    if (!(m.scale > 0)) throw new OptionError(`material ${i}: scale must be > 0, got ${m.scale}`);
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

// Value noise on a lattice hashed through a fixed permutation of 0..255 (period 256 cells).
const PERM = new Uint8Array(512);
const VALUES = new Float64Array(256);
{
  const rng = new Rng(0x5eed);
  const p = Array.from({ length: 256 }, (_, i) => i);
  for (let i = 255; i > 0; i--) {
    const j = Math.floor(rng.next() * (i + 1));
    [p[i], p[j]] = [p[j], p[i]];
  }
  for (let i = 0; i < 512; i++) PERM[i] = p[i & 255];
  for (let i = 0; i < 256; i++) VALUES[i] = rng.next();
}

/** Smooth value noise in [0, 1]. */
export function valueNoise(x: number, y: number, z: number): number {
  const io = NOISE_IO;
  io[0] = x;
  io[1] = y;
  io[2] = z;
  noiseIO(io, 0);
  return io[3];
}
const NOISE_IO = new Float64Array(4);

/**
 * Value noise at (io[k], io[k+1], io[k+2]) into io[k+3]. The hot paths pass numbers through typed
 * arrays: a double passed to or returned from a function that is not inlined is boxed on the heap,
 * which would mean millions of short-lived allocations per second.
 */
function noiseIO(io: Float64Array, k: number): void {
  const x = io[k];
  const y = io[k + 1];
  const z = io[k + 2];
  const fx = Math.floor(x);
  const fy = Math.floor(y);
  const fz = Math.floor(z);
  let tx = x - fx;
  let ty = y - fy;
  let tz = z - fz;
  tx = tx * tx * (3 - 2 * tx);
  ty = ty * ty * (3 - 2 * ty);
  tz = tz * tz * (3 - 2 * tz);
  const P = PERM;
  const V = VALUES;
  const X = fx & 255;
  const Y = fy & 255;
  const Z = fz & 255;
  const A = P[X] + Y;
  const B = P[X + 1] + Y;
  const AA = P[A] + Z;
  const AB = P[A + 1] + Z;
  const BA = P[B] + Z;
  const BB = P[B + 1] + Z;
  const v000 = V[P[AA]];
  const v100 = V[P[BA]];
  const v010 = V[P[AB]];
  const v110 = V[P[BB]];
  const v001 = V[P[AA + 1]];
  const v101 = V[P[BA + 1]];
  const v011 = V[P[AB + 1]];
  const v111 = V[P[BB + 1]];
  const a = v000 + (v100 - v000) * tx;
  const b = v010 + (v110 - v010) * tx;
  const c = v001 + (v101 - v001) * tx;
  const d = v011 + (v111 - v011) * tx;
  const e = a + (b - a) * ty;
  const f = c + (d - c) * ty;
  io[k + 3] = e + (f - e) * tz;
}

/** Layout of the io array of `albedo`. */
export const ALBEDO_IO = { x: 0, y: 1, z: 2, footprint: 3, r: 4, g: 5, b: 6, size: 16 } as const;

/**
 * Albedo of material `m` at the texture-space point (io[0], io[1], io[2]) into io[4..6].
 * skipAxis: 0/1/2 = the face normal's axis (flat faces), -1 for curved surfaces.
 * io[3] (footprint): approximate size in metres of the pixel on the surface (level of detail).
 * io[8..15] is scratch. Allocates nothing.
 */
export function albedo(mats: Float64Array, m: number, skipAxis: number, io: Float64Array): void {
  const o = m * MAT_STRIDE;
  const kind = mats[o];
  const inv = mats[o + 7];
  let u = (io[0] + mats[o + 11]) * inv;
  let v = (io[1] + mats[o + 12]) * inv;
  let w = (io[2] + mats[o + 13]) * inv;
  if (skipAxis === 0) u = 0.5;
  else if (skipAxis === 1) v = 0.5;
  else if (skipAxis === 2) w = 0.5;
  const blur = io[3] * inv; // pixel size in feature units
  // eslint-disable-next-line no-useless-assignment -- defaults for the pattern kinds that leave them unset
  let mix = 0;
  let mean = 0.5;
  // eslint-disable-next-line no-useless-assignment -- as above
  let t = 0;
  switch (kind) {
    case 1: // checker
      mix = (Math.floor(u) + Math.floor(v) + Math.floor(w)) & 1;
      break;
    case 2: {
      // stripes (half duty)
      const s = u * mats[o + 8] + v * mats[o + 9] + w * mats[o + 10];
      mix = s - Math.floor(s) < 0.5 ? 0 : 1;
      break;
    }
    case 3: {
      // noise: two octaves, the finer one faded out with distance (blur 0.15 -> 0.5)
      io[8] = u;
      io[9] = v;
      io[10] = w;
      noiseIO(io, 8);
      const n1 = io[11];
      t = blur <= 0.15 ? 0 : blur >= 0.5 ? 1 : (blur - 0.15) / 0.35;
      const fine = 1 - t * t * (3 - 2 * t);
      let n2 = 0;
      if (fine > 0) {
        io[8] = 2.03 * u + 17.1;
        io[9] = 2.03 * v + 5.3;
        io[10] = 2.03 * w + 11.7;
        noiseIO(io, 8);
        n2 = io[11];
      }
      mix = (n1 + 0.5 * fine * n2) / (1 + 0.5 * fine);
      // Contrast: smoothstep(0.2, 0.8).
      t = mix <= 0.2 ? 0 : mix >= 0.8 ? 1 : (mix - 0.2) / 0.6;
      mix = t * t * (3 - 2 * t);
      break;
    }
    case 4: {
      // gradient: a triangle wave, 0 -> 1 over one `scale`, back over the next
      const s = 0.5 * (u * mats[o + 8] + v * mats[o + 9] + w * mats[o + 10]);
      mix = Math.abs(2 * (s - Math.floor(s)) - 1);
      // Level of detail: towards 0.5 as blur goes 0.5 -> 1.5.
      t = blur <= 0.5 ? 0 : blur >= 1.5 ? 1 : blur - 0.5;
      mix += (0.5 - mix) * t * t * (3 - 2 * t);
      break;
    }
    case 5: {
      // tiles: colour a with grout lines of colour b (8% of the tile)
      const fu = u - Math.floor(u);
      const fv = v - Math.floor(v);
      const fw = w - Math.floor(w);
      const g = 0.04;
      const line = (skipAxis !== 0 && (fu < g || fu > 1 - g)) || (skipAxis !== 1 && (fv < g || fv > 1 - g)) || (skipAxis !== 2 && (fw < g || fw > 1 - g));
      mix = line ? 1 : 0;
      mean = skipAxis >= 0 ? 0.16 : 0.23;
      break;
    }
    default:
      mix = 0;
  }
  if (kind === 1 || kind === 2 || kind === 5) {
    // Level of detail for hard-edged patterns: fade to the mean as blur goes 0.25 -> 0.9.
    t = blur <= 0.25 ? 0 : blur >= 0.9 ? 1 : (blur - 0.25) / 0.65;
    mix += (mean - mix) * t * t * (3 - 2 * t);
  }
  let r = mats[o + 1] + (mats[o + 4] - mats[o + 1]) * mix;
  let gg = mats[o + 2] + (mats[o + 5] - mats[o + 2]) * mix;
  let b = mats[o + 3] + (mats[o + 6] - mats[o + 3]) * mix;
  const grain = mats[o + 14];
  if (grain > 0 && blur < 0.2) {
    // Fine multiplicative noise at 1/6 of the feature size, faded out as blur goes 0.05 -> 0.2.
    t = blur <= 0.05 ? 0 : (blur - 0.05) / 0.15;
    io[8] = 6.1 * u + 3.7;
    io[9] = 6.1 * v + 9.2;
    io[10] = 6.1 * w + 1.3;
    noiseIO(io, 8);
    const k = grain * (1 - t * t * (3 - 2 * t)) * (2 * io[11] - 1);
    r *= 1 + k;
    gg *= 1 + k;
    b *= 1 + k;
  }
  io[4] = r;
  io[5] = gg;
  io[6] = b;
}
