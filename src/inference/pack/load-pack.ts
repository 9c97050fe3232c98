/**
 * Loads a DepthCrafter model pack (docs/model-pack.md): reads and validates
 * manifest.json, opens the four ONNX files with onnxruntime-node on the requested
 * execution provider and checks every session against the I/O contract.
 */
import { existsSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import {
  MANIFEST_FILE,
  ModelPackError,
  readPackManifest,
  type PackDtype,
  type PackFileKey,
  type PackManifest,
} from './manifest.js';

import {
  mergeProviderOptions,
  parseProviderOptions,
  providerOptionsFromEnv,
  PROVIDER_OPTIONS_ENV,
  ProviderOptionsError,
  resolveExecutionProviders,
  type ProviderOptionKey,
  type ProviderOptions,
} from './provider-options.js';

export { ModelPackError } from './manifest.js';
export type { ProviderOptions } from './provider-options.js';
export type { PackManifest, PackDtype, PackFileKey } from './manifest.js';

export type PackDevice = 'cpu' | 'cuda' | 'tensorrt' | 'webgpu';

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

/** Raised when the requested execution provider cannot be used. */
export class ExecutionProviderError extends ModelPackError {
  override readonly name: string = 'ExecutionProviderError';
  readonly device: PackDevice;
  constructor(message: string, opts: { packDir: string; device: PackDevice; file?: string; cause?: unknown }) {
    super(message, opts);
    this.device = opts.device;
  }
}

// ---------------------------------------------------------------------------------------------
// I/O contract

/** One dimension of a contract shape. */
interface DimRule {
  /** Label used in messages: "T", "D", "3", ... */
  label: string;
  /** Required size when the model declares a fixed size (a symbolic dim is accepted). */
  value?: number;
  /** Must be a dynamic (symbolic) axis. */
  dynamic?: boolean;
}

interface TensorRule {
  /** Accepted names; the first is the canonical one. */
  names: readonly string[];
  dims: readonly DimRule[];
  type: PackDtype;
  /** Why this element type (for messages). */
  typeReason: string;
}

interface FileContract {
  inputs: readonly TensorRule[];
  outputs: readonly TensorRule[];
}

const dyn = (label: string): DimRule => ({ label, dynamic: true });
const fixed = (value: number, label = String(value)): DimRule => ({ label, value });

/** The contract each ONNX file must satisfy, given the manifest. */
export function packContract(manifest: PackManifest): Record<PackFileKey, FileContract> {
  const p = manifest.dtype;
  const pr = `manifest dtype ${p}`;
  const C = manifest.latentChannels;
  const D = fixed(manifest.embeddingDim, 'D');
  const S = manifest.imageEncoder.size;
  const t = (names: string[], dims: DimRule[], type: PackDtype = p, typeReason = pr): TensorRule => ({
    names,
    dims,
    type,
    typeReason,
  });
  const f32 = 'the VAE encoder always runs in float32';
  return {
    imageEncoder: {
      inputs: [t(['pixel_values'], [dyn('N'), fixed(3), fixed(S), fixed(S)])],
      outputs: [t(['image_embeds'], [dyn('N'), D])],
    },
    vaeEncoder: {
      inputs: [t(['sample'], [dyn('N'), fixed(3), dyn('H'), dyn('W')], 'float32', f32)],
      outputs: [t(['latent_mean'], [dyn('N'), fixed(C), dyn('h'), dyn('w')], 'float32', f32)],
    },
    unet: {
      inputs: [
        t(['sample'], [fixed(1), dyn('T'), fixed(2 * C), dyn('h'), dyn('w')]),
        t(['timestep'], [fixed(1)]),
        t(['encoder_hidden_states'], [fixed(1), dyn('T'), D]),
        t(['added_time_ids'], [fixed(1), fixed(3)]),
      ],
      outputs: [t(['noise_pred', 'latent'], [fixed(1), dyn('T'), fixed(C), dyn('h'), dyn('w')])],
    },
    vaeDecoder: {
      inputs: [t(['latent'], [dyn('T'), fixed(C), dyn('h'), dyn('w')])],
      outputs: [t(['sample'], [dyn('T'), fixed(3), dyn('H'), dyn('W')])],
    },
  };
}

const shapeLabel = (dims: readonly DimRule[]): string => `[${dims.map((d) => d.label).join(',')}]`;
const q = (s: string): string => JSON.stringify(s);

type Metadata = readonly ort.InferenceSession.ValueMetadata[] | undefined;

/** Checks one side (inputs or outputs) of a session; returns problems and the matched names. */
function checkSide(
  kind: 'input' | 'output',
  rules: readonly TensorRule[],
  names: readonly string[],
  metadata: Metadata,
  strictExtra: boolean,
): { problems: string[]; matched: string[] } {
  const problems: string[] = [];
  const matched: string[] = [];
  let missing = false;
  const byName = new Map<string, ort.InferenceSession.ValueMetadata>();
  if (Array.isArray(metadata)) for (const m of metadata) byName.set(m.name, m);

  for (const rule of rules) {
    const name = rule.names.find((n) => names.includes(n));
    const expected = `${shapeLabel(rule.dims)} ${rule.type}`;
    if (name === undefined) {
      const alt = rule.names.length > 1 ? ` (or ${rule.names.slice(1).map(q).join(', ')})` : '';
      problems.push(`missing ${kind} ${q(rule.names[0]!)}${alt} ${expected}`);
      missing = true;
      continue;
    }
    matched.push(name);
    const meta = byName.get(name);
    if (!meta) continue; // no metadata from this onnxruntime build: names only
    if (!meta.isTensor) {
      problems.push(`${kind} ${q(name)} is not a tensor, expected ${expected}`);
      continue;
    }
    if (meta.type !== rule.type) {
      problems.push(`${kind} ${q(name)} has element type ${meta.type}, expected ${rule.type} (${rule.typeReason})`);
    }
    const shape = meta.shape;
    // An empty shape means "unknown shape" (or a scalar): rank cannot be checked then.
    if (!Array.isArray(shape) || shape.length === 0) continue;
    if (shape.length !== rule.dims.length) {
      problems.push(
        `${kind} ${q(name)} has rank ${shape.length}, expected ${rule.dims.length} ${shapeLabel(rule.dims)}`,
      );
      continue;
    }
    rule.dims.forEach((d, i) => {
      const actual = shape[i];
      if (d.dynamic && typeof actual === 'number') {
        problems.push(
          `${kind} ${q(name)} dimension ${i} (${d.label}) is fixed to ${actual}, expected a dynamic axis ${shapeLabel(rule.dims)}`,
        );
      } else if (d.value !== undefined && typeof actual === 'number' && actual !== d.value) {
        problems.push(
          `${kind} ${q(name)} dimension ${i} (${d.label}) is ${actual}, expected ${d.value} ${shapeLabel(rule.dims)}`,
        );
      }
    });
  }
  const extra = strictExtra ? names.filter((n) => !rules.some((r) => r.names.includes(n))) : [];
  if (extra.length > 0) {
    problems.push(
      `unexpected ${kind}${extra.length > 1 ? 's' : ''} ${extra.map(q).join(', ')} ` +
        `(the contract's ${kind}s are ${rules.map((r) => q(r.names[0]!)).join(', ')})`,
    );
  }
  if (missing) problems.push(`the model's ${kind}s are ${names.map(q).join(', ') || '(none)'}`);
  return { problems, matched };
}

/**
 * Validates a session against its contract. Extra inputs are errors (the engine cannot feed them);
 * extra outputs are allowed and ignored. Returns the matched output names.
 */
function validateSession(file: string, packDir: string, session: ort.InferenceSession, contract: FileContract): string[] {
  const s = session as ort.InferenceSession & { inputMetadata?: Metadata; outputMetadata?: Metadata };
  const ins = checkSide('input', contract.inputs, s.inputNames, s.inputMetadata, true);
  const outs = checkSide('output', contract.outputs, s.outputNames, s.outputMetadata, false);
  const problems = [...ins.problems, ...outs.problems];
  if (problems.length > 0) {
    throw new ModelPackError(`${file}: ${problems.join('; ')}`, { packDir, file });
  }
  return outs.matched;
}

// ---------------------------------------------------------------------------------------------
// Execution providers

const DEVICES: readonly PackDevice[] = ['cpu', 'cuda', 'tensorrt', 'webgpu'];

/** Where each provider option came from, for messages. */
export interface ProviderOptionSources {
  manifest?: ProviderOptions;
  env?: ProviderOptions;
  caller?: ProviderOptions;
}

/**
 * The session options loadModelPack opens every file with: execution providers for `device` with the provider
 * options merged (manifest < DCL_PROVIDER_OPTIONS < caller), full graph optimisation, the thread count. Throws
 * ProviderOptionsError naming an option that is invalid or that onnxruntime-node 1.30 cannot pass on this device.
 */
export function packSessionOptions(
  device: PackDevice,
  opts: { intraOpNumThreads?: number; providerOptions?: ProviderOptionSources } = {},
): { sessionOptions: ort.InferenceSession.SessionOptions; notes: string[] } {
  const src = opts.providerOptions ?? {};
  const merged = mergeProviderOptions(src.manifest, src.env, src.caller);
  const from = (key: ProviderOptionKey): string =>
    src.caller?.[key] !== undefined ? 'providerOptions' : src.env?.[key] !== undefined ? PROVIDER_OPTIONS_ENV : 'manifest.json providerOptions';
  const notes: string[] = [];
  const keys = Object.keys(merged) as ProviderOptionKey[];
  // resolved one option at a time so that a message names the source of the option it is about
  for (const key of keys) notes.push(...resolveExecutionProviders(device, { [key]: merged[key] }, from(key)).notes);
  const { executionProviders } = resolveExecutionProviders(device, merged);
  return {
    sessionOptions: {
      executionProviders: executionProviders as ort.InferenceSession.ExecutionProviderConfig[],
      graphOptimizationLevel: 'all',
      ...(opts.intraOpNumThreads !== undefined ? { intraOpNumThreads: opts.intraOpNumThreads } : {}),
      // The four sessions' pools would spin after every run and take the cores from the next stage
      // and the JS between runs (measured: 8 CLIP + VAE encodes 62 -> 37 ms with spinning off).
      extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } },
    },
    notes,
  };
}

