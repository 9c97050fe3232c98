/**
 * Model-pack manifest (`manifest.json`): schema, types and parsing.
 *
 * The format is documented in docs/model-pack.md. Fields that describe the
 * DepthCrafter method itself (latent channels, VAE scaling, CLIP statistics,
 * sigma range, added time ids, sampler defaults) have defaults equal to the
 * reference values, so a pack for the real model only has to name itself, its
 * licence, its embedding size, its dtype and its files.
 */
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { ProviderOptionsSchema } from './provider-options.js';
import { UserError } from '../../util/errors.js';

/** Format identifier and the only format version this loader reads. */
export const PACK_FORMAT = 'depthcrafter-pack';
export const PACK_FORMAT_VERSION = 1;
export const MANIFEST_FILE = 'manifest.json';

/** Any failure to read, validate or open a model pack. The message names the pack path, the file and the field/tensor. */
export class ModelPackError extends UserError {
  override readonly name: string = 'ModelPackError';
  /** The pack folder as passed to the loader. */
  readonly packDir: string;
  /** The file concerned (path including the pack folder), when there is one. */
  readonly file: string | undefined;

  constructor(message: string, opts: { packDir: string; file?: string; cause?: unknown }) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.packDir = opts.packDir;
    this.file = opts.file;
  }
}

const positiveInt = z.int().positive();

/** A path relative to the pack folder that stays inside it. */
const relativeFile = z
  .string()
  .min(1)
  .refine((p) => !p.startsWith('/') && !p.startsWith('\\') && !/^[A-Za-z]:/.test(p), {
    message: 'must be a path relative to the pack folder',
  })
  .refine((p) => !p.split(/[\\/]/).includes('..'), { message: 'must not leave the pack folder ("..")' });

const triple = z.tuple([z.number(), z.number(), z.number()]);

export const ImageEncoderSpecSchema = z.strictObject({
  /** Square input size of the image encoder (CLIP ViT-H/14: 224). */
  size: positiveInt.default(224),
  /** Per-channel normalisation applied to [0,1] RGB: (x - mean) / std. */
  mean: triple.default([0.48145466, 0.4578275, 0.40821073]),
  std: triple.refine((s) => s.every((v) => v > 0), { message: 'std values must be > 0' }).default([0.26862954, 0.26130258, 0.27577711]),
});

export const PackDefaultsSchema = z
  .strictObject({
    /** Euler steps (Karras sigmas). */
    steps: positiveInt.default(5),
    /** Classifier-free guidance scale; 1.0 disables CFG (one UNet call per step). */
    guidance: z.number().min(1).default(1.0),
    /** Frames per UNet window. */
    window: positiveInt.default(110),
    /** Frames shared by consecutive windows (>= 1, < window). */
    overlap: positiveInt.default(25),
    /** Longest side of the processing resolution before rounding to multiples of 64. */
    maxRes: z.int().min(64).default(1024),
    /** Pixel-space noise added to the VAE-encoder input (also added_time_ids[2]). */
    noiseAugStrength: z.number().min(0).default(0.02),
    /** Frames per temporal VAE-decoder call. */
    decodeChunk: positiveInt.default(8),
  })
  .refine((d) => d.overlap < d.window, { message: 'overlap must be smaller than window', path: ['overlap'] });

export const PackFilesSchema = z.strictObject({
  imageEncoder: relativeFile,
  vaeEncoder: relativeFile,
  unet: relativeFile,
  vaeDecoder: relativeFile,
});

export const PackDtypeSchema = z.enum(['float32', 'float16']);

