/**
 * Outdoor scenes: a textured ground plane closed at 45-65 m by a backdrop of hills or a city
 * skyline, sky above it (depth 0 = invalid), buildings, trees, rocks, poles and crates, some cars,
 * balls and drones moving; lit by the sun with shadows and distance fog. The camera walks or drives
 * round a closed loop (5-14 m radii) at 1.4-2.2 m height looking roughly along its path, so visible
 * depths run from about 1 m to about 80 m and an endless stream stays in the scene forever.
 */
import type { Rng } from './prng.js';
import type { Backdrop, CameraRig, Material, Motion, OutdoorEnvironment, Rgb, SceneObject, Wave } from './scene.js';
import { colour, hsv, material, type MaterialSpec } from './palette.js';
import { distanceToEllipse, Placer } from './placement.js';
import { box, cylinder, sphere } from './objects.js';
import type { Vec3 } from './vec.js';

const GROUNDS: readonly MaterialSpec[] = [
  // grass
  { kinds: [['noise', 1]], colours: { hue: [0.27, 0.05], sat: [0.4, 0.75], val: [0.25, 0.6] }, scale: [0.3, 1.5], grain: [0.1, 0.35] },
  // asphalt / dirt
  { kinds: [['noise', 1]], colours: { hue: [0.08, 0.05], sat: [0, 0.35], val: [0.2, 0.55] }, scale: [0.2, 0.8], grain: [0.15, 0.4] },
  // paving
  {
    kinds: [
      ['tiles', 2],
      ['checker', 1],
    ],
    colours: { sat: [0, 0.3], val: [0.4, 0.8] },
    scale: [0.4, 1.5],
    grain: [0, 0.2],
  },
  // sand
  {
    kinds: [
      ['noise', 1],
      ['stripes', 1],
    ],
    colours: { hue: [0.11, 0.03], sat: [0.25, 0.5], val: [0.55, 0.85] },
    scale: [0.5, 3],
    axes: [
      [1, 0, 0],
      [0, 0, 1],
      [1, 0, 1],
    ],
    grain: [0.05, 0.2],
  },
];
const HILLS: MaterialSpec = { kinds: [['noise', 1]], colours: { hue: [0.3, 0.1], sat: [0.2, 0.6], val: [0.2, 0.5] }, scale: [3, 10], grain: [0.1, 0.3] };
const CITY: MaterialSpec = {
  kinds: [
    ['tiles', 3],
    ['stripes', 1],
    ['noise', 1],
  ],
  colours: { sat: [0, 0.25], val: [0.35, 0.75] },
  scale: [1.5, 4],
  axes: [[0, 1, 0]],
  grain: [0, 0.15],
};
const BUILDING: MaterialSpec = {
  kinds: [
    ['tiles', 3],
    ['stripes', 2],
    ['solid', 1],
    ['noise', 1],
  ],
  colours: { sat: [0, 0.4], val: [0.35, 0.9] },
  scale: [1, 3.5],
  axes: [
    [0, 1, 0],
    [1, 0, 1],
  ],
  grain: [0, 0.2],
};
const BARK: MaterialSpec = {
  kinds: [
    ['noise', 1],
    ['stripes', 1],
  ],
  colours: { hue: [0.07, 0.03], sat: [0.4, 0.7], val: [0.15, 0.4] },
  scale: [0.05, 0.2],
  axes: [[0, 1, 0]],
  grain: [0.2, 0.4],
};
const LEAVES: MaterialSpec = {
  kinds: [['noise', 1]],
  colours: { hue: [0.28, 0.08], sat: [0.45, 0.85], val: [0.2, 0.55] },
  scale: [0.15, 0.5],
  grain: [0.2, 0.45],
};
const ROCK: MaterialSpec = { kinds: [['noise', 1]], colours: { hue: [0.1, 0.1], sat: [0, 0.25], val: [0.3, 0.65] }, scale: [0.1, 0.5], grain: [0.2, 0.5] };
const THING: MaterialSpec = {
  kinds: [
    ['solid', 2],
    ['checker', 2],
    ['stripes', 2],
    ['noise', 1],
    ['gradient', 1],
  ],
  colours: { sat: [0.35, 0.95], val: [0.35, 0.95] },
  scale: [0.1, 0.6],
  grain: [0, 0.25],
};

const wave = (rng: Rng, amp: number, f0: number, f1: number): Wave => ({ amp, freq: rng.range(f0, f1), phase: rng.next() });

export interface OutdoorParts {
  readonly environment: OutdoorEnvironment;
  readonly objects: SceneObject[];
  readonly camera: CameraRig;
  readonly sun: Vec3;
  readonly skyHorizon: Rgb;
}

