// The binary WebSocket message for one frame (documented in docs/websocket-protocol.md):
//   bytes 0..3   ASCII "DCL1"
//   bytes 4..7   uint32 little-endian: length J of the JSON header
//   bytes 8..8+J UTF-8 JSON header (FrameHeader)
//   then         the payload, whose layout the header's `format` names.
// A JSON header keeps the format extensible without versioning every field; it is tiny next to
// the payload.

import type { Intrinsics } from '../graph/packets.js';

export const MAGIC = 'DCL1';

export type PayloadFormat =
  | 'rgb24' // packed RGB, 3 bytes per pixel, rows tightly packed
  | 'u16' // disparity in [0,1] scaled to 0..65535, uint16 little-endian, near = large
  | 'f32' // disparity in [0,1], float32 little-endian
  | 'jpeg' // colour-mapped depth (or RGB) as a JPEG file
  | 'png'; // colour-mapped depth (or RGB) as a PNG file

export interface FrameHeader {
  /** What the payload shows: depth, the RGB source frame, or ground-truth disparity (sources that know it). */
  readonly kind: 'depth' | 'rgb' | 'gt';
  readonly stream: string;
  readonly seq: number;
  readonly ptsMs: number;
  readonly width: number;
  readonly height: number;
  readonly format: PayloadFormat;
  /** Source arrival to send time, in ms. */
  readonly latencyMs: number;
  /** Inference window that finalised a depth frame. */
  readonly window?: number;
  /** (depth) The model skipped this frame by design (rate adaptation): its depth is interpolated in time between two computed frames. */
  readonly interpolated?: boolean;
  /** Colour map used for jpeg/png depth payloads. */
  readonly colormap?: string;
  /** (gt) AbsRel and delta1 of this frame's depth against the ground truth, after a per-frame scale and shift in disparity. */
  readonly absrel?: number;
  readonly delta1?: number;
  /** The first frame after a discontinuity of its stream (a gap, a restart, a takeover by another fleet worker): do not relate it to the frames before. */
  readonly discont?: boolean;
  /** (fleet) The worker that computed the frame, and when it published it on the bus (wall clock, ms since the epoch). */
  readonly worker?: string;
  readonly publishedMs?: number;
  /**
   * The source camera's pinhole intrinsics in pixels of THIS message's width x height (scaled when the depth is at
   * another size than the source frame), when the source knows them. Pixel centres at integer coordinates.
   */
  readonly intrinsics?: Intrinsics;
}

/**
 * Intrinsics of a frame resized (stretched) from `from` to `to` pixels. With pixel centres at integer
 * coordinates, u + 0.5 scales with the width: cx' = (cx + 0.5) * sx - 0.5.
 */
export function scaleIntrinsics(k: Intrinsics, from: { width: number; height: number }, to: { width: number; height: number }): Intrinsics {
  if (from.width === to.width && from.height === to.height) return k;
  const sx = to.width / from.width;
  const sy = to.height / from.height;
  return { fx: k.fx * sx, fy: k.fy * sy, cx: (k.cx + 0.5) * sx - 0.5, cy: (k.cy + 0.5) * sy - 0.5 };
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encodeFrameMessage(header: FrameHeader, payload: Uint8Array): Buffer {
  const json = encoder.encode(JSON.stringify(header));
  const out = Buffer.allocUnsafe(8 + json.byteLength + payload.byteLength);
  out.write(MAGIC, 0, 'ascii');
  out.writeUInt32LE(json.byteLength, 4);
  out.set(json, 8);
  out.set(payload, 8 + json.byteLength);
  return out;
}

export function decodeFrameMessage(buf: Uint8Array): { header: FrameHeader; payload: Uint8Array } {
  if (buf.byteLength < 8) throw new Error('frame message too short');
  const magic = String.fromCharCode(buf[0], buf[1], buf[2], buf[3]);
  if (magic !== MAGIC) throw new Error(`bad magic ${JSON.stringify(magic)}`);
  const len = buf[4] | (buf[5] << 8) | (buf[6] << 16) | (buf[7] << 24);
  if (len < 0 || 8 + len > buf.byteLength) throw new Error('header length out of range');
  const header = JSON.parse(decoder.decode(buf.subarray(8, 8 + len))) as FrameHeader;
  return { header, payload: buf.subarray(8 + len) };
}

/** What a subscriber asked for, from the query string or a later JSON "subscribe" message. */
export interface Subscription {
  depthFormat: 'u16' | 'f32' | 'jpeg' | 'png';
  rgb: boolean;
  rgbFormat: 'rgb24' | 'jpeg';
  colormap: string;
  /** Also send ground-truth disparity (kind "gt", f32) with accuracy figures, when the source knows depth. */
  gt: boolean;
  /** The streams whose frames to send (null: every stream). */
  streams: string[] | null;
}

export const DEFAULT_SUBSCRIPTION: Subscription = { depthFormat: 'u16', rgb: false, rgbFormat: 'rgb24', colormap: 'inferno', gt: false, streams: null };
