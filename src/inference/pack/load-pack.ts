/**
 * Loads a DepthCrafter model pack (docs/model-pack.md): reads and validates manifest.json, opens
 * the four ONNX files with onnxruntime-node on the requested execution provider
 * (execution-provider.ts) and checks every session against the I/O contract (contract.ts).
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { MANIFEST_FILE, ModelPackError, readPackManifest, type PackDtype, type PackFileKey, type PackManifest } from './manifest.js';
import { parseProviderOptions, providerOptionsFromEnv, ProviderOptionsError, type ProviderOptions } from './provider-options.js';
import { packContract, validateSession } from './contract.js';
import { checkExecutionProvider, DEVICES, packSessionOptions, providerFailure, type PackDevice } from './execution-provider.js';

export { ModelPackError } from './manifest.js';
export type { ProviderOptions } from './provider-options.js';
export type { PackManifest, PackDtype, PackFileKey } from './manifest.js';
// The loader's device type and errors, where its callers import them from.
export { ExecutionProviderError, type PackDevice } from './execution-provider.js';

export interface LoadModelPackOptions {
  /** Execution provider. Non-CPU providers never fall back to CPU: a failure to load them throws. */
  device: PackDevice;
  /** Threads per session for intra-op parallelism (onnxruntime default when omitted). */
  intraOpNumThreads?: number;
  /**
   * Execution-provider options (provider-options.ts, docs/gpu.md). Field by field, these override
   * DCL_PROVIDER_OPTIONS (JSON, when set), which overrides the manifest's `providerOptions`; the variable is how the
   * CLI and the depth node reach the loader in an inference worker (withProviderOptionsEnv).
   */
  providerOptions?: ProviderOptions;
  /** Open sessions for these files only (a worker that runs one stage); the others stay absent from `sessions`. */
  only?: readonly PackFileKey[];
}

export interface PackSessions {
  imageEncoder: ort.InferenceSession;
  vaeEncoder: ort.InferenceSession;
  unet: ort.InferenceSession;
  vaeDecoder: ort.InferenceSession;
}

export interface LoadedModelPack {
  /** The pack folder as passed in. */
  dir: string;
  manifest: PackManifest;
  sessions: PackSessions;
  /** Output name of the UNet: "noise_pred" (this project's exports) or "latent" (the known community export). */
  unetOutputName: 'noise_pred' | 'latent';
  /** Element type of the image-encoder, UNet and VAE-decoder float tensors; the VAE encoder is always float32. */
  dtype: PackDtype;
  /** Path of each ONNX file (pack folder joined with the manifest's relative path). */
  files: Record<PackFileKey, string>;
  /** The session options every file was opened with (execution providers with their options). */
  sessionOptions: ort.InferenceSession.SessionOptions;
  /** Provider options that were ignored because they are for another device, one line each. */
  providerNotes: string[];
  /** Releases all sessions. Safe to call more than once. */
  release(): Promise<void>;
}

const FILE_KEYS: readonly PackFileKey[] = ['imageEncoder', 'vaeEncoder', 'unet', 'vaeDecoder'];

/**
 * Reads, validates and opens a model pack.
 *
 * Errors (all ModelPackError, whose message starts with the offending path):
 * missing folder or manifest, bad JSON, schema violations (naming the field), missing or corrupt ONNX
 * files, ONNX inputs/outputs that break the contract (naming the file and tensor), and an execution
 * provider that cannot be loaded (ExecutionProviderError; no silent CPU fallback).
 */
export async function loadModelPack(dir: string, options: LoadModelPackOptions = { device: 'cpu' }): Promise<LoadedModelPack> {
  const { device, intraOpNumThreads } = options;
  if (!DEVICES.includes(device)) {
    throw new ModelPackError(`${dir}: unknown device "${String(device)}" (use cpu, cuda, tensorrt or webgpu)`, {
      packDir: dir,
    });
  }
  const manifest = await readPackManifest(dir);

  const files = {} as Record<PackFileKey, string>;
  for (const key of FILE_KEYS) {
    const file = path.join(dir, manifest.files[key]);
    files[key] = file;
    let st;
    try {
      st = await stat(file);
    } catch (err) {
      throw new ModelPackError(`${file}: ONNX file for files.${key} not found (named in ${MANIFEST_FILE})`, {
        packDir: dir,
        file,
        cause: err,
      });
    }
    if (!st.isFile()) {
      throw new ModelPackError(`${file}: files.${key} is not a regular file`, { packDir: dir, file });
    }
  }

  let sessionOptions: ort.InferenceSession.SessionOptions;
  let providerNotes: string[];
  try {
    const caller = options.providerOptions ? parseProviderOptions(options.providerOptions, 'providerOptions') : undefined;
    const env = providerOptionsFromEnv();
    ({ sessionOptions, notes: providerNotes } = packSessionOptions(device, {
      intraOpNumThreads,
      providerOptions: { manifest: manifest.providerOptions, env, caller },
    }));
  } catch (err) {
    if (!(err instanceof ProviderOptionsError)) throw err;
    throw new ModelPackError(`${dir}: ${err.message}`, { packDir: dir, cause: err });
  }

  checkExecutionProvider(device, dir);

  const contract = packContract(manifest);
  const opened: Partial<PackSessions> = {};
  const releaseOpened = async (): Promise<void> => {
    const all = Object.values(opened) as ort.InferenceSession[];
    for (const k of FILE_KEYS) delete opened[k];
    await Promise.allSettled(all.map((s) => s.release()));
  };

  let unetOutputName: 'noise_pred' | 'latent' = 'noise_pred';
  const keys = options.only ?? FILE_KEYS;
  try {
    for (const key of keys) {
      const file = files[key];
      let session: ort.InferenceSession;
      try {
        // A path (not a buffer), so that external-data files next to the model are found.
        session = await ort.InferenceSession.create(file, sessionOptions);
      } catch (err) {
        const msg = err instanceof Error ? err.message : String(err);
        const providerError = providerFailure(err, { packDir: dir, device, file });
        if (providerError) throw providerError;
        throw new ModelPackError(`${file}: cannot load ONNX model for files.${key}: ${msg.split('\n')[0]}`, {
          packDir: dir,
          file,
          cause: err,
        });
      }
      opened[key] = session;
      const outputs = validateSession(file, dir, session, contract[key]);
      if (key === 'unet') unetOutputName = outputs[0] as 'noise_pred' | 'latent';
    }
  } catch (err) {
    await releaseOpened();
    throw err;
  }

  const sessions = opened as PackSessions;
  let released = false;
  return {
    dir,
    manifest,
    sessions,
    unetOutputName,
    dtype: manifest.dtype,
    files,
    sessionOptions,
    providerNotes,
    async release(): Promise<void> {
      if (released) return;
      released = true;
      await Promise.allSettled(keys.map((k) => sessions[k].release()));
    },
  };
}
