import { readFileSync, statSync } from 'node:fs';
import { isMap, isSeq, isScalar, parseDocument, type Node as YamlNode } from 'yaml';
import { z } from 'zod';
import { PipelineError } from './pipeline-error.js';
import { MissingEnvError, TooDeepError, parseScalar, pathKey, substituteEnv, type RawTexts } from './substitute-env.js';
import type { NodeRegistry } from './registry.js';
import type { NodeKind } from './node-kind.js';
import { QUEUE_POLICIES, type QueuePolicy } from './edge-queue.js';
import { portsCompatible } from './packets.js';
import { expandStreams, streamEntrySchema, type StreamEntry } from './streams.js';
import { didYouMean } from '../util/did-you-mean.js';
import { resolveInputPath } from './input-paths.js';

// Loading a pipeline file is: parse YAML, apply --set overrides, substitute ${ENV} references,
// check the file's shape, then check every node and edge against the registry's contracts.
// The first mistake found is reported, naming the file, the node and the field.

const queueSchema = z
  .object({
    capacity: z.number().int().min(1).max(100_000).default(8),
    policy: z.enum(QUEUE_POLICIES as [QueuePolicy, ...QueuePolicy[]]).default('drop-oldest'),
  })
  .strict();

const fileSchema = z
  .object({
    name: z.string().min(1).optional(),
    description: z.string().optional(),
    server: z
      .object({
        host: z.string().min(1).default('127.0.0.1'),
        port: z.number().int().min(0).max(65535).default(8080),
        enabled: z.boolean().default(true),
        /** Host names (the HTTP Host header) the server answers besides IP addresses and localhost; "*" for any (see http-hub.ts). */
        allowedHosts: z.array(z.string().min(1)).default([]),
        /** POST /streams and DELETE /streams/NAME add and remove streams at run time (loopback clients only; DCL_TOKEN when set). */
        admin: z.boolean().default(false),
      })
      .strict()
      .default({ host: '127.0.0.1', port: 8080, enabled: true, allowedHosts: [], admin: false }),
    log: z
      .object({ level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info') })
      .strict()
      .optional(),
    nodes: z.record(
      z.string().regex(/^[A-Za-z_][A-Za-z0-9_-]*$/, 'node names are letters, digits, "_" and "-"'),
      z.object({ kind: z.string(), options: z.record(z.string(), z.unknown()).default({}) }).strict(),
    ),
    edges: z.array(z.object({ from: z.string(), to: z.string(), queue: queueSchema.optional() }).strict()).default([]),
    /** Streams sharing the nodes fed from the pseudo-node `streams` (see streams.ts). */
    streams: z.array(streamEntrySchema).optional(),
  })
  .strict();

type FileSpec = z.infer<typeof fileSchema>;

export interface ResolvedNode {
  readonly name: string;
  readonly kind: NodeKind;
  readonly options: unknown;
  /** The stream of a per-stream node of a multi-stream pipeline. */
  readonly stream?: string;
}

export interface ResolvedEdge {
  readonly from: { node: string; port: string };
  readonly to: { node: string; port: string };
  readonly capacity: number;
  readonly policy: QueuePolicy;
  /** "from.port->to.port", used in logs and metric labels. */
  readonly label: string;
}

export interface Pipeline {
  readonly file: string;
  readonly name: string;
  readonly server: { host: string; port: number; enabled: boolean; allowedHosts: readonly string[]; admin: boolean };
  readonly logLevel: string;
  /** Nodes in topological order (sources first). */
  readonly nodes: ResolvedNode[];
  readonly edges: ResolvedEdge[];
  /** A multi-stream pipeline's streams (null for a plain graph). */
  readonly streams: StreamsPlan | null;
}

export interface StreamsPlan {
  readonly entries: readonly StreamEntry[];
  /** The template nodes copied per stream. */
  readonly perStream: readonly string[];
  /** The same pipeline with one more stream (validated like the file; throws PipelineError). */
  withStream(entry: unknown): Pipeline;
  withoutStream(name: string): Pipeline;
}

export interface LoadOptions {
  /** `path=value` overrides: `node.option=value`, `node.option.sub=value`, `server.port=9000`. */
  readonly overrides?: readonly string[];
  readonly env?: NodeJS.ProcessEnv;
}

/** Pipeline files are small; anything larger is a mistake or an attack on the parser. */
export const MAX_PIPELINE_BYTES = 1 << 20;

export function loadPipelineFile(file: string, registry: NodeRegistry, opts: LoadOptions = {}): Pipeline {
  let text: string;
  try {
    const size = statSync(file).size;
    if (size > MAX_PIPELINE_BYTES) throw new PipelineError(file, `the file is ${size} bytes; a pipeline file may be at most ${MAX_PIPELINE_BYTES} bytes`);
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if (e instanceof PipelineError) throw e;
    throw new PipelineError(file, `cannot read the file (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  return parsePipeline(text, file, registry, opts);
}

export function parsePipeline(text: string, file: string, registry: NodeRegistry, opts: LoadOptions = {}): Pipeline {
  if (text.length > MAX_PIPELINE_BYTES)
    throw new PipelineError(file, `the text is ${text.length} characters; a pipeline file may be at most ${MAX_PIPELINE_BYTES}`);
  // Duplicate keys are found below in one pass (the parser's own check is quadratic in the keys of a map).
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: false });
  if (doc.errors.length > 0) {
    const e = doc.errors[0];
    const pos = e.linePos?.[0];
    throw new PipelineError(file, `invalid YAML${pos ? ` at line ${pos.line}, column ${pos.col}` : ''}: ${clipText(e.message.split('\n')[0], 300)}`);
  }
  const duplicate = findDuplicateKey(doc.contents, text);
  if (duplicate) throw new PipelineError(file, `invalid YAML at line ${duplicate.line}: the key "${clipText(duplicate.key, 60)}" appears twice in one mapping`);
  let raw: unknown;
  try {
    // Aliases are expanded here; a few are fine, thousands are an attack on memory.
    raw = doc.toJS({ maxAliasCount: 100 });
  } catch (e) {
    throw new PipelineError(file, `invalid YAML: ${clipText((e as Error).message, 300)}`);
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new PipelineError(file, 'a pipeline file must be a mapping with "nodes" and "edges"');
  }
  const texts: RawTexts = new Map();
  raw = applyOverrides(raw as Record<string, unknown>, opts.overrides ?? [], file, texts);
  try {
    raw = substituteEnv(raw, opts.env ?? process.env, texts);
  } catch (e) {
    if (e instanceof TooDeepError) throw new PipelineError(file, `invalid pipeline file: ${e.message}`);
    if (e instanceof MissingEnvError) {
      const [nodeName, field] = splitPath(e.path);
      throw new PipelineError(file, e.message, nodeName, field);
    }
    throw e;
  }

  const parsed = parseKeepingTexts(fileSchema, raw, [], texts);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const path = issue.path.map(String);
    const detail = describeIssue(issue, texts.get(pathKey(issue.path as (string | number)[]))?.from === 'env', knownKeysAt(fileSchema, issue.path));
    if (path[0] === 'nodes' && path.length >= 2) {
      throw new PipelineError(file, detail, path[1], path.slice(2).join('.') || undefined);
    }
    throw new PipelineError(file, detail, undefined, path.join('.') || undefined);
  }
  try {
    return buildPipeline(parsed.data, file, registry, texts);
  } catch (e) {
    if (!(e instanceof PipelineError) || e.line !== undefined) throw e;
    const line = lineOfMistake(doc, text, parsed.data.streams ?? [], e);
    throw line === undefined ? e : new PipelineError(e.file, e.detail, e.node, e.field, line);
  }
}

/** Where in the file a node/field mistake is: the node's entry (or its stream's), the field, an unknown key itself. */
function lineOfMistake(doc: ReturnType<typeof parseDocument>, text: string, streams: readonly StreamEntry[], e: PipelineError): number | undefined {
  if (e.node === undefined) return undefined;
  let base: (string | number)[];
  const slash = e.node.indexOf('/');
  if (slash < 0) base = ['nodes', e.node];
  else {
    const stream = e.node.slice(0, slash);
    const node = e.node.slice(slash + 1);
    const i = streams.findIndex((s) => s.name === stream);
    base = node === 'source' && i >= 0 ? ['streams', i, 'source'] : ['nodes', node];
  }
  const field = e.field !== undefined && !e.field.startsWith('edges') ? e.field.split('.') : [];
  const unknown = /^unknown option "([^"]+)"/.exec(e.detail)?.[1];
  for (let n = field.length; n >= 0; n--) {
    const path = [...base, ...field.slice(0, n)];
    const target = doc.getIn(path, true) as YamlNode | undefined;
    if (!target) continue;
    if (unknown !== undefined && n === field.length && isMap(target)) {
      const pair = target.items.find((p) => isScalar(p.key) && String(p.key.value) === unknown);
      const at = (pair?.key as YamlNode | undefined)?.range?.[0];
      if (at !== undefined) return lineAt(text, at);
    }
    if (target.range) return lineAt(text, target.range[0]);
  }
  return undefined;
}

function buildPipeline(spec: FileSpec, file: string, registry: NodeRegistry, texts: RawTexts): Pipeline {
  if (Object.keys(spec.nodes).length === 0) throw new PipelineError(file, 'the pipeline has no nodes', undefined, 'nodes');
  const expanded = expandStreams(spec, registry, file, texts);

  const nodes = new Map<string, ResolvedNode>();
  for (const [name, n] of Object.entries(expanded.nodes)) {
    const kind = registry.get(n.kind);
    if (!kind) {
      throw new PipelineError(
        file,
        `unknown node kind "${clipText(n.kind, 60)}"${didYouMean(n.kind, registry.names())} (known kinds: ${registry.names().join(', ')})`,
        name,
        'kind',
      );
    }
    const opt = parseKeepingTexts(kind.options, n.options, ['nodes', name, 'options'], texts);
    if (!opt.success) {
      const issue = opt.error.issues[0];
      const field = ['options', ...issue.path.map(String)].join('.');
      const fromEnv = texts.get(pathKey(['nodes', name, 'options', ...(issue.path as (string | number)[])]))?.from === 'env';
      throw new PipelineError(file, `${describeIssue(issue, fromEnv, knownKeysAt(kind.options, issue.path))} (kind ${kind.kind})`, name, field);
    }
    const options = { ...(opt.data as Record<string, unknown>) };
    for (const [key, pathKind] of Object.entries(kind.inputPaths ?? {})) {
      if (typeof options[key] === 'string') options[key] = resolveInputPath(options[key] as string, file, pathKind);
    }
    nodes.set(name, { name, kind, options, ...(n.stream !== undefined ? { stream: n.stream } : {}) });
  }

  const edges: ResolvedEdge[] = expanded.edges.map((e, i) => {
    const from = resolveEndpoint(e.from, 'outputs', nodes, file, i);
    const to = resolveEndpoint(e.to, 'inputs', nodes, file, i);
    const fromType = nodes.get(from.node)!.kind.outputs[from.port];
    const toType = nodes.get(to.node)!.kind.inputs[to.port];
    if (!portsCompatible(fromType, toType)) {
      throw new PipelineError(
        file,
        `edge ${e.from} -> ${e.to}: output "${from.port}" carries ${fromType} frames but input "${to.port}" of node "${to.node}" (${nodes.get(to.node)!.kind.kind}) takes ${toType} frames`,
        to.node,
        `edges[${i}].to`,
      );
    }
    const queue = (e.queue as z.infer<typeof queueSchema> | undefined) ?? queueSchema.parse({});
    return {
      from,
      to,
      capacity: queue.capacity,
      policy: queue.policy,
      label: `${from.node}.${from.port}->${to.node}.${to.port}`,
    };
  });

  const seenInputs = new Map<string, number>();
  edges.forEach((e, i) => {
    const key = `${e.to.node}.${e.to.port}`;
    // A multi-stream node takes one edge from each stream on the same input.
    if (seenInputs.has(key) && !nodes.get(e.to.node)!.kind.multiStream) {
      throw new PipelineError(
        file,
        `input "${e.to.port}" is fed by two edges (edges[${seenInputs.get(key)}] and edges[${i}]); an input takes exactly one edge`,
        e.to.node,
        `edges[${i}].to`,
      );
    }
    seenInputs.set(key, i);
  });
  for (const n of nodes.values()) {
    // With no stream listed yet (added at run time), a multi-stream node has nothing feeding it.
    if (n.kind.multiStream && spec.streams) continue;
    for (const port of Object.keys(n.kind.inputs)) {
      if (!seenInputs.has(`${n.name}.${port}`)) {
        throw new PipelineError(file, `input "${port}" is not connected: add an edge to ${n.name}.${port}`, n.name, 'edges');
      }
    }
  }

  const order = topologicalOrder([...nodes.keys()], edges, file);
  return {
    file,
    name: spec.name ?? file.replace(/^.*\//, '').replace(/\.ya?ml$/, ''),
    server: spec.server,
    logLevel: spec.log?.level ?? 'info',
    nodes: order.map((n) => nodes.get(n)!),
    edges,
    streams: spec.streams
      ? {
          entries: spec.streams,
          perStream: expanded.perStream,
          withStream: (entry: unknown) => {
            const r = streamEntrySchema.safeParse(entry);
            if (!r.success) {
              const issue = r.error.issues[0];
              throw new PipelineError(file, `new stream: ${describeIssue(issue)}`, undefined, issue.path.map(String).join('.') || undefined);
            }
            return buildPipeline({ ...spec, streams: [...spec.streams!, r.data] }, file, registry, texts);
          },
          withoutStream: (name: string) => buildPipeline({ ...spec, streams: spec.streams!.filter((s) => s.name !== name) }, file, registry, texts),
        }
      : null,
  };
}

function resolveEndpoint(
  ref: string,
  side: 'inputs' | 'outputs',
  nodes: Map<string, ResolvedNode>,
  file: string,
  edgeIndex: number,
): { node: string; port: string } {
  const field = `edges[${edgeIndex}].${side === 'outputs' ? 'from' : 'to'}`;
  const dot = ref.indexOf('.');
  const nodeName = dot < 0 ? ref : ref.slice(0, dot);
  const node = nodes.get(nodeName);
  if (!node) {
    throw new PipelineError(file, `edge refers to a missing node "${clipText(nodeName, 60)}" (nodes: ${[...nodes.keys()].join(', ')})`, undefined, field);
  }
  const ports = Object.keys(node.kind[side]);
  const what = side === 'outputs' ? 'output' : 'input';
  if (dot < 0) {
    if (ports.length === 1) return { node: nodeName, port: ports[0] };
    const detail =
      ports.length === 0
        ? `node "${nodeName}" (${node.kind.kind}) has no ${what} ports`
        : `node "${nodeName}" has several ${what} ports (${ports.join(', ')}): write ${nodeName}.PORT`;
    throw new PipelineError(file, detail, nodeName, field);
  }
  const port = ref.slice(dot + 1);
  if (!ports.includes(port)) {
    throw new PipelineError(
      file,
      `node "${nodeName}" (${node.kind.kind}) has no ${what} port "${clipText(port, 60)}" (${what} ports: ${ports.join(', ') || 'none'})`,
      nodeName,
      field,
    );
  }
  return { node: nodeName, port };
}

function topologicalOrder(names: string[], edges: ResolvedEdge[], file: string): string[] {
  const indegree = new Map(names.map((n) => [n, 0]));
  const next = new Map<string, string[]>(names.map((n) => [n, []]));
  for (const e of edges) {
    indegree.set(e.to.node, indegree.get(e.to.node)! + 1);
    next.get(e.from.node)!.push(e.to.node);
  }
  const ready = names.filter((n) => indegree.get(n) === 0);
  const order: string[] = [];
  while (ready.length > 0) {
    const n = ready.shift()!;
    order.push(n);
    for (const m of next.get(n)!) {
      indegree.set(m, indegree.get(m)! - 1);
      if (indegree.get(m) === 0) ready.push(m);
    }
  }
  if (order.length < names.length) {
    // Left over are the cycles and the nodes downstream of them: peel off those with no successor left.
    const inCycle = names.filter((n) => !order.includes(n));
    for (let peeled = true; peeled;) {
      peeled = false;
      for (const n of [...inCycle]) {
        if (!next.get(n)!.some((m) => inCycle.includes(m))) {
          inCycle.splice(inCycle.indexOf(n), 1);
          peeled = true;
        }
      }
    }
    throw new PipelineError(
      file,
      `the edges form a cycle through nodes ${inCycle.map((n) => `"${n}"`).join(', ')}; a pipeline must be acyclic`,
      inCycle[0],
      'edges',
    );
  }
  return order;
}

/** Keys that would reach an object's prototype instead of a field. */
const UNSAFE_KEYS = new Set(['__proto__', 'prototype', 'constructor']);

function applyOverrides(raw: Record<string, unknown>, overrides: readonly string[], file: string, texts: RawTexts): Record<string, unknown> {
  const out = structuredClone(raw);
  for (const o of overrides) {
    const eq = o.indexOf('=');
    if (eq <= 0) throw new PipelineError(file, `--set "${clipText(o)}" must look like node.option=value`);
    const path = o.slice(0, eq).split('.');
    const bad = path.find((k) => UNSAFE_KEYS.has(k) || k === '');
    if (bad !== undefined) throw new PipelineError(file, `--set "${clipText(o.slice(0, eq))}": "${bad}" is not a valid option name`);
    const text = o.slice(eq + 1);
    const value = parseScalar(text);
    if (path[0] === 'server' || path[0] === 'log' || path[0] === 'name') {
      setPath(out, path, value);
      texts.set(pathKey(path), { text, from: 'set' });
      continue;
    }
    if (path[0] === 'streams' && Array.isArray(out.streams)) {
      // --set streams.NAME.source.options.url=...: a field of the stream entry with that name.
      const list = out.streams as Array<Record<string, unknown>>;
      const index = list.findIndex((e) => e !== null && typeof e === 'object' && e.name === path[1]);
      if (index < 0 || path.length < 3)
        throw new PipelineError(file, `--set "${clipText(o)}": no stream named "${clipText(path[1] ?? '', 60)}" (write streams.NAME.field=value)`);
      setPath(list[index], path.slice(2), value);
      texts.set(pathKey(['streams', index, ...path.slice(2)]), { text, from: 'set' });
      continue;
    }
    const nodes = out.nodes as Record<string, Record<string, unknown>> | undefined;
    if (path.length < 2 || !nodes || typeof nodes !== 'object' || !Object.hasOwn(nodes, path[0])) {
      throw new PipelineError(file, `--set "${clipText(o)}": no node named "${clipText(path[0], 60)}"`, path[0]);
    }
    const node = nodes[path[0]];
    node.options ??= {};
    setPath(node.options as Record<string, unknown>, path.slice(1), value);
    texts.set(pathKey(['nodes', path[0], 'options', ...path.slice(1)]), { text, from: 'set' });
  }
  return out;
}

/**
 * Validate, putting back the original text of a value from the environment or --set wherever the
 * schema wants a string there (YAML's scalar rules had made "604791" a number, "true" a boolean).
 */
function parseKeepingTexts<S extends z.ZodType>(
  schema: S,
  value: unknown,
  base: readonly (string | number)[],
  texts: RawTexts,
): z.ZodSafeParseResult<z.output<S>> {
  for (let attempt = 0; ; attempt++) {
    const r = schema.safeParse(value, { reportInput: true });
    if (r.success || attempt >= 32) return r;
    let fixed = false;
    for (const issue of r.error.issues) {
      const text = texts.get(pathKey([...base, ...(issue.path as (string | number)[])]))?.text;
      if (text === undefined || typeof (issue as { input?: unknown }).input === 'string') continue;
      if (!wantsString(issue)) continue;
      value = withValue(value, issue.path as (string | number)[], text);
      fixed = true;
    }
    if (!fixed) return r;
  }
}

/** The issue says a string would have been accepted at its path. */
function wantsString(issue: z.core.$ZodIssue): boolean {
  if (issue.code === 'invalid_type') return issue.expected === 'string';
  if (issue.code === 'invalid_union') return issue.errors.some((branch) => branch.some((i) => i.path.length === 0 && wantsString(i)));
  return false;
}

function withValue(value: unknown, path: readonly (string | number)[], v: unknown): unknown {
  if (path.length === 0) return v;
  const [head, ...rest] = path;
  if (Array.isArray(value)) return value.map((x, i) => (i === head ? withValue(x, rest, v) : x));
  const obj = (value ?? {}) as Record<string, unknown>;
  return { ...obj, [head]: withValue(obj[head], rest, v) };
}

function setPath(obj: Record<string, unknown>, path: string[], value: unknown): void {
  let cur = obj;
  for (const key of path.slice(0, -1)) {
    if (cur[key] === null || typeof cur[key] !== 'object') cur[key] = {};
    cur = cur[key] as Record<string, unknown>;
  }
  cur[path[path.length - 1]] = value;
}

function splitPath(path: string): [string | undefined, string | undefined] {
  const parts = path.split('.');
  if (parts[0] === 'nodes' && parts.length >= 2) return [parts[1], parts.slice(2).join('.') || undefined];
  return [undefined, path || undefined];
}

/** Values may be secrets (from the environment) or huge: never quote those, quote others briefly. */
function describeIssue(issue: z.core.$ZodIssue, fromEnv = false, known: readonly string[] = []): string {
  if (issue.code === 'unrecognized_keys') {
    const hint = issue.keys.length === 1 ? didYouMean(issue.keys[0], known) : '';
    return `unknown option${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${clipText(k, 60)}"`).join(', ')}${hint}${known.length > 0 && !hint ? ` (options: ${known.join(', ')})` : ''}`;
  }
  if (issue.code === 'invalid_type') {
    const input = (issue as { input?: unknown }).input;
    if (input === undefined) return `required ${issue.expected} is missing`;
    const what = Array.isArray(input) ? 'array' : input === null ? 'null' : typeof input;
    if (fromEnv) return `expected ${issue.expected}, got ${what} (the value comes from the environment and is not shown)`;
    return `expected ${issue.expected}, got ${what}${what === 'object' || what === 'array' ? '' : ` ${clipText(JSON.stringify(input) ?? String(input), 60)}`}`;
  }
  return clipText(issue.message, 300);
}

/** Keys an object schema accepts at `path` (empty when the schema there is not a plain object). */
function knownKeysAt(schema: z.ZodType, path: readonly PropertyKey[]): string[] {
  try {
    let js = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as { properties?: Record<string, unknown> };
    for (const key of path) {
      const next = js.properties?.[String(key)] as { properties?: Record<string, unknown>; items?: unknown } | undefined;
      if (!next) return [];
      js = (typeof key === 'number' ? next.items : next) as typeof js;
    }
    return Object.keys(js?.properties ?? {});
  } catch {
    return [];
  }
}

function clipText(text: string, max = 120): string {
  return text.length <= max ? text : `${text.slice(0, max)}… (${text.length} characters)`;
}

/** The first key that appears twice in one mapping, anywhere in the document (linear in its size). */
function findDuplicateKey(root: unknown, text: string): { key: string; line: number } | null {
  const stack: unknown[] = [root];
  while (stack.length > 0) {
    const node = stack.pop();
    if (isMap(node)) {
      const seen = new Set<string>();
      for (const item of node.items) {
        const k = isScalar(item.key) ? String(item.key.value) : JSON.stringify(item.key);
        if (seen.has(k)) {
          const offset = (item.key as YamlNode | null)?.range?.[0] ?? 0;
          return { key: k, line: lineAt(text, offset) };
        }
        seen.add(k);
        stack.push(item.value);
      }
    } else if (isSeq(node)) {
      for (const item of node.items) stack.push(item);
    }
  }
  return null;
}

function lineAt(text: string, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset && i < text.length; i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}
