import { z } from 'zod';
import { PipelineError } from './pipeline-error.js';
import type { NodeRegistry } from './registry.js';
import { pathKey, type RawTexts } from './substitute-env.js';

// Pipelines for N cameras without copy-paste. A `streams:` list names each stream's source; the
// edges use the pseudo-node `streams` for "each stream's source". Every node fed from there is a
// per-stream node: it is copied once per stream as STREAM/NODE (its own state; depth nodes still
// share one inference worker), with the stream's `overrides` merged into its options. Expansion
// stops at nodes whose kind takes every stream on one input (`multiStream`, e.g. websocket):
// each stream's copy gets its own edge (and queue) into it.
//
//   streams:
//     - { name: lobby, source: { kind: synthetic, options: { seed: 1 } } }
//     - { name: door, source: { kind: rtsp, options: { url: "${RTSP_URL}" } }, overrides: { depth: { maxRes: 256 } } }
//   edges:
//     - { from: streams.video, to: depth.video }
//     - { from: depth.depth, to: ws.frames }

/** The pseudo-node standing for each stream's source in edges. */
export const STREAMS_NODE = 'streams';
export const STREAM_NAME = /^[A-Za-z0-9_-]{1,64}$/;

export const streamEntrySchema = z
  .object({
    name: z.string().regex(STREAM_NAME, 'stream names are 1-64 letters, digits, "_" and "-"'),
    source: z.object({ kind: z.string(), options: z.record(z.string(), z.unknown()).default({}) }).strict(),
    /** Options merged into this stream's copy of a per-stream node, by node name. */
    overrides: z.record(z.string(), z.record(z.string(), z.unknown())).default({}),
  })
  .strict();

export type StreamEntry = z.infer<typeof streamEntrySchema>;

export interface NodeSpec {
  readonly kind: string;
  readonly options: Record<string, unknown>;
  /** The stream a copied node belongs to. */
  readonly stream?: string;
}

export interface EdgeSpec {
  readonly from: string;
  readonly to: string;
  readonly queue?: { capacity: number; policy: string } | undefined;
}

export interface Expanded {
  readonly nodes: Record<string, NodeSpec>;
  readonly edges: EdgeSpec[];
  /** The template nodes copied per stream (in file order). */
  readonly perStream: string[];
}

/** Copied node names: the stream, a slash, the node (cannot clash with file node names, which have no slash). */
export function streamNodeName(stream: string, node: string): string {
  return `${stream}/${node}`;
}

const nodeOf = (ref: string): string => (ref.includes('.') ? ref.slice(0, ref.indexOf('.')) : ref);
const portOf = (ref: string): string => (ref.includes('.') ? ref.slice(ref.indexOf('.')) : '');

