/**
 * Indoor scenes: a closed room 3.5-8 m wide, 4-10 m deep, 2.4-3.4 m high (visible depths about
 * 0.5-12 m, every pixel valid), furnished with tables, shelves, crates, balls, stools and pillars, a
 * few of them moving; lit by a ceiling point light with shadows; the camera drifts at eye height
 * near one end of the room, looking across it and panning (sometimes turning right round).
 */
import type { Rng } from './prng.js';
import type { CameraRig, Material, Motion, SceneObject, Wave } from './scene.js';
import { material, type MaterialSpec } from './palette.js';
import { box, cylinder, sphere } from './objects.js';
import { Placer } from './placement.js';
import type { Vec3 } from './vec.js';

const FLOOR: MaterialSpec = {
  kinds: [
    ['tiles', 3],
    ['checker', 2],
    ['stripes', 3],
    ['noise', 2],
  ],
  colours: { sat: [0.1, 0.55], val: [0.3, 0.85] },
  scale: [0.25, 0.9],
  axes: [
    [1, 0, 0],
    [0, 0, 1],
  ],
  grain: [0, 0.25],
};
const WALL: MaterialSpec = {
  kinds: [
    ['solid', 3],
    ['noise', 2],
    ['stripes', 2],
    ['tiles', 1],
    ['gradient', 1],
  ],
  colours: { sat: [0.05, 0.45], val: [0.55, 0.95] },
  scale: [0.2, 1.2],
  axes: [
    [1, 0, 1],
    [0, 1, 0],
  ],
  grain: [0, 0.15],
};
const CEILING: MaterialSpec = {
  kinds: [
    ['solid', 3],
    ['tiles', 2],
    ['noise', 1],
  ],
  colours: { sat: [0, 0.1], val: [0.75, 0.97] },
  scale: [0.5, 1.2],
};
const THING: MaterialSpec = {
  kinds: [
    ['solid', 2],
    ['checker', 2],
    ['stripes', 2],
    ['noise', 2],
    ['gradient', 1],
    ['tiles', 1],
  ],
  colours: { sat: [0.25, 0.9], val: [0.3, 0.95] },
  scale: [0.06, 0.4],
  grain: [0, 0.3],
};
const WOOD: MaterialSpec = {
  kinds: [
    ['stripes', 2],
    ['noise', 2],
    ['solid', 1],
  ],
  colours: { hue: [0.08, 0.04], sat: [0.35, 0.7], val: [0.3, 0.75] },
  scale: [0.03, 0.15],
  axes: [
    [1, 0, 0],
    [0, 0, 1],
  ],
  grain: [0.05, 0.3],
};

const wave = (rng: Rng, amp: number, f0: number, f1: number): Wave => ({ amp, freq: rng.range(f0, f1), phase: rng.next() });

export interface IndoorParts {
  readonly environment: { kind: 'room'; size: Vec3; floor: Material; ceiling: Material; walls: [Material, Material, Material, Material] };
  readonly objects: SceneObject[];
  readonly camera: CameraRig;
  readonly light: Vec3;
}

