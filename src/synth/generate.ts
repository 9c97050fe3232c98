/**
 * Scene generation from a seed: picks indoor or outdoor, builds the environment, objects, camera
 * rig and lighting. The same (SYNTH_VERSION, seed, kind) always yields the same description.
 */
import { Rng } from './prng.js';
import type { SceneDescription, SceneKind } from './scene.js';
import { generateIndoor } from './generate-indoor.js';
import { generateOutdoor } from './generate-outdoor.js';
import { OptionError } from '../util/errors.js';

/** Bump when a change alters the scenes a seed produces. */
export const SYNTH_VERSION = 1;

export type SceneChoice = SceneKind | 'auto';

export function generateScene(seed: number, kind: SceneChoice = 'auto'): SceneDescription {
  if (!Number.isSafeInteger(seed)) throw new OptionError(`seed must be an integer, got ${seed}`);
  const root = new Rng(seed);
  const chosen: SceneKind = kind === 'auto' ? (root.fork('kind').chance(0.5) ? 'indoor' : 'outdoor') : kind;
  // A separate stream per kind, so forcing the kind of a seed gives a scene of that seed.
  const rng = root.fork(chosen);
  if (chosen === 'indoor') {
    const p = generateIndoor(rng);
    const light = rng.fork('light');
    return {
      version: SYNTH_VERSION,
      seed,
      kind: 'indoor',
      environment: p.environment,
      objects: p.objects,
      camera: p.camera,
      lighting: {
        ambient: light.range(0.25, 0.45),
        light: { kind: 'point', position: p.light, intensity: light.range(0.9, 1.5), range: light.range(3, 6) },
        shadows: true,
        fog: null,
        exposure: light.range(0.9, 1.15),
      },
    };
  }
  const p = generateOutdoor(rng);
  const light = rng.fork('light');
  return {
    version: SYNTH_VERSION,
    seed,
    kind: 'outdoor',
    environment: p.environment,
    objects: p.objects,
    camera: p.camera,
    lighting: {
      ambient: light.range(0.3, 0.5),
      light: { kind: 'sun', direction: p.sun, intensity: light.range(0.9, 1.4) },
      shadows: true,
      fog: { density: light.range(0.002, 0.012), color: p.skyHorizon },
      exposure: light.range(0.9, 1.1),
    },
  };
}
