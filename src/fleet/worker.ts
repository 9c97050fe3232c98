import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { loadPipelineFile } from '../graph/pipeline-file.js';
import { builtinRegistry } from '../nodes/index.js';
import { Graph } from '../graph/runtime.js';
import { LEASE_KEEPER_RESOURCE } from '../nodes/sinks/nats-publish.js';
import { sharedNats } from './nats.js';
import { openBuckets, readCameras, listKeys } from './buckets.js';
import { LeaseKeeper } from './leases.js';
import { fairShare } from './fair-share.js';
import { streamEntryFor, type CameraRecord } from './cameras.js';
import { stateSubject } from './subjects.js';
import { OptionError } from '../util/errors.js';

// A fleet worker: the multi-stream pipeline (pipelines/fleet-worker.yaml) whose streams are the
// cameras this worker holds leases on. Each tick it renews its leases (a lost one stops its stream
// at once), says it is alive with its capacity, reads the camera list, gives back cameras that
// were removed or are over its fair share, claims free ones up to its share, and publishes each
// camera's state on dcl.state.<camera>.

export interface WorkerOptions {
  readonly nats: string;
  readonly capacity: number;
  readonly pipelineFile: string;
  readonly sets: readonly string[];
  readonly id?: string;
  readonly leaseTtlMs: number;
  readonly replicas?: number;
  readonly log: Logger;
}

interface WorkerRecord {
  readonly worker: string;
  readonly capacity: number;
  readonly cameras: string[];
  readonly host: string;
}

/** How long a camera whose stream could not start (or failed) is left to other workers. */
const RETRY_AFTER_MS = 30_000;

export class FleetWorker {
  readonly id: string;
  private readonly graph: Graph;
  private readonly log: Logger;
  private timer: NodeJS.Timeout | null = null;
  private renewTimer: NodeJS.Timeout | null = null;
  private ticking: Promise<void> = Promise.resolve();
  private renewing: Promise<void> = Promise.resolve();
  private stopped = false;
  /** The record each held camera's stream was started from (a changed record restarts it). */
  private readonly running = new Map<string, string>();
  private readonly backoff = new Map<string, number>();
  private readonly warnedBad = new Set<string>();
  private keeper!: LeaseKeeper;
  private buckets!: Awaited<ReturnType<typeof openBuckets>>;
  private nc!: Awaited<ReturnType<typeof sharedNats>>['value'];
  private releaseNats: (() => Promise<void>) | null = null;

  constructor(private readonly o: WorkerOptions) {
    this.id = o.id ?? `${hostname()}-${process.pid}-${randomBytes(2).toString('hex')}`;
    this.log = o.log.child({ worker: this.id });
    const pipeline = loadPipelineFile(o.pipelineFile, builtinRegistry(), {
      overrides: [...o.sets, `nats.url=${o.nats}`, `nats.worker=${this.id}`],
    });
    if (!pipeline.streams) throw new OptionError(`${o.pipelineFile}: a fleet worker's pipeline needs a streams: list (its cameras are added to it)`);
    this.graph = new Graph(pipeline, { log: this.log, dynamicStreams: true });
  }

  get done(): Promise<void> {
    return this.graph.done;
  }

  cameras(): string[] {
    return [...this.running.keys()];
  }

  async start(): Promise<void> {
    const conn = await sharedNats(this.graph.shared, this.o.nats, this.log, `depthcrafter-live worker ${this.id}`);
    this.nc = conn.value;
    this.releaseNats = () => conn.release();
    this.buckets = await openBuckets(this.nc, { leaseTtlMs: this.o.leaseTtlMs, replicas: this.o.replicas });
    this.keeper = new LeaseKeeper(this.buckets.leases, this.id, this.o.leaseTtlMs);
    const keeperLease = await this.graph.shared.acquire(
      LEASE_KEEPER_RESOURCE,
      async () => this.keeper,
      () => {},
    );
    void keeperLease; // held for the worker's life: the publish node finds it
    await this.graph.start();
    this.log.info({ capacity: this.o.capacity, leaseTtlMs: this.o.leaseTtlMs }, `fleet worker ${this.id} started`);
    const period = Math.max(100, Math.round(this.o.leaseTtlMs / 4));
    // Renewals on their own loop: a tick that waits for a stream to start (a model loading) must not let leases lapse.
    const renewLoop = () => {
      if (this.stopped) return;
      this.renewing = this.renew().catch((e: unknown) => this.log.warn({ err: e }, 'renewing leases failed (will retry)'));
      void this.renewing.then(() => {
        if (!this.stopped) this.renewTimer = setTimeout(renewLoop, period);
      });
    };
    const loop = () => {
      if (this.stopped) return;
      this.ticking = this.tick().catch((e: unknown) => this.log.warn({ err: e }, 'fleet tick failed (will retry)'));
      void this.ticking.then(() => {
        if (!this.stopped) this.timer = setTimeout(loop, period);
      });
    };
    renewLoop();
    loop();
  }

