import { z } from 'zod';
import { defineNode } from '../../graph/node-kind.js';
import { CheckError } from '../../graph/check.js';
import { nowMs, type VideoFrame } from '../../graph/packets.js';
import { listFrames, readRgbImage } from '../../media/frame-folder.js';
import { abortableSleep } from './rtsp.js';

// A folder of PNG/JPEG images as a video, in name order (frame_2 before frame_10). Timestamps
// come from `fps`; `realtime` also paces the frames to it. One image is read at a time and the
// next only when downstream took the last one, so a `block` edge makes it lossless.

export const framesOptions = z
  .object({
    dir: z.string().min(1).describe('Folder of PNG/JPEG images, read in name order.'),
    fps: z.number().positive().max(1000).default(30).describe('Frame rate for timestamps (and pacing when realtime).'),
    loop: z.boolean().default(false).describe('Start again after the last image.'),
    realtime: z.boolean().default(false).describe('Pace frames at fps instead of as fast as downstream takes them.'),
    streamId: z.string().min(1).optional().describe('Stream id stamped on frames (default: the stream or node name).'),
  })
  .strict();

export const framesNode = defineNode({
  kind: 'frames',
  role: 'source',
  description: 'Folder of PNG/JPEG images, in name order',
  inputs: {},
  outputs: { video: 'video' },
  inputPaths: { dir: 'folder' },
  options: framesOptions,
  async check(o) {
    const files = await listFrames(o.dir).catch((e: Error) => {
      throw new CheckError('options.dir', `frames ${o.dir}: ${e.message}`);
    });
    if (files.length === 0) throw new CheckError('options.dir', `frames ${o.dir}: no PNG or JPEG images in the folder`);
  },
  async create(o, ctx) {
    const files = await listFrames(o.dir);
    if (files.length === 0) throw new Error(`frames ${o.dir}: no PNG or JPEG images in the folder`);
    const streamId = o.streamId ?? ctx.stream;
    const frameMs = 1000 / o.fps;
    return {
      async run() {
        ctx.log.info({ dir: o.dir, frames: files.length, fps: o.fps }, 'reading frame folder');
        const start = performance.now();
        let index = 0; // frames emitted so far, across loops
        for (let pass = 1; ; pass++) {
          for (const file of files) {
            if (ctx.signal.aborted) return;
            if (o.realtime) {
              const wait = start + index * frameMs - performance.now();
              if (wait > 0 && !(await abortableSleep(wait, ctx.signal))) return;
            }
            const img = await readRgbImage(file);
            if (ctx.signal.aborted) return;
            const frame: VideoFrame = {
              type: 'video',
              streamId,
              seq: ctx.sequence.value++,
              ptsMs: index * frameMs,
              arrivalMs: nowMs(),
              width: img.width,
              height: img.height,
              data: img.data,
            };
            index++;
            await ctx.emit('video', frame);
          }
          if (!o.loop || ctx.signal.aborted) return;
          await ctx.emit('video', { type: 'discontinuity', streamId, reason: `loop: ${o.dir} starts again (pass ${pass + 1})`, nextSeq: ctx.sequence.value });
        }
      },
    };
  },
});
