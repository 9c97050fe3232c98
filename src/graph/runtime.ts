import { Subject, type Observable, filter } from 'rxjs';
import type { Logger } from 'pino';
import type { AddressInfo } from 'node:net';
import { EdgeQueue } from './edge-queue.js';
import { EOS, fitsPort, nowMs, type Packet, type PortType } from './packets.js';
import { GraphMetrics } from './metrics.js';
import { StatusBoard } from './status.js';
import type { NodeContext, NodeInstance } from './node-kind.js';
import type { Pipeline, ResolvedNode } from './pipeline-file.js';
import { HttpHub } from '../server/http-hub.js';
import { backoffDelay } from './backoff.js';
import { sleep } from '../util/sleep.js';

// The runtime wires validated nodes with bounded edge queues and runs one loop per node:
// sources produce until stopped, every other node handles one packet at a time in arrival
// order. End of stream travels through the graph like a frame, so stopping is draining:
// sources end, queues empty, sinks flush, and only then does `done` resolve.

export type GraphEvent =
  | { type: 'node-error'; node: string; error: Error; willRestart: boolean }
  | { type: 'node-restarted'; node: string; attempt: number }
  | { type: 'node-finished'; node: string }
  | { type: 'listening'; address: AddressInfo }
  | { type: 'finished' }
  | { type: 'failed'; node: string; error: Error };

export class NodeFailure extends Error {
  constructor(readonly node: string, override readonly cause: Error) {
    super(`node "${node}" failed: ${cause.message}`);
    this.name = 'NodeFailure';
  }
}

interface NodeRuntime {
  readonly spec: ResolvedNode;
  readonly ctx: NodeContext;
  instance: NodeInstance | null;
  readonly inputs: Map<string, EdgeQueue>;
  readonly outputs: Map<string, EdgeQueue[]>;
  readonly taps: Map<string, Subject<Packet>>;
}

export interface GraphOptions {
  readonly log: Logger;
  readonly metrics?: GraphMetrics;
  /** Skip the HTTP server even if the pipeline enables it (tests that need no port). */
  readonly noServer?: boolean;
}

export class Graph {
  readonly metrics: GraphMetrics;
  readonly http: HttpHub;
  readonly status = new StatusBoard();
  readonly events$ = new Subject<GraphEvent>();
  private readonly log: Logger;
  private readonly abort = new AbortController();
  private readonly nodes = new Map<string, NodeRuntime>();
  /** The input port type each edge delivers to (an `any` output is checked per packet against it). */
  private readonly edgeInputType = new Map<EdgeQueue, PortType>();
  private failure: NodeFailure | null = null;
  private finishedResolve!: () => void;
  private finishedReject!: (e: Error) => void;
  /** Resolves when every node has finished after end of stream; rejects when a node fails fatally. */
  readonly done: Promise<void>;
  address: AddressInfo | null = null;
  private started = false;

  constructor(readonly pipeline: Pipeline, opts: GraphOptions) {
    this.log = opts.log.child({ pipeline: pipeline.name });
    this.metrics = opts.metrics ?? new GraphMetrics();
    this.http = new HttpHub(this.log, { allowedHosts: pipeline.server.allowedHosts });
    this.done = new Promise<void>((res, rej) => {
      this.finishedResolve = res;
      this.finishedReject = rej;
    });
    this.done.catch(() => {}); // observed through events$ or by awaiting done
    this.noServer = opts.noServer === true || !pipeline.server.enabled;
    this.buildRuntimes();
  }
  private readonly noServer: boolean;

  /** Everything a node emits on a port, as an observable (for tests, viewers and taps). */
  output$(node: string, port: string): Observable<Packet> {
    const tap = this.nodes.get(node)?.taps.get(port);
    if (!tap) throw new Error(`no output ${node}.${port}`);
    return tap.asObservable();
  }

  /** Frames only, for convenience. */
  frames$(node: string, port: string): Observable<Packet> {
    return this.output$(node, port).pipe(filter((p) => p.type === 'video' || p.type === 'depth'));
  }

  get signal(): AbortSignal {
    return this.abort.signal;
  }

  private buildRuntimes(): void {
    const p = this.pipeline;
    for (const spec of p.nodes) {
      const log = this.log.child({ node: spec.name, kind: spec.kind.kind });
      const rt: NodeRuntime = {
        spec,
        instance: null,
        inputs: new Map(),
        outputs: new Map(Object.keys(spec.kind.outputs).map((port) => [port, []])),
        taps: new Map(Object.keys(spec.kind.outputs).map((port) => [port, new Subject<Packet>()])),
        ctx: {
          name: spec.name,
          log,
          metrics: this.metrics,
          http: this.http,
          signal: this.abort.signal,
          emit: (port, packet) => this.emit(rt, port, packet),
          sequence: { value: 0 },
          setStatus: (st) => this.status.set(spec.name, spec.kind.kind, st),
        },
      };
      this.status.set(spec.name, spec.kind.kind, { state: 'starting' });
      this.nodes.set(spec.name, rt);
    }
    for (const e of p.edges) {
      const q = new EdgeQueue(e.label, e.capacity, e.policy, (n) => this.metrics.edgeDropped.inc({ edge: e.label, reason: 'overflow' }, n));
      this.metrics.edgeDropped.inc({ edge: e.label, reason: 'overflow' }, 0);
      this.nodes.get(e.from.node)!.outputs.get(e.from.port)!.push(q);
      this.nodes.get(e.to.node)!.inputs.set(e.to.port, q);
      this.edgeInputType.set(q, this.nodes.get(e.to.node)!.spec.kind.inputs[e.to.port]);
    }
  }

