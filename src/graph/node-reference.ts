import { z } from 'zod';
import type { NodeKind } from './node-kind.js';

// The reference of node kinds and their options, generated from the kinds' own contracts (ports,
// option schemas with their descriptions, defaults and ranges), so it cannot drift from the code:
// `depthcrafter-live nodes [KIND]` prints it and docs/nodes.md is this text (a test checks).

interface JsonSchema {
  type?: string | string[];
  enum?: unknown[];
  const?: unknown;
  anyOf?: JsonSchema[];
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  minLength?: number;
  pattern?: string;
  default?: unknown;
  description?: string;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
}

/** Markdown for the given kinds; `root` is cut from default paths (they are shown relative to the project). */
export function nodeReference(kinds: readonly NodeKind[], root: string): string {
  return kinds.map((k) => kindReference(k, root)).join('\n');
}

export function kindReference(k: NodeKind, root: string): string {
  const ports = (p: Readonly<Record<string, string>>) =>
    Object.entries(p)
      .map(([n, t]) => `\`${n}\` (${t})`)
      .join(', ') || 'none';
  const lines = [`## \`${k.kind}\` (${k.role})`, '', `${k.description}.`, '', `Inputs: ${ports(k.inputs)}. Outputs: ${ports(k.outputs)}.`];
  if (k.multiStream) lines.push('In a multi-stream pipeline one node serves every stream (it is not copied per stream).');
  if (k.restart) lines.push(`Restarted after a failure (backoff ${k.restart.initialDelayMs}-${k.restart.maxDelayMs} ms).`);
  lines.push('', '| option | type | default | description |', '|---|---|---|---|');
  const schema = z.toJSONSchema(k.options, { io: 'input', unrepresentable: 'any' }) as JsonSchema;
  for (const row of optionRows(schema, '', root)) lines.push(row);
  return lines.join('\n') + '\n';
}

function optionRows(schema: JsonSchema, prefix: string, root: string): string[] {
  const rows: string[] = [];
  const required = new Set(schema.required ?? []);
  for (const [name, s] of Object.entries(schema.properties ?? {})) {
    const def = s.default === undefined ? (required.has(name) ? '**required**' : '') : `\`${JSON.stringify(s.default).split(root).join('.')}\``;
    rows.push(`| \`${prefix}${name}\` | ${typeOf(s)} | ${def} | ${(s.description ?? '').replace(/\|/g, '\\|')} |`);
    if (s.properties) rows.push(...optionRows(s, `${prefix}${name}.`, root));
  }
  return rows;
}

function typeOf(s: JsonSchema): string {
  if (s.anyOf) return s.anyOf.map(typeOf).join(' or ');
  if (s.const !== undefined) return `\`${JSON.stringify(s.const)}\``;
  if (s.enum) return s.enum.map((v) => `\`${String(v)}\``).join(', ');
  const t = Array.isArray(s.type) ? s.type.join('/') : (s.type ?? 'any');
  if (t === 'array') return `list of ${s.items ? typeOf(s.items) : 'any'}`;
  const lo = s.minimum ?? s.exclusiveMinimum;
  const hi = s.maximum ?? s.exclusiveMaximum;
  const big = (v: number) => Math.abs(v) >= Number.MAX_SAFE_INTEGER;
  const range = [
    lo !== undefined && !big(lo) ? `${s.exclusiveMinimum !== undefined ? '>' : '>='} ${lo}` : '',
    hi !== undefined && !big(hi) ? `${s.exclusiveMaximum !== undefined ? '<' : '<='} ${hi}` : '',
  ]
    .filter(Boolean)
    .join(', ');
  return range ? `${t} (${range})` : t;
}