export function generateOutdoor(rng: Rng): OutdoorParts {
  const R = rng.range(45, 65);
  const ground = material(rng, rng.pick(GROUNDS));
  const city = rng.chance(0.45);
  const backdrop: Backdrop = city
    ? {
        radius: R,
        profile: { kind: 'skyline', segments: Array.from({ length: rng.int(40, 110) }, () => (rng.chance(0.15) ? rng.range(4, 7) : rng.range(7, 35))) },
        material: material(rng, CITY),
      }
    : {
        radius: R,
        profile: hills(rng),
        material: material(rng, HILLS),
      };
  const sky = rng.weighted<{ zenith: Rgb; horizon: Rgb }>([
    [
      {
        zenith: colour(rng, { hue: [0.6, 0.03], sat: [0.45, 0.8], val: [0.6, 0.95] }),
        horizon: colour(rng, { hue: [0.57, 0.05], sat: [0.05, 0.3], val: [0.85, 1] }),
      },
      3,
    ],
    [
      {
        zenith: colour(rng, { hue: [0.62, 0.05], sat: [0.3, 0.6], val: [0.4, 0.7] }),
        horizon: colour(rng, { hue: [0.07, 0.04], sat: [0.3, 0.6], val: [0.85, 1] }),
      },
      1,
    ],
    [{ zenith: hsv(0.6, rng.range(0, 0.1), rng.range(0.55, 0.8)), horizon: hsv(0.6, rng.range(0, 0.08), rng.range(0.75, 0.92)) }, 1],
  ]);
  const environment: OutdoorEnvironment = { kind: 'outdoor', ground, backdrop, sky };

  // Camera: round a closed loop at walking or driving speed, looking along the path.
  const rx = rng.range(5, 14);
  const rz = rng.range(5, 14);
  const perimeter = Math.PI * (3 * (rx + rz) - Math.sqrt((3 * rx + rz) * (rx + 3 * rz)));
  const speed = rng.range(0.8, 2.5);
  const camY = rng.range(1.4, 2.2);
  const camera: CameraRig = {
    position: [0, camY, 0],
    loop: { rx, rz, period: rng.sign() * (perimeter / speed), phase: rng.next() },
    sway: { x: [wave(rng, rng.range(0.05, 0.3), 0.05, 0.2)], y: [wave(rng, rng.range(0.02, 0.08), 0.3, 1)], z: [wave(rng, rng.range(0.05, 0.3), 0.05, 0.2)] },
    yaw: { base: rng.range(-0.35, 0.35), waves: [wave(rng, rng.range(0.1, 0.35), 0.02, 0.08)] },
    pitch: { base: rng.range(-0.14, 0.02), waves: [wave(rng, rng.range(0.02, 0.06), 0.05, 0.15)] },
    roll: { base: 0, waves: [wave(rng, rng.range(0.005, 0.03), 0.1, 0.4)] },
  };

  const corridor = 2.2;
  const placer = new Placer((x, z, r) => Math.hypot(x, z) + r <= R - 3);
  placer.forbid((x, z, r) => distanceToEllipse(x, z, 0, 0, rx, rz) < corridor + r + 0.4);
  const polar = (r0: number, r1: number) => (): [number, number] => {
    const a = rng.range(0, 2 * Math.PI);
    const d = rng.range(r0, r1);
    return [d * Math.cos(a), d * Math.sin(a)];
  };
  const near = polar(0, Math.max(rx, rz) + 8);
  const far = polar(Math.max(rx, rz) + 8, R - 6);

  const objects: SceneObject[] = [];
  const target = rng.int(10, 20);
  const wantMoving = rng.int(2, 4);
  let moving = 0;
  let guard = 0;
  while (objects.length < target && guard++ < 300) {
    const n = objects.length;
    const makeMoving = moving < wantMoving && rng.chance(0.4);
    let made: SceneObject[] | null;
    if (makeMoving) {
      made = movingThing(rng, placer, near, n);
      if (made) moving++;
    } else {
      made = staticThing(rng, placer, rng.chance(0.6) ? near : far, far, n);
    }
    if (made) objects.push(...made);
  }
  const elev = rng.range(0.35, 1.1);
  const az = rng.range(0, 2 * Math.PI);
  const sun: Vec3 = [Math.cos(elev) * Math.cos(az), Math.sin(elev), Math.cos(elev) * Math.sin(az)];
  return { environment, objects, camera, sun, skyHorizon: sky.horizon };
}

type Sampler = () => [number, number];

/** A hill profile that never drops below 4 m, so the horizon is always closed for a camera below 2.5 m. */
function hills(rng: Rng): Backdrop['profile'] {
  const base = rng.range(8, 16);
  const waves = Array.from({ length: rng.int(3, 5) }, () => ({ amp: rng.range(0.5, 5), k: rng.int(2, 11), phase: rng.range(0, 2 * Math.PI) }));
  const total = waves.reduce((s, w) => s + w.amp, 0);
  const k = Math.min(1, (base - 4) / total);
  return { kind: 'hills', base, waves: waves.map((w) => ({ ...w, amp: w.amp * k })) };
}