export function expandStreams(
  spec: { nodes: Record<string, NodeSpec>; edges: EdgeSpec[]; streams?: StreamEntry[] },
  registry: NodeRegistry,
  file: string,
  texts: RawTexts,
): Expanded {
  const usesStreams = spec.edges.some((e) => nodeOf(e.from) === STREAMS_NODE || nodeOf(e.to) === STREAMS_NODE);
  if (!spec.streams) {
    if (usesStreams)
      throw new PipelineError(file, `edges use "${STREAMS_NODE}" but the pipeline has no streams: list (add one, or name a source node)`, undefined, 'edges');
    return { nodes: spec.nodes, edges: spec.edges, perStream: [] };
  }
  if (Object.hasOwn(spec.nodes, STREAMS_NODE))
    throw new PipelineError(file, `"${STREAMS_NODE}" is reserved for the streams' sources in a pipeline with a streams: list`, STREAMS_NODE);
  spec.edges.forEach((e, i) => {
    if (nodeOf(e.to) === STREAMS_NODE)
      throw new PipelineError(file, `"${STREAMS_NODE}" stands for the streams' sources: it has no inputs`, undefined, `edges[${i}].to`);
  });
  if (!usesStreams)
    throw new PipelineError(
      file,
      `no edge starts at "${STREAMS_NODE}": connect each stream's source, e.g. from: streams.video, to: depth.video`,
      undefined,
      'edges',
    );

  // Per-stream nodes: reachable from `streams` without passing a multi-stream node.
  const perStream = new Set<string>();
  const frontier = [STREAMS_NODE];
  while (frontier.length > 0) {
    const n = frontier.shift()!;
    for (const e of spec.edges) {
      if (nodeOf(e.from) !== n) continue;
      const to = nodeOf(e.to);
      const node = spec.nodes[to];
      if (!node || perStream.has(to)) continue;
      if (registry.get(node.kind)?.multiStream) continue;
      perStream.add(to);
      frontier.push(to);
    }
  }
  spec.edges.forEach((e, i) => {
    const from = nodeOf(e.from);
    if (perStream.has(nodeOf(e.to)) && from !== STREAMS_NODE && !perStream.has(from)) {
      throw new PipelineError(
        file,
        `node "${nodeOf(e.to)}" runs once per stream (it is fed from "${STREAMS_NODE}") but is also fed by the shared node "${from}"`,
        nodeOf(e.to),
        `edges[${i}].from`,
      );
    }
  });

  const seen = new Set<string>();
  spec.streams.forEach((s, i) => {
    if (seen.has(s.name)) throw new PipelineError(file, `stream "${s.name}" is listed twice`, undefined, `streams[${i}].name`);
    seen.add(s.name);
    const kind = registry.get(s.source.kind);
    if (kind && kind.role !== 'source')
      throw new PipelineError(
        file,
        `stream "${s.name}": kind "${s.source.kind}" is not a source (sources: ${registry
          .all()
          .filter((k) => k.role === 'source')
          .map((k) => k.kind)
          .join(', ')})`,
        undefined,
        `streams[${i}].source.kind`,
      );
    for (const target of Object.keys(s.overrides)) {
      if (!perStream.has(target)) {
        throw new PipelineError(
          file,
          `stream "${s.name}": overrides name "${target}", which is not a per-stream node (per-stream nodes: ${[...perStream].join(', ') || 'none'})`,
          undefined,
          `streams[${i}].overrides.${target}`,
        );
      }
    }
  });

  const nodes: Record<string, NodeSpec> = {};
  for (const [name, n] of Object.entries(spec.nodes)) if (!perStream.has(name)) nodes[name] = n;
  spec.streams.forEach((s, i) => {
    nodes[streamNodeName(s.name, 'source')] = { kind: s.source.kind, options: s.source.options, stream: s.name };
    aliasTexts(texts, ['streams', i, 'source', 'options'], ['nodes', streamNodeName(s.name, 'source'), 'options']);
    for (const name of perStream) {
      const t = spec.nodes[name];
      nodes[streamNodeName(s.name, name)] = { kind: t.kind, options: { ...t.options, ...s.overrides[name] }, stream: s.name };
      aliasTexts(texts, ['nodes', name, 'options'], ['nodes', streamNodeName(s.name, name), 'options']);
      aliasTexts(texts, ['streams', i, 'overrides', name], ['nodes', streamNodeName(s.name, name), 'options']);
    }
  });
  const edges: EdgeSpec[] = [];
  for (const e of spec.edges) {
    const from = nodeOf(e.from);
    const to = nodeOf(e.to);
    const fromCopied = from === STREAMS_NODE || perStream.has(from);
    if (!fromCopied) {
      edges.push(e);
      continue;
    }
    for (const s of spec.streams) {
      const f = streamNodeName(s.name, from === STREAMS_NODE ? 'source' : from) + portOf(e.from);
      const t = perStream.has(to) ? streamNodeName(s.name, to) + portOf(e.to) : e.to;
      edges.push({ ...e, from: f, to: t });
    }
  }
  return { nodes, edges, perStream: [...perStream] };
}

/** Values from the environment or --set under `from` are known under `to` as well. */
function aliasTexts(texts: RawTexts, from: (string | number)[], to: (string | number)[]): void {
  const prefix = pathKey(from);
  for (const [k, v] of [...texts]) {
    if (k === prefix || k.startsWith(prefix + '\u0000')) texts.set(pathKey(to) + k.slice(prefix.length), v);
  }
}
