/**
 * Small seeded PRNG for scene generation: mulberry32 for the stream, a 32-bit integer hash
 * (murmur3-style finaliser) to derive independent child streams from a seed and a label.
 * Not cryptographic; only reproducibility matters. Every random choice of the generator goes
 * through one of these, never through Math.random.
 */

/** Avalanche a 32-bit integer (bijective). */
export function hash32(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x7feb352d);
  x = Math.imul(x ^ (x >>> 15), 0x846ca68b);
  return (x ^ (x >>> 16)) >>> 0;
}

/** Hash of a string label, for deriving named child streams. */
export function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return hash32(h >>> 0);
}

export class Rng {
  private state: number;
  /** Fixed at construction: forks derive from it, so they do not depend on how much this stream was used. */
  private readonly base: number;

  /** `seed` may be any integer (negative or beyond 32 bits too); neighbouring seeds give unrelated streams. */
  constructor(seed: number) {
    const lo = seed >>> 0;
    const hi = Math.floor(seed / 4294967296) >>> 0;
    this.base = hash32(lo ^ hash32((hi + 0x9e3779b9) >>> 0));
    this.state = this.base;
  }

  /** Uniform in [0, 1) (mulberry32 step). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) | 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Uniform in [lo, hi). */
  range(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }

  /** Integer uniform in [lo, hi] (inclusive). */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  /** true with probability p. */
  chance(p: number): boolean {
    return this.next() < p;
  }

  /** -1 or +1. */
  sign(): number {
    return this.next() < 0.5 ? -1 : 1;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error('Rng.pick: empty list');
    return items[Math.floor(this.next() * items.length)];
  }

  /** Picks by relative weights. */
  weighted<T>(items: readonly (readonly [T, number])[]): T {
    let total = 0;
    for (const [, w] of items) total += w;
    let r = this.next() * total;
    for (const [v, w] of items) {
      r -= w;
      if (r < 0) return v;
    }
    return items[items.length - 1][0];
  }

  /** Standard normal (Box-Muller, one value per call). */
  normal(): number {
    const u = 1 - this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.next());
  }

  /** An independent stream named by `label`; the same for a given seed however much this one was used. */
  fork(label: string): Rng {
    return new Rng(hash32(this.base ^ hashString(label)));
  }
}
