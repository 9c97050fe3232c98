import { z } from 'zod';
import { defineNode } from '../../graph/node-kind.js';
import { nowMs, type VideoFrame } from '../../graph/packets.js';
import { generateScene } from '../../synth/generate.js';
import { intrinsics } from '../../synth/camera.js';
import { InlineFrameSource, WorkerFrameSource, type FrameSource, type RenderJob } from '../../synth/frame-source.js';
import { sleep } from '../../util/sleep.js';

// Procedurally generated 3D scenes (src/synth) rendered with exact metric depth: every frame carries
// `gtDepth` (planar depth in metres, 0 = sky / invalid) and the rendering camera's `intrinsics` (a pinhole of
// horizontal field of view `fov`). Deterministic from the seed: frame i always
// shows the scene at t = i / fps, also across restarts, where numbering resumes after the last frame
// sent. `live: true` paces frames in real time; `live: false` produces as fast as downstream takes them.
// A live source keeps its clock as a camera with `ahead` capture buffers does: frames may go out
// late while fewer than `ahead` newer ones are due (the buffers hold them), but when it falls
// further behind (rendering too slow for the rate, the machine overloaded, or a blocking edge
// downstream), the oldest frames are dropped, not sent late, and counted
// (`dcl_node_frames_dropped_total{reason="late"}`, the "pipeline finished" counts, a log line at most
// every 10 s). Their sequence numbers are skipped, so consumers see the gap and the true rate.
// Frames render on the main thread while that is cheap; above WORKER_THRESHOLD_MS per frame a worker
// thread renders `ahead` frames in advance instead.

/** Frames of the final renderer (inline or worker) sent, late or not, before a live source starts dropping late frames. */
export const WARMUP_FRAMES = 4;

/** A frame that takes longer than this to render (after warm-up) moves rendering to a worker. */
export const WORKER_THRESHOLD_MS = 4;

export const syntheticOptions = z
  .object({
    seed: z.number().int().default(1).describe('Scene seed: the same seed renders the same scene and motion.'),
    scene: z.enum(['auto', 'indoor', 'outdoor']).default('auto').describe('Scene family (auto picks from the seed).'),
    width: z.number().int().min(8).max(4096).default(256).describe('Frame width.'),
    height: z.number().int().min(8).max(4096).default(256).describe('Frame height.'),
    fps: z.number().positive().max(1000).default(30).describe('Frame rate (scene time t = i / fps).'),
    frames: z.number().int().min(-1).default(-1).describe('Number of frames, or -1 for an endless stream.'),
    live: z.boolean().default(true).describe('Pace frames in real time (false: as fast as downstream takes them).'),
    fov: z.number().gt(1).lt(179).default(60).describe('Horizontal field of view, degrees.'),
    streamId: z.string().min(1).optional().describe('Stream id stamped on frames (default: the stream or node name).'),
    worker: z
      .enum(['auto', 'always', 'never'])
      .default('auto')
      .describe("Where to render: 'auto' measures, 'always' / 'never' force a worker thread or the main thread."),
    ahead: z.number().int().min(1).max(64).default(4).describe('Frames a worker renders in advance.'),
  })
  .strict();

