// The I/O contract of a model pack's four ONNX files (docs/model-pack.md), and the check of an
// opened session against it: names, element types, ranks, fixed and dynamic axes.
import type * as ort from 'onnxruntime-node';
import { ModelPackError, type PackDtype, type PackFileKey, type PackManifest } from './manifest.js';

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

export interface FileContract {
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
      problems.push(`${kind} ${q(name)} has rank ${shape.length}, expected ${rule.dims.length} ${shapeLabel(rule.dims)}`);
      continue;
    }
    rule.dims.forEach((d, i) => {
      const actual = shape[i];
      if (d.dynamic && typeof actual === 'number') {
        problems.push(`${kind} ${q(name)} dimension ${i} (${d.label}) is fixed to ${actual}, expected a dynamic axis ${shapeLabel(rule.dims)}`);
      } else if (d.value !== undefined && typeof actual === 'number' && actual !== d.value) {
        problems.push(`${kind} ${q(name)} dimension ${i} (${d.label}) is ${actual}, expected ${d.value} ${shapeLabel(rule.dims)}`);
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
export function validateSession(file: string, packDir: string, session: ort.InferenceSession, contract: FileContract): string[] {
  const s = session as ort.InferenceSession & { inputMetadata?: Metadata; outputMetadata?: Metadata };
  const ins = checkSide('input', contract.inputs, s.inputNames, s.inputMetadata, true);
  const outs = checkSide('output', contract.outputs, s.outputNames, s.outputMetadata, false);
  const problems = [...ins.problems, ...outs.problems];
  if (problems.length > 0) {
    throw new ModelPackError(`${file}: ${problems.join('; ')}`, { packDir, file });
  }
  return outs.matched;
}
