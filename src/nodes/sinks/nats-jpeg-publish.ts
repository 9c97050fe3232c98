import { z } from 'zod';
import { hostname } from 'node:os';
import { Counter } from 'prom-client';
import { headers as natsHeaders } from '@nats-io/nats-core';
import { defineNode } from '../../graph/node-kind.js';
import { sharedMetric } from '../../graph/metrics.js';
import { nowMs, type VideoFrame } from '../../graph/packets.js';
import { encodeFrameMessage, type FrameHeader } from '../../protocol/frame-message.js';
import { sharedNats } from '../../fleet/nats.js';
import { EDGE_HEADER, framesSubject } from '../../fleet/subjects.js';
import { FrameEncoder, defaultEncodeWorkers } from './frame-encoder.js';

// The edge half of a camera that only an edge box can reach (`fleet edge NAME URL`): every video
// frame of every stream is encoded as JPEG in the encoder threads (FrameEncoder: nothing per pixel
// on the main thread) and published as a DCL1 message (kind rgb, format jpeg) on
// dcl.frames.<stream>, for a fleet worker elsewhere (source nats-frames, camera URL `edge:`).
// A frame that finds every encoder busy is dropped (counted), never queued: memory stays bounded
// and the bus carries the newest frames. Messages go out in frame order even when two threads
// finish out of order. Core NATS: a worker that is not listening misses frames, as a viewer would.

export const natsJpegPublishOptions = z
  .object({
    url: z
      .string()
      .min(1)
      .default('nats://127.0.0.1:4222')
      .describe('NATS server(s): nats://host:port[,host:port], tls:// for TLS; credentials from DCL_NATS_TOKEN or DCL_NATS_USER/DCL_NATS_PASSWORD.'),
    quality: z.number().int().min(1).max(100).default(80).describe('JPEG quality (1-100).'),
    maxFps: z.number().min(0).max(1000).default(0).describe('Publish at most this many frames per second per stream (by presentation time; 0: every frame).'),
    workers: z.number().int().min(1).max(16).optional().describe('Encoder threads (default: one per spare core, at most 2).'),
    maxInFlight: z
      .number()
      .int()
      .min(1)
      .max(64)
      .optional()
      .describe('Frames being encoded at once; a frame beyond it is dropped (default: 2 per encoder thread).'),
    edge: z.string().min(1).optional().describe('Edge id stamped on every message (NATS header Dcl-Edge; default: host-pid).'),
  })
  .strict();

export const natsJpegPublishNode = defineNode({
  kind: 'nats-jpeg-publish',
  role: 'sink',
  description: 'Publish the video frames of every stream as JPEG on NATS (dcl.frames.<stream>), for fleet workers elsewhere (`fleet edge`)',
  inputs: { frames: 'video' },
  outputs: {},
  options: natsJpegPublishOptions,
  multiStream: true,
  async create(o, ctx) {
    const edgeId = o.edge ?? `${hostname()}-${process.pid}`;
    const conn = await sharedNats(ctx.shared, o.url, ctx.log, `depthcrafter-live edge ${edgeId}`);
    const nc = conn.value;
    const workers = o.workers ?? defaultEncodeWorkers();
    const encoder = new FrameEncoder({
      workers,
      maxInFlight: o.maxInFlight ?? 2 * workers,
      onError: (e) => ctx.log.warn({ err: e }, 'a JPEG encoder thread failed (a new one starts)'),
    });
    encoder.warm();
    const registry = ctx.metrics.registry;
    const published = sharedMetric(
      registry,
      'dcl_bus_published_total',
      (registers): Counter<'stream' | 'kind'> =>
        new Counter({ name: 'dcl_bus_published_total', help: 'Messages published on NATS', labelNames: ['stream', 'kind'], registers }),
    );
    const dropped = sharedMetric(
      registry,
      'dcl_jpeg_publish_dropped_total',
      (registers): Counter<'stream' | 'reason'> =>
        new Counter({
          name: 'dcl_jpeg_publish_dropped_total',
          help: 'Frames nats-jpeg-publish did not publish (encoder busy, fps limit, over max_payload, encoding failed)',
          labelNames: ['stream', 'reason'],
          registers,
        }),
    );
    const hdrs = natsHeaders();
    hdrs.set(EDGE_HEADER, edgeId);
    const lastPts = new Map<string, number>();
    const busy = new Map<string, { n: number; loggedAt: number }>();
    let warnedSize = false;
    // Encodes finish in any order; messages are published in frame order.
    let chain: Promise<void> = Promise.resolve();
    const publish = (f: VideoFrame, jpeg: Uint8Array) => {
      const publishedMs = nowMs();
      const header: FrameHeader = {
        kind: 'rgb',
        stream: f.streamId,
        seq: f.seq,
        ptsMs: f.ptsMs,
        width: f.width,
        height: f.height,
        format: 'jpeg',
        latencyMs: Math.max(0, publishedMs - f.arrivalMs),
        publishedMs,
        ...(f.intrinsics ? { intrinsics: f.intrinsics } : {}),
      };
      const msg = encodeFrameMessage(header, jpeg);
      if (msg.byteLength > (nc.info?.max_payload ?? 1 << 20)) {
        dropped.inc({ stream: f.streamId, reason: 'max_payload' });
        if (!warnedSize)
          ctx.log.warn(
            { bytes: msg.byteLength, maxPayload: nc.info?.max_payload },
            "JPEG frames are larger than the NATS server's max_payload: dropping them (lower --quality or the source size, or raise max_payload)",
          );
        warnedSize = true;
        return;
      }
      nc.publish(framesSubject(f.streamId), msg, { headers: hdrs });
      published.inc({ stream: f.streamId, kind: 'jpeg' });
    };
    return {
      process(_port, p) {
        if (p.type !== 'video') return;
        const f = p as VideoFrame;
        if (o.maxFps > 0) {
          const prev = lastPts.get(f.streamId);
          // A small tolerance so that a 30 fps source limited to 15 keeps every other frame, not every third.
          if (prev !== undefined && f.ptsMs >= prev && f.ptsMs - prev < 1000 / o.maxFps - 2) {
            dropped.inc({ stream: f.streamId, reason: 'fps_limit' });
            return;
          }
          lastPts.set(f.streamId, f.ptsMs);
        }
        const job = encoder.tryEncode([{ rgb: f.data, width: f.width, height: f.height, format: 'jpeg', quality: o.quality }]);
        if (!job) {
          dropped.inc({ stream: f.streamId, reason: 'encoder_busy' });
          const b = busy.get(f.streamId) ?? { n: 0, loggedAt: -Infinity };
          b.n++;
          if (performance.now() - b.loggedAt > 10_000) {
            ctx.log.warn(
              { stream: f.streamId, dropped: b.n, encoders: workers },
              `JPEG encoders busy: dropping frames of ${f.streamId} (${b.n} so far; lower the frame rate with --fps-limit or the size)`,
            );
            b.loggedAt = performance.now();
          }
          busy.set(f.streamId, b);
          return;
        }
        job.catch(() => {}); // handled in the chain below
        chain = chain.then(() =>
          job.then(
            ([jpeg]) => publish(f, jpeg),
            (e: unknown) => {
              dropped.inc({ stream: f.streamId, reason: 'encode_failed' });
              ctx.log.warn({ err: e, stream: f.streamId, seq: f.seq }, 'JPEG encoding of a frame failed: dropped');
            },
          ),
        );
      },
      async flush() {
        await chain;
        await nc.flush().catch(() => {});
      },
      async close() {
        await chain;
        await encoder.close();
        await conn.release();
      },
    };
  },
});