export function generateIndoor(rng: Rng): IndoorParts {
  const w = rng.range(3.5, 8);
  const d = rng.range(4, 10);
  const h = rng.range(2.4, 3.4);
  const shared = rng.chance(0.6);
  const wall0 = material(rng, WALL);
  const walls: [Material, Material, Material, Material] = shared
    ? [wall0, wall0, wall0, wall0]
    : [wall0, material(rng, WALL), material(rng, WALL), material(rng, WALL)];
  const environment = { kind: 'room' as const, size: [w, h, d] as Vec3, floor: material(rng, FLOOR), ceiling: material(rng, CEILING), walls };

  // Camera: eye height, drifting around a point towards one end of the room, looking across it
  // and panning; sometimes it turns all the way round, slowly.
  const ax = rng.range(0.1, Math.max(0.15, Math.min(0.5, w / 2 - 1.5)));
  const az = rng.range(0.1, Math.max(0.15, Math.min(0.5, d / 2 - 1.5)));
  const alongZ = d >= w ? rng.chance(0.8) : rng.chance(0.2);
  const s = rng.sign();
  let cx = rng.range(-0.1, 0.1) * w;
  let cz = rng.range(-0.1, 0.1) * d;
  let yaw0: number;
  if (alongZ) {
    cz = -s * Math.max(0, Math.min(0.25 * d, d / 2 - 1.4 - az));
    yaw0 = s > 0 ? 0 : Math.PI;
  } else {
    cx = -s * Math.max(0, Math.min(0.25 * w, w / 2 - 1.4 - ax));
    yaw0 = s > 0 ? Math.PI / 2 : -Math.PI / 2;
  }
  const camY = rng.range(1.2, 1.7);
  const turning = rng.chance(0.25);
  const camera: CameraRig = {
    position: [cx, camY, cz],
    sway: {
      x: [wave(rng, ax * 0.7, 0.03, 0.09), wave(rng, ax * 0.3, 0.1, 0.2)],
      y: [wave(rng, rng.range(0.03, 0.1), 0.05, 0.2)],
      z: [wave(rng, az * 0.7, 0.03, 0.09), wave(rng, az * 0.3, 0.1, 0.2)],
    },
    yaw: {
      base: yaw0 + rng.range(-0.3, 0.3),
      rate: turning ? rng.sign() * rng.range(0.05, 0.15) : 0,
      waves: [wave(rng, rng.range(0.25, 0.8), 0.02, 0.07), wave(rng, rng.range(0.02, 0.08), 0.1, 0.3)],
    },
    pitch: { base: rng.range(-0.3, -0.05), waves: [wave(rng, rng.range(0.04, 0.12), 0.04, 0.12)] },
    roll: { base: 0, waves: [wave(rng, rng.range(0.005, 0.035), 0.05, 0.15)] },
  };
  const keepOut = Math.hypot(ax, az) + 0.75;

  const margin = 0.05;
  const placer = new Placer((x, z, r) => Math.abs(x) + r <= w / 2 - margin && Math.abs(z) + r <= d / 2 - margin);
  placer.forbid((x, z, r) => Math.hypot(x - cx, z - cz) < keepOut + r);
  const anywhere = (r: number) => (): [number, number] => [rng.range(-w / 2 + r, w / 2 - r), rng.range(-d / 2 + r, d / 2 - r)];

  const objects: SceneObject[] = [];
  const target = rng.int(8, 16);
  const add = (o: SceneObject) => objects.push(o);
  let moving = 0;
  const wantMoving = rng.int(2, 4);
  let guard = 0;
  while (objects.length < target && guard++ < 200) {
    const makeMoving = moving < wantMoving && rng.chance(0.5);
    const made = makeMoving ? movingThing(rng, h, placer, anywhere, objects.length) : staticThing(rng, w, d, h, placer, anywhere, objects.length);
    if (!made) continue;
    if (makeMoving) moving++;
    for (const o of made) if (objects.length < target + 2) add(o);
  }
  const light: Vec3 = [rng.range(-0.3, 0.3) * w, h - 0.25, rng.range(-0.3, 0.3) * d];
  return { environment, objects, camera, light };
}

type Sampler = (r: number) => () => [number, number];

