/**
 * Execution-provider options: one structure for the pack manifest (`providerOptions`), the depth node
 * (`providerOptions`), the CLI (`infer --provider-option KEY=VALUE`) and the DCL_PROVIDER_OPTIONS environment
 * variable, turned into the `executionProviders` entries of onnxruntime-node's session options.
 *
 * What onnxruntime-node 1.30 actually passes on (its binding, js/node/src/session_options_helper.cc, and the strings of
 * bin/napi-v6/linux/x64/onnxruntime_binding.node): for `cuda` and `tensorrt` only `deviceId` — it creates default
 * CUDA/TensorRT provider options, sets device_id and appends them with the V2 call, so nothing else reaches the
 * provider, and because V2 options count as "set by the user" the TensorRT provider ignores its ORT_TENSORRT_*
 * environment variables (fp16, engine cache, workspace). Session config entries (`extra`) are added after the
 * providers, too late for the TensorRT EP-context settings. For `webgpu` it passes preferredLayout, validationMode,
 * the buffer cache modes, enableRobustness and forceCpuNodeNames, and rejects anything else (deviceId included).
 *
 * So: an option the binding passes goes into the session options; an option it cannot pass, on the device it is
 * for, is an error that says so (never a silent no-op); an option for another device (cpu included) is ignored with
 * a note. docs/gpu.md has the table.
 */
import { z } from 'zod';
import { OptionError } from '../../util/errors.js';

export type ProviderDevice = 'cpu' | 'cuda' | 'tensorrt' | 'webgpu';

export const ProviderOptionsSchema = z
  .strictObject({
    deviceId: z
      .int()
      .min(0)
      .max(255)
      .optional()
      .describe('GPU index (CUDA device ordinal) for cuda and tensorrt; onnxruntime-node 1.30 passes it (device_id). Ignored with a note on cpu and webgpu.'),
    trtFp16: z
      .boolean()
      .optional()
      .describe(
        'tensorrt: build fp16 engines (trt_fp16_enable). onnxruntime-node 1.30 cannot pass it (its binding forwards only deviceId): an error on tensorrt; a float16 pack gives fp16 arithmetic instead.',
      ),
    trtEngineCacheDir: z
      .string()
      .min(1)
      .optional()
      .describe(
        'tensorrt: folder of the engine cache (trt_engine_cache_enable + trt_engine_cache_path). Not passable by onnxruntime-node 1.30: an error on tensorrt.',
      ),
    trtMaxWorkspaceBytes: z
      .int()
      .positive()
      .optional()
      .describe('tensorrt: builder workspace limit in bytes (trt_max_workspace_size). Not passable by onnxruntime-node 1.30: an error on tensorrt.'),
    cudnnConvAlgoSearch: z
      .enum(['EXHAUSTIVE', 'HEURISTIC', 'DEFAULT'])
      .optional()
      .describe(
        "cuda (and the CUDA provider under tensorrt): cuDNN convolution algorithm search (cudnn_conv_algo_search; ONNX Runtime's default EXHAUSTIVE). Not passable by onnxruntime-node 1.30: an error on cuda/tensorrt.",
      ),
    webgpuPreferredLayout: z
      .enum(['NCHW', 'NHWC'])
      .optional()
      .describe("webgpu: tensor layout for layout-sensitive ops (preferredLayout; ONNX Runtime's default NCHW). Passed by onnxruntime-node 1.30."),
  })
  .describe(
    'Execution-provider options (docs/gpu.md): each is passed to ONNX Runtime where onnxruntime-node 1.30 can pass it, an error where it cannot, ignored with a note on other devices.',
  );

export type ProviderOptions = z.output<typeof ProviderOptionsSchema>;
export type ProviderOptionKey = keyof ProviderOptions;

/** The variable through which options reach an inference worker (JSON of ProviderOptions). */
export const PROVIDER_OPTIONS_ENV = 'DCL_PROVIDER_OPTIONS';

interface OptionRule {
  /** Devices the option is for. */
  devices: readonly ProviderDevice[];
  /** Passed by onnxruntime-node 1.30's binding; when false, why not and what to do instead. */
  passed: true | string;
}

const NOT_PASSED =
  'onnxruntime-node 1.30 cannot pass it: its binding forwards only deviceId to the CUDA and TensorRT providers (default ' +
  'provider options plus device_id, appended with the V2 call, so the ORT_TENSORRT_* environment variables are ignored too)';

