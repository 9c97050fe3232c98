import { EOS, isFrame as isFramePacket, type FramePacket, type Packet } from './packets.js';

// A bounded queue between two nodes, with the overflow policy made explicit (as GStreamer's
// queue element has leaky modes). Control packets (EOS, discontinuities) are never dropped:
// they may exceed the capacity, which stays bounded because they are rare. The first frame to
// pass after a drop carries the number of frames dropped right before it (`droppedBefore`, as
// GStreamer flags a DISCONT buffer), so the consumer can tell a burst loss from its own choices.

export type QueuePolicy = 'block' | 'drop-oldest' | 'drop-newest';
export const QUEUE_POLICIES: readonly QueuePolicy[] = ['block', 'drop-oldest', 'drop-newest'];

export class EdgeQueue {
  private readonly items: Packet[] = [];
  private waitingTaker: ((p: Packet) => void) | null = null;
  private spaceWaiters: Array<() => void> = [];
  dropped = 0;
  /** Drops not yet marked on a frame: marked on the next frame taken (drop-oldest) or offered (drop-newest). */
  private unmarkedOldest = 0;
  private unmarkedNewest = 0;

  constructor(
    readonly name: string,
    readonly capacity: number,
    readonly policy: QueuePolicy,
    private readonly onDrop: (count: number) => void = () => {},
  ) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new Error(`edge ${name}: capacity must be an integer >= 1`);
  }

  get length(): number {
    return this.items.length;
  }

  private frameCount(): number {
    let n = 0;
    for (const p of this.items) if (isFramePacket(p)) n++;
    return n;
  }

  /**
   * Enqueue a packet. Under `block` the returned promise resolves once the packet is queued:
   * the producer must await it (that is how a file source gets paused). Drop policies never wait.
   */
  offer(p: Packet): void | Promise<void> {
    if (this.closed) return;
    const isControl = p.type === 'eos' || p.type === 'discontinuity';
    if (!isControl && this.policy === 'drop-newest' && !this.waitingTaker && this.frameCount() >= this.capacity) {
      this.drop();
      this.unmarkedNewest += 1 + ((p as FramePacket).droppedBefore ?? 0);
      return;
    }
    if (this.unmarkedNewest > 0 && isFramePacket(p)) {
      p = markDrops(p, this.unmarkedNewest);
      this.unmarkedNewest = 0;
    }
    if (this.waitingTaker) {
      const take = this.waitingTaker;
      this.waitingTaker = null;
      take(p);
      return;
    }
    if (isControl || this.frameCount() < this.capacity) {
      this.push(p);
      return;
    }
    switch (this.policy) {
      case 'drop-newest': // handled above
        return;
      case 'drop-oldest': {
        const i = this.items.findIndex(isFramePacket);
        const [gone] = this.items.splice(i, 1) as FramePacket[];
        this.drop();
        this.unmarkedOldest += 1 + (gone.droppedBefore ?? 0);
        this.push(p);
        return;
      }
      case 'block':
        return new Promise<void>((resolve) => {
          this.spaceWaiters.push(() => {
            this.push(p);
            resolve();
          });
        });
    }
  }

  /** Wait for the next packet (FIFO). */
  take(): Promise<Packet> {
    let p = this.items.shift();
    if (p !== undefined) {
      if (this.unmarkedOldest > 0 && isFramePacket(p)) {
        p = markDrops(p, this.unmarkedOldest);
        this.unmarkedOldest = 0;
      }
      this.releaseSpace();
      return Promise.resolve(p);
    }
    if (this.spaceWaiters.length > 0) {
      // A blocked producer is waiting although the queue is empty (capacity reached by control packets).
      this.releaseSpace();
      return this.take();
    }
    return new Promise<Packet>((resolve) => {
      this.waitingTaker = resolve;
    });
  }

  private push(p: Packet): void {
    if (!this.closed) this.items.push(p);
  }

  private closed = false;

  /**
   * Nobody will take from this queue any more (its consumer failed): what is queued is discarded,
   * later offers are ignored, a blocked producer goes on, a waiting taker gets end of stream.
   */
  close(): void {
    this.closed = true;
    this.items.length = 0;
    const taker = this.waitingTaker;
    this.waitingTaker = null;
    taker?.(EOS);
    this.spaceWaiters.splice(0).forEach((w) => w());
  }

  private drop(): void {
    this.dropped++;
    this.onDrop(1);
  }

  private releaseSpace(): void {
    while (this.spaceWaiters.length > 0 && this.frameCount() < this.capacity) {
      const next = this.spaceWaiters.shift()!;
      next();
    }
  }
}

/** A shallow copy with the drop count added (the packet may be shared with other edges). */
function markDrops(p: FramePacket, n: number): FramePacket {
  return { ...p, droppedBefore: (p.droppedBefore ?? 0) + n };
}
