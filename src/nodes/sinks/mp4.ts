import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { z } from 'zod';
import { defineNode } from '../../graph/node-kind.js';
import type { DepthFrame, Packet } from '../../graph/packets.js';
import { applyColormap, colormapByName, COLORMAP_NAMES, type ColormapName } from '../../io/colormap.js';
import { Mp4Writer, X264_PRESETS } from '../../media/mp4-writer.js';
import { removeStalePartials } from '../../io/partial-file.js';

// Depth frames, colour-mapped (inferno by default, like the reference visualisation), encoded
// to an H.264 MP4. The writer opens on the first frame (it needs the size); H.264 4:2:0 needs
// even sizes, so an odd last column or row is cropped. The file is finished (EOS, moov index)
// in flush() and again, if needed, in close(): a stopped or failed pipeline leaves a playable
// file. Until then it is written under a temporary name (a hard kill leaves no unplayable file
// under `path`). Frames of another size than the first are skipped and counted.

export const mp4Options = z
  .object({
    path: z.string().min(1).describe('Output .mp4 file (written under a hidden temporary name, renamed when complete).'),
    fps: z.number().positive().max(1000).default(15).describe('Frame rate written into the file.'),
    colormap: z
      .enum(COLORMAP_NAMES as [ColormapName, ...ColormapName[]])
      .default('inferno')
      .describe('Colour map for the depth video.'),
    quantizer: z.number().int().min(0).max(51).default(18).describe('x264 constant quantizer (0 = lossless, 51 = worst).'),
    preset: z.enum(X264_PRESETS).default('ultrafast').describe('x264 speed preset: slower ones make smaller files for more CPU (the model needs the CPU).'),
  })
  .strict();

export const mp4Node = defineNode({
  kind: 'mp4',
  role: 'sink',
  description: 'Write colour-mapped depth frames to an H.264 MP4',
  inputs: { depth: 'depth' },
  outputs: {},
  options: mp4Options,
  async create(o, ctx) {
    await mkdir(dirname(o.path), { recursive: true });
    removeStalePartials(o.path);
    const lut = colormapByName(o.colormap);
    let writer: Mp4Writer | null = null;
    let srcW = 0;
    let srcH = 0;
    let rgb = new Uint8Array(0);
    let skipped = 0;
    let finished: Promise<void> | null = null;

    const finish = (): Promise<void> =>
      (finished ??= (async () => {
        if (!writer) return;
        await writer.finish();
        ctx.log.info({ path: o.path, frames: writer.framesWritten, skipped }, 'MP4 written');
      })());

    return {
      process(_port: string, p: Packet) {
        if (p.type !== 'depth') return;
        const f = p as DepthFrame;
        if (finished) throw new Error(`mp4 ${o.path}: frame after the file was finished`);
        if (!writer) {
          srcW = f.width;
          srcH = f.height;
          const w = srcW & ~1;
          const h = srcH & ~1;
          if (w < 2 || h < 2) throw new Error(`mp4 ${o.path}: frame ${srcW}x${srcH} is too small to encode`);
          if (w !== srcW || h !== srcH) ctx.log.info({ from: `${srcW}x${srcH}`, to: `${w}x${h}` }, 'cropping to an even size for H.264');
          writer = new Mp4Writer(o.path, { width: w, height: h, fps: o.fps, format: 'RGB', quantizer: o.quantizer, preset: o.preset });
          rgb = new Uint8Array(w * h * 3);
        }
        if (f.width !== srcW || f.height !== srcH) {
          skipped++;
          ctx.metrics.framesDropped.inc({ node: ctx.name, reason: 'size' });
          if (skipped === 1)
            ctx.log.warn({ first: `${srcW}x${srcH}`, got: `${f.width}x${f.height}` }, 'MP4 holds one frame size: skipping frames of another size');
          return;
        }
        const w = srcW & ~1;
        const h = srcH & ~1;
        if (w === srcW) {
          applyColormap(h === srcH ? f.data : f.data.subarray(0, w * h), lut, rgb);
        } else {
          for (let y = 0; y < h; y++) applyColormap(f.data.subarray(y * srcW, y * srcW + w), lut, rgb.subarray(y * w * 3, (y + 1) * w * 3));
        }
        writer.write(rgb);
      },
      async flush() {
        await finish();
      },
      async close() {
        try {
          await finish();
        } catch (e) {
          ctx.log.error({ err: e }, 'MP4 could not be finished');
        }
      },
    };
  },
});