/** Per option: the devices it is for and whether the 1.30 binding passes it (docs/gpu.md). */
export const PROVIDER_OPTION_RULES: Record<ProviderOptionKey, OptionRule> = {
  deviceId: { devices: ['cuda', 'tensorrt'], passed: true },
  trtFp16: {
    devices: ['tensorrt'],
    passed: `${NOT_PASSED}; for fp16 arithmetic use a float16 pack (tools/export_depthcrafter.py --dtype float16, the default)`,
  },
  trtEngineCacheDir: { devices: ['tensorrt'], passed: `${NOT_PASSED}; TensorRT builds its engines again for every session` },
  trtMaxWorkspaceBytes: { devices: ['tensorrt'], passed: `${NOT_PASSED}; TensorRT uses its default workspace limit` },
  cudnnConvAlgoSearch: { devices: ['cuda', 'tensorrt'], passed: `${NOT_PASSED}; the CUDA provider keeps its default (EXHAUSTIVE)` },
  webgpuPreferredLayout: { devices: ['webgpu'], passed: true },
};

/**
 * A provider option that is invalid, unknown or cannot be honoured; the message names the option and its source.
 * An OptionError (util/errors.ts): a user error, exit code 2, like the other option checks.
 */
export class ProviderOptionsError extends OptionError {
  override readonly name: string = 'ProviderOptionsError';
  constructor(
    message: string,
    readonly option?: string,
  ) {
    super(message);
  }
}

const KNOWN = Object.keys(PROVIDER_OPTION_RULES) as ProviderOptionKey[];

function closest(key: string): string | undefined {
  const k = key.toLowerCase();
  return KNOWN.find((n) => n.toLowerCase() === k || n.toLowerCase().includes(k) || k.includes(n.toLowerCase()));
}

/** Validates options from `source` (e.g. `manifest.json providerOptions`, `--provider-option`); throws naming the field. */
export function parseProviderOptions(value: unknown, source: string): ProviderOptions {
  const res = ProviderOptionsSchema.safeParse(value ?? {});
  if (res.success) return res.data;
  const issue = res.error.issues[0]!;
  if (issue.code === 'unrecognized_keys') {
    const key = issue.keys[0]!;
    const hint = closest(key);
    throw new ProviderOptionsError(`${source}: unknown provider option "${key}"${hint ? ` (did you mean "${hint}"?)` : ''}; known: ${KNOWN.join(', ')}`, key);
  }
  const key = issue.path.map(String).join('.') || '(root)';
  throw new ProviderOptionsError(`${source}: provider option "${key}": ${issue.message}`, key);
}

/** Reads DCL_PROVIDER_OPTIONS (JSON); undefined when unset. */
export function providerOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): ProviderOptions | undefined {
  const raw = env[PROVIDER_OPTIONS_ENV];
  if (raw === undefined || raw === '') return undefined;
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch (e) {
    throw new ProviderOptionsError(`${PROVIDER_OPTIONS_ENV}: not JSON (${(e as Error).message})`);
  }
  return parseProviderOptions(json, PROVIDER_OPTIONS_ENV);
}

/**
 * `--provider-option KEY=VALUE` values (repeatable) to ProviderOptions: numbers and true/false are converted, the
 * rest stays a string; then validated like any other source.
 */
export function parseProviderOptionFlags(flags: readonly string[], source = '--provider-option'): ProviderOptions {
  const out: Record<string, unknown> = {};
  for (const flag of flags) {
    const eq = flag.indexOf('=');
    if (eq <= 0) throw new ProviderOptionsError(`${source} ${flag}: expected KEY=VALUE (keys: ${KNOWN.join(', ')})`);
    const key = flag.slice(0, eq).trim();
    const raw = flag.slice(eq + 1).trim();
    out[key] = raw === 'true' ? true : raw === 'false' ? false : raw !== '' && Number.isFinite(Number(raw)) ? Number(raw) : raw;
  }
  return parseProviderOptions(out, source);
}

/** Later sources win, field by field (manifest, then environment, then the node or the CLI). */
export function mergeProviderOptions(...sources: Array<ProviderOptions | undefined>): ProviderOptions {
  const out: Record<string, unknown> = {};
  for (const s of sources) {
    if (!s) continue;
    for (const [k, v] of Object.entries(s)) if (v !== undefined) out[k] = v;
  }
  return out as ProviderOptions;
}

