import { readdir, readFile } from 'node:fs/promises';
import { join, extname } from 'node:path';
import jpeg from 'jpeg-js';
import { decodePng } from '../io/png16.js';

// A folder of images (PNG or JPEG) read as a video, in name order (numbers sort numerically,
// so frame_2 comes before frame_10).

const IMAGE_EXT = new Set(['.png', '.jpg', '.jpeg']);

export async function listFrames(dir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (e) {
    throw new Error(`cannot read the frame folder ${dir}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`, { cause: e });
  }
  const frames = names.filter((n) => IMAGE_EXT.has(extname(n).toLowerCase()));
  frames.sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  return frames.map((n) => join(dir, n));
}

export interface RgbImage {
  readonly width: number;
  readonly height: number;
  readonly data: Uint8Array;
}

export async function readRgbImage(path: string): Promise<RgbImage> {
  const buf = await readFile(path);
  const ext = extname(path).toLowerCase();
  try {
    if (ext === '.png') {
      const png = decodePng(buf);
      const n = png.width * png.height;
      const out = new Uint8Array(n * 3);
      const c = png.channels;
      const shift = png.depth === 16 ? 8 : 0;
      for (let i = 0; i < n; i++) {
        for (let k = 0; k < 3; k++) out[i * 3 + k] = png.data[i * c + (c >= 3 ? k : 0)] >> shift;
      }
      return { width: png.width, height: png.height, data: out };
    }
    const img = jpeg.decode(buf, { useTArray: true, formatAsRGBA: false });
    return { width: img.width, height: img.height, data: img.data };
  } catch (e) {
    throw new Error(`cannot decode image ${path}: ${(e as Error).message}`, { cause: e });
  }
}
