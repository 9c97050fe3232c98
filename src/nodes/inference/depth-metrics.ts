import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { sharedMetric } from '../../graph/metrics.js';

// The live depth node's metrics. Names are fixed (dashboards and checks rely on them); the
// `node` label is the node's name in the pipeline file, `stream` the stream it serves.

export interface DepthMetrics {
  readonly stride: Gauge<'node' | 'stream'>;
  readonly sequences: Counter<'node' | 'stream' | 'reason'>;
  readonly frames: Counter<'node' | 'stream' | 'kind'>;
  readonly throughput: Gauge<'node' | 'stream'>;
  readonly sourceFps: Gauge<'node' | 'stream'>;
  readonly expectedLatency: Gauge<'node' | 'stream'>;
  readonly latency: Histogram<'node' | 'stream'>;
}

export const SEQUENCE_REASONS = ['start', 'discontinuity', 'size', 'gap'] as const;
export type SequenceReason = (typeof SEQUENCE_REASONS)[number];

export function depthMetrics(r: Registry, labels: { node: string; stream: string }): DepthMetrics {
  const m: DepthMetrics = {
    stride: sharedMetric(
      r,
      'dcl_depth_stride',
      (registers) =>
        new Gauge({
          name: 'dcl_depth_stride',
          help: 'Every k-th source frame is computed by the model (rate adaptation)',
          labelNames: ['node', 'stream'],
          registers,
        }),
    ),
    sequences: sharedMetric(
      r,
      'dcl_depth_sequences_total',
      (registers) =>
        new Counter({
          name: 'dcl_depth_sequences_total',
          help: 'Depth sequences started, by reason (start, discontinuity, size, gap)',
          labelNames: ['node', 'stream', 'reason'],
          registers,
        }),
    ),
    frames: sharedMetric(
      r,
      'dcl_depth_frames_total',
      (registers) =>
        new Counter({
          name: 'dcl_depth_frames_total',
          help: 'Depth frames emitted: computed by the model or interpolated in time',
          labelNames: ['node', 'stream', 'kind'],
          registers,
        }),
    ),
    throughput: sharedMetric(
      r,
      'dcl_depth_throughput_fps',
      (registers) =>
        new Gauge({
          name: 'dcl_depth_throughput_fps',
          help: 'Frames the engine completes per second of work (measured per window)',
          labelNames: ['node', 'stream'],
          registers,
        }),
    ),
    sourceFps: sharedMetric(
      r,
      'dcl_depth_source_fps',
      (registers) =>
        new Gauge({
          name: 'dcl_depth_source_fps',
          help: 'Frame rate of the source feeding the depth node (from sequence numbers and timestamps)',
          labelNames: ['node', 'stream'],
          registers,
        }),
    ),
    expectedLatency: sharedMetric(
      r,
      'dcl_depth_expected_latency_seconds',
      (registers) =>
        new Gauge({
          name: 'dcl_depth_expected_latency_seconds',
          help: 'Expected p95 latency from source arrival to depth out (README formula)',
          labelNames: ['node', 'stream'],
          registers,
        }),
    ),
    latency: sharedMetric(
      r,
      'dcl_depth_latency_seconds',
      (registers) =>
        new Histogram({
          name: 'dcl_depth_latency_seconds',
          help: 'Source arrival to depth out of the depth node',
          labelNames: ['node', 'stream'],
          buckets: [0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 4, 6, 8, 12, 16, 32, 64],
          registers,
        }),
    ),
  };
  // Every series exists from the start, at zero.
  for (const reason of SEQUENCE_REASONS) m.sequences.inc({ ...labels, reason }, 0);
  for (const kind of ['computed', 'interpolated']) m.frames.inc({ ...labels, kind }, 0);
  m.stride.set(labels, 1);
  return m;
}
