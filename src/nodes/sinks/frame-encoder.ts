import type { Worker } from 'node:worker_threads';
import { availableParallelism } from 'node:os';
import { spawnWorker } from '../../util/spawn-worker.js';
import type { EncodeJob, FromEncoder, ToEncoder } from './encode-worker.js';
import { OptionError } from '../../util/errors.js';

export type { EncodeJob, EncodeFormat } from './encode-worker.js';

// A small pool of encoder threads (encode-worker.ts) for the sinks that send images (websocket,
// nats-jpeg-publish). One request holds the jobs of one frame; at most `maxInFlight` requests are
// outstanding, so a slow encoder shows up as a refused request (the caller drops the frame for the
// subscribers that needed it) and never as a growing queue. Threads start on first use (or warm()).

export interface FrameEncoderOptions {
  /** Encoder threads; default: one per spare core, at most 2. */
  readonly workers?: number;
  /** Requests (frames) submitted and not yet answered before tryEncode() refuses. */
  readonly maxInFlight?: number;
  /** Called when a thread fails (its outstanding requests are rejected; a new one starts on demand). */
  readonly onError?: (err: Error) => void;
}

interface Slot {
  readonly worker: Worker;
  readonly pending: Map<number, { resolve: (out: Uint8Array[]) => void; reject: (e: Error) => void }>;
  dead: boolean;
}

export function defaultEncodeWorkers(): number {
  return Math.max(1, Math.min(2, availableParallelism() - 1));
}

export class FrameEncoder {
  private readonly slots: Array<Slot | null>;
  private readonly maxInFlight: number;
  private nextId = 1;
  private outstanding = 0;
  private slotWaiters: Array<() => void> = [];
  private closed = false;

  constructor(private readonly opts: FrameEncoderOptions = {}) {
    const n = opts.workers ?? defaultEncodeWorkers();
    if (!Number.isInteger(n) || n < 1) throw new OptionError(`workers must be a positive integer, got ${n}`);
    this.slots = new Array<Slot | null>(n).fill(null);
    this.maxInFlight = opts.maxInFlight ?? 2 * n;
    if (!Number.isInteger(this.maxInFlight) || this.maxInFlight < 1) throw new OptionError(`maxInFlight must be a positive integer, got ${this.maxInFlight}`);
  }

  /** Requests submitted and not yet answered. */
  get inFlight(): number {
    return this.outstanding;
  }

  /** Whether tryEncode() would refuse now. */
  get full(): boolean {
    return this.outstanding >= this.maxInFlight;
  }

  /** Start the threads now, so the first frames do not wait for them to load. */
  warm(): void {
    if (this.closed) return;
    for (let i = 0; i < this.slots.length; i++) this.slot(i);
  }

  /**
   * Encode the jobs of one frame; resolves with one byte array per job, in order. Returns null,
   * submitting nothing, when maxInFlight requests are outstanding. The input arrays are not
   * detached: views into larger buffers are copied first, whole buffers are cloned by postMessage.
   */
  tryEncode(jobs: readonly EncodeJob[]): Promise<Uint8Array[]> | null {
    if (this.closed) return Promise.reject(new Error('frame encoder closed'));
    if (this.full) return null;
    const compact = new Map<ArrayBufferView, ArrayBufferView>();
    const transfer: ArrayBuffer[] = [];
    const tight = <T extends Float32Array | Uint8Array>(a: T | undefined): T | undefined => {
      if (!a) return undefined;
      // Structured clone copies a typed array's whole buffer: copy a view into a larger one first
      // (and move that copy, once, however many jobs share it).
      if (a.byteOffset === 0 && a.byteLength === a.buffer.byteLength) return a;
      let c = compact.get(a) as T | undefined;
      if (!c) {
        c = a.slice() as T;
        compact.set(a, c);
        transfer.push(c.buffer as ArrayBuffer);
      }
      return c;
    };
    const req: ToEncoder = {
      type: 'encode',
      id: this.nextId++,
      jobs: jobs.map((j) => ({ ...j, depth: tight(j.depth), rgb: tight(j.rgb), gtDepth: tight(j.gtDepth) })),
    };
    const slot = this.pick();
    this.outstanding++;
    const done = new Promise<Uint8Array[]>((resolve, reject) => slot.pending.set(req.id, { resolve, reject }));
    slot.worker.postMessage(req, transfer);
    return done.finally(() => this.release());
  }

  /** Resolves true once a request can be submitted, false if that takes longer than `ms`. */
  waitForSlot(ms: number): Promise<boolean> {
    if (!this.full || this.closed) return Promise.resolve(!this.closed);
    if (ms <= 0) return Promise.resolve(false);
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        resolve(!this.closed);
      };
      const timer = setTimeout(() => {
        this.slotWaiters = this.slotWaiters.filter((w) => w !== wake);
        resolve(false);
      }, ms);
      this.slotWaiters.push(wake);
    });
  }

  /** Stop the threads; outstanding requests are rejected. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const err = new Error('frame encoder closed');
    const exits: Promise<unknown>[] = [];
    for (let i = 0; i < this.slots.length; i++) {
      const s = this.slots[i];
      if (!s) continue;
      this.slots[i] = null;
      s.dead = true;
      for (const p of s.pending.values()) p.reject(err);
      s.pending.clear();
      exits.push(s.worker.terminate());
    }
    this.slotWaiters.splice(0).forEach((w) => w());
    await Promise.all(exits);
  }

  private release(): void {
    this.outstanding--;
    const w = this.slotWaiters.shift();
    if (w) w();
  }

  /** The thread with the fewest outstanding requests (starting threads as needed). */
  private pick(): Slot {
    let best: Slot | null = null;
    for (let i = 0; i < this.slots.length; i++) {
      const s = this.slot(i);
      if (!best || s.pending.size < best.pending.size) best = s;
      if (s.pending.size === 0) break;
    }
    return best!;
  }

  private slot(i: number): Slot {
    const existing = this.slots[i];
    if (existing && !existing.dead) return existing;
    const worker = spawnWorker(import.meta.url, 'encode-worker');
    const s: Slot = { worker, pending: new Map(), dead: false };
    const fail = (err: Error) => {
      if (s.dead) return;
      s.dead = true;
      if (this.slots[i] === s) this.slots[i] = null;
      for (const p of s.pending.values()) p.reject(err);
      s.pending.clear();
      if (!this.closed) this.opts.onError?.(err);
    };
    worker.on('message', (m: FromEncoder) => {
      const p = s.pending.get(m.id);
      if (!p) return;
      s.pending.delete(m.id);
      if (m.type === 'encoded') p.resolve(m.outputs);
      else p.reject(Object.assign(new Error(`encoding failed: ${m.message}`), { name: m.name }));
    });
    worker.on('error', (e) => fail(e));
    worker.on('exit', (code) => fail(new Error(`encoder thread exited (code ${code})`)));
    this.slots[i] = s;
    return s;
  }
}
