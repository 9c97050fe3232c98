import type { Logger } from 'pino';
import { loadPipelineFile } from '../graph/pipeline-file.js';
import { builtinRegistry } from '../nodes/index.js';
import { Graph } from '../graph/runtime.js';
import { sharedNats } from './nats.js';
import { openBuckets, readCameras } from './buckets.js';
import { ALL_STATES } from './subjects.js';
import { OptionError } from '../util/errors.js';

// A fleet gateway: the viewer, /ws (?stream=) and /streams for every camera of the fleet, fed from
// the bus (pipelines/fleet-gateway.yaml). It follows the camera list (a stream per camera, each a
// nats-depth source) and the workers' state messages (GET /fleet: which worker serves what).
// Gateways hold no state of their own: run as many as the subscribers need.

export interface GatewayOptions {
  readonly nats: string;
  readonly pipelineFile: string;
  readonly sets: readonly string[];
  readonly leaseTtlMs: number;
  readonly replicas?: number;
  readonly log: Logger;
}

interface CameraState {
  readonly camera: string;
  readonly worker: string;
  readonly state: string;
  readonly message?: string;
  readonly fpsIn?: number;
  readonly fpsOut?: number;
  readonly at: number;
}

export class FleetGateway {
  readonly graph: Graph;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  private syncing: Promise<void> = Promise.resolve();
  private readonly states = new Map<string, CameraState>();
  private releaseNats: (() => Promise<void>) | null = null;

  constructor(private readonly o: GatewayOptions) {
    const pipeline = loadPipelineFile(o.pipelineFile, builtinRegistry(), { overrides: [...o.sets] });
    if (!pipeline.streams) throw new OptionError(`${o.pipelineFile}: a fleet gateway's pipeline needs a streams: list`);
    this.graph = new Graph(pipeline, { log: o.log, dynamicStreams: true });
  }

  get done(): Promise<void> {
    return this.graph.done;
  }

  async start(): Promise<void> {
    const conn = await sharedNats(this.graph.shared, this.o.nats, this.o.log, 'depthcrafter-live gateway');
    this.releaseNats = () => conn.release();
    const nc = conn.value;
    const buckets = await openBuckets(nc, { leaseTtlMs: this.o.leaseTtlMs, replicas: this.o.replicas });
    nc.subscribe(ALL_STATES, {
      callback: (err, m) => {
        if (err) return;
        try {
          const s = JSON.parse(m.string()) as CameraState;
          if (typeof s.camera === 'string' && typeof s.worker === 'string') this.states.set(s.camera, s);
        } catch {
          /* not ours */
        }
      },
    });
    this.graph.http.route('/fleet', (_req, res) => {
      const now = Date.now();
      const cameras = this.graph.streamViews().map((v) => {
        const s = this.states.get(v.name);
        const fresh = s && now - s.at < this.o.leaseTtlMs * 2;
        return {
          name: v.name,
          gateway: { state: v.state, message: v.message, fpsOut: v.fpsOut },
          worker: fresh ? s.worker : null,
          workerState: fresh ? s.state : 'unserved',
          workerFps: fresh ? (s.fpsOut ?? null) : null,
        };
      });
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end(JSON.stringify({ cameras }));
    });
    await this.graph.start();
    const sync = async () => {
      const cameras = await readCameras(buckets.cameras, () => {});
      const have = new Set(this.graph.streamViews().map((v) => v.name));
      for (const name of have) if (!cameras.has(name)) await this.graph.removeStream(name).catch(() => {});
      for (const name of cameras.keys()) {
        if (have.has(name)) continue;
        await this.graph
          .addStream({ name, source: { kind: 'nats-depth', options: { url: this.o.nats, staleMs: Math.max(2000, this.o.leaseTtlMs * 2) } } })
          .catch((e: unknown) => this.o.log.warn({ camera: name, err: e }, `camera "${name}" cannot be shown: ${(e as Error).message}`));
      }
    };
    const loop = () => {
      if (this.stopped) return;
      this.syncing = sync().catch((e: unknown) => this.o.log.warn({ err: e }, 'reading the camera list failed (will retry)'));
      void this.syncing.then(() => {
        if (!this.stopped) this.timer = setTimeout(loop, Math.max(250, this.o.leaseTtlMs / 4));
      });
    };
    loop();
    await this.syncing;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.syncing;
    await this.graph.stop();
    await this.releaseNats?.();
  }
}
