/**
 * The scene description: plain, JSON-serialisable data. A generator (generate.ts) makes one from a
 * seed; tests build their own; the renderer (renderer.ts) draws one at any time t. Everything a
 * frame shows is a pure function of (description, t), so frames can be rendered in any order, in
 * any thread, and reproduced from the description alone.
 *
 * Units: metres, seconds, radians. World frame: right-handed, y up, ground at y = 0.
 * Colours are linear RGB in [0, 1] (the renderer applies a display gamma of 2.2 at the end).
 */
import type { Vec3 } from './vec.js';

export type Rgb = Vec3;

/** Procedural textures, evaluated in the surface's texture space (object-local for objects, world for the environment). */
export type TextureKind = 'solid' | 'checker' | 'stripes' | 'noise' | 'gradient' | 'tiles';

export interface Material {
  readonly texture: TextureKind;
  /** Primary colour. */
  readonly a: Rgb;
  /** Secondary colour (checker cells, stripes, noise high end, gradient far end, tile grout). */
  readonly b: Rgb;
  /** Feature size in metres: checker cell, stripe period, noise cell, tile size, half gradient period. */
  readonly scale: number;
  /** Stripe / gradient direction in texture space (normalised by the renderer); default +x. */
  readonly axis?: Vec3;
  /** Texture-space offset in metres. */
  readonly offset?: Vec3;
  /** 0..1: amount of fine multiplicative noise on top of the pattern. */
  readonly grain?: number;
}

export type Shape =
  | { readonly kind: 'sphere'; readonly radius: number }
  /** Full extents along the local x, y, z axes. */
  | { readonly kind: 'box'; readonly size: Vec3 }
  /** Axis along local y, centred, closed by two caps. */
  | { readonly kind: 'cylinder'; readonly radius: number; readonly height: number };

/** Offsets from the object's base position, periodic in t so endless streams stay bounded. */
export type Motion =
  | { readonly kind: 'static' }
  /** Smooth back-and-forth: base + delta * (1 - cos(2 pi (t / period + phase))) / 2. */
  | { readonly kind: 'linear'; readonly delta: Vec3; readonly period: number; readonly phase: number }
  /** base + radius * (cos a, 0, sin a) with a = 2 pi (t / period + phase); a negative period runs the other way. */
  | { readonly kind: 'circular'; readonly radius: number; readonly period: number; readonly phase: number }
  /** base + (0, height * |sin(pi (t / period + phase))|, 0): a ball bouncing on the ground. */
  | { readonly kind: 'bounce'; readonly height: number; readonly period: number; readonly phase: number };

export interface SceneObject {
  readonly name: string;
  readonly shape: Shape;
  /** Centre of the shape (at zero motion offset). */
  readonly position: Vec3;
  /** Initial orientation, Euler angles (x, then y, then z). */
  readonly rotation: Vec3;
  readonly material: Material;
  readonly motion: Motion;
  /** Rotation about a world axis through the centre at `rate` rad/s, applied after `rotation`. */
  readonly spin?: { readonly axis: Vec3; readonly rate: number };
}

/** A closed box seen from inside: x in [-w/2, w/2], y in [0, h], z in [-d/2, d/2] for size [w, h, d]. */
export interface RoomEnvironment {
  readonly kind: 'room';
  readonly size: Vec3;
  readonly floor: Material;
  readonly ceiling: Material;
  /** Walls at -x, +x, -z, +z. */
  readonly walls: readonly [Material, Material, Material, Material];
}

/**
 * A vertical cylinder around the origin seen from inside, cut at a height profile: hills or a
 * skyline on the horizon. Above the profile is sky.
 */
export interface Backdrop {
  readonly radius: number;
  /** Height at angle a = atan2(z, x): base + sum(amp * sin(k a + phase)) for 'hills'; segments[floor(N a / 2 pi)] for 'skyline'. */
  readonly profile:
    | { readonly kind: 'hills'; readonly base: number; readonly waves: readonly { readonly amp: number; readonly k: number; readonly phase: number }[] }
    | { readonly kind: 'skyline'; readonly segments: readonly number[] };
  readonly material: Material;
}

/** Ground plane y = 0 (endless, or up to the backdrop), optional backdrop, sky with depth 0 (invalid). */
export interface OutdoorEnvironment {
  readonly kind: 'outdoor';
  readonly ground: Material | null;
  readonly backdrop: Backdrop | null;
  readonly sky: { readonly zenith: Rgb; readonly horizon: Rgb };
}

export type Environment = RoomEnvironment | OutdoorEnvironment;

export interface Lighting {
  /** Ambient intensity (hemispherical: a little brighter on up-facing surfaces). */
  readonly ambient: number;
  readonly light:
    /** Directional light; `direction` points from the scene towards the sun. */
    | { readonly kind: 'sun'; readonly direction: Vec3; readonly intensity: number }
    /** Falloff 1 / (1 + (distance / range)^2). */
    | { readonly kind: 'point'; readonly position: Vec3; readonly intensity: number; readonly range: number };
  /** Shadow rays from every lit point towards the light, against the objects. */
  readonly shadows: boolean;
  /** Exponential distance fog: colour = mix(colour, fog.color, 1 - exp(-density * distance)). */
  readonly fog: { readonly density: number; readonly color: Rgb } | null;
  /** Multiplies the final linear colour. Default 1. */
  readonly exposure?: number;
}

/** amp * sin(2 pi (freq * t + phase)). */
export interface Wave {
  readonly amp: number;
  readonly freq: number;
  readonly phase: number;
}

/**
 * A smooth camera path. Position = position + loop offset + sway; orientation from yaw (about +y,
 * 0 looks along +z, positive turns towards +x), pitch (positive looks up) and roll.
 */
export interface CameraRig {
  readonly position: Vec3;
  /** Optional closed ellipse in the xz plane around `position`; when present, yaw is relative to the direction of travel. */
  readonly loop?: { readonly rx: number; readonly rz: number; readonly period: number; readonly phase: number };
  readonly sway?: { readonly x?: readonly Wave[]; readonly y?: readonly Wave[]; readonly z?: readonly Wave[] };
  readonly yaw: { readonly base: number; readonly rate?: number; readonly waves?: readonly Wave[] };
  readonly pitch?: { readonly base: number; readonly waves?: readonly Wave[] };
  readonly roll?: { readonly base: number; readonly waves?: readonly Wave[] };
}

export type SceneKind = 'indoor' | 'outdoor';

export interface SceneDescription {
  /** Generator version: a given (version, seed) always yields the same scene. */
  readonly version: number;
  readonly seed: number;
  /** 'custom' for hand-built scenes. */
  readonly kind: SceneKind | 'custom';
  readonly environment: Environment;
  readonly objects: readonly SceneObject[];
  readonly lighting: Lighting;
  readonly camera: CameraRig;
}