export const syntheticNode = defineNode({
  kind: 'synthetic',
  role: 'source',
  description: 'Procedural 3D scenes with ground-truth metric depth (gtDepth)',
  inputs: {},
  outputs: { video: 'video' },
  options: syntheticOptions,
  restart: { maxRestarts: 5, initialDelayMs: 200, maxDelayMs: 5000 },
  create(o, ctx) {
    const scene = generateScene(o.seed, o.scene);
    const job: RenderJob = { scene, width: o.width, height: o.height, fovDeg: o.fov, fps: o.fps };
    const end = o.frames < 0 ? Infinity : o.frames;
    const streamId = o.streamId ?? ctx.stream;
    const K = intrinsics(o.width, o.height, o.fov); // the renderer's own camera (src/synth/camera.ts)
    let source: FrameSource | null = null;
    const dropLabels = { node: ctx.name, stream: ctx.stream, reason: 'late' };
    let lateTotal = 0;
    let lateLogged = 0;
    let lastLateLog = -Infinity;
    const late = (n: number) => {
      lateTotal += n;
      ctx.metrics.framesDropped.inc(dropLabels, n);
      if (performance.now() - lastLateLog >= 10_000) {
        ctx.log.warn({ dropped: lateTotal - lateLogged, total: lateTotal, fps: o.fps }, 'synthetic: frames dropped in the source (it fell behind its clock)');
        lateLogged = lateTotal;
        lastLateLog = performance.now();
      }
    };
    ctx.log.info({ seed: o.seed, scene: scene.kind, objects: scene.objects.length, size: `${o.width}x${o.height}` }, 'synthetic scene');
    return {
      async run() {
        const first = ctx.sequence.value;
        if (first >= end) return;
        const signal = ctx.signal;
        const inline = new InlineFrameSource(job, first);
        source = inline;
        let decided = o.worker !== 'auto';
        if (o.worker === 'always') source = new WorkerFrameSource(job, first, end, o.ahead);
        let start = performance.now();
        const period = 1000 / o.fps;
        // Frames are dropped only once rendering has settled: the first frames pay for JIT compilation, and a
        // worker thread takes a while to start and compile again (its first 2-4 frames came 1-3 periods late at
        // 30 fps on a loaded machine). The clock runs from the WARMUP_FRAMES-th frame of the final renderer on.
        let clock = false;
        let settled = 0;
        /** The oldest frame a camera with `ahead` buffers would still hold now. */
        const oldestHeld = () => first + Math.floor((performance.now() - start) / period) - o.ahead + 1;
        /** Skip the frames from i on that no buffer holds any more; the new i. */
        const catchUp = (i: number): number => {
          const next = Math.min(end, oldestHeld());
          if (next <= i) return i;
          late(next - i);
          source!.skipTo(next);
          return next;
        };
        for (let i = first; i < end && !signal.aborted; i++) {
          if (o.live && clock && (i = catchUp(i)) >= end) break;
          const from: FrameSource = source;
          const f = await source.next();
          if (f.index !== i) throw new Error(`internal: synthetic frame ${f.index} where ${i} was due`);
          if (!decided && source === inline) {
            // The first frame pays for JIT compilation: judge the second, unless the first is clearly slow.
            const slow = (i === first && f.renderMs > 12 * WORKER_THRESHOLD_MS) || (i > first && f.renderMs > WORKER_THRESHOLD_MS);
            if (slow || i > first) decided = true;
            if (slow && i + 1 < end) {
              ctx.log.debug({ renderMs: f.renderMs }, 'synthetic: rendering in a worker thread');
              source = new WorkerFrameSource(job, i + 1, end, o.ahead);
            }
          }
          if (o.live && !clock && decided && from === source && ++settled >= WARMUP_FRAMES) {
            clock = true;
            start = Math.max(start, performance.now() - (i - first) * period); // frame i is due now at the latest
          }
          // Rendered, but no buffer would hold it any more: drop it too (the next turn skips to the oldest one held).
          if (o.live && clock && i < oldestHeld()) {
            late(1);
            source.skipTo(i + 1);
            continue;
          }
          if (o.live && !(await sleepUntil(start + (i - first) * period, signal))) break;
          const frame: VideoFrame = {
            type: 'video',
            streamId,
            seq: i,
            ptsMs: (i * 1000) / o.fps,
            arrivalMs: nowMs(),
            width: o.width,
            height: o.height,
            data: f.rgb,
            gtDepth: f.depth,
            intrinsics: K,
          };
          ctx.sequence.value = i + 1;
          await ctx.emit('video', frame);
        }
      },
      async close() {
        await source?.close();
        source = null;
      },
    };
  },
});

/** Waits until performance.now() reaches `at`; false if the signal aborts first. */
function sleepUntil(at: number, signal: AbortSignal): Promise<boolean> {
  return sleep(at - performance.now(), signal);
}
