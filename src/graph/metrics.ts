import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

// One Prometheus registry per running graph, so two graphs in one process (tests) never share
// counters. Label values are node, stream and edge names from the pipeline file: never URLs, so
// no credential can reach a label. `stream` is set on the nodes of a multi-stream pipeline's streams.

export class GraphMetrics {
  readonly registry = new Registry();
  readonly framesIn: Counter<'node' | 'stream'>;
  readonly framesOut: Counter<'node' | 'stream'>;
  readonly framesDropped: Counter<'node' | 'stream' | 'reason'>;
  readonly edgeDropped: Counter<'edge' | 'reason'>;
  readonly edgeDepth: Gauge<'edge'>;
  readonly processSeconds: Histogram<'node' | 'stream'>;
  readonly latencySeconds: Histogram<'node' | 'stream'>;
  readonly restarts: Counter<'node' | 'stream'>;
  readonly nodeUp: Gauge<'node' | 'stream'>;

  constructor(withDefaults = true) {
    const r = this.registry;
    if (withDefaults) collectDefaultMetrics({ register: r, prefix: 'dcl_' });
    this.framesIn = new Counter({ name: 'dcl_node_frames_in_total', help: 'Frames received by a node', labelNames: ['node', 'stream'], registers: [r] });
    this.framesOut = new Counter({ name: 'dcl_node_frames_out_total', help: 'Frames emitted by a node', labelNames: ['node', 'stream'], registers: [r] });
    this.framesDropped = new Counter({
      name: 'dcl_node_frames_dropped_total',
      help: 'Frames a node dropped by its own policy',
      labelNames: ['node', 'stream', 'reason'],
      registers: [r],
    });
    this.edgeDropped = new Counter({
      name: 'dcl_edge_dropped_total',
      help: 'Frames dropped by an edge queue (reason: overflow = the queue was full under a drop policy)',
      labelNames: ['edge', 'reason'],
      registers: [r],
    });
    this.edgeDepth = new Gauge({ name: 'dcl_edge_queue_depth', help: 'Packets waiting in an edge queue', labelNames: ['edge'], registers: [r] });
    this.processSeconds = new Histogram({
      name: 'dcl_node_process_seconds',
      help: 'Time a node spends on one packet',
      labelNames: ['node', 'stream'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [r],
    });
    this.latencySeconds = new Histogram({
      name: 'dcl_end_to_end_latency_seconds',
      help: 'Source arrival to sink, per sink node',
      labelNames: ['node', 'stream'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64],
      registers: [r],
    });
    this.restarts = new Counter({ name: 'dcl_node_restarts_total', help: 'Restarts of a node after a fault', labelNames: ['node', 'stream'], registers: [r] });
    this.nodeUp = new Gauge({
      name: 'dcl_node_up',
      help: '1 while a node is running, 0 while it is failed or restarting',
      labelNames: ['node', 'stream'],
      registers: [r],
    });
  }

  /** Every labelled value of a metric whose labels include `labels` (e.g. a counter's values by reason). */
  async values(name: string, labels: Record<string, string>): Promise<Array<{ labels: Record<string, string | number>; value: number }>> {
    const m = await this.registry.getSingleMetric(name)?.get();
    return (m?.values ?? [])
      .filter((x) => Object.entries(labels).every(([k, val]) => x.labels[k] === val))
      .map((x) => ({ labels: x.labels as Record<string, string | number>, value: x.value }));
  }

  /** Counter value for tests and summaries. */
  async value(name: string, labels: Record<string, string>): Promise<number> {
    const m = await this.registry.getSingleMetric(name)?.get();
    const v = m?.values.find((x) => Object.entries(labels).every(([k, val]) => x.labels[k] === val));
    return v?.value ?? 0;
  }
}

/** A metric shared by all nodes of one kind in a graph: created by the first, found by the others. */
export function sharedMetric<M>(registry: Registry, name: string, make: (registers: Registry[]) => M): M {
  return (registry.getSingleMetric(name) as M | undefined) ?? make([registry]);
}
