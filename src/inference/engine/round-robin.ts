// Per-stream FIFO queues served in turns, like a fair scheduler: the stream whose turn it is
// has its messages handled in order until one of them does heavy work (runs a window) or its
// queue is empty; then it goes to the back of the line. So between two windows of one stream,
// every other stream with work runs at most one window: no stream waits for more than one
// window of each other stream, however many frames the others have queued.

export class RoundRobinQueues<T> {
  private readonly queues = new Map<number, T[]>();
  /** Streams in service order: the front one with work has the turn. */
  private readonly order: number[] = [];

  add(stream: number, item: T): void {
    let q = this.queues.get(stream);
    if (!q) {
      q = [];
      this.queues.set(stream, q);
      this.order.push(stream);
    }
    q.push(item);
  }

  /** The stream whose turn it is, or null when no stream has work. */
  next(): number | null {
    for (const s of this.order) if (this.queues.get(s)!.length > 0) return s;
    return null;
  }

  take(stream: number): T | undefined {
    return this.queues.get(stream)?.shift();
  }

  pending(stream: number): number {
    return this.queues.get(stream)?.length ?? 0;
  }

  /** The stream's turn is over: it goes behind every other stream. */
  endTurn(stream: number): void {
    const i = this.order.indexOf(stream);
    if (i >= 0) this.order.push(...this.order.splice(i, 1));
  }

  /** Forget a stream; returns what it still had queued. */
  remove(stream: number): T[] {
    const q = this.queues.get(stream) ?? [];
    this.queues.delete(stream);
    const i = this.order.indexOf(stream);
    if (i >= 0) this.order.splice(i, 1);
    return q;
  }
}
