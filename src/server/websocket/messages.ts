import { nowMs, type DepthFrame, type Intrinsics, type VideoFrame } from '../../graph/packets.js';
import { decodeFrameMessage, encodeFrameMessage, scaleIntrinsics, type FrameHeader } from '../../protocol/frame-message.js';
import { readGroundTruthPayload } from './ground-truth.js';
import type { Want } from './wants.js';

// The DCL1 message (protocol/frame-message.ts) of one want: its header from the frame's
// provenance, in front of the payload.

/** The message of a want; `discont` marks the first frame after a gap of its stream. */
export function frameMessage(w: Want, payload: Uint8Array, discont: boolean): Buffer {
  const f = w.frame;
  if (w.gt && f.type === 'depth' && f.source) {
    // The encoder put AbsRel and delta1 in front of the GT disparity.
    const { absrel, delta1, disparity } = readGroundTruthPayload(payload);
    const header: FrameHeader = {
      ...baseHeader(f, discont),
      width: f.source.width,
      height: f.source.height,
      kind: 'gt',
      format: 'f32',
      window: f.window,
      absrel,
      delta1,
      ...intrinsicsField(f.source.intrinsics, f.source, f.source),
    };
    return encodeFrameMessage(header, disparity);
  }
  const header: FrameHeader =
    f.type === 'depth'
      ? {
          ...baseHeader(f, discont),
          kind: 'depth',
          format: w.format,
          window: f.window,
          ...(f.interpolated ? { interpolated: true } : {}),
          ...(w.colormap ? { colormap: w.colormap } : {}),
          ...(f.source ? intrinsicsField(f.source.intrinsics, f.source, f) : {}),
        }
      : { ...baseHeader(f, discont), kind: 'rgb', format: w.format, ...intrinsicsField(f.intrinsics, f, f) };
  return encodeFrameMessage(header, payload);
}

/** The same message with `discont: true` in its header (for a subscriber that missed the marked frame). */
export function withDiscont(msg: Buffer): Buffer {
  const { header, payload } = decodeFrameMessage(msg);
  return encodeFrameMessage({ ...header, discont: true }, payload);
}

/** The header's `intrinsics` for a message of size `to`, from the source frame's (of size `from`); nothing when unknown. */
function intrinsicsField(
  k: Intrinsics | undefined,
  from: { width: number; height: number },
  to: { width: number; height: number },
): { intrinsics?: Intrinsics } {
  if (!k) return {};
  const s = scaleIntrinsics(k, from, to);
  const r = (v: number) => Math.round(v * 1e4) / 1e4;
  return { intrinsics: { fx: r(s.fx), fy: r(s.fy), cx: r(s.cx), cy: r(s.cy) } };
}

function baseHeader(f: VideoFrame | DepthFrame, discont: boolean): Omit<FrameHeader, 'kind' | 'format'> {
  return {
    ...(discont ? { discont: true } : {}),
    stream: f.streamId,
    seq: f.seq,
    ptsMs: f.ptsMs,
    width: f.width,
    height: f.height,
    latencyMs: Math.round((nowMs() - f.arrivalMs) * 10) / 10,
    ...(f.fleet ? { worker: f.fleet.worker, publishedMs: f.fleet.publishedMs } : {}),
  };
}
