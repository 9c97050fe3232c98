import type { DepthFrame, VideoFrame } from '../../graph/packets.js';

/**
 * Which frames follow a discontinuity of their stream (GStreamer's DISCONT), so their messages say
 * `discont: true` and subscribers do not relate them to the frames before. The RGB source of a
 * marked depth frame is marked with it (it goes out in the same group of messages).
 */
export class DiscontinuityMarks {
  private readonly afterGap = new Set<string>();
  private readonly marked = new WeakSet<VideoFrame | DepthFrame>();

  /** A gap in `streamId`: its next frame is marked. */
  gap(streamId: string): void {
    this.afterGap.add(streamId);
  }

  /** Note a frame, in stream order (marks it if it is the first after a gap). */
  see(f: VideoFrame | DepthFrame): void {
    if (!this.afterGap.delete(f.streamId)) return;
    this.marked.add(f);
    if (f.type === 'depth' && f.source) this.marked.add(f.source);
  }

  has(f: VideoFrame | DepthFrame): boolean {
    return this.marked.has(f);
  }
}
