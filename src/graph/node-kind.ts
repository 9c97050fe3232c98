import type { Logger } from 'pino';
import type { z } from 'zod';
import type { Packet, PortType } from './packets.js';
import type { GraphMetrics } from './metrics.js';
import type { HttpHub } from '../server/http-hub.js';
import type { NodeStatus } from './status.js';
import type { SharedResources } from './shared-resources.js';
import type { InputPathKind } from './input-paths.js';

// A node kind declares everything the graph needs to know before any frame flows, in the
// manner of a MediaPipe calculator contract: its ports with their types, its options schema,
// and whether it may be restarted on a fault.

export type NodeRole = 'source' | 'transform' | 'sink';

export interface NodeContext {
  /** The node's name in the pipeline file (STREAM/NODE for a per-stream copy). */
  readonly name: string;
  /** The stream this node serves: its stream in a multi-stream pipeline, else its own name. Sources stamp it on frames. */
  readonly stream: string;
  /** Resources shared by the nodes of the graph (one inference worker per model and device). */
  readonly shared: SharedResources;
  /** The streams the graph serves now (for subscribers choosing streams). */
  readonly streams: { names(): string[] };
  /** Kinds of the sources that feed this node, directly or through other nodes (e.g. to warn about a model's domain). */
  readonly upstreamSources: readonly string[];
  readonly log: Logger;
  readonly metrics: GraphMetrics;
  /** The pipeline's HTTP/WebSocket server, for nodes that serve subscribers. */
  readonly http: HttpHub;
  /** Aborted when the graph is asked to stop; sources must end their run() promptly. */
  readonly signal: AbortSignal;
  /**
   * Send a packet on an output port to every connected edge. Await it: under a `block` edge the
   * promise resolves only when there is room downstream (this is how backpressure reaches a source).
   */
  emit(port: string, packet: Packet): Promise<void>;
  /** Next sequence number for frames this node creates; survives restarts so numbers never repeat. */
  readonly sequence: { value: number };
  /** Say how the node is doing (served at /healthz and shown by the viewer). */
  setStatus(status: NodeStatus): void;
}

export interface NodeInstance {
  /** Sources: produce until done or until ctx.signal aborts. The runtime then sends EOS. */
  run?(): Promise<void>;
  /** Transforms and sinks: handle one packet from an input port (EOS is handled by the runtime). */
  process?(port: string, packet: Packet): Promise<void> | void;
  /** All inputs have ended: emit what is still buffered and finalise outputs. */
  flush?(): Promise<void> | void;
  /** Release resources (called once, after flush or on failure). */
  close?(): Promise<void> | void;
}

export interface ResourceClaim {
  /** Unique key, e.g. "ws-path:/ws". */
  readonly resource: string;
  /** For the error message, e.g. "WebSocket path /ws". */
  readonly what: string;
  readonly field: string;
}

export interface RestartPolicy {
  /** Upper bound on restarts; Infinity for live feeds. */
  readonly maxRestarts: number;
  readonly initialDelayMs: number;
  readonly maxDelayMs: number;
}

export interface NodeKind<Schema extends z.ZodType = z.ZodType> {
  readonly kind: string;
  readonly role: NodeRole;
  readonly description: string;
  readonly inputs: Readonly<Record<string, PortType>>;
  readonly outputs: Readonly<Record<string, PortType>>;
  readonly options: Schema;
  /** Live sources are restarted on failure (with backoff) instead of stopping the whole graph. */
  readonly restart?: RestartPolicy;
  /**
   * The node takes the frames of every stream of a multi-stream pipeline on each input (one edge
   * per stream; packets carry their stream id) instead of being copied per stream.
   */
  readonly multiStream?: boolean;
  /** Options that name an input on disk: resolved next to the pipeline file first (see input-paths.ts). */
  readonly inputPaths?: Readonly<Record<string, InputPathKind>>;
  /** The node reports its own state with ctx.setStatus (otherwise the runtime calls it ok once created). */
  readonly reportsStatus?: boolean;
  /** Resources only one node of a pipeline may hold (a WebSocket path), checked before anything starts. */
  claims?(options: z.infer<Schema>): ResourceClaim[];
  /**
   * Checks beyond the schema that `validate` and `run` make before any node starts (a pack's
   * limits, a device, a folder): throw CheckError naming the field; `warn` for doubts.
   */
  check?(options: z.infer<Schema>, ctx: { warn(message: string): void }): void | Promise<void>;
  create(options: z.infer<Schema>, ctx: NodeContext): NodeInstance | Promise<NodeInstance>;
}

/** Identity helper that keeps the option type tied to the schema. */
export function defineNode<Schema extends z.ZodType>(kind: NodeKind<Schema>): NodeKind<Schema> {
  return kind;
}
