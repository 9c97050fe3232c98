/**
 * Rejection sampling of object positions on the ground: every object claims a footprint disc in the
 * xz plane (for moving objects, the discs along its whole path), and no footprint may overlap another
 * or the zone kept clear for the camera. Keeps objects from interpenetrating and from swallowing the
 * camera, so every frame is physically plausible.
 */
import type { Motion } from './scene.js';
import { motionOffset } from './motion.js';
import type { Vec3 } from './vec.js';

interface Disc {
  x: number;
  z: number;
  r: number;
}

export class Placer {
  private readonly discs: Disc[] = [];
  private readonly keepOut: ((x: number, z: number, r: number) => boolean)[] = [];

  /** `inside(x, z, r)`: whether a disc lies within the allowed area (room, backdrop). */
  constructor(private readonly inside: (x: number, z: number, r: number) => boolean) {}

  /** Adds a region no footprint may touch (the camera's path). */
  forbid(touches: (x: number, z: number, r: number) => boolean): void {
    this.keepOut.push(touches);
  }

  /** Whether a disc (optionally swept along a motion) is free; does not claim it. */
  fits(x: number, z: number, r: number, motion?: Motion, period = 0): boolean {
    for (const [px, pz] of sweep(x, z, motion, period)) {
      if (!this.inside(px, pz, r)) return false;
      if (this.keepOut.some((f) => f(px, pz, r))) return false;
      for (const d of this.discs) if ((d.x - px) ** 2 + (d.z - pz) ** 2 < (d.r + r) ** 2) return false;
    }
    return true;
  }

  /** Claims the footprint (and its sweep). */
  claim(x: number, z: number, r: number, motion?: Motion, period = 0): void {
    for (const [px, pz] of sweep(x, z, motion, period)) this.discs.push({ x: px, z: pz, r });
  }

  /** Tries `sample()` up to `tries` times; claims and returns the first free position. */
  place(sample: () => [number, number], r: number, motion?: Motion, period = 0, tries = 60): [number, number] | null {
    for (let i = 0; i < tries; i++) {
      const [x, z] = sample();
      if (this.fits(x, z, r, motion, period)) {
        this.claim(x, z, r, motion, period);
        return [x, z];
      }
    }
    return null;
  }
}

/** Positions along one period of a motion (the base position alone when static). */
function sweep(x: number, z: number, motion: Motion | undefined, period: number): [number, number][] {
  if (!motion || motion.kind === 'static' || !(Math.abs(period) > 0)) return [[x, z]];
  const pts: [number, number][] = [];
  const n = 24;
  for (let i = 0; i < n; i++) {
    const o: Vec3 = motionOffset(motion, (i / n) * Math.abs(period));
    pts.push([x + o[0], z + o[2]]);
  }
  return pts;
}

/** Distance from (x, z) to the ellipse (rx cos a, rz sin a) around (cx, cz), by sampling. */
export function distanceToEllipse(x: number, z: number, cx: number, cz: number, rx: number, rz: number): number {
  let best = Infinity;
  const n = 128;
  for (let i = 0; i < n; i++) {
    const a = (2 * Math.PI * i) / n;
    best = Math.min(best, Math.hypot(x - cx - rx * Math.cos(a), z - cz - rz * Math.sin(a)));
  }
  return best;
}
