/**
 * PNG encode/decode helpers on top of pngjs.
 *
 * 16-bit samples are stored big-endian in the file (PNG spec). pngjs's packer
 * takes 16-bit input as native-endian uint16 values read through
 * `new Uint16Array(data.buffer)` (it ignores `byteOffset`), and converts them
 * to big-endian itself; so the input is always copied into a fresh, exactly
 * sized buffer here.
 */
import { PNG } from 'pngjs';

export interface DecodedPng {
  width: number;
  height: number;
  /** Sample depth of the result: 16 for 16-bit files, else 8 (1/2/4-bit files are scaled to 8). */
  depth: 8 | 16;
  /** 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA (palette files: 3, or 4 with transparency). */
  channels: 1 | 2 | 3 | 4;
  /** Interleaved samples, row-major; Uint16Array (native-endian values) when depth is 16. */
  data: Uint8Array | Uint16Array;
}

const COLOR_GRAY = 0;
const COLOR_RGB = 2;

function checkDims(w: number, h: number, have: number, perPixel: number, what: string): void {
  if (!Number.isInteger(w) || !Number.isInteger(h) || w <= 0 || h <= 0) {
    throw new Error(`${what}: invalid size ${w}x${h}`);
  }
  if (have !== w * h * perPixel) {
    throw new Error(`${what}: expected ${w * h * perPixel} samples for ${w}x${h}, got ${have}`);
  }
}

/** Encodes a 16-bit grayscale PNG (color type 0, bit depth 16). */
export function encodePng16Gray(data: Uint16Array, w: number, h: number): Buffer {
  checkDims(w, h, data.length, 1, 'encodePng16Gray');
  const copy = new Uint16Array(data); // fresh buffer with byteOffset 0 (see header comment)
  const png = new PNG({ width: w, height: h, bitDepth: 16, colorType: COLOR_GRAY, inputColorType: COLOR_GRAY, inputHasAlpha: false });
  png.data = Buffer.from(copy.buffer, 0, copy.byteLength);
  return PNG.sync.write(png, { bitDepth: 16, colorType: COLOR_GRAY, inputColorType: COLOR_GRAY, inputHasAlpha: false });
}

/** Encodes an 8-bit RGB PNG from packed RGB bytes. */
export function encodePngRGB(rgb: Uint8Array, w: number, h: number): Buffer {
  checkDims(w, h, rgb.length, 3, 'encodePngRGB');
  const png = new PNG({ width: w, height: h, colorType: COLOR_RGB, inputColorType: COLOR_RGB, inputHasAlpha: false });
  png.data = Buffer.from(rgb.buffer, rgb.byteOffset, rgb.byteLength);
  return PNG.sync.write(png, { colorType: COLOR_RGB, inputColorType: COLOR_RGB, inputHasAlpha: false, bitDepth: 8 });
}

/** Decodes a PNG keeping its channel count and (for 16-bit files) its full precision. */
export function decodePng(buf: Uint8Array): DecodedPng {
  const b = Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  // IHDR bit depth sits at byte 24 (8-byte signature, chunk length, "IHDR", width, height).
  const fileDepth = b.length > 24 ? b[24] : 0;
  // pngjs always expands to RGBA. skipRescale keeps 16-bit samples as a Uint16Array;
  // it is not used for 1/2/4-bit files, which pngjs then scales to 0..255.
  const img = PNG.sync.read(b, { skipRescale: fileDepth === 16 }) as PNG & { depth: number; colorType: number; alpha?: boolean };
  const { width, height } = img;
  const depth: 8 | 16 = img.depth === 16 ? 16 : 8;
  let channels: 1 | 2 | 3 | 4;
  switch (img.colorType) {
    case 0:
      channels = 1;
      break;
    case 4:
      channels = 2;
      break;
    case 2:
      channels = 3;
      break;
    case 6:
      channels = 4;
      break;
    case 3:
      channels = img.alpha ? 4 : 3;
      break;
    default:
      throw new Error(`decodePng: unsupported color type ${img.colorType}`);
  }
  const n = width * height;
  const rgba = img.data as unknown as Uint8Array | Uint16Array;
  if (rgba.length !== n * 4) throw new Error(`decodePng: unexpected decoded size ${rgba.length} for ${width}x${height}`);
  const out = depth === 16 ? new Uint16Array(n * channels) : new Uint8Array(n * channels);
  if (channels === 4) {
    out.set(rgba);
  } else {
    // Source channel indices within RGBA for each output channel.
    const pick = channels === 1 ? [0] : channels === 2 ? [0, 3] : [0, 1, 2];
    for (let i = 0, o = 0; i < n; i++) {
      const s = i * 4;
      for (let c = 0; c < channels; c++) out[o++] = rgba[s + pick[c]];
    }
  }
  return { width, height, depth, channels, data: out };
}
