// How much of a shared inference worker a stream can count on, for its rate adaptation. Each
// stream's busy time (encode and windows) is summed over a sliding span; a stream's share is what
// the other streams leave, and never less than an equal split: an idle camera leaves its share to
// the others, a busy one cannot squeeze the rest below 1/N (the scheduler gives turns fairly).

export class EngineShare {
  private readonly busy = new Map<number, Array<{ at: number; ms: number }>>();
  private readonly since = new Map<number, number>();

  constructor(
    private readonly spanMs = 10_000,
    private readonly now: () => number = () => performance.now(),
  ) {}

  add(stream: number): void {
    this.busy.set(stream, []);
    this.since.set(stream, this.now());
  }

  remove(stream: number): void {
    this.busy.delete(stream);
    this.since.delete(stream);
  }

  record(stream: number, ms: number): void {
    this.busy.get(stream)?.push({ at: this.now(), ms });
  }

  /** Fraction of the worker's time the stream may use, in [1/N, 1]. */
  shareOf(stream: number): number {
    const n = this.busy.size;
    if (n <= 1) return 1;
    const now = this.now();
    let others = 0;
    for (const [id, entries] of this.busy) {
      while (entries.length > 0 && now - entries[0].at > this.spanMs) entries.shift();
      if (id === stream) continue;
      // Over the span, or since the stream joined (at least 1 s, so one early window is not read as saturation).
      const span = Math.max(1000, Math.min(this.spanMs, now - (this.since.get(id) ?? now)));
      others += entries.reduce((a, e) => a + e.ms, 0) / span;
    }
    return Math.min(1, Math.max(1 / n, 1 - others));
  }
}
