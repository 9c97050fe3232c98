import { OptionError } from '../../util/errors.js';
/**
 * Seeded, deterministic noise source: xoshiro128** (Blackman & Vigna) for
 * uniforms, Box-Muller for N(0, 1). Not cryptographic. The reference uses
 * torch's global RNG; bit-exact reproduction of that is out of scope (spec §1),
 * any N(0, 1) source works, but runs must be reproducible from a seed.
 */

/** Stream ids so the pixel-space augmentation noise and the latent noise are independent. */
export const PrngStream = Object.freeze({
  PixelNoise: 1,
  LatentNoise: 2,
});

const TWO_PI = 2 * Math.PI;
const INV_2_32 = 1 / 4294967296;

/** murmur3 finaliser: a bijective avalanche on 32 bits. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Folds one 32-bit word into a running hash (murmur3 body step). */
function absorb(h: number, k: number): number {
  k = Math.imul(k, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, 0x1b873593);
  h ^= k;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

export class Prng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;
  // Box-Muller yields pairs; the second value is kept so that filling in
  // pieces gives the same sequence as filling in one go.
  private spare = 0;
  private hasSpare = false;

  /**
   * @param seed non-negative integer up to 2^53 - 1
   * @param stream non-negative 32-bit integer selecting an independent stream
   */
  constructor(seed: number, stream = 0) {
    if (!Number.isSafeInteger(seed) || seed < 0) throw new OptionError(`seed must be a non-negative safe integer, got ${seed}`);
    if (!Number.isInteger(stream) || stream < 0 || stream > 0xffffffff) {
      throw new OptionError(`stream must be a 32-bit non-negative integer, got ${stream}`);
    }
    const lo = seed >>> 0;
    const hi = Math.floor(seed / 4294967296) >>> 0;
    // Every state word hashes all inputs with its own salt, so nearby seeds or
    // streams give unrelated states (xoshiro's first outputs read only s1).
    const word = (salt: number): number => fmix32(absorb(absorb(absorb(salt, lo), hi), stream));
    this.s0 = word(0x243f6a88);
    this.s1 = word(0x85a308d3);
    this.s2 = word(0x13198a2e);
    this.s3 = word(0x03707344);
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1; // the all-zero state is a fixed point
  }

  /** Next uniform 32-bit unsigned integer. */
  nextUint32(): number {
    const s1 = this.s1;
    const result = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0;
    const t = s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** Uniform in the open interval (0, 1): safe for log() in Box-Muller. */
  nextOpenUnit(): number {
    return (this.nextUint32() + 0.5) * INV_2_32;
  }

  /** Fills `out` with N(0, scale^2) samples; both Box-Muller outputs are used. */
  fillNormal(out: Float32Array, scale = 1): Float32Array {
    const n = out.length;
    let k = 0;
    if (this.hasSpare && n > 0) {
      out[k++] = this.spare * scale;
      this.hasSpare = false;
    }
    while (k < n) {
      const r = Math.sqrt(-2 * Math.log(this.nextOpenUnit()));
      const theta = TWO_PI * this.nextOpenUnit();
      out[k++] = r * Math.cos(theta) * scale;
      const z1 = r * Math.sin(theta);
      if (k < n) out[k++] = z1 * scale;
      else {
        this.spare = z1;
        this.hasSpare = true;
      }
    }
    return out;
  }
}