const GPU_LIBS: Partial<Record<PackDevice, string[]>> = {
  cuda: ['libonnxruntime_providers_shared.so', 'libonnxruntime_providers_cuda.so'],
  tensorrt: [
    'libonnxruntime_providers_shared.so',
    'libonnxruntime_providers_cuda.so',
    'libonnxruntime_providers_tensorrt.so',
  ],
};

const CUDA_HINT =
  'cuda/tensorrt need libonnxruntime_providers_{shared,cuda,tensorrt}.so from the onnxruntime GPU build placed next to ' +
  'the onnxruntime-node binding, plus the CUDA 12 runtime and cuDNN 9 on the host (and the TensorRT libraries for tensorrt)';

/** Folder of onnxruntime_binding.node, or undefined if it cannot be located. */
function ortBindingDir(): string | undefined {
  try {
    const require = createRequire(import.meta.url);
    let dir = path.dirname(require.resolve('onnxruntime-node'));
    for (let i = 0; i < 4 && !existsSync(path.join(dir, 'package.json')); i++) dir = path.dirname(dir);
    const bin = path.join(dir, 'bin', 'napi-v6', process.platform, process.arch);
    return existsSync(bin) ? bin : undefined;
  } catch {
    return undefined;
  }
}

function ortVersion(): string {
  const v = (ort.env as { versions?: Record<string, string> }).versions;
  return v?.node ?? v?.common ?? 'unknown';
}

