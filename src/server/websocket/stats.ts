import { Counter, type Registry } from 'prom-client';
import { sharedMetric } from '../../graph/metrics.js';
import type { Subscriber } from './subscriber.js';

// What the WebSocket sinks count: Prometheus counters (shared by every sink of the graph, labelled
// by node) and, once a second, each subscriber's own sent and dropped frames (shared frame
// messages cannot carry a per-subscriber count).

export interface WebSocketMetrics {
  readonly dropped: Counter<'node'>;
  readonly connections: Counter<'node'>;
  readonly encoded: Counter<'node' | 'payload'>;
}

export function webSocketMetrics(registry: Registry): WebSocketMetrics {
  return {
    dropped: sharedMetric(
      registry,
      'dcl_ws_subscriber_dropped_total',
      (registers): Counter<'node'> =>
        new Counter({ name: 'dcl_ws_subscriber_dropped_total', help: 'Frames dropped for slow WebSocket subscribers', labelNames: ['node'], registers }),
    ),
    connections: sharedMetric(
      registry,
      'dcl_ws_connections_total',
      (registers): Counter<'node'> =>
        new Counter({ name: 'dcl_ws_connections_total', help: 'WebSocket connections accepted', labelNames: ['node'], registers }),
    ),
    encoded: sharedMetric(
      registry,
      'dcl_ws_encoded_total',
      (registers): Counter<'node' | 'payload'> =>
        new Counter({
          name: 'dcl_ws_encoded_total',
          help: 'Payloads encoded for WebSocket subscribers (once per frame and format)',
          labelNames: ['node', 'payload'],
          registers,
        }),
    ),
  };
}

/** Send each open subscriber `{"type":"stats","sent","dropped"}` every `intervalMs`; returns the stop function. */
export function startStatsMessages(subscribers: Iterable<Subscriber>, intervalMs = 1000): () => void {
  const timer = setInterval(() => {
    for (const s of subscribers) {
      if (s.open) s.ws.send(JSON.stringify({ type: 'stats', sent: s.sent, dropped: s.dropped }));
    }
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
