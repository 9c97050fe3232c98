// The source's frame rate, read from the frames themselves: sequence numbers count every frame
// the source made (also those dropped on the way), presentation times say when. So drops in
// front of the consumer do not bias the estimate, and no clock of ours is involved.

export class SourceRate {
  private readonly seqs: number[] = [];
  private readonly pts: number[] = [];

  /** @param span how many recent frames the estimate spans */
  constructor(private readonly span = 32) {}

  observe(seq: number, ptsMs: number): void {
    const n = this.seqs.length;
    // Time or numbering that goes backwards is a new stream: start over.
    if (n > 0 && (seq <= this.seqs[n - 1] || ptsMs < this.pts[n - 1])) this.reset();
    this.seqs.push(seq);
    this.pts.push(ptsMs);
    if (this.seqs.length > this.span) {
      this.seqs.shift();
      this.pts.shift();
    }
  }

  reset(): void {
    this.seqs.length = 0;
    this.pts.length = 0;
  }

  /** Frames per second, or NaN until two frames with distinct times were seen. */
  get fps(): number {
    const n = this.seqs.length;
    if (n < 2) return NaN;
    const dt = this.pts[n - 1] - this.pts[0];
    return dt > 0 ? ((this.seqs[n - 1] - this.seqs[0]) * 1000) / dt : NaN;
  }
}
