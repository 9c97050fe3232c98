import { createRequire } from 'node:module';
import { isMainThread } from 'node:worker_threads';
import { setFlagsFromString } from 'node:v8';
import type { BusMessage, Caps, GstElement, Pipeline as GstPipeline } from 'gstreamer-superficial';

// The GStreamer addon must live in one thread per process (loading it in a worker after the main
// thread crashed Node), so it is loaded lazily, on the main thread only.

let addon: typeof import('gstreamer-superficial') | null = null;

/**
 * The binding hands every frame over as a fresh Buffer (its own malloc'd copy: 6.2 MB per 1080p
 * RGB frame). By default V8 frees dead backing stores in a concurrent task after a scavenge and
 * only then counts them as freed. With 2 cores busy decoding, that task lags: --trace-gc showed a
 * full mark-compact ("external memory pressure") after nearly every scavenge, about one per 7-10
 * frames. Sweeping inside the scavenge instead keeps the frames to scavenges. Measured on 600
 * 1080p frames (bench/ingest.bench.ts, load 6-8): 244 GCs, 1.4-1.9 s of GC pauses, 8.2-8.9 s CPU
 * by default; about 100 scavenges, 0.1-0.5 s, 6.0-7.6 s CPU with this flag. The flag is
 * process-wide (workers too); DCL_CONCURRENT_AB_SWEEP=1 keeps V8's default.
 */
export function tuneGcForFrameBuffers(): void {
  if (gcTuned || process.env.DCL_CONCURRENT_AB_SWEEP === '1') return;
  gcTuned = true;
  setFlagsFromString('--no-concurrent-array-buffer-sweeping');
}
let gcTuned = false;

export function gstreamer(): typeof import('gstreamer-superficial') {
  if (!isMainThread) throw new Error('GStreamer may only be used on the main thread');
  if (!addon) {
    tuneGcForFrameBuffers();
    try {
      addon = createRequire(import.meta.url)('gstreamer-superficial') as typeof import('gstreamer-superficial');
    } catch (e) {
      throw new Error(
        `cannot load the GStreamer binding (gstreamer-superficial): ${(e as Error).message}. ` +
          'Install GStreamer (see README: scripts/setup.sh) and run npm ci again.',
        { cause: e },
      );
    }
  }
  return addon;
}

export function createPipeline(launch: string): GstPipeline {
  const { Pipeline } = gstreamer();
  let pipeline: GstPipeline;
  try {
    pipeline = new Pipeline(launch);
  } catch (e) {
    throw new Error(`GStreamer rejected the pipeline "${launch}": ${(e as Error).message}`, { cause: e });
  }
  // pollBus() re-arms a blocking bus pop on a threadpool thread until it sees the pipeline in NULL.
  // By default stop() flushes the bus on READY->NULL: a waiting pop can lose stop()'s messages to
  // that flush and then wait forever, and process.exit() hangs joining its thread (seen in ~1 of
  // 10 CLI runs stopped by a signal). Without the flush, stop()'s own messages end the poll.
  pipeline['auto-flush-bus'] = false;
  running.add(pipeline);
  const stop = pipeline.stop.bind(pipeline);
  pipeline.stop = () => {
    running.delete(pipeline);
    stop();
  };
  return pipeline;
}

/** Pipelines created and not yet stopped: a bus poll or appsink pull may be blocked on each. */
const running = new Set<GstPipeline>();

/**
 * Stop every pipeline still running. A thread blocked in a bus pop or an appsink pull is joined
 * when the process exits, so an exit that skipped the owners' cleanup (a fatal error, a second
 * signal) would hang forever; stopping the pipelines first unblocks those threads.
 */
export function stopAllPipelines(): void {
  for (const p of [...running]) {
    try {
      p.stop();
    } catch {
      /* exiting anyway: a pipeline that cannot stop is not worth a second failure */
    }
  }
}

export type { BusMessage, Caps, GstElement, GstPipeline };

/** GStreamer pads each RGB row to a multiple of 4 bytes. */
export function rgbStride(width: number): number {
  return Math.ceil((width * 3) / 4) * 4;
}

/** Copy padded RGB rows into a tightly packed buffer (a no-op view when there is no padding). */
export function packRgb(buf: Buffer, width: number, height: number): Uint8Array {
  const stride = rgbStride(width);
  const row = width * 3;
  const view = new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  if (stride === row) {
    if (view.byteLength < row * height) throw new Error(`short video buffer: ${view.byteLength} bytes for ${width}x${height} RGB`);
    return view.subarray(0, row * height);
  }
  if (view.byteLength < stride * (height - 1) + row)
    throw new Error(`short video buffer: ${view.byteLength} bytes for ${width}x${height} RGB (stride ${stride})`);
  const out = new Uint8Array(row * height);
  for (let y = 0; y < height; y++) out.set(view.subarray(y * stride, y * stride + row), y * row);
  return out;
}

/** Parse "30/1" style fractions. */
export function parseFraction(f: string | undefined): number | undefined {
  if (!f) return undefined;
  const [n, d] = f.split('/').map(Number);
  return d ? n / d : undefined;
}
