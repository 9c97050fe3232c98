import type { DepthFrame, VideoFrame } from '../../graph/packets.js';
import type { FrameHeader, Subscription } from '../../protocol/frame-message.js';
import type { EncodeJob } from '../../nodes/sinks/frame-encoder.js';

// What a subscription asks for, frame by frame: one Want per message. Subscribers whose wants
// have equal keys share one message (and one encoding) of the frame.

/** One message a subscriber wants for a frame; equal keys within a frame share one message. */
export interface Want {
  readonly key: string;
  readonly frame: VideoFrame | DepthFrame;
  readonly format: FrameHeader['format'];
  readonly colormap?: string;
  /** Ground truth of the depth frame's source (encoded with accuracy figures). */
  readonly gt?: boolean;
}

/** The messages a subscriber wants for a frame, in sending order (RGB before its depth). */
export function wantsFor(p: VideoFrame | DepthFrame, sub: Subscription): Want[] {
  const rgb = (f: VideoFrame): Want => ({ key: `rgb:${sub.rgbFormat}`, frame: f, format: sub.rgbFormat });
  if (p.type === 'video') return [rgb(p)];
  const out: Want[] = [];
  if (sub.rgb && p.source) out.push(rgb(p.source));
  const image = sub.depthFormat === 'jpeg' || sub.depthFormat === 'png';
  if (sub.gt && p.source?.gtDepth) out.push({ key: 'gt', frame: p, format: 'f32', gt: true });
  out.push(
    image
      ? { key: `depth:${sub.depthFormat}:${sub.colormap}`, frame: p, format: sub.depthFormat, colormap: sub.colormap }
      : { key: `depth:${sub.depthFormat}`, frame: p, format: sub.depthFormat },
  );
  return out;
}

/** rgb24 and f32 payloads are the frame's own bytes; everything else is made by the encoder. */
export function needsEncoding(w: Want): boolean {
  return w.gt === true || !(w.format === 'rgb24' || w.format === 'f32');
}

/** The encoder job that produces a want's payload (only for wants that need encoding). */
export function jobFor(w: Want, quality: number): EncodeJob {
  const f = w.frame;
  const base = { width: f.width, height: f.height, format: w.format as EncodeJob['format'], quality };
  if (w.gt && f.type === 'depth' && f.source?.gtDepth) {
    return { ...base, format: 'gt', depth: f.data, gtDepth: f.source.gtDepth, gtWidth: f.source.width, gtHeight: f.source.height };
  }
  return f.type === 'depth' ? { ...base, depth: f.data, colormap: w.colormap } : { ...base, rgb: f.data };
}

/** The payload of a want that needs no encoding: a view of the frame's own bytes (no copy). */
export function rawPayload(w: Want): Uint8Array {
  const d = w.frame.data;
  return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
}
