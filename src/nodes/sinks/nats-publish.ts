import { z } from 'zod';
import { Counter } from 'prom-client';
import { headers as natsHeaders } from '@nats-io/nats-core';
import { defineNode } from '../../graph/node-kind.js';
import { sharedMetric } from '../../graph/metrics.js';
import { nowMs, type DepthFrame } from '../../graph/packets.js';
import { encodeFrameMessage, type FrameHeader } from '../../protocol/frame-message.js';
import { sharedNats } from '../../fleet/nats.js';
import { depthSubject, rgbSubject, WORKER_HEADER } from '../../fleet/subjects.js';
import type { LeaseKeeper } from '../../fleet/leases.js';
import { OptionError } from '../../util/errors.js';

// Publishes every stream's depth frames on NATS as DCL1 messages (docs/websocket-protocol.md):
// float32 depth on dcl.depth.<stream> and, before it, the RGB frame it came from (rgb24) on
// dcl.rgb.<stream>, each stamped with the worker's id. In a fleet worker it publishes only the
// cameras whose lease the worker holds (leaseGate), so a worker that lost a camera goes quiet
// at once. Core NATS (no persistence): a subscriber that is not there misses frames, as a live
// viewer would; the client's own buffer bounds memory while reconnecting.

/** Shared-resource key under which a fleet worker offers its LeaseKeeper to this node. */
export const LEASE_KEEPER_RESOURCE = 'fleet:lease-keeper';

export const natsPublishOptions = z
  .object({
    url: z
      .string()
      .min(1)
      .default('nats://127.0.0.1:4222')
      .describe('NATS server(s): nats://host:port[,host:port], tls:// for TLS; credentials from DCL_NATS_TOKEN or DCL_NATS_USER/DCL_NATS_PASSWORD.'),
    worker: z.string().min(1).default('local').describe('Worker id stamped on every message (header "worker" and NATS header Dcl-Worker).'),
    rgb: z
      .boolean()
      .default(true)
      .describe("Also publish the RGB frame of each depth frame (rgb24) on dcl.rgb.<stream>, when it fits the server's max_payload."),
    leaseGate: z.boolean().default(false).describe('Publish only streams whose fleet lease this process holds (set by `fleet worker`).'),
  })
  .strict();

export const natsPublishNode = defineNode({
  kind: 'nats-publish',
  role: 'sink',
  description: 'Publish depth (and RGB) frames of every stream on NATS subjects dcl.depth.<stream> / dcl.rgb.<stream>',
  inputs: { frames: 'depth' },
  outputs: {},
  options: natsPublishOptions,
  multiStream: true,
  async create(o, ctx) {
    const conn = await sharedNats(ctx.shared, o.url, ctx.log, `depthcrafter-live ${o.worker}`);
    const keeper = o.leaseGate
      ? await ctx.shared.acquire<LeaseKeeper>(
          LEASE_KEEPER_RESOURCE,
          () => Promise.reject(new OptionError('leaseGate: true needs a fleet worker (depthcrafter-live fleet worker)')),
          () => {},
        )
      : null;
    const nc = conn.value;
    const registry = ctx.metrics.registry;
    const published = sharedMetric(
      registry,
      'dcl_bus_published_total',
      (registers): Counter<'stream' | 'kind'> =>
        new Counter({ name: 'dcl_bus_published_total', help: 'Messages published on NATS', labelNames: ['stream', 'kind'], registers }),
    );
    const withheld = sharedMetric(
      registry,
      'dcl_bus_withheld_total',
      (registers): Counter<'stream' | 'reason'> =>
        new Counter({
          name: 'dcl_bus_withheld_total',
          help: 'Frames not published (no valid lease, or over max_payload)',
          labelNames: ['stream', 'reason'],
          registers,
        }),
    );
    const hdrs = natsHeaders();
    hdrs.set(WORKER_HEADER, o.worker);
    let warnedSize = false;
    const fits = (bytes: number) => bytes <= (nc.info?.max_payload ?? 1 << 20);
    return {
      process(_port, p) {
        if (p.type !== 'depth') return;
        const d = p as DepthFrame;
        if (keeper && !keeper.value.valid(d.streamId)) {
          withheld.inc({ stream: d.streamId, reason: 'lease' });
          return;
        }
        const publishedMs = nowMs();
        const base = { stream: d.streamId, seq: d.seq, ptsMs: d.ptsMs, latencyMs: Math.max(0, publishedMs - d.arrivalMs), worker: o.worker, publishedMs };
        const src = d.source;
        if (o.rgb && src) {
          const header: FrameHeader = {
            ...base,
            kind: 'rgb',
            width: src.width,
            height: src.height,
            format: 'rgb24',
            ...(src.intrinsics ? { intrinsics: src.intrinsics } : {}),
          };
          const msg = encodeFrameMessage(header, src.data);
          if (fits(msg.byteLength)) {
            nc.publish(rgbSubject(d.streamId), msg, { headers: hdrs });
            published.inc({ stream: d.streamId, kind: 'rgb' });
          } else {
            withheld.inc({ stream: d.streamId, reason: 'max_payload' });
            if (!warnedSize)
              ctx.log.warn(
                { bytes: msg.byteLength, maxPayload: nc.info?.max_payload },
                "RGB frames are larger than the NATS server's max_payload: publishing depth only (raise max_payload, or lower the source size)",
              );
            warnedSize = true;
          }
        }
        const header: FrameHeader = {
          ...base,
          kind: 'depth',
          width: d.width,
          height: d.height,
          format: 'f32',
          window: d.window,
          ...(d.interpolated ? { interpolated: true } : {}),
        };
        const msg = encodeFrameMessage(header, new Uint8Array(d.data.buffer, d.data.byteOffset, d.data.byteLength));
        if (!fits(msg.byteLength)) {
          withheld.inc({ stream: d.streamId, reason: 'max_payload' });
          throw new OptionError(
            `depth frame of ${msg.byteLength} bytes is larger than the NATS server's max_payload (${nc.info?.max_payload}): raise max_payload in the server's configuration`,
          );
        }
        nc.publish(depthSubject(d.streamId), msg, { headers: hdrs });
        published.inc({ stream: d.streamId, kind: 'depth' });
      },
      async flush() {
        await nc.flush().catch(() => {});
      },
      async close() {
        await keeper?.release();
        await conn.release();
      },
    };
  },
});
