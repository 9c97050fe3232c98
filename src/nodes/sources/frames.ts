import { z } from 'zod';
import { defineNode } from '../../graph/node-kind.js';
import { CheckError } from '../../graph/check.js';
import { nowMs, type VideoFrame } from '../../graph/packets.js';
import { listFrames, readRgbImage } from '../../media/frame-folder.js';
import { sleep } from '../../util/sleep.js';
import { FrameIntrinsics, kOption, kSizeOption, readKFile, stampIntrinsics } from './intrinsics.js';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

// A folder of PNG/JPEG images as a video, in name order (frame_2 before frame_10). Timestamps
// come from `fps`; `realtime` also paces the frames to it. One image is read at a time and the
// next only when downstream took the last one, so a `block` edge makes it lossless.
// Intrinsics: the `K` option, else a K.txt (3x3 matrix, as RGB-D datasets ship it) in the folder or next to it
// (DATASET/K.txt beside DATASET/rgb/), when there is one.

export const framesOptions = z
  .object({
    dir: z.string().min(1).describe('Folder of PNG/JPEG images, read in name order.'),
    fps: z.number().positive().max(1000).default(30).describe('Frame rate for timestamps (and pacing when realtime).'),
    loop: z.boolean().default(false).describe('Start again after the last image.'),
    realtime: z.boolean().default(false).describe('Pace frames at fps instead of as fast as downstream takes them.'),
    streamId: z.string().min(1).optional().describe('Stream id stamped on frames (default: the stream or node name).'),
    K: kOption.describe('Camera intrinsics in pixels: [fx, fy, cx, cy] or the 3x3 matrix; default: K.txt in the folder or its parent folder, when present.'),
    kSize: kSizeOption,
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
    const K = folderIntrinsics(o, ctx.log);
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
              if (wait > 0 && !(await sleep(wait, ctx.signal))) return;
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
            await ctx.emit('video', stampIntrinsics(frame, K));
          }
          if (!o.loop || ctx.signal.aborted) return;
          await ctx.emit('video', { type: 'discontinuity', streamId, reason: `loop: ${o.dir} starts again (pass ${pass + 1})`, nextSeq: ctx.sequence.value });
        }
      },
    };
  },
});

/** K.txt files looked for, in order, for a folder of frames. */
export function kFileCandidates(dir: string): string[] {
  return [join(dir, 'K.txt'), join(dirname(dir), 'K.txt')];
}

/** The `K` option, else the first K.txt found beside the frames (a malformed one is reported and ignored). */
function folderIntrinsics(
  o: z.infer<typeof framesOptions>,
  log: { info: (o: object, m: string) => void; warn: (o: object, m: string) => void },
): FrameIntrinsics | null {
  if (o.K !== undefined) return FrameIntrinsics.fromOptions(o);
  const size = o.kSize ? { width: o.kSize[0], height: o.kSize[1] } : undefined;
  for (const file of kFileCandidates(o.dir)) {
    if (!existsSync(file)) continue;
    try {
      const k = readKFile(file);
      log.info({ file, ...k }, 'frames: camera intrinsics from K.txt');
      return new FrameIntrinsics(k, size);
    } catch (e) {
      log.warn({ file, err: (e as Error).message }, 'frames: ignoring a K.txt that is not a 3x3 matrix');
      return null;
    }
  }
  return null;
}