/** onnxruntime-node executionProviders entries (what its binding reads: a name or { name, ...options }). */
export type ExecutionProviderEntry = string | ({ readonly name: string } & Record<string, unknown>);

export interface ResolvedProviders {
  /** For SessionOptions.executionProviders. */
  executionProviders: ExecutionProviderEntry[];
  /** Options that were ignored because they are for another device, one line each. */
  notes: string[];
}

/**
 * The executionProviders list for `device` with `options` applied. Options for other devices are ignored with a
 * note; an option for this device that onnxruntime-node 1.30 cannot pass throws ProviderOptionsError naming it.
 */
export function resolveExecutionProviders(device: ProviderDevice, options: ProviderOptions = {}, source = 'providerOptions'): ResolvedProviders {
  const notes: string[] = [];
  for (const key of KNOWN) {
    if (options[key] === undefined) continue;
    const rule = PROVIDER_OPTION_RULES[key];
    if (!rule.devices.includes(device)) {
      notes.push(`${source}.${key} is for ${rule.devices.join('/')}: ignored on device ${device}`);
      continue;
    }
    if (rule.passed !== true) {
      throw new ProviderOptionsError(`${source}.${key} (device ${device}): ${rule.passed}. Remove it, or see docs/gpu.md`, key);
    }
  }
  const cudaLike = { ...(options.deviceId !== undefined ? { deviceId: options.deviceId } : {}) };
  const entry = (name: string, opts: Record<string, unknown>): ExecutionProviderEntry => (Object.keys(opts).length > 0 ? { name, ...opts } : name);
  switch (device) {
    case 'cpu':
      return { executionProviders: ['cpu'], notes };
    case 'cuda':
      return { executionProviders: [entry('cuda', cudaLike)], notes };
    case 'tensorrt':
      // TensorRT with CUDA for the nodes TensorRT does not take (the usual setup); never CPU-only.
      return { executionProviders: [entry('tensorrt', cudaLike), entry('cuda', cudaLike)], notes };
    case 'webgpu':
      return {
        executionProviders: [entry('webgpu', options.webgpuPreferredLayout ? { preferredLayout: options.webgpuPreferredLayout } : {})],
        notes,
      };
  }
}

/**
 * Runs `start` (which must spawn its inference worker synchronously, as EngineHost.start does) with
 * DCL_PROVIDER_OPTIONS set to `options`, and restores the variable before returning: a worker thread gets a copy of
 * the environment when it is created, so the worker sees the options and nothing else in the process does.
 */
export function withProviderOptionsEnv<T>(options: ProviderOptions | undefined, start: () => T): T {
  if (!options || Object.keys(options).length === 0) return start();
  const before = process.env[PROVIDER_OPTIONS_ENV];
  process.env[PROVIDER_OPTIONS_ENV] = JSON.stringify(mergeProviderOptions(before ? providerOptionsFromEnv() : undefined, options));
  try {
    return start();
  } finally {
    if (before === undefined) delete process.env[PROVIDER_OPTIONS_ENV];
    else process.env[PROVIDER_OPTIONS_ENV] = before;
  }
}

/**
 * The CLI's `--provider-option` flags (with DCL_PROVIDER_OPTIONS under them): validated, checked against `device`
 * (ignored options reported through `note`), then put into DCL_PROVIDER_OPTIONS for the inference worker of this
 * process. Nothing happens when neither is given. The pack's own `providerOptions` are checked by the loader.
 */
export function cliProviderOptions(flags: readonly string[] | undefined, device: string, note: (line: string) => void): ProviderOptions | undefined {
  const fromFlags = flags && flags.length > 0 ? parseProviderOptionFlags(flags) : undefined;
  const fromEnv = providerOptionsFromEnv();
  if (!fromFlags && !fromEnv) return undefined;
  const merged = mergeProviderOptions(fromEnv, fromFlags);
  if ((['cpu', 'cuda', 'tensorrt', 'webgpu'] as const).includes(device as ProviderDevice)) {
    for (const [key, value] of Object.entries(merged)) {
      const source = fromFlags && (fromFlags as Record<string, unknown>)[key] !== undefined ? '--provider-option' : PROVIDER_OPTIONS_ENV;
      for (const line of resolveExecutionProviders(device as ProviderDevice, { [key]: value }, source).notes) note(line);
    }
  }
  process.env[PROVIDER_OPTIONS_ENV] = JSON.stringify(merged);
  return merged;
}
