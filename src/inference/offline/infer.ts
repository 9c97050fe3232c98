import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { partialPath, removeStalePartials } from '../../io/partial-file.js';
import { basename, extname, join, resolve } from 'node:path';
import type { Logger } from 'pino';
import { DepthEngine, RANDOM_WEIGHTS, SYNTHETIC_ONLY, type EngineDepth } from '../engine/depth-engine.js';
import type { SessionChoices } from '../engine/session-config.js';
import type { PackDevice } from '../pack/load-pack.js';
import type { StageStats } from '../backend/model-stages.js';
import type { PrepTimes } from '../engine/frame-prep.js';
import { readAppSink } from '../../media/appsink-reader.js';
import { decodeToRgbLaunch, isUri } from '../../media/launch.js';
import { listFrames, readRgbImage } from '../../media/frame-folder.js';
import { evenSize, Mp4Writer } from '../../media/mp4-writer.js';
import { frameStride, keepFrame, outputFps } from './temporal-sampling.js';
import { loadNoiseFile } from './noise-file.js';
import { spawnWorker } from '../../util/spawn-worker.js';
import { buildNpyHeader } from '../../io/npy.js';
import type { FinalizeJob, FinalizeMessage } from './finalize-worker.js';
import { UserError } from '../../util/errors.js';

// Offline video-to-depth: the lossless policy around the one engine. Every kept input frame is
// pushed (the decoder waits for the engine), raw depth frames are spilled to disk as they become
// final, and the whole-video min-max normalisation of the reference is applied in a second pass.
// Memory is bounded by the window, not by the video length.

export interface InferOptions {
  readonly input: string;
  readonly outDir: string;
  readonly packDir: string;
  readonly device?: PackDevice;
  readonly threads?: number;
  readonly choices: SessionChoices;
  readonly targetFps?: number;
  readonly processLength?: number;
  /** Frame rate of a folder of frames (a video file knows its own). */
  readonly folderFps?: number;
  readonly noisePath?: string;
  readonly writeNpz?: boolean;
  readonly writeVideos?: boolean;
  /** Deflate the npz like np.savez_compressed. Default false: float depth shrinks only ~13 % and deflating costs more than the rest of the writing. */
  readonly compressNpz?: boolean;
  readonly colormap?: string;
  /** Size of the outputs: the input frames' (depth resized back, as users expect) or the model's processing size (the reference's). Default model. */
  readonly outputSize?: OutputSize;
  readonly log: Logger;
  readonly onProgress?: (framesIn: number, framesOut: number, total: number | undefined) => void;
  /** The outputs are being written (after the last depth frame); `files` are their paths. */
  readonly onWriting?: (files: readonly string[]) => void;
  /** Aborting stops the run: partial outputs are removed and inferVideo rejects with InterruptedError. */
  readonly signal?: AbortSignal;
}

/** The run was stopped (a signal): nothing was written under the outputs' names. */
export class InterruptedError extends Error {
  constructor(readonly reason: string) {
    super(`interrupted (${reason}): no outputs were written`);
    this.name = 'InterruptedError';
  }
}

export type OutputSize = 'input' | 'model';

export interface InferResult {
  readonly name: string;
  readonly frames: number;
  /** The outputs' frame size. */
  readonly width: number;
  readonly height: number;
  /** The size the model processed the frames at. */
  readonly model: { readonly width: number; readonly height: number };
  readonly fps: number;
  readonly files: { npz?: string; vis?: string; depth?: string; latents?: string };
  readonly seconds: number;
  /** Of `seconds`: decoding + inference (until the last depth frame), then writing the outputs. */
  readonly inferSeconds: number;
  readonly writeSeconds: number;
  readonly inferFps: number;
  readonly stats: StageStats;
  /** Frame preparation (resize, CLIP preprocessing, pixel noise), in its own worker. */
  readonly prep: PrepTimes;
  /** Time the inference worker was busy (model runs and the work between them). */
  readonly engineBusyMs: number;
  readonly workerRssBytes: number;
}

export class InputError extends UserError {}

