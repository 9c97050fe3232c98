import { z } from 'zod';
import type { Subscription } from '@nats-io/nats-core';
import { defineNode } from '../../graph/node-kind.js';
import type { DepthFrame, VideoFrame } from '../../graph/packets.js';
import { decodeFrameMessage, type FrameHeader } from '../../protocol/frame-message.js';
import { sharedNats } from '../../fleet/nats.js';
import { depthSubject, rgbSubject } from '../../fleet/subjects.js';

// One camera's depth frames as the fleet publishes them on NATS (see nats-publish), turned back
// into depth packets (with their RGB frame) for the sinks of a gateway: its WebSocket, viewer and
// /streams serve the whole fleet. A change of worker (a takeover) or a step back in sequence is
// passed on as a discontinuity; no frames for `staleMs` shows the stream as down.

export const natsDepthOptions = z
  .object({
    url: z
      .string()
      .min(1)
      .default('nats://127.0.0.1:4222')
      .describe('NATS server(s): nats://host:port[,host:port], tls:// for TLS; credentials from DCL_NATS_TOKEN or DCL_NATS_USER/DCL_NATS_PASSWORD.'),
    camera: z.string().min(1).optional().describe("Camera (stream) whose frames to take (default: this stream's name)."),
    staleMs: z.number().int().min(100).default(5000).describe('No frame for this long: the stream is shown down.'),
    queue: z
      .number()
      .int()
      .min(1)
      .max(1024)
      .default(8)
      .describe('Frames held while downstream is busy; beyond it the oldest are dropped (counted on the next frame).'),
  })
  .strict();

interface Pending {
  readonly header: FrameHeader;
  readonly payload: Uint8Array;
}

export const natsDepthNode = defineNode({
  kind: 'nats-depth',
  role: 'source',
  description: 'Depth frames (with RGB) of one fleet camera from NATS (dcl.depth.<camera>, dcl.rgb.<camera>)',
  inputs: {},
  outputs: { depth: 'depth' },
  options: natsDepthOptions,
  reportsStatus: true,
  restart: { maxRestarts: Infinity, initialDelayMs: 250, maxDelayMs: 5000 },
  async create(o, ctx) {
    const camera = o.camera ?? ctx.stream;
    const conn = await sharedNats(ctx.shared, o.url, ctx.log, 'depthcrafter-live gateway');
    const nc = conn.value;
    const queue: Pending[] = [];
    let dropped = 0;
    let wake: (() => void) | null = null;
    const rgbBySeq = new Map<number, VideoFrame>();
    let bad = 0;
    const decode = (data: Uint8Array): Pending | null => {
      try {
        return decodeFrameMessage(data);
      } catch (e) {
        if (bad++ % 100 === 0) ctx.log.warn({ err: e, camera }, 'ignoring a malformed message on the bus');
        return null;
      }
    };
    const subs: Subscription[] = [
      nc.subscribe(rgbSubject(camera), {
        callback: (err, m) => {
          const msg = err ? null : decode(m.data);
          if (!msg || msg.header.kind !== 'rgb' || msg.header.format !== 'rgb24') return;
          const h = msg.header;
          rgbBySeq.set(h.seq, {
            type: 'video',
            ...frameFields(h, ctx.stream),
            // Its own copy: the client's read buffer is reused for later messages.
            data: new Uint8Array(msg.payload),
            ...(h.intrinsics ? { intrinsics: h.intrinsics } : {}),
          });
          // The RGB frame precedes its depth frame; a few are enough to pair them.
          if (rgbBySeq.size > 8) rgbBySeq.delete(rgbBySeq.keys().next().value as number);
        },
      }),
      nc.subscribe(depthSubject(camera), {
        callback: (err, m) => {
          const msg = err ? null : decode(m.data);
          if (!msg || msg.header.kind !== 'depth' || msg.header.format !== 'f32') return;
          if (queue.length >= o.queue) {
            queue.shift();
            dropped++;
          }
          queue.push(msg);
          wake?.();
        },
      }),
    ];
    let lastWorker: string | undefined;
    let lastSeq = -1;
    let lastFrameAt = performance.now();
    let frames = 0;
    const report = () => {
      const age = performance.now() - lastFrameAt;
      if (frames > 0 && age < o.staleMs)
        ctx.setStatus({ state: 'ok', message: `served by worker ${lastWorker}`, details: { worker: lastWorker ?? null, frames } });
      else
        ctx.setStatus({
          state: frames === 0 ? 'starting' : 'down',
          message:
            frames === 0
              ? 'waiting for a worker to serve this camera'
              : `no frames from the fleet for ${(age / 1000).toFixed(0)} s (last worker ${lastWorker})`,
          details: { worker: lastWorker ?? null, frames },
        });
    };
    report();
    const timer = setInterval(report, 1000);
    timer.unref();
    return {
      async run() {
        const stop = () => wake?.();
        ctx.signal.addEventListener('abort', stop, { once: true });
        try {
          while (!ctx.signal.aborted) {
            const next = queue.shift();
            if (!next) {
              await new Promise<void>((r) => (wake = r));
              wake = null;
              continue;
            }
            const h = next.header;
            if ((lastWorker !== undefined && h.worker !== lastWorker) || h.seq <= lastSeq) {
              await ctx.emit('depth', {
                type: 'discontinuity',
                streamId: ctx.stream,
                reason: h.worker !== lastWorker ? `camera moved from worker ${lastWorker} to ${h.worker}` : 'the camera restarted',
                nextSeq: h.seq,
              });
            }
            const firstFrame = frames === 0;
            lastWorker = h.worker;
            lastSeq = h.seq;
            lastFrameAt = performance.now();
            frames++;
            if (firstFrame) report();
            // Float32 needs 4-byte alignment: one copy of the payload into its own buffer (a memcpy; not
            // .slice(), which on a Node Buffer is a view into the client's shared read buffer).
            const data = new Float32Array(new Uint8Array(next.payload).buffer);
            const frame: DepthFrame = {
              type: 'depth',
              ...frameFields(h, ctx.stream),
              data,
              window: h.window ?? 0,
              ...(h.interpolated ? { interpolated: true } : {}),
              ...(rgbBySeq.has(h.seq) ? { source: rgbBySeq.get(h.seq)! } : {}),
              ...(dropped > 0 ? { droppedBefore: dropped } : {}),
            };
            dropped = 0;
            rgbBySeq.delete(h.seq);
            await ctx.emit('depth', frame);
          }
        } finally {
          ctx.signal.removeEventListener('abort', stop);
        }
      },
      async close() {
        clearInterval(timer);
        for (const s of subs) s.unsubscribe();
        await conn.release();
      },
    };
  },
});

function fleetOrigin(h: FrameHeader): { fleet?: { worker: string; publishedMs: number } } {
  return h.worker !== undefined && h.publishedMs !== undefined ? { fleet: { worker: h.worker, publishedMs: h.publishedMs } } : {};
}

/** The fields every frame rebuilt from a bus message has (arrival: the worker's, as the header gives it). */
function frameFields(h: FrameHeader, streamId: string) {
  return { streamId, seq: h.seq, ptsMs: h.ptsMs, arrivalMs: (h.publishedMs ?? Date.now()) - h.latencyMs, width: h.width, height: h.height, ...fleetOrigin(h) };
}
