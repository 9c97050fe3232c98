import { redactUrls } from '../util/redact.js';
import { hostname } from 'node:os';
import { stringify } from 'yaml';
import type { Logger } from 'pino';
import { parsePipeline } from '../graph/pipeline-file.js';
import { builtinRegistry } from '../nodes/index.js';
import { Graph } from '../graph/runtime.js';
import { sharedNats } from './nats.js';
import { openBuckets } from './buckets.js';
import { cameraRecord, cameraRecordSchema, streamEntryFor, type CameraRecord } from './cameras.js';
import { FleetConfigError } from './nats.js';
import { framesSubject } from './subjects.js';

// A fleet edge (`fleet edge NAME URL`): a camera that only this machine reaches (a USB camera on a
// box without a GPU) put on the bus for a worker elsewhere. A small pipeline, the camera URL's
// source into nats-jpeg-publish: every frame JPEG-encoded in encoder threads and published on
// dcl.frames.NAME. With `register`, the camera goes into the fleet's list as `edge:` so that a
// worker claims it and runs a nats-frames source for it; the edge itself holds no lease.

export interface EdgeOptions {
  readonly nats: string;
  readonly name: string;
  /** Where the frames come from: a camera URL as in `fleet camera add` (v4l2://, test:, synthetic:, rtsp://, file://). */
  readonly url: string;
  /** KEY=VALUE: a source option here; NODE.KEY=VALUE: an option of the worker's per-stream node (needs register). */
  readonly sets: readonly string[];
  readonly quality?: number;
  /** Publish at most this many frames per second (0 or unset: all). */
  readonly fpsLimit?: number;
  /** Put the camera into the fleet's list (as `edge:`), so that a worker serves it. */
  readonly register: boolean;
  readonly leaseTtlMs: number;
  readonly replicas?: number;
  readonly id?: string;
  /** Serve /streams, /healthz and /metrics on this port (unset: no HTTP server). */
  readonly port?: number;
  readonly host?: string;
  readonly log: Logger;
}

export class FleetEdge {
  readonly id: string;
  readonly graph: Graph;
  /** What `register` puts into the camera list. */
  readonly record: CameraRecord;
  private readonly log: Logger;
  private releaseNats: (() => Promise<void>) | null = null;
  private stopping = false;

  constructor(private readonly o: EdgeOptions) {
    this.id = o.id ?? `${hostname()}-${process.pid}`;
    this.log = o.log.child({ edge: this.id, camera: o.name });
    if (/^edge:/i.test(o.url))
      throw new FleetConfigError('fleet edge needs the URL of the camera itself (v4l2:///dev/video0, test:, synthetic:, rtsp://, file://), not edge:');
    const local = cameraRecord(o.name, o.url, o.sets);
    if (Object.keys(local.overrides).length > 0 && !o.register) {
      throw new FleetConfigError(
        `--set ${Object.keys(local.overrides)
          .map((n) => `${n}.*`)
          .join(', ')}: options of the worker's nodes go into the camera list, with --register`,
      );
    }
    this.record = cameraRecordSchema.parse({ name: o.name, url: 'edge:', source: {}, overrides: local.overrides });
    const entry = streamEntryFor(local);
    const spec = {
      name: `fleet-edge-${o.name}`,
      server: { enabled: o.port !== undefined, host: o.host ?? '127.0.0.1', port: o.port ?? 0 },
      streams: [{ name: o.name, source: entry.source }],
      nodes: {
        publish: {
          kind: 'nats-jpeg-publish',
          options: { url: o.nats, edge: this.id, ...(o.quality !== undefined ? { quality: o.quality } : {}), ...(o.fpsLimit ? { maxFps: o.fpsLimit } : {}) },
        },
      },
      // A short drop-oldest queue: a source is never held up by the publisher, which drops what its encoders cannot take.
      edges: [{ from: 'streams.video', to: 'publish.frames', queue: { capacity: 2, policy: 'drop-oldest' } }],
    };
    const pipeline = parsePipeline(stringify(spec), `fleet edge ${o.name}`, builtinRegistry(), { env: {} });
    this.graph = new Graph(pipeline, { log: this.log });
  }

  get done(): Promise<void> {
    return this.graph.done;
  }

  /** Whether stop() was called (the graph's end is then not the source's). */
  get stopped(): boolean {
    return this.stopping;
  }

  async start(): Promise<void> {
    const conn = await sharedNats(this.graph.shared, this.o.nats, this.log, `depthcrafter-live edge ${this.id}`);
    this.releaseNats = () => conn.release();
    if (this.o.register) {
      const buckets = await openBuckets(conn.value, { leaseTtlMs: this.o.leaseTtlMs, replicas: this.o.replicas });
      const value = JSON.stringify(this.record);
      const now = await buckets.cameras.get(this.o.name);
      // The same record again (an edge restarting) is left alone: a changed record restarts the worker's stream.
      if (now?.operation !== 'PUT' || now.string() !== value) {
        await buckets.cameras.put(this.o.name, value);
        this.log.info({ record: this.record }, `camera "${this.o.name}" registered in the fleet's list as edge:`);
      }
    }
    await this.graph.start();
    this.log.info(
      { subject: framesSubject(this.o.name), source: redactUrls(this.o.url) },
      `fleet edge publishing camera "${this.o.name}" on ${framesSubject(this.o.name)}`,
    );
  }

  /** Stops the source and drains the publisher. The camera stays in the list (a worker shows it down until the edge is back). */
  async stop(): Promise<void> {
    this.stopping = true;
    await this.graph.stop();
    await this.releaseNats?.();
  }
}