  private emit(rt: NodeRuntime, port: string, packet: Packet): Promise<void> {
    const edges = rt.outputs.get(port);
    if (!edges) return Promise.reject(new Error(`node "${rt.spec.name}" emitted on unknown port "${port}"`));
    if (!fitsPort(packet, rt.spec.kind.outputs[port])) {
      return Promise.reject(new Error(`node "${rt.spec.name}" emitted a ${packet.type} packet on ${rt.spec.kind.outputs[port]} port "${port}"`));
    }
    for (const q of edges) {
      const to = this.edgeInputType.get(q)!;
      if (!fitsPort(packet, to)) {
        return Promise.reject(new Error(`node "${rt.spec.name}" emitted a ${packet.type} packet on port "${port}" but edge ${q.name} takes ${to} frames`));
      }
    }
    if (packet.type === 'video' || packet.type === 'depth') this.metrics.framesOut.inc({ node: rt.spec.name });
    rt.taps.get(port)!.next(packet);
    let waits: Promise<void>[] | null = null;
    for (const q of edges) {
      const w = q.offer(packet);
      if (w) (waits ??= []).push(w);
      this.metrics.edgeDepth.set({ edge: q.name }, q.length);
    }
    return waits ? Promise.all(waits).then(() => undefined) : Promise.resolve();
  }

  /** Create every node, mount HTTP routes, listen, and start the node loops. */
  async start(): Promise<void> {
    if (this.started) throw new Error('graph already started');
    this.started = true;
    this.mountBuiltins();
    for (const rt of this.nodes.values()) {
      try {
        rt.instance = await rt.spec.kind.create(rt.spec.options as never, rt.ctx);
        // Nodes with nothing to say are ok once created; the others have already said more.
        if (this.status.get(rt.spec.name)?.state === 'starting' && !rt.spec.kind.reportsStatus) rt.ctx.setStatus({ state: 'ok' });
      } catch (e) {
        const err = new NodeFailure(rt.spec.name, asError(e));
        await this.closeAll();
        throw err;
      }
    }
    if (!this.noServer) {
      try {
        this.address = await this.http.listen(this.pipeline.server.host, this.pipeline.server.port);
      } catch (e) {
        await this.closeAll();
        throw e;
      }
      if (!isLoopback(this.address.address)) {
        this.log.warn({ address: this.address.address }, `serving on ${this.address.address}, which is reachable from other machines: set DCL_TOKEN to require a token for the WebSocket`);
      }
      this.events$.next({ type: 'listening', address: this.address });
    }
    const loops = [...this.nodes.values()].map((rt) =>
      (rt.spec.kind.role === 'source' || rt.inputs.size === 0 ? this.runSource(rt) : this.runConsumer(rt)).catch((e) =>
        this.fail(rt, asError(e)),
      ),
    );
    void Promise.all(loops).then(async () => {
      if (this.failure) return;
      await this.closeAll();
      this.events$.next({ type: 'finished' });
      this.events$.complete();
      this.finishedResolve();
    });
  }

  /** Frames each node received and emitted so far (for the end-of-run summary). */
  async frameCounts(): Promise<Record<string, { in: number; out: number }>> {
    const out: Record<string, { in: number; out: number }> = {};
    for (const name of this.nodes.keys()) {
      out[name] = { in: await this.metrics.value('dcl_node_frames_in_total', { node: name }), out: await this.metrics.value('dcl_node_frames_out_total', { node: name }) };
    }
    return out;
  }

  /** Graceful stop: sources end, in-flight frames drain, sinks flush. */
  async stop(): Promise<void> {
    this.abort.abort();
    await this.done.catch(() => {});
  }

