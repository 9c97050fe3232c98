import type { Command } from 'commander';
import { writeSynthSequence } from '../../synth/write-sequence.js';
import { UsageError } from '../usage-error.js';
import { intOption, numberOption } from '../options.js';

/** "256x192" -> [256, 192]. */
export function parseSize(v: string): [number, number] {
  const m = /^(\d+)x(\d+)$/i.exec(v.trim());
  if (!m) throw new UsageError(`--size must look like WIDTHxHEIGHT (e.g. 256x256), got "${v}"`);
  const w = Number(m[1]);
  const h = Number(m[2]);
  if (w < 8 || h < 8 || w > 8192 || h > 8192) throw new UsageError(`--size ${w}x${h}: width and height must be within 8..8192`);
  return [w, h];
}

export function registerSynth(program: Command): void {
  program
    .command('synth')
    .description('Render a procedural 3D scene with exact depth: DIR/rgb/*.png, DIR/depth/*.png (uint16 mm, 0 = invalid), DIR/meta.json')
    .requiredOption('-o, --out <dir>', 'output folder')
    .option('--seed <n>', 'scene seed (the same seed always gives the same frames)', intOption('--seed'), 1)
    .option('--frames <n>', 'number of frames', intOption('--frames'), 30)
    .option('--size <WxH>', 'frame size', '256x256')
    .option('--fps <f>', 'frame rate: frame i shows the scene at t = i / fps', numberOption('--fps'), 30)
    .option('--fov <deg>', 'horizontal field of view in degrees', numberOption('--fov'), 60)
    .option('--scene <kind>', 'auto | indoor | outdoor', 'auto')
    .option('--json', 'print the result as JSON on stdout')
    .action(async (o: { out: string; seed: number; frames: number; size: string; fps: number; fov: number; scene: string; json?: boolean }) => {
      const [width, height] = parseSize(o.size);
      if (o.frames < 1) throw new UsageError(`--frames must be at least 1, got ${o.frames}`);
      if (!(o.fps > 0) || o.fps > 1000) throw new UsageError(`--fps must be in (0, 1000], got ${o.fps}`);
      if (!(o.fov > 1 && o.fov < 179)) throw new UsageError(`--fov must be within (1, 179) degrees, got ${o.fov}`);
      if (o.scene !== 'auto' && o.scene !== 'indoor' && o.scene !== 'outdoor')
        throw new UsageError(`--scene must be auto, indoor or outdoor, got "${o.scene}"`);
      const tty = process.stderr.isTTY === true && !o.json;
      const r = await writeSynthSequence({
        outDir: o.out,
        seed: o.seed,
        frames: o.frames,
        width,
        height,
        fps: o.fps,
        fovDeg: o.fov,
        scene: o.scene,
        onProgress: tty ? (done, total) => process.stderr.write(`\r  ${done}/${total} frames`) : undefined,
      });
      if (tty) process.stderr.write('\n');
      if (o.json) process.stdout.write(`${JSON.stringify({ ...r, outDir: o.out })}\n`);
      else
        process.stdout.write(
          `${r.frames} frames ${width}x${height} of seed ${o.seed} (${r.kind}, ${r.objects} objects) in ${r.seconds.toFixed(1)} s ` +
            `(render ${(r.renderMs / r.frames).toFixed(1)} ms/frame) -> ${o.out}\n`,
        );
    });
}
