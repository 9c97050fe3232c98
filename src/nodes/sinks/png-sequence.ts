import { mkdir } from 'node:fs/promises';
import { writeFileAtomic } from '../../io/partial-file.js';
import { join } from 'node:path';
import { z } from 'zod';
import { defineNode } from '../../graph/node-kind.js';
import type { DepthFrame, Packet } from '../../graph/packets.js';
import { encodePng16Gray } from '../../io/png16.js';

// Depth frames as a numbered sequence of 16-bit greyscale PNGs (DIR/<prefix>_000000.png, ...),
// value = round(clamp(disparity, 0, 1) * 65535). Numbered by frames written (contiguous, what
// image-sequence readers expect), or by the frames' sequence numbers (gaps show dropped frames).

export const pngSequenceOptions = z
  .object({
    dir: z.string().min(1).describe('Output folder (created if missing).'),
    prefix: z
      .string()
      .regex(/^[A-Za-z0-9_.-]*$/, 'letters, digits, "_", "-" and "." only')
      .default('depth')
      .describe('File name prefix: PREFIX_000000.png.'),
    numbering: z.enum(['count', 'seq']).default('count').describe("Number files by arrival count or by the frame's sequence number."),
  })
  .strict();

/** Disparity in [0, 1] to 16-bit grey (NaN and values <= 0 give 0). */
export function depthToU16(d: Float32Array): Uint16Array {
  const out = new Uint16Array(d.length);
  for (let i = 0; i < d.length; i++) {
    const v = d[i];
    out[i] = v >= 1 ? 65535 : v > 0 ? Math.round(v * 65535) : 0;
  }
  return out;
}

export function pngSequenceName(prefix: string, index: number): string {
  return `${prefix}_${String(index).padStart(6, '0')}.png`;
}

export const pngSequenceNode = defineNode({
  kind: 'png-sequence',
  role: 'sink',
  description: 'Write depth frames as 16-bit greyscale PNG files',
  inputs: { depth: 'depth' },
  outputs: {},
  options: pngSequenceOptions,
  async create(o, ctx) {
    await mkdir(o.dir, { recursive: true });
    let count = 0;
    return {
      async process(_port: string, p: Packet) {
        if (p.type !== 'depth') return;
        const f = p as DepthFrame;
        const name = pngSequenceName(o.prefix, o.numbering === 'seq' ? f.seq : count);
        await writeFileAtomic(join(o.dir, name), encodePng16Gray(depthToU16(f.data), f.width, f.height));
        count++;
      },
      flush() {
        ctx.log.info({ dir: o.dir, frames: count }, 'PNG sequence written');
      },
    };
  },
});
