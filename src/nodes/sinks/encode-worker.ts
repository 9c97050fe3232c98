import { parentPort } from 'node:worker_threads';
import jpeg from 'jpeg-js';
import { colormapByName } from '../../io/colormap.js';
import { encodePngRGB } from '../../io/png16.js';
import { groundTruthPayload } from '../../server/websocket/ground-truth.js';
import { OptionError } from '../../util/errors.js';

// The encoder thread of the frame-encoding sinks (websocket, nats-jpeg-publish): every per-pixel
// step of a payload (u16 conversion, colour mapping, JPEG and PNG encoding, ground-truth accuracy)
// runs here, so the main thread (graph loop, HTTP, sockets) only copies finished bytes. Requests
// are handled strictly in order; each carries the jobs of one frame, which may share one depth or
// RGB array (structured clone copies it once).

/** Payload encodings the worker produces. */
export type EncodeFormat = 'u16' | 'jpeg' | 'png' | 'gt';

/** One payload to produce: from `depth` (disparity in [0,1]) or from `rgb` (packed RGB), not both. */
export interface EncodeJob {
  readonly depth?: Float32Array;
  readonly rgb?: Uint8Array;
  readonly width: number;
  readonly height: number;
  readonly format: EncodeFormat;
  /** Colour map for depth as jpeg/png (inferno, turbo, gray); default inferno. */
  readonly colormap?: string;
  /** JPEG quality 1..100; default 80. */
  readonly quality?: number;
  /** (format gt) ground-truth depth in metres (0 = invalid) of size gtWidth x gtHeight; `depth` is the prediction. */
  readonly gtDepth?: Float32Array;
  readonly gtWidth?: number;
  readonly gtHeight?: number;
}

/** Messages to the encoder thread. */
export type ToEncoder = { readonly type: 'encode'; readonly id: number; readonly jobs: readonly EncodeJob[] };

/** Messages from the encoder thread: one answer per request, by id. */
export type FromEncoder =
  | { readonly type: 'encoded'; readonly id: number; readonly outputs: Uint8Array[] }
  | { readonly type: 'error'; readonly id: number; readonly message: string; readonly name: string };

/** Produce one payload (pure; also usable off the worker, e.g. in tests). */
export function encodeJob(job: EncodeJob): Uint8Array {
  const { width: w, height: h } = job;
  if (!Number.isInteger(w) || !Number.isInteger(h) || w <= 0 || h <= 0) throw new OptionError(`invalid frame size ${w}x${h}`);
  const n = w * h;
  if (job.format === 'gt') {
    const { depth, gtDepth, gtWidth = 0, gtHeight = 0 } = job;
    if (!gtDepth || !depth || gtDepth.length !== gtWidth * gtHeight)
      throw new OptionError('gt job needs gtDepth of gtWidth x gtHeight and the predicted depth');
    return groundTruthPayload({ depth, width: w, height: h, gtDepth, gtWidth, gtHeight });
  }
  if (job.depth) {
    const d = job.depth;
    if (d.length !== n) throw new OptionError(`depth has ${d.length} values for ${w}x${h}`);
    if (job.format === 'u16') return depthToU16(d);
    const lut = colormapByName(job.colormap ?? 'inferno');
    if (job.format === 'png') return encodePngRGB(mapDepth(d, lut, 3), w, h);
    return jpeg.encode({ data: mapDepth(d, lut, 4), width: w, height: h }, job.quality ?? 80).data;
  }
  if (job.rgb) {
    const rgb = job.rgb;
    if (rgb.length !== n * 3) throw new OptionError(`rgb has ${rgb.length} bytes for ${w}x${h}`);
    if (job.format === 'png') return encodePngRGB(rgb, w, h);
    if (job.format === 'jpeg') return jpeg.encode({ data: rgbToRgba(rgb), width: w, height: h }, job.quality ?? 80).data;
    throw new OptionError(`rgb frames cannot be encoded as ${job.format}`);
  }
  throw new OptionError('encode job without depth or rgb data');
}

/** Disparity in [0,1] to uint16 little-endian 0..65535 (rounded, clamped; NaN gives 0). */
function depthToU16(d: Float32Array): Uint8Array {
  const u16 = new Uint16Array(d.length);
  for (let i = 0; i < d.length; i++) {
    const v = d[i];
    u16[i] = v <= 0 ? 0 : v >= 1 ? 65535 : Math.round(v * 65535);
  }
  if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) {
    // Big-endian host: the protocol is little-endian.
    const view = new DataView(u16.buffer);
    for (let i = 0; i < u16.length; i++) view.setUint16(i * 2, u16[i], true);
  }
  return new Uint8Array(u16.buffer);
}

/**
 * Colour-map disparity with the reference index rule clamp(trunc(d * 255), 0, 255) (as in
 * applyColormap), into packed RGB (3 channels) or RGBA with opaque alpha (4, what jpeg-js takes).
 */
function mapDepth(d: Float32Array, lut: Uint8Array, channels: 3 | 4): Uint8Array {
  const out = new Uint8Array(d.length * channels);
  if (channels === 4) out.fill(255);
  for (let i = 0, o = 0; i < d.length; i++, o += channels) {
    const t = Math.trunc(d[i] * 255);
    const k = (t > 255 ? 255 : t >= 0 ? t : 0) * 3;
    out[o] = lut[k];
    out[o + 1] = lut[k + 1];
    out[o + 2] = lut[k + 2];
  }
  return out;
}

function rgbToRgba(rgb: Uint8Array): Uint8Array {
  const n = rgb.length / 3;
  const out = new Uint8Array(n * 4);
  for (let i = 0, s = 0, o = 0; i < n; i++, s += 3, o += 4) {
    out[o] = rgb[s];
    out[o + 1] = rgb[s + 1];
    out[o + 2] = rgb[s + 2];
    out[o + 3] = 255;
  }
  return out;
}

/** A Uint8Array that owns its whole ArrayBuffer (so it can be transferred without copying again). */
function owned(b: Uint8Array): Uint8Array {
  return b.byteOffset === 0 && b.byteLength === b.buffer.byteLength && !(b.buffer instanceof SharedArrayBuffer) ? b : b.slice();
}

const port = parentPort;
if (port) {
  port.on('message', (req: ToEncoder) => {
    let reply: FromEncoder;
    let transfer: ArrayBuffer[] = [];
    try {
      const outputs = req.jobs.map((j) => owned(encodeJob(j)));
      reply = { type: 'encoded', id: req.id, outputs };
      transfer = outputs.map((o) => o.buffer as ArrayBuffer);
    } catch (e) {
      const err = e instanceof Error ? e : new Error(String(e));
      reply = { type: 'error', id: req.id, message: err.message, name: err.name };
    }
    port.postMessage(reply, transfer);
  });
}
