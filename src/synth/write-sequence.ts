/**
 * Writes a synthetic sequence to a folder: rgb/000000.png (8-bit RGB), depth/000000.png (16-bit
 * grey, millimetres, 0 = invalid) and meta.json (seed, size, intrinsics, depth scale, camera poses
 * and the full scene description, from which every frame can be re-rendered).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { encodePng16Gray, encodePngRGB } from '../io/png16.js';
import { generateScene, SYNTH_VERSION, type SceneChoice } from './generate.js';
import { cameraPose, cameraToWorld, intrinsics } from './camera.js';
import { DEPTH_SCALE, depthToMillimetres } from './depth-export.js';
import { InlineFrameSource, WorkerFrameSource, type FrameSource, type RenderJob } from './frame-source.js';
import { OptionError } from '../util/errors.js';

export interface WriteSequenceOptions {
  readonly outDir: string;
  readonly seed: number;
  readonly frames: number;
  readonly width: number;
  readonly height: number;
  readonly fps: number;
  /** Horizontal field of view, degrees. */
  readonly fovDeg: number;
  readonly scene?: SceneChoice;
  /** Render in a worker thread while this thread encodes PNGs (default: when frames > 1). */
  readonly worker?: boolean;
  readonly onProgress?: (done: number, total: number) => void;
}

export interface WriteSequenceResult {
  readonly frames: number;
  readonly kind: string;
  readonly objects: number;
  readonly seconds: number;
  readonly renderMs: number;
  readonly metaPath: string;
}

export async function writeSynthSequence(o: WriteSequenceOptions): Promise<WriteSequenceResult> {
  if (!Number.isInteger(o.frames) || o.frames < 1) throw new OptionError(`frames must be a positive integer, got ${o.frames}`);
  if (!(o.fps > 0)) throw new OptionError(`fps must be positive, got ${o.fps}`);
  const scene = generateScene(o.seed, o.scene ?? 'auto');
  const K = intrinsics(o.width, o.height, o.fovDeg);
  const job: RenderJob = { scene, width: o.width, height: o.height, fovDeg: o.fovDeg, fps: o.fps };
  await mkdir(join(o.outDir, 'rgb'), { recursive: true });
  await mkdir(join(o.outDir, 'depth'), { recursive: true });
  const t0 = performance.now();
  const useWorker = o.worker ?? o.frames > 1;
  const source: FrameSource = useWorker ? new WorkerFrameSource(job, 0, o.frames, 3) : new InlineFrameSource(job, 0);
  const poses: number[][] = [];
  const mm = new Uint16Array(o.width * o.height);
  let renderMs = 0;
  try {
    for (let i = 0; i < o.frames; i++) {
      const f = await source.next();
      renderMs += f.renderMs;
      const name = `${String(i).padStart(6, '0')}.png`;
      await writeFile(join(o.outDir, 'rgb', name), encodePngRGB(f.rgb, o.width, o.height));
      await writeFile(join(o.outDir, 'depth', name), encodePng16Gray(depthToMillimetres(f.depth, mm), o.width, o.height));
      poses.push(cameraToWorld(cameraPose(scene.camera, i / o.fps)).map((v) => Number(v.toFixed(6))));
      o.onProgress?.(i + 1, o.frames);
    }
  } finally {
    await source.close();
  }
  const meta = {
    generator: 'depthcrafter-live synth',
    version: SYNTH_VERSION,
    seed: o.seed,
    scene: scene.kind,
    width: o.width,
    height: o.height,
    frames: o.frames,
    fps: o.fps,
    fov: o.fovDeg,
    fovAxis: 'horizontal',
    intrinsics: { fx: K.fx, fy: K.fy, cx: K.cx, cy: K.cy },
    depthScale: DEPTH_SCALE,
    depth: 'planar depth (z in the camera frame), metres = value * depthScale; 0 = invalid (sky); clamped to 65535',
    files: { rgb: 'rgb/%06d.png', depth: 'depth/%06d.png' },
    axes: 'camera: x right, y down, z forward (OpenCV); world: y up, metres; frame i is time i / fps',
    cameraToWorld: poses,
    description: scene,
  };
  const metaPath = join(o.outDir, 'meta.json');
  await writeFile(metaPath, `${JSON.stringify(meta, null, 1)}\n`);
  return { frames: o.frames, kind: scene.kind, objects: scene.objects.length, seconds: (performance.now() - t0) / 1000, renderMs, metaPath };
}
