import { open, mkdir, unlink, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { z } from 'zod';
import { defineNode } from '../../graph/node-kind.js';
import type { DepthFrame, Packet } from '../../graph/packets.js';
import { NpzWriter } from '../../io/npz-writer.js';
import { removeStalePartials } from '../../io/partial-file.js';

// Depth frames into an .npz holding `depth`, float32 [N, H, W] (as numpy.load reads it). N is
// only known at the end, and an .npy header states the shape up front, so frames are appended
// to a temporary raw file next to the output (bounded memory: one frame at a time) and the npz
// is assembled from it when the stream ends: flush() on drain (SIGTERM included), or close()
// after a failure. Frames whose size differs from the first frame's are skipped and counted.

export const npzOptions = z
  .object({
    path: z.string().min(1).describe('Output .npz file (written under a hidden temporary name, renamed when complete).'),
    compress: z.boolean().default(false).describe('Deflate the member (like numpy.savez_compressed); float depth gains little.'),
    key: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]*$/)
      .default('depth')
      .describe('Array name in the archive (the reference uses depth).'),
  })
  .strict();

const CHUNK_BYTES = 4 * 1024 * 1024;

export const npzNode = defineNode({
  kind: 'npz',
  role: 'sink',
  description: 'Write depth frames to an .npz (float32 [N, H, W])',
  inputs: { depth: 'depth' },
  outputs: {},
  options: npzOptions,
  async create(o, ctx) {
    await mkdir(dirname(o.path), { recursive: true });
    // Frames spill here until the file is assembled (leftovers of killed runs are removed first).
    for (const stale of removeStalePartials(o.path, ['.raw.tmp'])) ctx.log.info({ path: stale }, 'removed a temporary file left by an earlier run');
    const rawPath = `${o.path}.${process.pid}.raw.tmp`;
    let raw: FileHandle | null = null;
    let width = 0;
    let height = 0;
    let frames = 0;
    let skipped = 0;
    let finalised: Promise<void> | null = null;

    const assemble = async (): Promise<void> => {
      const shape = frames > 0 ? [frames, height, width] : [0, 0, 0];
      const writer = await NpzWriter.create(o.path, { compress: o.compress });
      try {
        const arr = writer.beginArray(o.key, 'float32', shape);
        if (frames > 0 && raw) {
          const frameElems = width * height;
          const perChunk = Math.max(1, Math.floor(CHUNK_BYTES / (frameElems * 4)));
          const buf = new Float32Array(frameElems * perChunk);
          const bytes = new Uint8Array(buf.buffer);
          for (let done = 0; done < frames;) {
            const n = Math.min(perChunk, frames - done);
            const want = n * frameElems * 4;
            let got = 0;
            while (got < want) {
              const { bytesRead } = await raw.read(bytes, got, want - got, done * frameElems * 4 + got);
              if (bytesRead === 0) throw new Error(`npz ${o.path}: temporary file ${rawPath} is shorter than expected`);
              got += bytesRead;
            }
            await arr.write(buf.subarray(0, n * frameElems));
            done += n;
          }
        }
        await arr.end();
        await writer.close();
      } catch (e) {
        await writer.abort();
        throw e;
      }
    };

    const finalise = (): Promise<void> =>
      (finalised ??= (async () => {
        try {
          await assemble();
          ctx.log.info({ path: o.path, frames, width, height, skipped }, 'npz written');
        } finally {
          await raw?.close().catch(() => {});
          raw = null;
          await unlink(rawPath).catch(() => {});
        }
      })());

    return {
      async process(_port: string, p: Packet) {
        if (p.type !== 'depth') return;
        const f = p as DepthFrame;
        if (finalised) throw new Error(`npz ${o.path}: frame after the file was finalised`);
        if (frames === 0 && !raw) {
          width = f.width;
          height = f.height;
          raw = await open(rawPath, 'w+');
        }
        if (f.width !== width || f.height !== height) {
          skipped++;
          ctx.metrics.framesDropped.inc({ node: ctx.name, reason: 'size' });
          if (skipped === 1)
            ctx.log.warn({ first: `${width}x${height}`, got: `${f.width}x${f.height}` }, 'npz holds one frame size: skipping frames of another size');
          return;
        }
        const bytes = new Uint8Array(f.data.buffer, f.data.byteOffset, f.data.byteLength);
        let off = 0;
        while (off < bytes.length) {
          const { bytesWritten } = await raw!.write(bytes, off, bytes.length - off, frames * width * height * 4 + off);
          off += bytesWritten;
        }
        frames++;
      },
      async flush() {
        await finalise();
      },
      async close() {
        try {
          await finalise();
        } catch (e) {
          ctx.log.error({ err: e }, 'npz could not be finalised');
        }
      },
    };
  },
});