/** Throws ExecutionProviderError if `device` obviously cannot work here (before opening any model). */
function checkExecutionProvider(device: PackDevice, packDir: string): void {
  if (device === 'cpu') return;
  const list = (ort as { listSupportedBackends?: () => Array<{ name: string; bundled: boolean }> })
    .listSupportedBackends;
  if (typeof list === 'function') {
    const backends = list();
    const names = backends.map((b) => b.name);
    if (!names.includes(device)) {
      throw new ExecutionProviderError(
        `${packDir}: device "${device}" is not supported by onnxruntime-node ${ortVersion()} on ` +
          `${process.platform}/${process.arch} (supported: ${names.join(', ')})` +
          (device === 'cuda' || device === 'tensorrt' ? `; ${CUDA_HINT}` : ''),
        { packDir, device },
      );
    }
  }
  const libs = GPU_LIBS[device];
  const bindingDir = ortBindingDir();
  if (libs && bindingDir) {
    const missing = libs.filter((l) => !existsSync(path.join(bindingDir, l)));
    if (missing.length > 0) {
      throw new ExecutionProviderError(
        `${packDir}: device "${device}" cannot be used: missing ${missing.join(', ')} in ${bindingDir}. ${CUDA_HINT}. ` +
          'Not falling back to CPU; use device "cpu" explicitly to run on the CPU.',
        { packDir, device },
      );
    }
  }
}

const EP_FAILURE = /execution ?provider|shared library|providers_|adapter|cuda|cudnn|tensorrt|webgpu|dawn|vulkan/i;

// ---------------------------------------------------------------------------------------------

const FILE_KEYS: readonly PackFileKey[] = ['imageEncoder', 'vaeEncoder', 'unet', 'vaeDecoder'];

/**
 * Reads, validates and opens a model pack.
 *
 * Errors (all ModelPackError, whose message starts with the offending path):
 * missing folder or manifest, bad JSON, schema violations (naming the field), missing or corrupt ONNX
 * files, ONNX inputs/outputs that break the contract (naming the file and tensor), and an execution
 * provider that cannot be loaded (ExecutionProviderError; no silent CPU fallback).
 */
export async function loadModelPack(
  dir: string,
  options: LoadModelPackOptions = { device: 'cpu' },
): Promise<LoadedModelPack> {
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
        if (device !== 'cpu' && EP_FAILURE.test(msg)) {
          throw new ExecutionProviderError(
            `${file}: cannot create a session on device "${device}": ${msg.split('\n')[0]}` +
              (device === 'cuda' || device === 'tensorrt'
                ? `. ${CUDA_HINT}`
                : device === 'webgpu'
                  ? '. WebGPU needs a GPU adapter with working Vulkan/Metal/D3D12 drivers'
                  : '') +
              '. Not falling back to CPU.',
            { packDir: dir, device, file, cause: err },
          );
        }
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
