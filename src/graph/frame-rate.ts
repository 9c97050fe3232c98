import { nowMs } from './packets.js';

// Frames per second over the last few seconds (for /streams): a ring of arrival times, so the
// cost is one store per frame and the figure follows a stream that stalls within the span.

export class FrameRate {
  private readonly times: Float64Array;
  private next = 0;
  private count = 0;
  private readonly started = nowMs();

  constructor(
    private readonly spanMs = 5000,
    capacity = 512,
  ) {
    this.times = new Float64Array(capacity);
  }

  mark(at = nowMs()): void {
    this.times[this.next] = at;
    this.next = (this.next + 1) % this.times.length;
    this.count = Math.min(this.count + 1, this.times.length);
  }

  fps(at = nowMs()): number {
    let n = 0;
    let oldest = at;
    for (let i = 0; i < this.count; i++) {
      const t = this.times[i];
      if (at - t <= this.spanMs) {
        n++;
        if (t < oldest) oldest = t;
      }
    }
    // Over the span, or since the first frame when the ring holds less than the span.
    const span = this.count === this.times.length && n === this.count ? at - oldest : Math.min(this.spanMs, at - this.started);
    return span > 0 ? (n * 1000) / span : 0;
  }
}
