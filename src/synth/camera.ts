/**
 * Pinhole camera: intrinsics from a horizontal field of view, and the camera pose along its rig.
 *
 * Camera frame (OpenCV): x right, y down, z forward. Pixel (u, v) has its centre at integer
 * coordinates, so the principal point is ((W - 1) / 2, (H - 1) / 2) and the ray through pixel
 * (u, v) is right * (u - cx) / fx + down * (v - cy) / fy + forward. Square pixels: fy = fx.
 */
import type { CameraRig } from './scene.js';
import { waves } from './motion.js';
import { cross, normalize, type Vec3 } from './vec.js';
import { OptionError } from '../util/errors.js';

export interface Intrinsics {
  readonly fx: number;
  readonly fy: number;
  readonly cx: number;
  readonly cy: number;
}

/** `fovDeg` is the horizontal field of view, edge to edge of the image (W pixels wide). */
export function intrinsics(width: number, height: number, fovDeg: number): Intrinsics {
  if (!(fovDeg > 0 && fovDeg < 180)) throw new OptionError(`field of view must be in (0, 180) degrees, got ${fovDeg}`);
  const fx = width / 2 / Math.tan((fovDeg * Math.PI) / 360);
  return { fx, fy: fx, cx: (width - 1) / 2, cy: (height - 1) / 2 };
}

export interface CameraPose {
  readonly position: Vec3;
  /** Unit camera axes in world coordinates. */
  readonly right: Vec3;
  readonly down: Vec3;
  readonly forward: Vec3;
}

const TAU = 2 * Math.PI;

/** The pose along a rig at time t (seconds). */
export function cameraPose(rig: CameraRig, t: number): CameraPose {
  let x = rig.position[0] + waves(rig.sway?.x, t);
  const y = rig.position[1] + waves(rig.sway?.y, t);
  let z = rig.position[2] + waves(rig.sway?.z, t);
  let heading = 0;
  if (rig.loop) {
    const { rx, rz, period, phase } = rig.loop;
    const a = TAU * (t / period + phase);
    x += rx * Math.cos(a);
    z += rz * Math.sin(a);
    // Direction of travel: d/dt of the ellipse (the sign of period gives the direction).
    const s = Math.sign(period) || 1;
    heading = Math.atan2(-rx * Math.sin(a) * s, rz * Math.cos(a) * s);
  }
  const yaw = heading + rig.yaw.base + (rig.yaw.rate ?? 0) * t + waves(rig.yaw.waves, t);
  const pitch = (rig.pitch?.base ?? 0) + waves(rig.pitch?.waves, t);
  const roll = (rig.roll?.base ?? 0) + waves(rig.roll?.waves, t);
  return poseFromAngles([x, y, z], yaw, pitch, roll);
}

/** Camera axes from yaw (about +y, 0 = looking along +z), pitch (up positive) and roll. */
export function poseFromAngles(position: Vec3, yaw: number, pitch: number, roll: number): CameraPose {
  const cp = Math.cos(pitch);
  const forward: Vec3 = [Math.sin(yaw) * cp, Math.sin(pitch), Math.cos(yaw) * cp];
  return poseFromForward(position, forward, roll);
}

/** Camera looking at `target` from `position`, world +y up (not straight up or down). */
export function lookAt(position: Vec3, target: Vec3, roll = 0): CameraPose {
  return poseFromForward(position, [target[0] - position[0], target[1] - position[1], target[2] - position[2]], roll);
}

function poseFromForward(position: Vec3, fwd: Vec3, roll: number): CameraPose {
  const forward = normalize(fwd);
  const r0 = normalize(cross(forward, [0, 1, 0]));
  const d0 = cross(forward, r0);
  const c = Math.cos(roll);
  const s = Math.sin(roll);
  const right: Vec3 = [r0[0] * c + d0[0] * s, r0[1] * c + d0[1] * s, r0[2] * c + d0[2] * s];
  const down: Vec3 = [d0[0] * c - r0[0] * s, d0[1] * c - r0[1] * s, d0[2] * c - r0[2] * s];
  return { position, right, down, forward };
}

/** Camera-to-world as a row-major 3x4 matrix [R | t] with R's columns right, down, forward (OpenCV axes). */
export function cameraToWorld(p: CameraPose): number[] {
  const { right: r, down: d, forward: f, position: o } = p;
  return [r[0], d[0], f[0], o[0], r[1], d[1], f[1], o[1], r[2], d[2], f[2], o[2]];
}
