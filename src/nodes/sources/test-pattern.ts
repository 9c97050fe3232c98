import { z } from 'zod';
import { defineNode } from '../../graph/node-kind.js';
import { readAppSink } from '../../media/appsink-reader.js';

// GStreamer's videotestsrc, for demos and tests. `live: true` paces frames in real time (like a
// camera); `live: false` produces as fast as downstream takes them.

const PATTERNS = [
  'smpte',
  'snow',
  'black',
  'white',
  'red',
  'green',
  'blue',
  'checkers-1',
  'checkers-2',
  'checkers-4',
  'checkers-8',
  'circular',
  'blink',
  'smpte75',
  'zone-plate',
  'gamut',
  'chroma-zone-plate',
  'solid-color',
  'ball',
  'smpte100',
  'bar',
  'pinwheel',
  'spokes',
  'gradient',
  'colors',
] as const;

export const testPatternOptions = z
  .object({
    pattern: z.enum(PATTERNS).default('ball').describe('GStreamer videotestsrc pattern.'),
    width: z.number().int().min(8).max(8192).default(320).describe('Frame width.'),
    height: z.number().int().min(8).max(8192).default(240).describe('Frame height.'),
    fps: z.number().positive().max(1000).default(30).describe('Frame rate.'),
    frames: z.number().int().min(-1).default(-1).describe('Number of frames, or -1 for an endless stream.'),
    live: z.boolean().default(true).describe('Pace frames in real time (false: as fast as downstream takes them).'),
    streamId: z.string().min(1).optional().describe('Stream id stamped on frames (default: the stream or node name).'),
    queue: z.number().int().min(1).max(256).default(4).describe('Appsink bound (frames).'),
  })
  .strict();

export const testPatternNode = defineNode({
  kind: 'test-pattern',
  role: 'source',
  description: 'GStreamer videotestsrc frames (RGB)',
  inputs: {},
  outputs: { video: 'video' },
  options: testPatternOptions,
  restart: { maxRestarts: 5, initialDelayMs: 200, maxDelayMs: 5000 },
  create(o, ctx) {
    const fpsFrac = toFraction(o.fps);
    const launch =
      `videotestsrc pattern=${o.pattern} is-live=${o.live} num-buffers=${o.frames}` +
      ` ! video/x-raw,width=${o.width},height=${o.height},framerate=${fpsFrac}` +
      ` ! videoconvert ! video/x-raw,format=RGB`;
    return {
      async run() {
        await readAppSink({
          launch,
          streamId: o.streamId ?? ctx.stream,
          log: ctx.log,
          signal: ctx.signal,
          maxBuffers: o.queue,
          drop: o.live,
          sync: false,
          firstSeq: ctx.sequence.value,
          onFrame: (f) => {
            ctx.sequence.value = f.seq + 1;
            return ctx.emit('video', f);
          },
        });
      },
    };
  },
});

/** 29.97 -> "30000/1001"; integers stay integers. */
export function toFraction(fps: number): string {
  if (Number.isInteger(fps)) return `${fps}/1`;
  const d = 1001;
  const n = Math.round(fps * d);
  if (Math.abs(n / d - fps) < 1e-6) return `${n}/${d}`;
  return `${Math.round(fps * 1000)}/1000`;
}
