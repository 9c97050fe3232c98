import { statSync } from 'node:fs';
import { z } from 'zod';
import { defineNode } from '../../graph/node-kind.js';
import { CheckError } from '../../graph/check.js';
import type { VideoFrame } from '../../graph/packets.js';
import { readAppSink } from '../../media/appsink-reader.js';
import { decodeToRgbLaunch, isUri } from '../../media/launch.js';
import { redactUrls } from '../../util/redact.js';
import { FrameIntrinsics, kOption, kSizeOption, stampIntrinsics } from './intrinsics.js';

// A video file (or a URL uridecodebin can open) as a source. The appsink never drops
// (drop=false) and the next frame is pulled only when the downstream edge has taken the last
// one: with a `block` edge nothing is lost, whatever the speed of the consumers. `realtime`
// paces frames to the file's timestamps (sync=true); by default the file is read as fast as
// downstream takes it. `loop` starts again at end of stream, with a discontinuity in between;
// sequence numbers and timestamps keep increasing across loops.

export const fileOptions = z
  .object({
    path: z.string().min(1).describe('Local path, or a URI (file://, http://, rtsp://...) opened with uridecodebin.'),
    loop: z.boolean().default(false).describe('Start again at the end (a discontinuity in between; seq and timestamps keep increasing).'),
    realtime: z.boolean().default(false).describe("Pace frames at the file's rate instead of as fast as downstream takes them."),
    width: z.number().int().min(8).max(8192).optional().describe('Scale to this width (keeps the aspect when height is unset).'),
    height: z.number().int().min(8).max(8192).optional().describe('Scale to this height.'),
    queue: z.number().int().min(1).max(256).default(4).describe('Appsink bound (frames).'),
    streamId: z.string().min(1).optional().describe('Stream id stamped on frames (default: the stream or node name).'),
    K: kOption,
    kSize: kSizeOption,
  })
  .strict();

export type FileOptions = z.infer<typeof fileOptions>;

/** The launch string (up to the appsink) for a file source: scaled (when asked) before the RGB conversion. */
export function fileLaunch(o: Pick<FileOptions, 'path' | 'width' | 'height'>): string {
  return decodeToRgbLaunch(o.path, { width: o.width, height: o.height });
}

export const fileNode = defineNode({
  kind: 'file',
  role: 'source',
  description: 'Video file or URL decoded to RGB (lossless behind a block edge)',
  inputs: {},
  outputs: { video: 'video' },
  inputPaths: { path: 'file' },
  options: fileOptions,
  check(o) {
    if (isUri(o.path)) return;
    let st;
    try {
      st = statSync(o.path);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new CheckError('options.path', `file ${o.path}: ${code === 'ENOENT' ? 'no such file' : `cannot read it (${code ?? String(e)})`}`);
    }
    if (!st.isFile()) throw new CheckError('options.path', `file ${o.path}: not a regular file`);
  },
  create(o, ctx) {
    const shown = redactUrls(o.path);
    if (!isUri(o.path)) {
      let isFile: boolean;
      try {
        isFile = statSync(o.path).isFile();
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        throw new Error(`file ${shown}: ${code === 'ENOENT' ? 'no such file' : `cannot read it (${code ?? String(e)})`}`, { cause: e });
      }
      if (!isFile) throw new Error(`file ${shown}: not a regular file`);
    }
    const launch = fileLaunch(o);
    const streamId = o.streamId ?? ctx.stream;
    const K = FrameIntrinsics.fromOptions(o);
    return {
      async run() {
        let ptsBase = 0;
        for (let pass = 1; ; pass++) {
          let lastPts = 0;
          let fps: number | undefined;
          ctx.log.info({ path: shown, pass }, 'reading video file');
          const res = await readAppSink({
            launch,
            streamId,
            log: ctx.log,
            signal: ctx.signal,
            maxBuffers: o.queue,
            drop: false,
            sync: o.realtime,
            firstSeq: ctx.sequence.value,
            onStart: (info) => {
              fps = info.fps;
              ctx.log.info({ width: info.caps.width, height: info.caps.height, fps: info.fps, durationSec: info.durationSec }, 'video file opened');
            },
            onFrame: (f: VideoFrame) => {
              ctx.sequence.value = f.seq + 1;
              lastPts = f.ptsMs;
              const out = stampIntrinsics(f, K);
              return ctx.emit('video', ptsBase === 0 ? out : { ...out, ptsMs: f.ptsMs + ptsBase });
            },
          });
          ctx.log.info({ path: shown, frames: res.frames, end: res.end }, 'video file ended');
          if (res.end === 'stopped' || ctx.signal.aborted || !o.loop) return;
          if (res.frames === 0) throw new Error(`file ${shown}: no video frames to loop over`);
          ptsBase += lastPts + (fps && fps > 0 ? 1000 / fps : 1);
          await ctx.emit('video', { type: 'discontinuity', streamId, reason: `loop: ${shown} starts again`, nextSeq: ctx.sequence.value });
        }
      },
    };
  },
});
