import type { KV } from '@nats-io/kv';

// A worker's leases on cameras, in a key-value bucket whose TTL is the lease TTL: a lease is a key
// (the camera) created only if absent and renewed by compare-and-set on its revision. A worker that
// dies or is cut off stops renewing, its keys age out after the TTL, and another worker's create
// succeeds. A lease is trusted locally only for `trustFraction` of the TTL after the last renewal
// the server confirmed, so a cut-off worker stops publishing before anyone else can claim the
// camera: no camera is ever served by two workers at once.

export interface LeaseRecord {
  readonly worker: string;
  readonly since: number;
}

interface Held {
  revision: number;
  /** Local time (ms) of the last confirmed write. */
  confirmedAt: number;
  readonly since: number;
}

export class LeaseKeeper {
  private readonly held = new Map<string, Held>();

  constructor(
    private readonly kv: KV,
    readonly worker: string,
    readonly ttlMs: number,
    private readonly now: () => number = () => performance.now(),
    private readonly trustFraction = 0.7,
  ) {}

  /** Cameras whose lease this worker holds and may still act on. */
  valid(camera: string): boolean {
    const h = this.held.get(camera);
    return h !== undefined && this.now() - h.confirmedAt < this.ttlMs * this.trustFraction;
  }

  cameras(): string[] {
    return [...this.held.keys()];
  }

  /** Claims a free camera; false when another worker holds it. */
  async claim(camera: string): Promise<boolean> {
    const since = Date.now();
    const sent = this.now();
    try {
      const revision = await this.kv.create(camera, JSON.stringify({ worker: this.worker, since } satisfies LeaseRecord));
      this.held.set(camera, { revision, confirmedAt: sent, since });
      return true;
    } catch (e) {
      if (isWrongSequence(e)) return false;
      throw e;
    }
  }

  /**
   * Renews every lease; returns the cameras lost (taken over after this worker was cut off, or not
   * confirmed in time). Time is counted from when each request was sent, not answered.
   */
  async renewAll(): Promise<string[]> {
    const lost: string[] = [];
    await Promise.all(
      [...this.held].map(async ([camera, h]) => {
        const sent = this.now();
        try {
          h.revision = await this.kv.update(camera, JSON.stringify({ worker: this.worker, since: h.since } satisfies LeaseRecord), h.revision);
          h.confirmedAt = sent;
        } catch (e) {
          if (isWrongSequence(e)) {
            this.held.delete(camera);
            lost.push(camera);
          }
          // Other failures (no server right now): keep trying until the lease is no longer trusted.
        }
        if (this.held.has(camera) && !this.valid(camera)) {
          this.held.delete(camera);
          lost.push(camera);
        }
      }),
    );
    return lost;
  }

  /** Gives a camera back at once (removed from the list, or surplus after a worker joined). */
  async release(camera: string): Promise<void> {
    const h = this.held.get(camera);
    if (!h) return;
    this.held.delete(camera);
    // Only our own revision: never delete a lease another worker took.
    await this.kv.delete(camera, { previousSeq: h.revision }).catch(() => {});
  }

  async releaseAll(): Promise<void> {
    await Promise.all(this.cameras().map((c) => this.release(c)));
  }
}

function isWrongSequence(e: unknown): boolean {
  return /wrong last sequence|key exists/i.test((e as Error)?.message ?? '');
}
