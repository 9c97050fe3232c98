import { accessSync, constants, statSync } from 'node:fs';
import { z } from 'zod';
import { defineNode } from '../../graph/node-kind.js';
import { CheckError } from '../../graph/check.js';
import { GStreamerError, readAppSink } from '../../media/appsink-reader.js';
import { quoteProp } from '../../media/launch.js';
import { toFraction } from './test-pattern.js';
import { sourceMetrics } from './rtsp.js';
import { FrameIntrinsics, kOption, kSizeOption, stampIntrinsics } from './intrinsics.js';

// A local V4L2 camera. The device is checked before GStreamer sees it, so a missing or busy
// camera gives one clear line instead of an element error. Frames are live: the appsink drops
// its oldest buffers when downstream is slower. A camera error mid-stream (unplugged, busy) fails
// run(); the runtime then restarts the node with backoff (and create() checks the device again).

export const cameraOptions = z
  .object({
    device: z.string().min(1).default('/dev/video0').describe('V4L2 device.'),
    width: z.number().int().min(8).max(8192).default(640).describe('Requested frame width.'),
    height: z.number().int().min(8).max(8192).default(480).describe('Requested frame height.'),
    fps: z.number().positive().max(1000).default(30).describe('Requested frame rate.'),
    queue: z.number().int().min(1).max(256).default(2).describe('Appsink bound (frames).'),
    firstFrameTimeoutMs: z.number().int().min(100).default(10_000).describe('No first frame this long after start = error (and a restart).'),
    stallTimeoutMs: z.number().int().min(100).default(5000).describe('No frame for this long = stall (and a restart).'),
    streamId: z.string().min(1).optional().describe('Stream id stamped on frames (default: the stream or node name).'),
    K: kOption,
    kSize: kSizeOption,
  })
  .strict();

export type CameraOptions = z.infer<typeof cameraOptions>;

/** The launch string (up to the appsink) for a V4L2 camera. */
export function cameraLaunch(o: Pick<CameraOptions, 'device' | 'width' | 'height' | 'fps'>): string {
  return (
    `v4l2src device=${quoteProp(o.device)} ! videoconvert ! videoscale` +
    ` ! video/x-raw,format=RGB,width=${o.width},height=${o.height}` +
    ` ! videorate ! video/x-raw,framerate=${toFraction(o.fps)}`
  );
}

const V4L2_MAJOR = 81;

/** Throws a clear error unless `device` exists, is a video4linux device and can be opened for reading. */
export function checkCameraDevice(device: string): void {
  let st;
  try {
    st = statSync(device);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new Error(`camera ${device}: no such device`, { cause: e });
    throw new Error(`camera ${device}: is busy or not readable (${code ?? String(e)})`, { cause: e });
  }
  if (!st.isCharacterDevice()) throw new Error(`camera ${device}: not a camera device (not a character device)`);
  // Linux gives video4linux devices major number 81 (/dev/null, a tty or a disk are something else).
  if (process.platform === 'linux' && Math.floor(st.rdev / 256) % 4096 !== V4L2_MAJOR) {
    throw new Error(`camera ${device}: not a video device (a character device, but not video4linux)`);
  }
  try {
    accessSync(device, constants.R_OK | constants.W_OK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new Error(`camera ${device}: is busy or not readable (${code ?? String(e)}${code === 'EACCES' ? ': is the user in the "video" group?' : ''})`, {
      cause: e,
    });
  }
}

export const cameraNode = defineNode({
  kind: 'camera',
  role: 'source',
  description: 'V4L2 camera (live RGB frames)',
  inputs: {},
  outputs: { video: 'video' },
  options: cameraOptions,
  restart: { maxRestarts: Infinity, initialDelayMs: 500, maxDelayMs: 10_000 },
  check(o, ctx) {
    try {
      checkCameraDevice(o.device);
    } catch (e) {
      // Not plugged in yet is a doubt (run waits for it); a file that is no camera is a mistake.
      if (/no such device|busy or not readable/.test((e as Error).message)) ctx.warn((e as Error).message);
      else throw new CheckError('options.device', (e as Error).message);
    }
  },
  create(o, ctx) {
    checkCameraDevice(o.device);
    const launch = cameraLaunch(o);
    const streamId = o.streamId ?? ctx.stream;
    const K = FrameIntrinsics.fromOptions(o);
    const { connected } = sourceMetrics(ctx.metrics.registry);
    connected.set({ node: ctx.name }, 0);
    return {
      async run() {
        ctx.log.info({ device: o.device, width: o.width, height: o.height, fps: o.fps }, 'opening camera');
        const firstSeq = ctx.sequence.value;
        try {
          await readAppSink({
            launch,
            streamId,
            log: ctx.log,
            signal: ctx.signal,
            maxBuffers: o.queue,
            drop: true,
            sync: false,
            firstSeq,
            firstFrameTimeoutMs: o.firstFrameTimeoutMs,
            stallTimeoutMs: o.stallTimeoutMs,
            onFrame: (f) => {
              if (f.seq === firstSeq) connected.set({ node: ctx.name }, 1);
              ctx.sequence.value = f.seq + 1;
              return ctx.emit('video', stampIntrinsics(f, K));
            },
          });
        } catch (e) {
          const msg = e instanceof Error ? e.message : String(e);
          if (/busy/i.test(msg)) throw new GStreamerError(`camera ${o.device}: is busy or not readable (${msg})`);
          throw new GStreamerError(`camera ${o.device}: ${msg}`);
        } finally {
          connected.set({ node: ctx.name }, 0);
        }
      },
    };
  },
});
