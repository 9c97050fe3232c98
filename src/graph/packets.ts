// The typed messages that flow along edges. Frames carry their provenance (stream, sequence,
// timestamps) so that latency and ordering can be checked at any sink.

/**
 * Pinhole intrinsics in pixels of the frame that carries them (OpenCV convention: x right, y down; pixel
 * (u, v) has its centre at integer coordinates, so the centre of a W-wide image is at u = (W - 1) / 2).
 */
export interface Intrinsics {
  readonly fx: number;
  readonly fy: number;
  readonly cx: number;
  readonly cy: number;
}

/** Packed RGB, 8 bits per channel, rows tightly packed (stride = width * 3). */
export interface VideoFrame {
  readonly type: 'video';
  readonly streamId: string;
  /** Monotonically increasing per stream, never reused after a restart. */
  readonly seq: number;
  /** Presentation time in milliseconds since the stream started. */
  readonly ptsMs: number;
  /** Wall-clock arrival time (performance.timeOrigin + performance.now()) in ms, for end-to-end latency. */
  readonly arrivalMs: number;
  readonly width: number;
  readonly height: number;
  readonly data: Uint8Array;
  /** Ground-truth metric depth in metres (0 = invalid), when the source knows it. */
  readonly gtDepth?: Float32Array;
  /** Frames of this stream dropped by a queue right before this one (GStreamer's DISCONT flag). */
  readonly droppedBefore?: number;
  /** The camera's intrinsics for this frame's size, when the source knows them (its `K` option, K.txt, or a rendered camera). */
  readonly intrinsics?: Intrinsics;
  /** (fleet) Which worker published this frame on the bus, and when. */
  readonly fleet?: FleetOrigin;
}

/** Where a frame that came over the fleet's bus was made. */
export interface FleetOrigin {
  readonly worker: string;
  readonly publishedMs: number;
}

/** Relative disparity in [0, 1], near = large. */
export interface DepthFrame {
  readonly type: 'depth';
  readonly streamId: string;
  readonly seq: number;
  readonly ptsMs: number;
  readonly arrivalMs: number;
  readonly width: number;
  readonly height: number;
  readonly data: Float32Array;
  /** Index of the inference window that finalised this frame. */
  readonly window: number;
  /** Depth interpolated in time between two computed frames (the model skipped this frame by design). */
  readonly interpolated?: boolean;
  /** The RGB frame the depth was computed from, when the producer keeps it. */
  readonly source?: VideoFrame;
  /** Frames of this stream dropped by a queue right before this one. */
  readonly droppedBefore?: number;
  /** (fleet) Which worker published this frame on the bus, and when (wall clock, ms since the epoch). */
  readonly fleet?: FleetOrigin;
}

/** End of stream: the producer will send nothing more on this port. */
export interface EndOfStream {
  readonly type: 'eos';
}

/** A gap or restart in a stream: consumers must not relate frames across it. */
export interface Discontinuity {
  readonly type: 'discontinuity';
  readonly streamId: string;
  readonly reason: string;
  /** Sequence number of the first frame after the gap, when known. */
  readonly nextSeq?: number;
}

export type Packet = VideoFrame | DepthFrame | EndOfStream | Discontinuity;
export type FramePacket = VideoFrame | DepthFrame;

/** Port types used for edge type checking; 'any' accepts every frame type. */
export type PortType = 'video' | 'depth' | 'any';

export function isFrame(p: Packet): p is FramePacket {
  return p.type === 'video' || p.type === 'depth';
}

export const EOS: EndOfStream = Object.freeze({ type: 'eos' });

export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

/** Whether a packet may travel on a port of the given type (control packets go everywhere). */
export function fitsPort(p: Packet, port: PortType): boolean {
  if (p.type === 'eos' || p.type === 'discontinuity') return true;
  return port === 'any' || p.type === port;
}

/**
 * Whether an output port of type `from` may feed an input port of type `to`. An `any` output (a
 * pass-through such as stride) may carry the input's type; the runtime checks each packet it sends.
 */
export function portsCompatible(from: PortType, to: PortType): boolean {
  return to === 'any' || from === 'any' || from === to;
}
