/** Constructors for static scene objects (motion and spin are added by spreading). */
import type { Material, Motion, SceneObject } from './scene.js';
import type { Vec3 } from './vec.js';

const STATIC: Motion = { kind: 'static' };

export function box(name: string, position: Vec3, size: Vec3, rotation: Vec3, m: Material): SceneObject {
  return { name, shape: { kind: 'box', size }, position, rotation, material: m, motion: STATIC };
}

export function sphere(name: string, position: Vec3, radius: number, m: Material): SceneObject {
  return { name, shape: { kind: 'sphere', radius }, position, rotation: [0, 0, 0], material: m, motion: STATIC };
}

/** Axis along local y before `rotation`. */
export function cylinder(name: string, position: Vec3, radius: number, height: number, rotation: Vec3, m: Material): SceneObject {
  return { name, shape: { kind: 'cylinder', radius, height }, position, rotation, material: m, motion: STATIC };
}