export const PackManifestSchema = z
  .strictObject({
    format: z.literal(PACK_FORMAT),
    formatVersion: z.literal(PACK_FORMAT_VERSION),
    name: z.string().min(1),
    version: z.string().min(1),
    /** What the pack is, honestly (real weights? converted how? random test weights?). */
    description: z.string().default(''),
    /** Licence of the weights (the real DepthCrafter weights are research-only). */
    licence: z.string().min(1),
    latentChannels: positiveInt.default(4),
    vaeScalingFactor: z.number().positive().default(0.18215),
    spatialDownsample: positiveInt.default(8),
    imageEncoder: ImageEncoderSpecSchema.prefault({}),
    /** Size of the per-frame image embedding (real model: 1024). */
    embeddingDim: positiveInt,
    sigmaMin: z.number().positive().default(0.002),
    sigmaMax: z.number().positive().default(700),
    defaults: PackDefaultsSchema.prefault({}),
    /** Largest window the UNet can take (memory / export limit). */
    maxWindow: positiveInt.default(110),
    /** Resolution the model was trained/exported for, if it has one. */
    nativeResolution: z.strictObject({ height: positiveInt, width: positiveInt }).optional(),
    /** Element type of the float tensors of the image encoder, UNet and VAE decoder (the VAE encoder is always float32). */
    dtype: PackDtypeSchema,
    files: PackFilesSchema,
    /** UNet added_time_ids: [fps, motion_bucket_id, noise_aug_strength]. DepthCrafter passes 7 (not fps-1). */
    addedTimeIds: triple.default([7, 127, 0.02]),
    /** What the model was trained on, when narrower than real video: `synthetic` (rendered scenes only) warns on camera, RTSP and file input. */
    trainingDomain: z.enum(['synthetic', 'real']).optional(),
    /** Execution-provider options the pack's author recommends (e.g. a deviceId); the depth node, the CLI and DCL_PROVIDER_OPTIONS override them field by field (docs/gpu.md). */
    providerOptions: ProviderOptionsSchema.optional(),
    /** The weights are random (a pack that only exercises the I/O contract): its depth means nothing, and using it warns. */
    randomWeights: z.boolean().default(false),
    /** Free-form provenance notes. */
    notes: z.string().optional(),
    /** Where the weights came from (URLs, repositories, commits). */
    sources: z.array(z.string()).optional(),
  })
  .superRefine((m, ctx) => {
    if (m.sigmaMax <= m.sigmaMin) {
      ctx.addIssue({ code: 'custom', message: 'sigmaMax must be greater than sigmaMin', path: ['sigmaMax'] });
    }
    if (m.defaults.window > m.maxWindow) {
      ctx.addIssue({
        code: 'custom',
        message: `defaults.window (${m.defaults.window}) exceeds maxWindow (${m.maxWindow})`,
        path: ['defaults', 'window'],
      });
    }
    if (m.nativeResolution) {
      for (const k of ['height', 'width'] as const) {
        if (m.nativeResolution[k] % m.spatialDownsample !== 0) {
          ctx.addIssue({
            code: 'custom',
            message: `must be a multiple of spatialDownsample (${m.spatialDownsample})`,
            path: ['nativeResolution', k],
          });
        }
      }
    }
  });

/** A validated manifest with all defaults filled in. */
export type PackManifest = z.output<typeof PackManifestSchema>;
/** What may be written in manifest.json (defaulted fields optional). */
export type PackManifestInput = z.input<typeof PackManifestSchema>;
export type PackDtype = z.output<typeof PackDtypeSchema>;
export type PackFileKey = keyof PackManifest['files'];

/** Formats a zod issue path as `defaults.window` / `imageEncoder.mean[1]`. */
function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else out += out ? `.${String(seg)}` : String(seg);
  }
  return out || '(root)';
}

/**
 * Validates parsed manifest JSON. `manifestPath` and `packDir` only feed the error message.
 * Throws ModelPackError listing every invalid field as `field "a.b": problem`.
 */
export function parsePackManifest(json: unknown, manifestPath: string, packDir: string): PackManifest {
  const res = PackManifestSchema.safeParse(json);
  if (res.success) return res.data;
  const problems = res.error.issues.map((issue) => {
    let msg = issue.message;
    if (issue.code === 'unrecognized_keys') {
      return `unknown field(s) ${issue.keys.map((k) => `"${[...issue.path, k].map(String).join('.')}"`).join(', ')}`;
    }
    if (issue.path.length === 0) msg = `manifest ${msg}`;
    return `field "${formatPath(issue.path)}": ${msg}`;
  });
  throw new ModelPackError(`${manifestPath}: invalid manifest: ${problems.join('; ')}`, {
    packDir,
    file: manifestPath,
  });
}

/** Read and validate `manifest.json` of the pack in `dir` (no model is loaded). */
export async function readPackManifest(dir: string): Promise<PackManifest> {
  let st;
  try {
    st = await stat(dir);
  } catch (err) {
    throw new ModelPackError(`${dir}: model pack folder not found`, { packDir: dir, cause: err });
  }
  if (!st.isDirectory()) throw new ModelPackError(`${dir}: model pack path is not a folder`, { packDir: dir });

  const manifestPath = path.join(dir, MANIFEST_FILE);
  let text: string;
  try {
    text = await readFile(manifestPath, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'not found' : `cannot be read (${code ?? String(err)})`;
    throw new ModelPackError(`${manifestPath}: ${MANIFEST_FILE} ${why}`, {
      packDir: dir,
      file: manifestPath,
      cause: err,
    });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ModelPackError(`${manifestPath}: invalid JSON: ${(err as Error).message}`, {
      packDir: dir,
      file: manifestPath,
      cause: err,
    });
  }
  return parsePackManifest(json, manifestPath, dir);
}