function staticThing(rng: Rng, w: number, d: number, h: number, placer: Placer, anywhere: Sampler, n: number): SceneObject[] | null {
  const role = rng.weighted<string>([
    ['table', 2],
    ['shelf', 2],
    ['crate', 3],
    ['ball', 2],
    ['stool', 2],
    ['pillar', 1],
    ['orb', 1],
  ]);
  const yaw = rng.range(0, Math.PI);
  switch (role) {
    case 'table': {
      const size: Vec3 = [rng.range(0.8, 1.8), rng.range(0.65, 0.8), rng.range(0.5, 1.0)];
      const r = 0.5 * Math.hypot(size[0], size[2]);
      const p = placer.place(anywhere(r), r);
      if (!p) return null;
      const top = size[1];
      const out: SceneObject[] = [box(`table${n}`, [p[0], top / 2, p[1]], size, [0, yaw, 0], material(rng, WOOD))];
      // Something on the table.
      if (rng.chance(0.7)) {
        const sr = rng.range(0.06, 0.18);
        const ox = rng.range(-0.3, 0.3) * size[0];
        const oz = rng.range(-0.3, 0.3) * size[2];
        const c = Math.cos(yaw);
        const s = Math.sin(yaw);
        const pos: Vec3 = [p[0] + c * ox + s * oz, top + sr, p[1] - s * ox + c * oz];
        out.push(
          rng.chance(0.5)
            ? sphere(`table${n}-ball`, pos, sr, material(rng, THING))
            : cylinder(`table${n}-can`, [pos[0], top + sr * 1.2, pos[2]], sr * 0.6, sr * 2.4, [0, 0, 0], material(rng, THING)),
        );
      }
      return out;
    }
    case 'shelf': {
      // Against a wall, facing the room.
      const size: Vec3 = [rng.range(0.8, 1.6), Math.min(h - 0.2, rng.range(1.4, 2.2)), rng.range(0.3, 0.45)];
      const wall = rng.int(0, 3);
      const along = wall < 2 ? d : w;
      const t = rng.range(-0.5, 0.5) * (along - size[0] - 0.2);
      const off = size[2] / 2 + 0.02;
      const [x, z, ry] =
        wall === 0 ? [-w / 2 + off, t, Math.PI / 2] : wall === 1 ? [w / 2 - off, t, Math.PI / 2] : wall === 2 ? [t, -d / 2 + off, 0] : [t, d / 2 - off, 0];
      const r = size[0] / 2;
      if (!placer.fits(x, z, r)) return null;
      placer.claim(x, z, r);
      return [box(`shelf${n}`, [x, size[1] / 2, z], size, [0, ry, 0], material(rng, rng.chance(0.5) ? WOOD : THING))];
    }
    case 'crate': {
      const s = rng.range(0.3, 0.9);
      const size: Vec3 = [s * rng.range(0.8, 1.3), s * rng.range(0.6, 1.2), s * rng.range(0.8, 1.3)];
      const r = 0.5 * Math.hypot(size[0], size[2]);
      const p = placer.place(anywhere(r), r);
      if (!p) return null;
      const out = [box(`crate${n}`, [p[0], size[1] / 2, p[1]], size, [0, yaw, 0], material(rng, THING))];
      if (rng.chance(0.35)) {
        const s2 = s * rng.range(0.4, 0.7);
        out.push(box(`crate${n}-top`, [p[0], size[1] + s2 / 2, p[1]], [s2, s2, s2], [0, rng.range(0, Math.PI), 0], material(rng, THING)));
      }
      return out;
    }
    case 'ball': {
      const r = rng.range(0.1, 0.4);
      const p = placer.place(anywhere(r), r);
      if (!p) return null;
      return [sphere(`ball${n}`, [p[0], r, p[1]], r, material(rng, THING))];
    }
    case 'stool': {
      const r = rng.range(0.15, 0.35);
      const ht = rng.range(0.35, 1.0);
      const p = placer.place(anywhere(r), r);
      if (!p) return null;
      if (rng.chance(0.25)) {
        // Lying on its side.
        const len = Math.min(ht, 0.8);
        const rr = Math.hypot(r, len / 2);
        if (!placer.fits(p[0], p[1], rr)) return [cylinder(`stool${n}`, [p[0], ht / 2, p[1]], r, ht, [0, 0, 0], material(rng, THING))];
        return [cylinder(`roll${n}`, [p[0], r, p[1]], r, len, [Math.PI / 2, yaw, 0], material(rng, THING))];
      }
      return [cylinder(`stool${n}`, [p[0], ht / 2, p[1]], r, ht, [0, 0, 0], material(rng, THING))];
    }
    case 'pillar': {
      const r = rng.range(0.12, 0.3);
      const p = placer.place(anywhere(r), r);
      if (!p) return null;
      return [cylinder(`pillar${n}`, [p[0], h / 2, p[1]], r, h, [0, 0, 0], material(rng, WALL))];
    }
    default: {
      // A lamp-like orb hanging above head height.
      const r = rng.range(0.1, 0.25);
      const p = placer.place(anywhere(r), r);
      if (!p) return null;
      return [sphere(`orb${n}`, [p[0], Math.min(h - r - 0.05, rng.range(1.9, 2.4)), p[1]], r, material(rng, THING))];
    }
  }
}