  private mountBuiltins(): void {
    this.http.route('/metrics', async (_req, res) => {
      res.writeHead(200, { 'content-type': this.metrics.registry.contentType });
      res.end(await this.metrics.registry.metrics());
    });
    this.http.route('/healthz', (_req, res) => {
      const snap = this.status.snapshot();
      const status = this.failure !== null ? 'failed' : snap.state;
      // Load balancers and service managers read the code: 503 when a node failed or a source is down.
      res.writeHead(status === 'failed' || status === 'down' ? 503 : 200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end(JSON.stringify({ status, pipeline: this.pipeline.name, stopping: this.abort.signal.aborted, nodes: snap.nodes }));
    });
  }

  private async runSource(rt: NodeRuntime): Promise<void> {
    const policy = rt.spec.kind.restart;
    let attempt = 0;
    this.metrics.nodeUp.set({ node: rt.spec.name }, 1);
    for (;;) {
      // A stop asked for while the graph was still starting (a signal during model loading) ends the source at once.
      if (this.abort.signal.aborted) break;
      try {
        await rt.instance!.run?.();
        break;
      } catch (e) {
        const err = asError(e);
        const willRestart = policy !== undefined && attempt < policy.maxRestarts && !this.abort.signal.aborted;
        rt.ctx.log.error({ err }, willRestart ? 'source failed; restarting it' : 'source failed');
        this.events$.next({ type: 'node-error', node: rt.spec.name, error: err, willRestart });
        if (!willRestart) throw err;
        this.metrics.nodeUp.set({ node: rt.spec.name }, 0);
        rt.ctx.setStatus({ state: 'down', message: `restarting after an error: ${err.message}` });
        await safeClose(rt);
        const delay = backoffDelay(attempt, policy.initialDelayMs, policy.maxDelayMs);
        attempt++;
        if (!(await sleep(delay, this.abort.signal))) break;
        for (const port of rt.outputs.keys()) {
          await this.emit(rt, port, { type: 'discontinuity', streamId: rt.spec.name, reason: `restart after error: ${err.message}` });
        }
        rt.instance = await rt.spec.kind.create(rt.spec.options as never, rt.ctx);
        if (!rt.spec.kind.reportsStatus) rt.ctx.setStatus({ state: 'ok' });
        this.metrics.restarts.inc({ node: rt.spec.name });
        this.metrics.nodeUp.set({ node: rt.spec.name }, 1);
        this.events$.next({ type: 'node-restarted', node: rt.spec.name, attempt });
      }
    }
    await this.finishNode(rt);
  }

  private async runConsumer(rt: NodeRuntime): Promise<void> {
    const name = rt.spec.name;
    const isSink = Object.keys(rt.spec.kind.outputs).length === 0;
    let chain: Promise<void> = Promise.resolve();
    const handle = async (port: string, p: Packet): Promise<void> => {
      const frame = p.type === 'video' || p.type === 'depth';
      if (frame) this.metrics.framesIn.inc({ node: name });
      const t0 = performance.now();
      await rt.instance!.process?.(port, p);
      if (frame) {
        this.metrics.processSeconds.observe({ node: name }, (performance.now() - t0) / 1000);
        if (isSink) this.metrics.latencySeconds.observe({ node: name }, Math.max(0, nowMs() - p.arrivalMs) / 1000);
      }
    };
    await Promise.all(
      [...rt.inputs].map(async ([port, q]) => {
        for (;;) {
          const p = await q.take();
          this.metrics.edgeDepth.set({ edge: q.name }, q.length);
          if (this.failure) return;
          if (p.type === 'eos') return;
          // One packet at a time per node, whichever input it came from.
          chain = chain.then(() => handle(port, p));
          await chain;
        }
      }),
    );
    if (this.failure) return;
    await rt.instance!.flush?.();
    await this.finishNode(rt);
  }

  private async finishNode(rt: NodeRuntime): Promise<void> {
    for (const port of rt.outputs.keys()) await this.emit(rt, port, EOS);
    for (const tap of rt.taps.values()) tap.complete();
    this.metrics.nodeUp.set({ node: rt.spec.name }, 0);
    rt.ctx.setStatus({ ...this.status.get(rt.spec.name), state: 'finished' });
    this.events$.next({ type: 'node-finished', node: rt.spec.name });
  }

  private async fail(rt: NodeRuntime, err: Error): Promise<void> {
    if (this.failure) return;
    const failure = new NodeFailure(rt.spec.name, err);
    this.failure = failure;
    rt.ctx.log.error({ err }, `node "${rt.spec.name}" failed; stopping the pipeline`);
    this.abort.abort();
    this.events$.next({ type: 'failed', node: rt.spec.name, error: err });
    await this.closeAll();
    this.events$.complete();
    this.finishedReject(failure);
  }

  private closed = false;
  private async closeAll(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const rt of this.nodes.values()) await safeClose(rt);
    await this.http.close();
  }
}

async function safeClose(rt: NodeRuntime): Promise<void> {
  const inst = rt.instance;
  if (!inst) return;
  try {
    await inst.close?.();
  } catch (e) {
    rt.ctx.log.warn({ err: asError(e) }, 'close failed');
  }
}

function asError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}

function isLoopback(address: string): boolean {
  return address === '::1' || address.startsWith('127.') || address === 'localhost' || address.startsWith('::ffff:127.');
}
