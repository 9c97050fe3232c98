import type { PackManifest } from '../pack/manifest.js';
import { modelResolution, presetResolution, type Resolution } from '../math/resolution.js';
import { MAX_WINDOW, validateWindow } from '../math/segments.js';
import type { SessionConfig, StitchMode } from './depth-session.js';
import { sequenceNoise, type ExternalNoiseArrays, type NoiseSource } from './noise-source.js';
import { OptionError } from '../../util/errors.js';

/** What a user may choose per run; everything else comes from the pack's manifest. */
export interface SessionChoices {
  window?: number;
  overlap?: number;
  steps?: number;
  guidance?: number;
  seed?: number;
  /** Longest side limit for the reference's resize rule (multiples of 64). */
  maxRes?: number;
  /** Fixed model resolution, or a dataset preset name (sintel, scannet, KITTI, bonn, NYUv2). */
  resolution?: Resolution | string;
  /** Window joining for the ablation; the reference is `full`. */
  stitch?: StitchMode;
  /** Also return each frame's stitched latent (infer --save-latents, parity checks). */
  keepLatents?: boolean;
}

export function resolveResolution(manifest: PackManifest, choices: SessionChoices, inputHeight: number, inputWidth: number): Resolution {
  const r = choices.resolution;
  if (typeof r === 'string') return presetResolution(r);
  if (r) return r;
  if (choices.maxRes === undefined && manifest.nativeResolution) return manifest.nativeResolution;
  return modelResolution(inputHeight, inputWidth, choices.maxRes ?? manifest.defaults.maxRes);
}

export function sessionConfig(manifest: PackManifest, choices: SessionChoices, res: Resolution): SessionConfig {
  const window = choices.window ?? manifest.defaults.window;
  const overlap = choices.overlap ?? manifest.defaults.overlap;
  const maxWindow = Math.min(manifest.maxWindow, MAX_WINDOW);
  if (window > maxWindow) throw new OptionError(`window ${window} is larger than this pack allows (${maxWindow})`);
  validateWindow(window, overlap);
  const steps = choices.steps ?? manifest.defaults.steps;
  const guidance = choices.guidance ?? manifest.defaults.guidance;
  if (!Number.isInteger(steps) || steps < 1 || steps > 1000) throw new OptionError(`steps must be an integer in 1..1000 (got ${steps})`);
  if (!(guidance >= 1 && guidance <= 100)) throw new OptionError(`guidance must be in 1..100 (got ${guidance}); 1 disables classifier-free guidance`);
  return {
    height: res.height,
    width: res.width,
    window,
    overlap,
    steps,
    guidance,
    sigmaMin: manifest.sigmaMin,
    sigmaMax: manifest.sigmaMax,
    latentChannels: manifest.latentChannels,
    downsample: manifest.spatialDownsample,
    scalingFactor: manifest.vaeScalingFactor,
    noiseAugStrength: manifest.defaults.noiseAugStrength,
    decodeChunk: manifest.defaults.decodeChunk,
    embeddingDim: manifest.embeddingDim,
    clipSize: manifest.imageEncoder.size,
    clipMean: manifest.imageEncoder.mean,
    clipStd: manifest.imageEncoder.std,
    stitch: choices.stitch ?? 'full',
    keepLatents: choices.keepLatents ?? false,
  };
}

/** A sequence's resolution, settings and noise, fixed by its first frame's size (inference and frame-preparation workers alike). */
export function sequenceSetup(
  manifest: PackManifest,
  choices: SessionChoices,
  external: ExternalNoiseArrays | undefined,
  inputHeight: number,
  inputWidth: number,
): { res: Resolution; cfg: SessionConfig; noise: NoiseSource } {
  const res = resolveResolution(manifest, choices, inputHeight, inputWidth);
  const cfg = sessionConfig(manifest, choices, res);
  const latentSize = manifest.latentChannels * (res.height / cfg.downsample) * (res.width / cfg.downsample);
  return { res, cfg, noise: sequenceNoise(choices.seed ?? 42, external, res, latentSize) };
}
