import { readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import { z } from 'zod';
import { PipelineError } from './pipeline-error.js';
import { MissingEnvError, parseScalar, substituteEnv } from './substitute-env.js';
import type { NodeRegistry } from './registry.js';
import type { NodeKind } from './node-kind.js';
import { QUEUE_POLICIES, type QueuePolicy } from './edge-queue.js';
import { portsCompatible } from './packets.js';

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
      })
      .strict()
      .default({ host: '127.0.0.1', port: 8080, enabled: true }),
    log: z.object({ level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info') }).strict().optional(),
    nodes: z.record(
      z.string().regex(/^[A-Za-z_][A-Za-z0-9_-]*$/, 'node names are letters, digits, "_" and "-"'),
      z.object({ kind: z.string(), options: z.record(z.string(), z.unknown()).default({}) }).strict(),
    ),
    edges: z
      .array(z.object({ from: z.string(), to: z.string(), queue: queueSchema.optional() }).strict())
      .default([]),
  })
  .strict();

export interface ResolvedNode {
  readonly name: string;
  readonly kind: NodeKind;
  readonly options: unknown;
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
  readonly server: { host: string; port: number; enabled: boolean };
  readonly logLevel: string;
  /** Nodes in topological order (sources first). */
  readonly nodes: ResolvedNode[];
  readonly edges: ResolvedEdge[];
}

export interface LoadOptions {
  /** `path=value` overrides: `node.option=value`, `node.option.sub=value`, `server.port=9000`. */
  readonly overrides?: readonly string[];
  readonly env?: NodeJS.ProcessEnv;
}

export function loadPipelineFile(file: string, registry: NodeRegistry, opts: LoadOptions = {}): Pipeline {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new PipelineError(file, `cannot read the file (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  return parsePipeline(text, file, registry, opts);
}

export function parsePipeline(text: string, file: string, registry: NodeRegistry, opts: LoadOptions = {}): Pipeline {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const e = doc.errors[0];
    const pos = e.linePos?.[0];
    throw new PipelineError(file, `invalid YAML${pos ? ` at line ${pos.line}, column ${pos.col}` : ''}: ${e.message.split('\n')[0]}`);
  }
  let raw: unknown = doc.toJS();
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new PipelineError(file, 'a pipeline file must be a mapping with "nodes" and "edges"');
  }
  raw = applyOverrides(raw as Record<string, unknown>, opts.overrides ?? [], file);
  try {
    raw = substituteEnv(raw, opts.env ?? process.env);
  } catch (e) {
    if (e instanceof MissingEnvError) {
      const [nodeName, field] = splitPath(e.path);
      throw new PipelineError(file, e.message, nodeName, field);
    }
    throw e;
  }

  const parsed = fileSchema.safeParse(raw, { reportInput: true });
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const path = issue.path.map(String);
    if (path[0] === 'nodes' && path.length >= 2) {
      throw new PipelineError(file, describeIssue(issue), path[1], path.slice(2).join('.') || undefined);
    }
    throw new PipelineError(file, describeIssue(issue), undefined, path.join('.') || undefined);
  }
  const spec = parsed.data;
  if (Object.keys(spec.nodes).length === 0) throw new PipelineError(file, 'the pipeline has no nodes', undefined, 'nodes');

  const nodes = new Map<string, ResolvedNode>();
  for (const [name, n] of Object.entries(spec.nodes)) {
    const kind = registry.get(n.kind);
    if (!kind) {
      throw new PipelineError(file, `unknown node kind "${n.kind}" (known kinds: ${registry.names().join(', ')})`, name, 'kind');
    }
    const opt = kind.options.safeParse(n.options, { reportInput: true });
    if (!opt.success) {
      const issue = opt.error.issues[0];
      const field = ['options', ...issue.path.map(String)].join('.');
      throw new PipelineError(file, `${describeIssue(issue)} (kind ${kind.kind})`, name, field);
    }
    nodes.set(name, { name, kind, options: opt.data });
  }

  const edges: ResolvedEdge[] = spec.edges.map((e, i) => {
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
    const queue = e.queue ?? queueSchema.parse({});
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
    if (seenInputs.has(key)) {
      throw new PipelineError(file, `input "${e.to.port}" is fed by two edges (edges[${seenInputs.get(key)}] and edges[${i}]); an input takes exactly one edge`, e.to.node, `edges[${i}].to`);
    }
    seenInputs.set(key, i);
  });
  for (const n of nodes.values()) {
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
    throw new PipelineError(file, `edge refers to a missing node "${nodeName}" (nodes: ${[...nodes.keys()].join(', ')})`, undefined, field);
  }
  const ports = Object.keys(node.kind[side]);
  const what = side === 'outputs' ? 'output' : 'input';
  if (dot < 0) {
    if (ports.length === 1) return { node: nodeName, port: ports[0] };
    const detail = ports.length === 0 ? `node "${nodeName}" (${node.kind.kind}) has no ${what} ports` : `node "${nodeName}" has several ${what} ports (${ports.join(', ')}): write ${nodeName}.PORT`;
    throw new PipelineError(file, detail, nodeName, field);
  }
  const port = ref.slice(dot + 1);
  if (!ports.includes(port)) {
    throw new PipelineError(file, `node "${nodeName}" (${node.kind.kind}) has no ${what} port "${port}" (${what} ports: ${ports.join(', ') || 'none'})`, nodeName, field);
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
    for (let peeled = true; peeled; ) {
      peeled = false;
      for (const n of [...inCycle]) {
        if (!next.get(n)!.some((m) => inCycle.includes(m))) {
          inCycle.splice(inCycle.indexOf(n), 1);
          peeled = true;
        }
      }
    }
    throw new PipelineError(file, `the edges form a cycle through nodes ${inCycle.map((n) => `"${n}"`).join(', ')}; a pipeline must be acyclic`, inCycle[0], 'edges');
  }
  return order;
}

function applyOverrides(raw: Record<string, unknown>, overrides: readonly string[], file: string): Record<string, unknown> {
  const out = structuredClone(raw);
  for (const o of overrides) {
    const eq = o.indexOf('=');
    if (eq <= 0) throw new PipelineError(file, `--set "${o}" must look like node.option=value`);
    const path = o.slice(0, eq).split('.');
    const value = parseScalar(o.slice(eq + 1));
    if (path[0] === 'server' || path[0] === 'log' || path[0] === 'name') {
      setPath(out, path, value);
      continue;
    }
    const nodes = out.nodes as Record<string, Record<string, unknown>> | undefined;
    if (path.length < 2 || !nodes || typeof nodes !== 'object' || !(path[0] in nodes)) {
      throw new PipelineError(file, `--set "${o}": no node named "${path[0]}"`, path[0]);
    }
    const node = nodes[path[0]];
    node.options ??= {};
    setPath(node.options as Record<string, unknown>, path.slice(1), value);
  }
  return out;
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

function describeIssue(issue: z.core.$ZodIssue): string {
  if (issue.code === 'unrecognized_keys') return `unknown option${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
  if (issue.code === 'invalid_type') {
    const input = (issue as { input?: unknown }).input;
    if (input === undefined) return `required ${issue.expected} is missing`;
    return `expected ${issue.expected}, got ${Array.isArray(input) ? 'array' : typeof input} ${JSON.stringify(input)}`;
  }
  return issue.message;
}