function staticThing(rng: Rng, placer: Placer, where: Sampler, far: Sampler, n: number): SceneObject[] | null {
  const role = rng.weighted<string>([
    ['building', 2],
    ['tree', 3],
    ['rock', 2],
    ['pole', 1],
    ['crate', 2],
    ['column', 1],
  ]);
  const yaw = rng.range(0, Math.PI);
  switch (role) {
    case 'building': {
      const size: Vec3 = [rng.range(4, 12), rng.range(5, 25), rng.range(4, 12)];
      const r = 0.5 * Math.hypot(size[0], size[2]);
      const p = placer.place(far, r);
      if (!p) return null;
      return [box(`building${n}`, [p[0], size[1] / 2, p[1]], size, [0, yaw, 0], material(rng, BUILDING))];
    }
    case 'tree': {
      const trunkR = rng.range(0.12, 0.35);
      const trunkH = rng.range(1.8, 4);
      const crown = rng.range(1, 2.6);
      const p = placer.place(where, crown * 0.8);
      if (!p) return null;
      const out = [cylinder(`trunk${n}`, [p[0], trunkH / 2, p[1]], trunkR, trunkH, [0, 0, 0], material(rng, BARK))];
      out.push(sphere(`crown${n}`, [p[0], trunkH + crown * 0.7, p[1]], crown, material(rng, LEAVES)));
      return out;
    }
    case 'rock': {
      const r = rng.range(0.3, 1.5);
      const p = placer.place(where, r);
      if (!p) return null;
      return [sphere(`rock${n}`, [p[0], r * rng.range(0.2, 0.7), p[1]], r, material(rng, ROCK))];
    }
    case 'pole': {
      const r = rng.range(0.05, 0.14);
      const ht = rng.range(3, 7);
      const p = placer.place(where, 0.3);
      if (!p) return null;
      return [cylinder(`pole${n}`, [p[0], ht / 2, p[1]], r, ht, [0, 0, 0], material(rng, THING))];
    }
    case 'column': {
      const r = rng.range(0.3, 1.2);
      const ht = rng.range(2, 8);
      const p = placer.place(where, r);
      if (!p) return null;
      return [cylinder(`column${n}`, [p[0], ht / 2, p[1]], r, ht, [0, 0, 0], material(rng, BUILDING))];
    }
    default: {
      const s = rng.range(0.5, 2);
      const size: Vec3 = [s * rng.range(0.7, 1.5), s * rng.range(0.5, 1.2), s * rng.range(0.7, 1.5)];
      const r = 0.5 * Math.hypot(size[0], size[2]);
      const p = placer.place(where, r);
      if (!p) return null;
      return [box(`crate${n}`, [p[0], size[1] / 2, p[1]], size, [0, yaw, 0], material(rng, THING))];
    }
  }
}

function movingThing(rng: Rng, placer: Placer, where: Sampler, n: number): SceneObject[] | null {
  const kind = rng.weighted<string>([
    ['car', 2],
    ['ball', 2],
    ['drone', 2],
  ]);
  switch (kind) {
    case 'car': {
      // Drives back and forth along its own length axis.
      const size: Vec3 = [rng.range(1.7, 2.1), rng.range(1.3, 1.9), rng.range(3.8, 5)];
      const yaw = rng.range(0, 2 * Math.PI);
      const len = rng.range(8, 25);
      const motion: Motion = { kind: 'linear', delta: [len * Math.sin(yaw), 0, len * Math.cos(yaw)], period: rng.range(8, 20), phase: rng.next() };
      const r = 0.5 * Math.hypot(size[0], size[2]);
      const p = placer.place(where, r, motion, motion.period);
      if (!p) return null;
      return [{ ...box(`car${n}`, [p[0], size[1] / 2, p[1]], size, [0, yaw, 0], material(rng, THING)), motion }];
    }
    case 'ball': {
      const r = rng.range(0.2, 0.6);
      const motion: Motion = { kind: 'bounce', height: rng.range(0.5, 2.5), period: rng.range(0.8, 2), phase: rng.next() };
      const p = placer.place(where, r);
      if (!p) return null;
      return [{ ...sphere(`ball${n}`, [p[0], r, p[1]], r, material(rng, THING)), motion }];
    }
    default: {
      const r = rng.range(0.25, 0.6);
      const motion: Motion = { kind: 'circular', radius: rng.range(1.5, 6), period: rng.sign() * rng.range(5, 14), phase: rng.next() };
      const p = placer.place(where, r, motion, motion.period);
      if (!p) return null;
      const y = rng.range(2.5, 6);
      const spin = { axis: [rng.range(-1, 1), 1, rng.range(-1, 1)] as Vec3, rate: rng.sign() * rng.range(0.5, 2.5) };
      const m: Material = material(rng, THING);
      return rng.chance(0.5)
        ? [{ ...sphere(`drone${n}`, [p[0], y, p[1]], r, m), motion, spin }]
        : [{ ...box(`drone${n}`, [p[0], y, p[1]], [r * 1.8, r * 0.8, r * 1.8], [0, 0, 0], m), motion, spin }];
    }
  }
}