  /** Stops claiming, hands every camera back at once (so others take over without waiting for the TTL) and drains. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.renewTimer) clearTimeout(this.renewTimer);
    await Promise.all([this.ticking, this.renewing]);
    await this.keeper?.releaseAll().catch(() => {});
    await this.buckets?.workers.delete(this.id).catch(() => {});
    await this.graph.stop();
    await this.releaseNats?.();
  }

  private async renew(): Promise<void> {
    for (const cam of await this.keeper.renewAll()) {
      this.log.warn({ camera: cam }, `lease on camera "${cam}" lost: stopping it`);
      // Its frames are withheld from now on (the publisher's lease gate); the stream drains in the background.
      void this.stopCamera(cam);
    }
  }

  private async tick(): Promise<void> {
    const record: WorkerRecord = { worker: this.id, capacity: this.o.capacity, cameras: this.keeper.cameras(), host: hostname() };
    await this.buckets.workers.put(this.id, JSON.stringify(record));
    const capacities: number[] = [];
    for (const key of await listKeys(this.buckets.workers)) {
      const e = await this.buckets.workers.get(key);
      if (e?.operation !== 'PUT') continue;
      try {
        capacities.push((JSON.parse(e.string()) as WorkerRecord).capacity);
      } catch {
        /* a record this version does not read */
      }
    }
    if (capacities.length === 0) capacities.push(this.o.capacity);
    const cameras = await readCameras(this.buckets.cameras, (key, why) => {
      if (!this.warnedBad.has(key)) this.log.warn({ camera: key }, `camera "${key}" in the list cannot be used: ${why}`);
      this.warnedBad.add(key);
    });

    // Streams whose lease went while they were starting.
    for (const cam of this.cameras()) if (!this.keeper.cameras().includes(cam)) await this.stopCamera(cam);
    // Removed, changed or failed cameras go first.
    for (const cam of this.keeper.cameras()) {
      const rec = cameras.get(cam);
      const view = this.graph.streamViews().find((v) => v.name === cam);
      if (!rec) {
        this.log.info({ camera: cam }, `camera "${cam}" was removed from the list: stopping it`);
        await this.giveBack(cam);
      } else if (this.running.has(cam) && this.running.get(cam) !== JSON.stringify(rec)) {
        this.log.info({ camera: cam }, `camera "${cam}" changed: restarting it`);
        await this.stopCamera(cam);
        await this.startCamera(rec);
      } else if (view?.state === 'failed') {
        this.log.warn({ camera: cam, error: view.message }, `camera "${cam}" failed here: leaving it to other workers for ${RETRY_AFTER_MS / 1000} s`);
        this.backoff.set(cam, performance.now() + RETRY_AFTER_MS);
        await this.giveBack(cam);
      }
    }

    const share = fairShare({ cameras: cameras.size, capacities, capacity: this.o.capacity });
    // Over the share (a worker joined): the newest claims go back.
    const held = this.keeper.cameras();
    for (const cam of held.slice(share).reverse()) {
      this.log.info(
        { camera: cam, share, cameras: cameras.size, workers: capacities.length },
        `handing camera "${cam}" back (over this worker's share of ${share})`,
      );
      await this.giveBack(cam);
    }
    // Under it: claim free cameras, starting at a place of our own so that workers rarely race.
    const now = performance.now();
    const free = [...cameras.keys()].filter((c) => !this.keeper.cameras().includes(c) && !((this.backoff.get(c) ?? 0) > now));
    const offset = free.length > 0 ? hash(this.id) % free.length : 0;
    for (let i = 0; i < free.length && this.keeper.cameras().length < share && !this.stopped; i++) {
      const cam = free[(i + offset) % free.length];
      if ((await this.buckets.leases.get(cam))?.operation === 'PUT') continue;
      if (!(await this.keeper.claim(cam))) continue;
      await this.startCamera(cameras.get(cam)!);
    }
    this.publishStates();
  }

  private async startCamera(rec: CameraRecord): Promise<void> {
    try {
      await this.graph.addStream(streamEntryFor(rec));
      this.running.set(rec.name, JSON.stringify(rec));
      this.log.info({ camera: rec.name }, `serving camera "${rec.name}"`);
    } catch (e) {
      this.log.error({ camera: rec.name, err: e }, `camera "${rec.name}" could not start here: ${(e as Error).message}`);
      this.backoff.set(rec.name, performance.now() + RETRY_AFTER_MS);
      await this.keeper.release(rec.name);
    }
  }

  private async stopCamera(cam: string): Promise<void> {
    if (!this.running.delete(cam)) return;
    await this.graph.removeStream(cam).catch(() => {});
  }

  private async giveBack(cam: string): Promise<void> {
    await this.stopCamera(cam);
    await this.keeper.release(cam);
  }

  private publishStates(): void {
    for (const v of this.graph.streamViews()) {
      if (!this.keeper.valid(v.name)) continue;
      this.nc.publish(
        stateSubject(v.name),
        JSON.stringify({ camera: v.name, worker: this.id, state: v.state, message: v.message, fpsIn: v.fpsIn, fpsOut: v.fpsOut, at: Date.now() }),
      );
    }
  }
}

function hash(s: string): number {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619) >>> 0;
  return h;
}
