import type { Command } from 'commander';
import { basename } from 'node:path';
import { progressLine } from '../progress.js';
import { inferVideo, type OutputSize } from '../../inference/offline/infer.js';
import { createLogger } from '../../util/log.js';
import { UsageError } from '../usage-error.js';
import { exitBySignal } from '../exit.js';
import { DEFAULT_PACK } from '../../inference/pack/default-pack.js';
import { resolvePackArg } from '../../graph/input-paths.js';
import type { PackDevice } from '../../inference/pack/load-pack.js';
import type { StitchMode } from '../../inference/engine/depth-session.js';
import { collectSet, intOption, numberOption } from '../options.js';
import { cliProviderOptions } from '../../inference/pack/provider-options.js';

function parseOutputSize(v: string): OutputSize {
  if (v !== 'input' && v !== 'model') throw new UsageError(`--output-size must be input or model (got ${v})`);
  return v;
}

function parseStitch(v: string): StitchMode {
  if (v !== 'full' && v !== 'init-only' && v !== 'average') throw new UsageError(`--stitch must be full, init-only or average (got ${v})`);
  return v;
}

export function registerInfer(program: Command): void {
  program
    .command('infer')
    .description('Offline video-to-depth: writes DIR/<name>_depth.npz, <name>_vis.mp4 and <name>_depth.mp4')
    .argument('<input>', 'video file, URL, or folder of PNG/JPEG frames (sorted by name)')
    .requiredOption('-o, --out <dir>', 'output folder')
    .option('-m, --model <pack>', 'model pack folder', DEFAULT_PACK)
    .option('--device <device>', 'cpu | cuda | tensorrt | webgpu', 'cpu')
    .option('--threads <n>', 'ONNX Runtime intra-op threads per session (default: one per core)', intOption('--threads'))
    .option('--provider-option <key=value>', 'execution-provider option, repeatable: deviceId, webgpuPreferredLayout, ... (docs/gpu.md)', collectSet, [])
    .option('--max-res <n>', 'longest side limit (resolution rounded to multiples of 64)', intOption('--max-res'))
    .option('--dataset <name>', 'fixed resolution preset: sintel, scannet, KITTI, bonn, NYUv2')
    .option('--window <n>', 'frames per window (1..110)', intOption('--window'))
    .option('--overlap <n>', 'frames shared by consecutive windows', intOption('--overlap'))
    .option('--steps <n>', 'denoising steps', intOption('--steps'))
    .option('--guidance <g>', 'classifier-free guidance scale (1 disables it)', numberOption('--guidance'))
    .option('--seed <n>', 'noise seed', intOption('--seed'), 42)
    .option('--target-fps <f>', 'temporal sampling target, -1 keeps the source rate', numberOption('--target-fps'), -1)
    .option('--process-length <n>', 'process at most N frames, -1 for all', intOption('--process-length'), -1)
    .option('--fps <f>', 'frame rate of a folder of frames', numberOption('--fps'), 30)
    .option('--stitch <mode>', 'window joining: full (reference), init-only or average (ablation baselines)', 'full')
    .option('--noise <file.npz>', 'external noise: arrays "pixel" [N,3,H,W] and "latent" [1,W,4,h,w]')
    .option('--save-latents', 'also write <name>_latents.npy: the stitched latents [N,4,h,w] that were decoded')
    .option(
      '--output-size <size>',
      "input: depth resized back to the input frames' size and aspect; model: the model's processing size (the reference's)",
      'input',
    )
    .option('--no-videos', 'skip the MP4 outputs')
    .option('--compress', 'deflate the .npz like np.savez_compressed (float depth: ~13 % smaller, slower to write)')
    .option('--no-compress', 'store the .npz uncompressed (the default)')
    .option('--json', 'print the result as JSON on stdout')
    .action(async (input: string, o: Record<string, unknown>) => {
      const log = createLogger({ level: o.json ? 'warn' : undefined });
      const tty = process.stderr.isTTY === true;
      let lastDraw = -Infinity;
      const started = performance.now();
      let writeStarted = started;
      let writeTimer: NodeJS.Timeout | undefined;
      let last = { fin: 0, fout: 0, total: undefined as number | undefined };
      const say = (line: string) => process.stderr.write(tty ? `\r  ${line}\x1b[K` : `${line}\n`);
      // First signal: stop and remove partial outputs; a second one exits at once.
      const stop = new AbortController();
      const onSignal = (sig: NodeJS.Signals) => {
        if (stop.signal.aborted) exitBySignal(sig, log);
        log.warn({ signal: sig }, 'stopping: removing partial outputs');
        stop.abort(sig);
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      try {
        // checked here; they reach the inference worker through DCL_PROVIDER_OPTIONS
        cliProviderOptions(o.providerOption as string[], o.device as string, (note) => log.warn(note));
        const result = await inferVideo({
          signal: stop.signal,
          input,
          outDir: o.out as string,
          packDir: resolvePackArg(o.model as string),
          device: o.device as PackDevice,
          threads: o.threads as number | undefined,
          choices: {
            window: o.window as number | undefined,
            overlap: o.overlap as number | undefined,
            steps: o.steps as number | undefined,
            guidance: o.guidance as number | undefined,
            seed: o.seed as number,
            maxRes: o.maxRes as number | undefined,
            resolution: o.dataset as string | undefined,
            stitch: parseStitch(o.stitch as string),
            keepLatents: o.saveLatents === true,
          },
          targetFps: o.targetFps as number,
          processLength: o.processLength as number,
          folderFps: o.fps as number,
          noisePath: o.noise as string | undefined,
          writeVideos: o.videos as boolean,
          outputSize: parseOutputSize(o.outputSize as string),
          compressNpz: o.compress as boolean,
          log,
          onProgress: (fin, fout, total) => {
            last = { fin, fout, total };
            const now = performance.now();
            // A terminal gets one line redrawn; a log or pipe a plain line every 10 s (not with --json).
            if (tty ? now - lastDraw < 200 && fout !== total : o.json || now - lastDraw < 10_000) return;
            lastDraw = now;
            say(progressLine({ phase: 'infer', framesIn: fin, framesOut: fout, total, elapsedS: (now - started) / 1000 }));
          },
          onWriting: (files) => {
            writeStarted = performance.now();
            const line = () =>
              progressLine({
                phase: 'write',
                framesIn: last.fin,
                framesOut: last.fout,
                elapsedS: (performance.now() - writeStarted) / 1000,
                writing: files.map((f) => basename(f)),
              });
            if (!o.json) say(line());
            // Writing a long video's npz and MP4s takes a while: keep saying so.
            if (!o.json) writeTimer = setInterval(() => say(line()), tty ? 500 : 10_000);
          },
        });
        clearInterval(writeTimer);
        if (tty) process.stderr.write('\n');
        if (o.json) process.stdout.write(`${JSON.stringify(result)}\n`);
        else {
          process.stdout.write(
            `${result.frames} frames at ${result.width}x${result.height}${result.model.width !== result.width || result.model.height !== result.height ? ` (model ${result.model.width}x${result.model.height})` : ''} in ${result.seconds.toFixed(1)} s (${result.inferFps.toFixed(2)} frames/s; inference ${result.inferSeconds.toFixed(1)} s, writing ${result.writeSeconds.toFixed(1)} s)\n` +
              Object.values(result.files)
                .map((f) => `  ${f}\n`)
                .join(''),
          );
        }
      } catch (e) {
        clearInterval(writeTimer);
        if (tty && lastDraw > -Infinity) process.stderr.write('\n');
        throw e;
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
    });
}
