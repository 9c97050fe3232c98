// Execution providers: which device a pack runs on, the session options for it (provider options
// merged from the manifest, DCL_PROVIDER_OPTIONS and the caller), a probe that a GPU provider can
// load here at all, and the error that says why not (never a silent CPU fallback).
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { ModelPackError } from './manifest.js';
import { mergeProviderOptions, PROVIDER_OPTIONS_ENV, resolveExecutionProviders, type ProviderOptionKey, type ProviderOptions } from './provider-options.js';

export type PackDevice = 'cpu' | 'cuda' | 'tensorrt' | 'webgpu';

/** Raised when the requested execution provider cannot be used. */
export class ExecutionProviderError extends ModelPackError {
  override readonly name: string = 'ExecutionProviderError';
  readonly device: PackDevice;
  constructor(message: string, opts: { packDir: string; device: PackDevice; file?: string; cause?: unknown }) {
    super(message, opts);
    this.device = opts.device;
  }
}

export const DEVICES: readonly PackDevice[] = ['cpu', 'cuda', 'tensorrt', 'webgpu'];

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
  tensorrt: ['libonnxruntime_providers_shared.so', 'libonnxruntime_providers_cuda.so', 'libonnxruntime_providers_tensorrt.so'],
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
export function checkExecutionProvider(device: PackDevice, packDir: string): void {
  if (device === 'cpu') return;
  const list = (ort as { listSupportedBackends?: () => Array<{ name: string; bundled: boolean }> }).listSupportedBackends;
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

/** A session that failed to open for a reason of its execution provider, as the error to throw; null for any other failure. */
export function providerFailure(err: unknown, at: { packDir: string; device: PackDevice; file: string }): ExecutionProviderError | null {
  const { device, file } = at;
  const msg = err instanceof Error ? err.message : String(err);
  if (device === 'cpu' || !EP_FAILURE.test(msg)) return null;
  return new ExecutionProviderError(
    `${file}: cannot create a session on device "${device}": ${msg.split('\n')[0]}` +
      (device === 'cuda' || device === 'tensorrt'
        ? `. ${CUDA_HINT}`
        : device === 'webgpu'
          ? '. WebGPU needs a GPU adapter with working Vulkan/Metal/D3D12 drivers'
          : '') +
      '. Not falling back to CPU.',
    { ...at, cause: err },
  );
}
