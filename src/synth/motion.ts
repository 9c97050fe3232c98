/** Where an object is at time t: its centre and orientation. Pure functions of the description. */
import type { Motion, SceneObject, Wave } from './scene.js';
import { axisAngle, euler, mulMat, type Mat3, type Vec3 } from './vec.js';

const TAU = 2 * Math.PI;

/** Sum of amp * sin(2 pi (freq t + phase)). */
export function waves(ws: readonly Wave[] | undefined, t: number): number {
  let s = 0;
  if (ws) for (const w of ws) s += w.amp * Math.sin(TAU * (w.freq * t + w.phase));
  return s;
}

/** Offset of a motion from the base position at time t. */
export function motionOffset(m: Motion, t: number): Vec3 {
  switch (m.kind) {
    case 'static':
      return [0, 0, 0];
    case 'linear': {
      const s = 0.5 - 0.5 * Math.cos(TAU * (t / m.period + m.phase));
      return [m.delta[0] * s, m.delta[1] * s, m.delta[2] * s];
    }
    case 'circular': {
      const a = TAU * (t / m.period + m.phase);
      return [m.radius * Math.cos(a), 0, m.radius * Math.sin(a)];
    }
    case 'bounce':
      return [0, m.height * Math.abs(Math.sin(Math.PI * (t / m.period + m.phase))), 0];
  }
}

export interface ObjectPose {
  readonly centre: Vec3;
  /** world = rotation * local + centre. */
  readonly rotation: Mat3;
}

export function objectPose(o: SceneObject, t: number): ObjectPose {
  const off = motionOffset(o.motion, t);
  let rot = euler(o.rotation[0], o.rotation[1], o.rotation[2]);
  if (o.spin && o.spin.rate !== 0) rot = mulMat(axisAngle(o.spin.axis, o.spin.rate * t), rot);
  return { centre: [o.position[0] + off[0], o.position[1] + off[1], o.position[2] + off[2]], rotation: rot };
}

/** Radius of a sphere around the centre that contains the shape. */
export function boundingRadius(o: SceneObject): number {
  const s = o.shape;
  switch (s.kind) {
    case 'sphere':
      return s.radius;
    case 'box':
      return 0.5 * Math.hypot(s.size[0], s.size[1], s.size[2]);
    case 'cylinder':
      return Math.hypot(s.radius, s.height / 2);
  }
}