export async function inferVideo(o: InferOptions): Promise<InferResult> {
  const t0 = performance.now();
  const input = o.input;
  const isFolder = !isUri(input) && existsSync(input) && statSync(input).isDirectory();
  if (!isUri(input) && !existsSync(input)) throw new InputError(`input not found: ${input}`);
  const name = basename(resolve(input)).replace(isFolder ? /$/ : new RegExp(`${escapeRe(extname(input))}$`), '') || 'video';
  const createdDir = mkdirSync(o.outDir, { recursive: true }) !== undefined;
  try {
    return await runInfer(o, t0, input, isFolder, name);
  } catch (e) {
    // A failed or interrupted run leaves no empty folder behind it.
    if (createdDir && readdirSync(o.outDir).length === 0) rmSync(o.outDir, { recursive: true, force: true });
    throw o.signal?.aborted && !(e instanceof InterruptedError) ? new InterruptedError(String(o.signal.reason ?? 'aborted')) : e;
  }
}

async function runInfer(o: InferOptions, t0: number, input: string, isFolder: boolean, name: string): Promise<InferResult> {
  const interrupted = () => {
    if (o.signal?.aborted) throw new InterruptedError(String(o.signal.reason ?? 'aborted'));
  };
  // Temporaries of earlier runs that were killed before they could clean up.
  for (const out of [`${name}_depth.npz`, `${name}_vis.mp4`, `${name}_depth.mp4`, `${name}_latents.npy`, `${name}.depth.raw`, `${name}.latents.raw`]) {
    removeStalePartials(join(o.outDir, out));
  }

  const noise = o.noisePath ? await loadNoiseFile(o.noisePath) : undefined;
  // A few frames in flight, so that the next frames are prepared while a window runs.
  const engine = await DepthEngine.open({ packDir: o.packDir, device: o.device, threads: o.threads, choices: o.choices, noise, maxInFlight: 8 });
  o.log.info({ pack: engine.packName }, 'model pack loaded');
  if (engine.randomWeights) o.log.warn({ pack: engine.packName }, `model ${RANDOM_WEIGHTS(engine.packName)}`);
  else if (engine.trainingDomain === 'synthetic')
    o.log.warn({ pack: engine.packName }, `model ${SYNTHETIC_ONLY(engine.packName, [isFolder ? 'frame folder' : 'video'])}`);

  const rawPath = partialPath(join(o.outDir, `${name}.depth.raw`));
  const fd = openSync(rawPath, 'w');
  // --save-latents: the stitched latents, spilled like the depth and written as <name>_latents.npy
  const latRawPath = partialPath(join(o.outDir, `${name}.latents.raw`));
  const latFd = o.choices.keepLatents ? openSync(latRawPath, 'w') : null;
  let latentSize = 0;
  let framesOut = 0;
  let min = Infinity;
  let max = -Infinity;
  let size: { width: number; height: number } | null = null;
  let inputSize: { width: number; height: number } | null = null;
  engine.onDepth = (d: EngineDepth) => {
    if (d.index !== framesOut) throw new Error(`internal: depth frame ${d.index} out of order (expected ${framesOut})`);
    size ??= { width: d.width, height: d.height };
    writeSync(fd, new Uint8Array(d.depth.buffer, d.depth.byteOffset, d.depth.byteLength));
    if (latFd !== null) {
      if (!d.latent) throw new Error('internal: engine returned no latent');
      latentSize = d.latent.length;
      writeSync(latFd, new Uint8Array(d.latent.buffer, d.latent.byteOffset, d.latent.byteLength));
    }
    framesOut++;
    if (d.min < min) min = d.min;
    if (d.max > max) max = d.max;
  };
  engine.onSequence = (s) =>
    o.log.info(
      { resolution: `${s.resolution.width}x${s.resolution.height}`, window: s.window, overlap: s.overlap, steps: s.steps, guidance: s.guidance },
      'sequence started',
    );

  let framesIn = 0;
  let sourceFps = o.folderFps ?? 30;
  let total: number | undefined;
  try {
    if (isFolder) {
      const files = await listFrames(input);
      if (files.length === 0) throw new InputError(`no PNG or JPEG frames in folder ${input}`);
      const stride = frameStride(sourceFps, o.targetFps);
      total = Math.min(Math.ceil(files.length / stride), o.processLength === undefined || o.processLength < 0 ? Infinity : o.processLength);
      for (let i = 0; i < files.length; i++) {
        interrupted();
        const k = keepFrame(i, stride, o.processLength);
        if (k.keep) {
          const img = await readRgbImage(files[i]);
          inputSize ??= { width: img.width, height: img.height };
          await engine.push(img.data, img.width, img.height);
          framesIn++;
          o.onProgress?.(framesIn, framesOut, total);
        }
        if (k.done) break;
      }
    } else {
      const stop = new AbortController();
      const onAbort = () => stop.abort();
      o.signal?.addEventListener('abort', onAbort, { once: true });
      let stride = 1;
      let index = 0;
      let engineError: unknown = null;
      try {
        await readAppSink({
          launch: decodeToRgbLaunch(input),
          streamId: name,
          log: o.log,
          signal: stop.signal,
          maxBuffers: 4,
          drop: false,
          sync: false,
          onStart: ({ fps, durationSec }) => {
            if (fps && fps > 0) sourceFps = fps;
            stride = frameStride(sourceFps, o.targetFps);
            if (durationSec > 0) {
              const est = Math.round((durationSec * sourceFps) / stride);
              total = o.processLength !== undefined && o.processLength >= 0 ? Math.min(est, o.processLength) : est;
            }
          },
          onFrame: async (f) => {
            const k = keepFrame(index++, stride, o.processLength);
            if (k.keep) {
              inputSize ??= { width: f.width, height: f.height };
              await engine.push(f.data, f.width, f.height).catch((e: unknown) => {
                engineError = e;
                throw e;
              });
              framesIn++;
              o.onProgress?.(framesIn, framesOut, total);
            }
            if (k.done) stop.abort();
          },
        });
      } catch (e) {
        // Engine failures (bad settings, model errors) keep their own class and message.
        if (engineError !== null && e === engineError) throw e;
        throw new InputError(`cannot decode video ${input}: ${(e as Error).message}`);
      } finally {
        o.signal?.removeEventListener('abort', onAbort);
      }
    }
    interrupted();
    if (framesIn === 0) throw new InputError(`no frames decoded from ${input}`);
    await engine.end();
    interrupted();
    o.onProgress?.(framesIn, framesOut, total);
  } catch (e) {
    closeSync(fd);
    rmSync(rawPath, { force: true });
    if (latFd !== null) {
      closeSync(latFd);
      rmSync(latRawPath, { force: true });
    }
    await engine.close();
    throw e;
  }
  closeSync(fd);
  if (latFd !== null) closeSync(latFd);
  const { stats, rssBytes, prep, busyMs: engineBusyMs } = await engine.stats();
  await engine.close();
  if (framesOut !== framesIn || !size) throw new Error(`internal: ${framesIn} frames in but ${framesOut} depth frames out`);
  const inferSeconds = (performance.now() - t0) / 1000;

  const model = size as { width: number; height: number };
  const given = inputSize as { width: number; height: number } | null;
  const { width, height } = o.outputSize === 'input' && given ? given : model;
  const fps = outputFps(sourceFps, o.targetFps);
  const files: InferResult['files'] = {};
  const writeNpz = o.writeNpz ?? true;
  const writeVideos = o.writeVideos ?? true;
  if (writeNpz) files.npz = join(o.outDir, `${name}_depth.npz`);
  if (writeVideos) {
    files.vis = join(o.outDir, `${name}_vis.mp4`);
    files.depth = join(o.outDir, `${name}_depth.mp4`);
  }
  if (latFd !== null) {
    const { channels, downsample } = engine.latentLayout;
    const shape = [framesOut, channels, model.height / downsample, model.width / downsample];
    if (shape[1] * shape[2] * shape[3] !== latentSize) throw new Error(`internal: latent size ${latentSize} does not match ${shape.join('x')}`);
    files.latents = join(o.outDir, `${name}_latents.npy`);
    writeNpyFromRaw(latRawPath, files.latents, shape);
  }
  try {
    interrupted();
    o.log.info({ frames: framesOut, files: Object.values(files) }, 'writing outputs');
    o.onWriting?.(Object.values(files).filter((f): f is string => typeof f === 'string' && f !== files.latents));
    await finalize(
      {
        rawPath,
        frames: framesOut,
        width: model.width,
        height: model.height,
        outWidth: width,
        outHeight: height,
        min,
        max,
        npzPath: files.npz ?? null,
        compress: o.compressNpz ?? false,
        videos: writeVideos,
        colormap: o.colormap ?? 'inferno',
      },
      files,
      fps,
      o.signal,
    );
  } catch (e) {
    // Nothing half-written stays under an output's name (the latents were complete: they go too).
    if (files.latents) rmSync(files.latents, { force: true });
    throw e;
  } finally {
    rmSync(rawPath, { force: true });
  }
  const seconds = (performance.now() - t0) / 1000;
  return {
    name,
    frames: framesOut,
    width,
    height,
    model,
    fps,
    files,
    seconds,
    inferSeconds,
    writeSeconds: seconds - inferSeconds,
    inferFps: framesOut / inferSeconds,
    stats,
    prep,
    engineBusyMs,
    workerRssBytes: rssBytes,
  };
}