function movingThing(rng: Rng, h: number, placer: Placer, anywhere: Sampler, n: number): SceneObject[] | null {
  const kind = rng.weighted<string>([
    ['bounce', 2],
    ['slide', 2],
    ['orbit', 2],
    ['spin', 1],
  ]);
  switch (kind) {
    case 'bounce': {
      const r = rng.range(0.1, 0.3);
      const motion: Motion = { kind: 'bounce', height: rng.range(0.3, Math.min(1.2, h - 2 * r - 0.2)), period: rng.range(0.6, 1.6), phase: rng.next() };
      const p = placer.place(anywhere(r), r);
      if (!p) return null;
      return [{ ...sphere(`bouncer${n}`, [p[0], r, p[1]], r, material(rng, THING)), motion }];
    }
    case 'slide': {
      const s = rng.range(0.3, 0.7);
      const size: Vec3 = [s, s * rng.range(0.6, 1.2), s];
      const r = 0.5 * Math.hypot(size[0], size[2]);
      const len = rng.range(0.6, 2.5);
      const a = rng.range(0, Math.PI);
      const motion: Motion = { kind: 'linear', delta: [len * Math.cos(a), 0, len * Math.sin(a)], period: rng.range(3, 8), phase: rng.next() };
      const p = placer.place(anywhere(r), r, motion, motion.period);
      if (!p) return null;
      return [
        {
          ...box(`slider${n}`, [p[0], size[1] / 2, p[1]], size, [0, rng.range(0, Math.PI), 0], material(rng, THING)),
          motion,
          spin: rng.chance(0.5) ? { axis: [0, 1, 0], rate: rng.sign() * rng.range(0.2, 1) } : undefined,
        },
      ];
    }
    case 'orbit': {
      const r = rng.range(0.1, 0.25);
      const motion: Motion = { kind: 'circular', radius: rng.range(0.4, 1.2), period: rng.sign() * rng.range(4, 10), phase: rng.next() };
      const p = placer.place(anywhere(r + motion.radius), r, motion, motion.period);
      if (!p) return null;
      const y = rng.range(0.6, Math.min(2.0, h - r - 0.1));
      const m = material(rng, THING);
      const spin = { axis: [rng.range(-1, 1), 1, rng.range(-1, 1)] as Vec3, rate: rng.sign() * rng.range(0.5, 2) };
      return rng.chance(0.5)
        ? [{ ...sphere(`orbiter${n}`, [p[0], y, p[1]], r, m), motion, spin }]
        : [{ ...box(`orbiter${n}`, [p[0], y, p[1]], [r * 1.6, r * 1.6, r * 1.6], [rng.next(), rng.next(), 0], m), motion, spin }];
    }
    default: {
      const s = rng.range(0.3, 0.6);
      const ht = rng.range(0.5, 1.3);
      const r = Math.hypot(s, s) / 2;
      const p = placer.place(anywhere(r), r);
      if (!p) return null;
      const spin = { axis: [0, 1, 0] as Vec3, rate: rng.sign() * rng.range(0.3, 1.5) };
      return rng.chance(0.5)
        ? [{ ...box(`spinner${n}`, [p[0], ht / 2, p[1]], [s, ht, s * 0.5], [0, 0, 0], material(rng, THING)), spin }]
        : [
            {
              ...cylinder(
                `spinner${n}`,
                [p[0], ht / 2, p[1]],
                s / 2,
                ht,
                [0, 0, 0],
                material(rng, {
                  ...THING,
                  kinds: [
                    ['stripes', 1],
                    ['checker', 1],
                  ],
                  axes: [
                    [1, 0, 0],
                    [0, 0, 1],
                  ],
                }),
              ),
              spin,
            },
          ];
    }
  }
}
