import { z } from 'zod';
import { defineNode } from '../../graph/node-kind.js';
import type { Packet } from '../../graph/packets.js';
import { FrameEncoder, defaultEncodeWorkers } from './frame-encoder.js';
import { mountViewer } from '../../server/viewer-routes.js';
import { accessToken } from '../../server/websocket/access.js';
import { broadcastFrame } from '../../server/websocket/broadcast.js';
import { DiscontinuityMarks } from '../../server/websocket/discontinuity.js';
import { EncodeDispatch } from '../../server/websocket/encode-dispatch.js';
import { WebSocketEndpoint } from '../../server/websocket/endpoint.js';
import { startStatsMessages, webSocketMetrics } from '../../server/websocket/stats.js';

// Broadcasts frames to WebSocket subscribers on the pipeline's HTTP server. This node declares the
// options and wires the parts in src/server/websocket/: the endpoint admits clients (access.ts) and
// keeps their subscriptions (subscriber.ts, each with its own backpressure and drop count);
// broadcast.ts sends each frame to them, with the payloads that need per-pixel work (u16,
// colour-mapped jpeg/png depth, jpeg RGB, ground truth) made once per frame and format by the
// encoder threads (frame-encoder.ts, through encode-dispatch.ts). When the encoder falls behind
// (encodeQueue frames outstanding), the frame is dropped for the subscribers that need an encoded
// payload, and counted like any other drop; raw rgb24/f32 subscribers are not held up.

export const websocketOptions = z
  .object({
    path: z.string().startsWith('/').default('/ws').describe("WebSocket path on the pipeline's server (one sink per path)."),
    maxBufferedBytes: z
      .number()
      .int()
      .min(1024)
      .default(8 * 1024 * 1024)
      .describe('Per-subscriber send buffer bound, in bytes; beyond it frames are dropped for that subscriber.'),
    maxClientMessageBytes: z
      .number()
      .int()
      .min(64)
      .max(1 << 20)
      .default(4096)
      .describe('Largest message a client may send (control messages are small JSON).'),
    tokenEnv: z
      .string()
      .default('DCL_TOKEN')
      .describe('Name of the environment variable holding the access token; when that variable is set, clients must present it.'),
    allowedOrigins: z.array(z.string()).default([]).describe('Allowed browser origins; empty means same-origin and non-browser clients only.'),
    viewer: z
      .boolean()
      .default(true)
      .describe('Serve the browser viewer at / (with its scripts, colour maps at /colormaps.json and the three.js build it uses for the 3D view).'),
    jpegQuality: z.number().int().min(1).max(100).default(80).describe('JPEG quality (1..100) of jpeg depth and RGB payloads.'),
    encodeWorkers: z.number().int().min(1).max(16).optional().describe('Encoder threads for u16/jpeg/png payloads (default: one per spare core, at most 2).'),
    encodeQueue: z
      .number()
      .int()
      .min(1)
      .max(256)
      .default(64)
      .describe(
        'Frames being encoded or waiting for an encoder thread; beyond it frames are dropped for subscribers that need encoding (a window of several streams comes out at once: room for the burst).',
      ),
    encodeWaitMs: z
      .number()
      .int()
      .min(0)
      .max(60_000)
      .default(0)
      .describe('How long a frame may wait for room in the encoder queue before it is dropped (0: drop at once, never slowing the pipeline).'),
  })
  .strict();

export const websocketNode = defineNode({
  kind: 'websocket',
  role: 'sink',
  description: 'Broadcast video and depth frames to WebSocket subscribers',
  inputs: { frames: 'any' },
  outputs: {},
  options: websocketOptions,
  // One sink serves every stream of a multi-stream pipeline; subscribers choose with ?stream=.
  multiStream: true,
  claims: (o) => [{ resource: `ws-path:${o.path}`, what: `WebSocket path ${o.path}`, field: 'options.path' }],
  create(o, ctx) {
    const token = accessToken(o.tokenEnv);
    ctx.log.info(
      { path: o.path, auth: token ? 'token' : 'none' },
      token
        ? `WebSocket ${o.path}: clients must present the token in ${o.tokenEnv}`
        : `WebSocket ${o.path}: no token required (set ${o.tokenEnv} to require one)`,
    );
    const metrics = webSocketMetrics(ctx.metrics.registry);
    const node = { node: ctx.name };
    const encoder = new FrameEncoder({
      workers: o.encodeWorkers ?? defaultEncodeWorkers(),
      maxInFlight: o.encodeQueue,
      onError: (err) => ctx.log.warn({ err }, 'encoder thread failed; starting another'),
    });
    const encoding = new EncodeDispatch(encoder, {
      jpegQuality: o.jpegQuality,
      encodeWaitMs: o.encodeWaitMs,
      log: ctx.log,
      onEncoded: (w) => metrics.encoded.inc({ ...node, payload: `${w.frame.type === 'depth' ? 'depth' : 'rgb'}-${w.format}` }),
    });
    const marks = new DiscontinuityMarks();
    let sawDepth = false;

    if (o.viewer && !ctx.http.hasRoute('/')) mountViewer(ctx.http, ctx.log);
    const endpoint = new WebSocketEndpoint(ctx.http, {
      path: o.path,
      maxClientMessageBytes: o.maxClientMessageBytes,
      token,
      allowedOrigins: o.allowedOrigins,
      streams: () => ctx.streams.names(),
      log: ctx.log,
      onConnect: (s) => {
        // Start the encoder threads before the first frame needs them (not for plain video pipelines).
        if (sawDepth || s.sub.rgbFormat === 'jpeg') encoder.warm();
        metrics.connections.inc(node);
      },
      onDrop: () => metrics.dropped.inc(node),
    });
    const stopStats = startStatsMessages(endpoint.subscribers);
    const broadcast = { maxBufferedBytes: o.maxBufferedBytes, marks, encoding, log: ctx.log };

    return {
      async process(_port: string, p: Packet) {
        if (p.type === 'discontinuity') {
          marks.gap(p.streamId);
          return;
        }
        if (p.type !== 'video' && p.type !== 'depth') return;
        marks.see(p);
        if (p.type === 'depth') sawDepth = true;
        if (endpoint.subscribers.size === 0) return;
        await broadcastFrame(p, endpoint.subscribers, broadcast);
      },
      async flush() {
        // Frames still being encoded go out before the sink reports it is done.
        await endpoint.drain();
      },
      async close() {
        stopStats();
        await endpoint.drain(2000);
        await encoder.close();
        await endpoint.close();
      },
    };
  },
});
