import { parentPort, workerData } from 'node:worker_threads';
import { open } from 'node:fs/promises';
import { NpzWriter } from '../../io/npz-writer.js';
import { applyColormap, colormapByName } from '../../io/colormap.js';
import { resizeBilinearPlane } from '../image/resize.js';

// Second pass of offline inference, off the main thread: reads the raw depth frames spilled to
// disk, applies the reference's whole-video min-max normalisation, streams them into the .npz
// (resized to the output size here), and hands grey and colour-mapped frames at the model's size
// to the main thread for the MP4 encoders (GStreamer lives on the main thread and scales them to
// the output size in C). Memory stays at a few frames whatever the video length.

export interface FinalizeJob {
  readonly rawPath: string;
  readonly frames: number;
  /** The spilled frames' size (the model's processing size). */
  readonly height: number;
  readonly width: number;
  /** The outputs' size: the input frame's (`--output-size input`) or the same as the spill. */
  readonly outHeight: number;
  readonly outWidth: number;
  readonly min: number;
  readonly max: number;
  readonly npzPath: string | null;
  readonly compress: boolean;
  readonly videos: boolean;
  readonly colormap: string;
}

export type FinalizeMessage = { type: 'frame'; index: number; gray: Uint8Array; vis: Uint8Array } | { type: 'done' } | { type: 'error'; message: string };

const job = workerData as FinalizeJob;
const port = parentPort!;
let credits = 2;
let wake: (() => void) | null = null;
port.on('message', () => {
  credits++;
  wake?.();
});

async function run(): Promise<void> {
  const plane = job.height * job.width;
  const outPlane = job.outHeight * job.outWidth;
  const npz = job.npzPath ? await NpzWriter.create(job.npzPath, { compress: job.compress }) : null;
  const resized = npz !== null && (job.outHeight !== job.height || job.outWidth !== job.width);
  const raw = await open(job.rawPath, 'r');
  const arr = npz?.beginArray('depth', 'float32', [job.frames, job.outHeight, job.outWidth]);
  const lut = colormapByName(job.colormap);
  const range = Math.fround(job.max - job.min);
  const buf = new Float32Array(plane);
  const outBuf = resized ? new Float32Array(outPlane) : buf;
  try {
    for (let f = 0; f < job.frames; f++) {
      const bytes = new Uint8Array(buf.buffer);
      const { bytesRead } = await raw.read(bytes, 0, bytes.byteLength, f * bytes.byteLength);
      if (bytesRead !== bytes.byteLength) throw new Error(`raw depth spill file is short at frame ${f}`);
      for (let i = 0; i < plane; i++) buf[i] = range > 0 ? Math.fround(buf[i] - job.min) / range : 0;
      // Normalised first, then resized: bilinear keeps [0,1], and the model-size values stay the reference's.
      if (resized) resizeBilinearPlane(buf, job.width, job.height, job.outWidth, job.outHeight, outBuf);
      // The npz chunk deflates on the thread pool while this thread makes the video frames (both only read outBuf).
      const written = arr?.write(outBuf);
      written?.catch(() => {}); // awaited below; no unhandled rejection while waiting for credits
      if (job.videos) {
        while (credits === 0) await new Promise<void>((r) => (wake = r));
        credits--;
        // At the model's size: GStreamer scales the 8-bit frames to the output size.
        const gray = new Uint8Array(plane);
        for (let i = 0; i < plane; i++) gray[i] = Math.min(255, Math.max(0, Math.trunc(buf[i] * 255)));
        const vis = applyColormap(buf, lut, new Uint8Array(plane * 3));
        port.postMessage({ type: 'frame', index: f, gray, vis } satisfies FinalizeMessage, [gray.buffer as ArrayBuffer, vis.buffer as ArrayBuffer]);
      }
      await written;
    }
    await arr?.end();
    await npz?.close();
  } catch (e) {
    await npz?.abort().catch(() => {});
    throw e;
  } finally {
    await raw.close();
  }
}

run().then(
  () => port.postMessage({ type: 'done' } satisfies FinalizeMessage),
  (e: unknown) => port.postMessage({ type: 'error', message: e instanceof Error ? e.message : String(e) } satisfies FinalizeMessage),
);