async function finalize(job: FinalizeJob, files: InferResult['files'], fps: number, signal?: AbortSignal): Promise<void> {
  // The frames come at the model's size; GStreamer scales them to the output size (even sides for H.264).
  const video = { width: job.width, height: job.height, fps, scaleTo: evenSize(job.outWidth, job.outHeight) };
  const vis = job.videos ? new Mp4Writer(files.vis!, { ...video, format: 'RGB' }) : null;
  const gray = job.videos ? new Mp4Writer(files.depth!, { ...video, format: 'GRAY8' }) : null;
  // The npz and the videos from two threads, each reading the spill itself: on two cores neither waits for the other.
  const jobs =
    job.npzPath && job.videos
      ? [
          { ...job, videos: false },
          { ...job, npzPath: null },
        ]
      : [job];
  const workers = jobs.map((j) => spawnWorker(import.meta.url, 'finalize-worker', { workerData: j }));
  let ok = false;
  try {
    await new Promise<void>((resolveDone, reject) => {
      const onAbort = () => reject(new InterruptedError(String(signal?.reason ?? 'aborted')));
      if (signal?.aborted) onAbort();
      signal?.addEventListener('abort', onAbort, { once: true });
      let running = workers.length;
      for (const worker of workers) {
        worker.on('error', reject);
        worker.on('message', (m: FinalizeMessage) => {
          try {
            if (m.type === 'frame') {
              gray!.write(m.gray);
              vis!.write(m.vis);
              worker.postMessage('next');
            } else if (m.type === 'done') {
              if (--running === 0) resolveDone();
            } else reject(new Error(`writing outputs failed: ${m.message}`));
          } catch (e) {
            reject(e as Error);
          }
        });
      }
    });
    ok = true;
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
    if (ok) await Promise.all([vis?.finish(), gray?.finish()]);
    else {
      vis?.abort();
      gray?.abort();
      if (job.npzPath) rmSync(partialPath(job.npzPath), { force: true });
    }
  }
}

/** Header + the spilled float32 frames, streamed: the latents never sit in memory together. */
function writeNpyFromRaw(rawPath: string, npyPath: string, shape: number[]): void {
  const tmp = partialPath(npyPath);
  const out = openSync(tmp, 'w');
  const src = openSync(rawPath, 'r');
  try {
    writeSync(out, buildNpyHeader('float32', shape));
    const buf = Buffer.allocUnsafe(1 << 20);
    for (let n; (n = readSync(src, buf, 0, buf.length, null)) > 0;) writeSync(out, buf, 0, n);
  } finally {
    closeSync(src);
    closeSync(out);
    rmSync(rawPath, { force: true });
  }
  renameSync(tmp, npyPath);
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
