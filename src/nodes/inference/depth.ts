import { z } from 'zod';
import { defineNode } from '../../graph/node-kind.js';
import type { DepthFrame, Packet, VideoFrame } from '../../graph/packets.js';
import { DepthEngine } from '../../inference/engine/depth-engine.js';
import { DEFAULT_PACK } from '../../inference/pack/default-pack.js';

// The streaming depth node: the live policy around the one engine. Frames go into the engine's
// sliding windows; each depth frame is emitted as soon as no later window can change it, with
// its source frame's sequence number, timestamps and window. When the model is slower than the
// source, the node waits on the engine and the (drop-oldest) edge in front of it sheds frames,
// counted per edge; a gap longer than `maxGap` frames, a discontinuity or a size change starts a
// new sequence instead of stitching across it.

export const depthOptions = z
  .object({
    model: z.string().default(DEFAULT_PACK),
    device: z.enum(['cpu', 'cuda', 'tensorrt', 'webgpu']).default('cpu'),
    threads: z.number().int().min(1).max(64).optional(),
    window: z.number().int().min(1).max(110).default(110),
    overlap: z.number().int().min(0).max(109).default(25),
    steps: z.number().int().min(1).max(100).default(5),
    guidance: z.number().min(1).default(1),
    seed: z.number().int().min(0).default(42),
    maxRes: z.number().int().min(64).max(4096).optional(),
    /** Frames handed to the inference worker before the node waits (input then queues or drops upstream). */
    maxInFlight: z.number().int().min(1).max(16).default(2),
    /** Largest gap in source sequence numbers bridged within one sequence; larger gaps start a new one. */
    maxGap: z.number().int().min(1).default(8),
    /** Live normalisation: EMA weight of each frame's robust range. */
    rangeAlpha: z.number().gt(0).max(1).default(0.05),
    /** Attach the RGB frame to each depth frame (for viewers that show both). */
    keepSource: z.boolean().default(true),
  })
  .strict()
  .refine((o) => o.overlap < o.window, { message: 'overlap must be smaller than window', path: ['overlap'] });

export const depthNode = defineNode({
  kind: 'depth',
  role: 'transform',
  description: 'DepthCrafter video depth over sliding windows (ONNX model pack, inference in a worker thread)',
  inputs: { video: 'video' },
  outputs: { depth: 'depth' },
  options: depthOptions,
  async create(o, ctx) {
    const engine = await DepthEngine.open({
      packDir: o.model,
      device: o.device,
      threads: o.threads,
      maxInFlight: o.maxInFlight,
      choices: { window: o.window, overlap: o.overlap, steps: o.steps, guidance: o.guidance, seed: o.seed, maxRes: o.maxRes },
      live: { alpha: o.rangeAlpha },
    });
    ctx.log.info({ pack: engine.packName, window: o.window, overlap: o.overlap, steps: o.steps }, 'depth engine ready');
    const waiting: VideoFrame[] = []; // source frames of the current sequence not yet answered, in order
    let emitting: Promise<void> = Promise.resolve();
    let last: VideoFrame | null = null;
    let sequences = 0;
    engine.onSequence = (s) => ctx.log.info({ resolution: `${s.resolution.width}x${s.resolution.height}`, sequence: sequences }, 'depth sequence started');
    engine.onDepth = (d) => {
      const src = waiting.shift();
      if (!src) throw new Error('internal: depth frame without a source frame');
      const out: DepthFrame = {
        type: 'depth',
        streamId: src.streamId,
        seq: src.seq,
        ptsMs: src.ptsMs,
        arrivalMs: src.arrivalMs,
        width: d.width,
        height: d.height,
        data: d.depth,
        window: d.window,
        source: o.keepSource ? src : undefined,
      };
      emitting = emitting.then(() => ctx.emit('depth', out));
    };

    const endSequence = async (reason: string | null) => {
      if (waiting.length > 0 || last) {
        await engine.end();
        sequences++;
      }
      last = null;
      await emitting;
      if (reason) await ctx.emit('depth', { type: 'discontinuity', streamId: ctx.name, reason });
    };

    return {
      async process(_port: string, p: Packet) {
        if (p.type === 'discontinuity') {
          await endSequence(p.reason);
          return;
        }
        if (p.type !== 'video') return;
        if (last && (p.width !== last.width || p.height !== last.height)) await endSequence(`frame size changed to ${p.width}x${p.height}`);
        else if (last && p.seq - last.seq > o.maxGap) {
          ctx.metrics.framesDropped.inc({ node: ctx.name, reason: 'gap' }, 0);
          await endSequence(`gap of ${p.seq - last.seq - 1} frames`);
        }
        waiting.push(p);
        last = p;
        // The engine takes ownership of what it is sent; other consumers of this frame keep theirs.
        await engine.push(p.data.slice(), p.width, p.height);
        await emitting;
      },
      async flush() {
        await endSequence(null);
      },
      async close() {
        await engine.close();
      },
    };
  },
});
