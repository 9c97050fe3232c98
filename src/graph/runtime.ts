import { Subject, type Observable, filter } from 'rxjs';
import type { Logger } from 'pino';
import { WrappingError } from '../util/errors.js';
import type { AddressInfo } from 'node:net';
import { EdgeQueue } from './edge-queue.js';
import { EOS, fitsPort, nowMs, type Packet, type PortType } from './packets.js';
import { GraphMetrics } from './metrics.js';
import { StatusBoard } from './status.js';
import type { NodeContext, NodeInstance } from './node-kind.js';
import type { Pipeline, ResolvedEdge, ResolvedNode } from './pipeline-file.js';
import { HttpHub, isLoopback } from '../server/http-hub.js';
import { backoffDelay } from './backoff.js';
import { sleep } from '../util/sleep.js';
import { SharedResources } from './shared-resources.js';
import { FrameRate } from './frame-rate.js';
import { CheckError } from './check.js';
import { PipelineError } from './pipeline-error.js';
import { mountStreamRoutes, type StreamView } from '../server/stream-routes.js';

// The runtime wires validated nodes with bounded edge queues and runs one loop per node:
// sources produce until stopped, every other node handles one packet at a time in arrival
// order. End of stream travels through the graph like a frame, so stopping is draining:
// sources end, queues empty, sinks flush, and only then does `done` resolve.
// In a multi-stream pipeline each stream's nodes form a group: a fault in one of them stops that
// stream alone (its edges into the shared nodes end, the others go on), and streams can be added
// and removed while the graph runs.

export type GraphEvent =
  | { type: 'node-error'; node: string; error: Error; willRestart: boolean }
  | { type: 'node-restarted'; node: string; attempt: number }
  | { type: 'node-finished'; node: string }
  | { type: 'listening'; address: AddressInfo }
  | { type: 'stream-added'; stream: string }
  | { type: 'stream-failed'; stream: string; node: string; error: Error }
  | { type: 'stream-removed'; stream: string }
  | { type: 'finished' }
  | { type: 'failed'; node: string; error: Error };

export class NodeFailure extends WrappingError {
  constructor(
    readonly node: string,
    cause: Error,
  ) {
    super(`node "${node}" failed: ${cause.message}`, cause);
    this.name = 'NodeFailure';
  }
}

/** A node's frame counts for the closing log line: frames in and out, and what was dropped on the way. */
export interface FrameCounts {
  in: number;
  out: number;
  /** Frames the node itself dropped, by reason (`dcl_node_frames_dropped_total`). */
  dropped?: Record<string, number>;
  /** Frames dropped by the queues of the edges into the node, by edge. */
  edgeDropped?: Record<string, number>;
}

interface NodeRuntime {
  readonly spec: ResolvedNode;
  readonly ctx: NodeContext;
  /** The graph's stop, or the graph's and its stream's. */
  readonly signal: AbortSignal;
  instance: NodeInstance | null;
  readonly inputs: Array<{ port: string; queue: EdgeQueue }>;
  readonly outputs: Map<string, EdgeQueue[]>;
  readonly taps: Map<string, Subject<Packet>>;
  /** Frames emitted recently (fps in /streams). */
  readonly emitted: FrameRate;
  /** While running, a consumer takes an edge added later (a stream joining a multi-stream node). */
  attach?: (port: string, q: EdgeQueue) => void;
}

type StreamState = 'running' | 'stopping' | 'failed';

interface StreamRuntime {
  readonly name: string;
  readonly sourceKind: string;
  readonly nodes: NodeRuntime[];
  readonly abort: AbortController;
  state: StreamState;
  error?: string;
  /** Settles when every node of the stream has finished (or failed). */
  done: Promise<void>;
}

export interface GraphOptions {
  readonly log: Logger;
  readonly metrics?: GraphMetrics;
  /** Skip the HTTP server even if the pipeline enables it (tests that need no port). */
  readonly noServer?: boolean;
  /** Streams are added and removed by the embedding program (a fleet worker): the shared nodes wait for them until stopped. */
  readonly dynamicStreams?: boolean;
}

export class Graph {
  readonly metrics: GraphMetrics;
  readonly http: HttpHub;
  readonly status = new StatusBoard();
  readonly shared = new SharedResources();
  readonly events$ = new Subject<GraphEvent>();
  private readonly log: Logger;
  private readonly abort = new AbortController();
  private readonly nodes = new Map<string, NodeRuntime>();
  private readonly streams = new Map<string, StreamRuntime>();
  /** The input port type each edge delivers to (an `any` output is checked per packet against it). */
  private readonly edgeInputType = new Map<EdgeQueue, PortType>();
  /** Every running node loop (loops of streams added later join). */
  private readonly loops = new Set<Promise<void>>();
  private failure: NodeFailure | null = null;
  private finishedResolve!: () => void;
  private finishedReject!: (e: Error) => void;
  /** Resolves when every node has finished after end of stream; rejects when a node fails fatally. */
  readonly done: Promise<void>;
  address: AddressInfo | null = null;
  private started = false;
  private readonly noServer: boolean;
  private readonly dynamicStreams: boolean;
  /** Serialises stream additions and removals. */
  private changing: Promise<unknown> = Promise.resolve();

  constructor(
    private pipeline: Pipeline,
    opts: GraphOptions,
  ) {
    this.log = opts.log.child({ pipeline: pipeline.name });
    this.metrics = opts.metrics ?? new GraphMetrics();
    this.http = new HttpHub(this.log, { allowedHosts: pipeline.server.allowedHosts });
    this.done = new Promise<void>((res, rej) => {
      this.finishedResolve = res;
      this.finishedReject = rej;
    });
    this.done.catch(() => {}); // observed through events$ or by awaiting done
    this.noServer = opts.noServer === true || !pipeline.server.enabled;
    this.dynamicStreams = opts.dynamicStreams === true;
    this.addRuntimes(pipeline.nodes, pipeline.edges);
  }

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

  /** Names of the nodes now in the graph (streams added or removed change it). */
  nodeNames(): string[] {
    return [...this.nodes.keys()];
  }

  private addRuntimes(specs: readonly ResolvedNode[], edges: readonly ResolvedEdge[]): NodeRuntime[] {
    const added: NodeRuntime[] = [];
    for (const spec of specs) {
      const streamName = spec.stream;
      let stream = streamName !== undefined ? this.streams.get(streamName) : undefined;
      if (streamName !== undefined && !stream) {
        stream = { name: streamName, sourceKind: '', nodes: [], abort: new AbortController(), state: 'running', done: Promise.resolve() };
        this.streams.set(streamName, stream);
      }
      if (stream && spec.kind.role === 'source') (stream as { sourceKind: string }).sourceKind = spec.kind.kind;
      const log = this.log.child({ node: spec.name, kind: spec.kind.kind, ...(streamName !== undefined ? { stream: streamName } : {}) });
      const signal = stream ? AbortSignal.any([this.abort.signal, stream.abort.signal]) : this.abort.signal;
      const rt: NodeRuntime = {
        spec,
        signal,
        instance: null,
        inputs: [],
        outputs: new Map(Object.keys(spec.kind.outputs).map((port) => [port, []])),
        taps: new Map(Object.keys(spec.kind.outputs).map((port) => [port, new Subject<Packet>()])),
        emitted: new FrameRate(),
        ctx: {
          name: spec.name,
          stream: streamName ?? ((spec.options as { streamId?: unknown })?.streamId as string | undefined) ?? spec.name,
          shared: this.shared,
          streams: { names: () => this.streamViews().map((v) => v.name) },
          upstreamSources: upstreamSourceKinds(spec.name, specs, edges, this.nodes),
          log,
          metrics: this.metrics,
          http: this.http,
          signal,
          emit: (port, packet) => this.emit(rt, port, packet),
          sequence: { value: 0 },
          setStatus: (st) => this.status.set(spec.name, spec.kind.kind, st),
        },
      };
      this.status.set(spec.name, spec.kind.kind, { state: 'starting' });
      this.nodes.set(spec.name, rt);
      stream?.nodes.push(rt);
      added.push(rt);
    }
    const isNew = new Set(added.map((r) => r.spec.name));
    for (const e of edges) {
      if (isNew.has(e.from.node) || isNew.has(e.to.node)) this.wireEdge(e, isNew.has(e.to.node));
    }
    return added;
  }

  /** A queue for the edge; a running consumer (a shared node taking a new stream) starts draining it at once. */
  private wireEdge(e: ResolvedEdge, toIsNew: boolean): void {
    const q = new EdgeQueue(e.label, e.capacity, e.policy, (n) => this.metrics.edgeDropped.inc({ edge: e.label, reason: 'overflow' }, n));
    this.metrics.edgeDropped.inc({ edge: e.label, reason: 'overflow' }, 0);
    const to = this.nodes.get(e.to.node)!;
    this.nodes.get(e.from.node)!.outputs.get(e.from.port)!.push(q);
    this.edgeInputType.set(q, to.spec.kind.inputs[e.to.port]);
    if (!toIsNew && to.attach) to.attach(e.to.port, q);
    else to.inputs.push({ port: e.to.port, queue: q });
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
    if (packet.type === 'video' || packet.type === 'depth') {
      this.metrics.framesOut.inc(this.labels(rt));
      rt.emitted.mark();
    }
    rt.taps.get(port)!.next(packet);
    let waits: Promise<void>[] | null = null;
    for (const q of edges) {
      const w = q.offer(packet);
      if (w) (waits ??= []).push(w);
      this.metrics.edgeDepth.set({ edge: q.name }, q.length);
    }
    return waits ? Promise.all(waits).then(() => undefined) : Promise.resolve();
  }

  private labels(rt: NodeRuntime): { node: string; stream?: string } {
    return rt.spec.stream !== undefined ? { node: rt.spec.name, stream: rt.spec.stream } : { node: rt.spec.name };
  }

  /** Create every node, mount HTTP routes, listen, and start the node loops. */
  async start(): Promise<void> {
    if (this.started) throw new Error('graph already started');
    this.started = true;
    this.mountBuiltins();
    // Listen first: a port in use is reported at once, not after the models have loaded. Until every
    // node is created, paths no node has mounted yet answer 503 (starting), not 404.
    if (!this.noServer) {
      this.http.starting = true;
      try {
        this.address = await this.http.listen(this.pipeline.server.host, this.pipeline.server.port);
      } catch (e) {
        await this.closeAll();
        throw e;
      }
    }
    for (const rt of this.nodes.values()) {
      try {
        await this.createInstance(rt);
      } catch (e) {
        const stream = rt.spec.stream !== undefined ? this.streams.get(rt.spec.stream) : undefined;
        if (stream && this.streams.size > 1) {
          // One stream that cannot start does not keep the others from running.
          this.markStreamFailed(stream, rt, asError(e));
          continue;
        }
        const err = new NodeFailure(rt.spec.name, asError(e));
        await this.closeAll();
        throw err;
      }
    }
    if (this.address) {
      this.http.starting = false;
      if (!isLoopback(this.address.address)) {
        this.log.warn(
          { address: this.address.address },
          `serving on ${this.address.address}, which is reachable from other machines: set DCL_TOKEN to require a token for the WebSocket`,
        );
      }
      this.events$.next({ type: 'listening', address: this.address });
    }
    for (const st of this.streams.values()) if (st.state === 'failed') this.retireFailedStream(st);
    this.startLoops([...this.nodes.values()].filter((rt) => rt.instance !== null));
    void this.settled().then(async () => {
      if (this.failure) return;
      await this.closeAll();
      this.events$.next({ type: 'finished' });
      this.events$.complete();
      this.finishedResolve();
    });
  }

  private async createInstance(rt: NodeRuntime): Promise<void> {
    rt.instance = await rt.spec.kind.create(rt.spec.options as never, rt.ctx);
    // Nodes with nothing to say are ok once created; the others have already said more.
    if (this.status.get(rt.spec.name)?.state === 'starting' && !rt.spec.kind.reportsStatus) rt.ctx.setStatus({ state: 'ok' });
  }

  private startLoops(rts: NodeRuntime[]): void {
    const byStream = new Map<string, Promise<void>[]>();
    for (const rt of rts) {
      const loop = (rt.spec.kind.role === 'source' || (rt.inputs.length === 0 && !rt.spec.kind.multiStream) ? this.runSource(rt) : this.runConsumer(rt)).catch(
        (e) => this.nodeFailed(rt, asError(e)),
      );
      this.loops.add(loop);
      void loop.finally(() => this.loops.delete(loop));
      if (rt.spec.stream !== undefined) {
        const l = byStream.get(rt.spec.stream) ?? [];
        l.push(loop);
        byStream.set(rt.spec.stream, l);
      }
    }
    for (const [name, loops] of byStream) {
      const st = this.streams.get(name)!;
      st.done = Promise.all(loops).then(() => this.closeStreamNodes(st));
    }
  }

  /** Every loop has ended, including loops of streams added while waiting. */
  private async settled(): Promise<void> {
    while (this.loops.size > 0) await Promise.all([...this.loops]);
  }

  /** Frames each node received and emitted so far (for the end-of-run summary). */
  async frameCounts(): Promise<Record<string, FrameCounts>> {
    const out: Record<string, FrameCounts> = {};
    for (const [name, rt] of this.nodes) {
      const counts: FrameCounts = {
        in: await this.metrics.value('dcl_node_frames_in_total', { node: name }),
        out: await this.metrics.value('dcl_node_frames_out_total', { node: name }),
      };
      // Frames the node dropped by its own policy (a live source that fell behind its clock: `late`; fill none: `stride`), by reason.
      const dropped = await this.metrics.values('dcl_node_frames_dropped_total', { node: name });
      if (dropped.some((d) => d.value > 0))
        counts.dropped = Object.fromEntries(dropped.filter((d) => d.value > 0).map((d) => [String(d.labels.reason), d.value]));
      // Frames dropped by the queues of the edges into it.
      const edges = rt.inputs.filter((i) => i.queue.dropped > 0);
      if (edges.length > 0) counts.edgeDropped = Object.fromEntries(edges.map((i) => [i.queue.name, i.queue.dropped]));
      out[name] = counts;
    }
    return out;
  }

  /** Graceful stop: sources end, in-flight frames drain, sinks flush. */
  async stop(): Promise<void> {
    this.abort.abort();
    await this.done.catch(() => {});
  }

  /** Add a stream to a running multi-stream pipeline (validated like the file). */
  addStream(entry: unknown): Promise<StreamView> {
    const run = this.changing.then(() => this.doAddStream(entry));
    this.changing = run.catch(() => {});
    return run;
  }

  /** Stop one stream (its frames drain) and forget it; the other streams go on untouched. */
  removeStream(name: string): Promise<void> {
    const run = this.changing.then(() => this.doRemoveStream(name));
    this.changing = run.catch(() => {});
    return run;
  }

  private async doAddStream(entry: unknown): Promise<StreamView> {
    const plan = this.pipeline.streams;
    if (!plan) throw new StreamChangeError(400, 'this pipeline has no streams: list, so streams cannot be added');
    if (this.abort.signal.aborted || this.failure) throw new StreamChangeError(409, 'the pipeline is stopping');
    const name = (entry as { name?: unknown } | null)?.name;
    const existing = typeof name === 'string' ? this.streams.get(name) : undefined;
    if (existing && existing.state !== 'failed') throw new StreamChangeError(409, `stream "${name}" exists already`);
    if (existing) await this.doRemoveStream(existing.name);
    let next: Pipeline;
    try {
      next = this.pipeline.streams!.withStream(entry);
    } catch (e) {
      if (e instanceof PipelineError) throw new StreamChangeError(400, e.message);
      throw e;
    }
    const added = next.nodes.filter((n) => n.stream === name);
    for (const n of added) {
      try {
        await n.kind.check?.(n.options as never, { warn: (w) => this.log.warn({ node: n.name }, w) });
      } catch (e) {
        if (e instanceof CheckError) throw new StreamChangeError(400, `node "${n.name}": ${e.field ? `${e.field}: ` : ''}${e.message}`);
        throw e;
      }
    }
    // Instances first: a stream that cannot start leaves no trace in the graph.
    const rts = this.addRuntimesDetached(added, next.edges);
    const stream = this.streams.get(name as string)!;
    try {
      for (const rt of rts) await this.createInstance(rt);
      // The graph may have begun to stop while the nodes were starting (a model loading): the shared nodes are draining.
      if (this.abort.signal.aborted || this.failure) throw new StreamChangeError(409, 'the pipeline is stopping');
    } catch (e) {
      await this.closeStreamNodes(stream);
      this.forgetStream(stream);
      if (e instanceof StreamChangeError) throw e;
      throw new StreamChangeError(400, `stream "${name}" could not start: ${asError(e).message}`);
    }
    this.pipeline = next;
    this.attachDetached(rts, next.edges);
    this.startLoops(rts);
    stream.nodes[0]?.ctx.log.info({ nodes: rts.map((r) => r.spec.name) }, `stream "${name}" added`);
    this.events$.next({ type: 'stream-added', stream: name as string });
    return this.streamViews().find((v) => v.name === name)!;
  }

  /** Runtimes for a new stream's nodes with their edges among themselves; edges into shared nodes wait for attachDetached. */
  private addRuntimesDetached(specs: readonly ResolvedNode[], edges: readonly ResolvedEdge[]): NodeRuntime[] {
    const names = new Set(specs.map((s) => s.name));
    return this.addRuntimes(
      specs,
      edges.filter((e) => names.has(e.from.node) && names.has(e.to.node)),
    );
  }

  private attachDetached(rts: NodeRuntime[], edges: readonly ResolvedEdge[]): void {
    const names = new Set(rts.map((r) => r.spec.name));
    for (const e of edges) if (names.has(e.from.node) && !names.has(e.to.node)) this.wireEdge(e, false);
  }

  private async doRemoveStream(name: string): Promise<void> {
    const st = this.streams.get(name);
    if (!st) throw new StreamChangeError(404, `no stream "${name}" (streams: ${[...this.streams.keys()].join(', ') || 'none'})`);
    if (st.state === 'running') st.state = 'stopping';
    st.abort.abort();
    await st.done;
    this.forgetStream(st);
    if (this.pipeline.streams) this.pipeline = this.pipeline.streams.withoutStream(name);
    this.log.info({ stream: name }, `stream "${name}" removed`);
    this.events$.next({ type: 'stream-removed', stream: name });
  }

  private forgetStream(st: StreamRuntime): void {
    for (const rt of st.nodes) {
      this.nodes.delete(rt.spec.name);
      this.status.delete(rt.spec.name);
      for (const { queue } of rt.inputs) this.edgeInputType.delete(queue);
      // Edges into shared nodes leave with the stream.
      for (const qs of rt.outputs.values()) for (const q of qs) this.edgeInputType.delete(q);
    }
    this.streams.delete(st.name);
  }

  private async closeStreamNodes(st: StreamRuntime): Promise<void> {
    for (const rt of st.nodes) {
      await safeClose(rt);
      rt.instance = null;
    }
  }

  private mountBuiltins(): void {
    this.http.route('/metrics', async (_req, res) => {
      res.writeHead(200, { 'content-type': this.metrics.registry.contentType });
      res.end(await this.metrics.registry.metrics());
    });
    this.http.route('/healthz', (_req, res) => {
      const snap = this.status.snapshot();
      let status: string = this.failure !== null ? 'failed' : snap.state;
      // Some cameras down while others serve is degraded, not down (one outage does not pull the whole server).
      if (status === 'down' && this.pipeline.streams && this.streamViews().some((v) => v.state === 'ok' || v.state === 'degraded')) status = 'degraded';
      // Load balancers and service managers read the code: 503 when a node failed or a source is down.
      res.writeHead(status === 'failed' || status === 'down' ? 503 : 200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end(JSON.stringify({ status, pipeline: this.pipeline.name, stopping: this.abort.signal.aborted, nodes: snap.nodes }));
    });
    mountStreamRoutes(this.http, {
      list: () => this.streamViews(),
      admin: this.pipeline.server.admin && this.pipeline.streams !== null,
      add: (entry) => this.addStream(entry),
      remove: (name) => this.removeStream(name),
      log: this.log,
    });
  }

  /**
   * The streams and how each is doing. A multi-stream pipeline's streams are its streams: list; a
   * plain pipeline has one stream per source, made of the nodes it feeds before any sink.
   */
  streamViews(): StreamView[] {
    const groups: Array<{ name: string; kind: string; nodes: NodeRuntime[]; state?: StreamState; error?: string }> = [];
    if (this.pipeline.streams) {
      for (const st of this.streams.values()) groups.push({ name: st.name, kind: st.sourceKind, nodes: st.nodes, state: st.state, error: st.error });
    } else {
      for (const rt of this.nodes.values()) {
        if (rt.spec.kind.role !== 'source') continue;
        const chain = [rt];
        for (let i = 0; i < chain.length; i++) {
          for (const qs of chain[i].outputs.values()) {
            for (const q of qs) {
              const to = [...this.nodes.values()].find((n) => n.inputs.some((x) => x.queue === q));
              if (to && to.spec.kind.role !== 'sink' && !chain.includes(to)) chain.push(to);
            }
          }
        }
        groups.push({ name: rt.ctx.stream, kind: rt.spec.kind.kind, nodes: chain });
      }
    }
    return groups.map((g) => {
      const statuses = g.nodes.map((rt) => ({ rt, st: this.status.get(rt.spec.name) }));
      const rank = { finished: 0, ok: 0, starting: 1, degraded: 2, down: 3 } as const;
      let worst = statuses[0];
      for (const s of statuses) if (s.st && (!worst?.st || rank[s.st.state] > rank[worst.st.state])) worst = s;
      const source = g.nodes.find((rt) => rt.spec.kind.role === 'source');
      const last = g.nodes[g.nodes.length - 1];
      const details = Object.assign({}, ...statuses.map((s) => s.st?.details ?? {})) as Record<string, unknown>;
      const state = g.state === 'failed' ? 'failed' : g.state === 'stopping' ? 'stopping' : (worst?.st?.state ?? 'starting');
      const message = g.state === 'failed' ? g.error : statuses.map((s) => s.st?.message).filter((m) => m)[0];
      return {
        name: g.name,
        source: g.kind,
        state,
        ...(message ? { message } : {}),
        fpsIn: round(source?.emitted.fps() ?? 0),
        fpsOut: round(last?.emitted.fps() ?? 0),
        stride: typeof details.stride === 'number' ? details.stride : null,
        latencyP95S: typeof details.latencyP95S === 'number' ? details.latencyP95S : null,
        expectedLatencyS: typeof details.expectedLatencyS === 'number' ? details.expectedLatencyS : null,
        engineShare: typeof details.engineShare === 'number' ? details.engineShare : null,
        nodes: g.nodes.map((rt) => rt.spec.name),
      };
    });
  }

  private async runSource(rt: NodeRuntime): Promise<void> {
    const policy = rt.spec.kind.restart;
    let attempt = 0;
    this.metrics.nodeUp.set(this.labels(rt), 1);
    for (;;) {
      // A stop asked for while the graph was still starting (a signal during model loading) ends the source at once.
      if (rt.signal.aborted) break;
      try {
        await rt.instance!.run?.();
        break;
      } catch (e) {
        const err = asError(e);
        const willRestart = policy !== undefined && attempt < policy.maxRestarts && !rt.signal.aborted;
        rt.ctx.log.error({ err }, willRestart ? 'source failed; restarting it' : 'source failed');
        this.events$.next({ type: 'node-error', node: rt.spec.name, error: err, willRestart });
        if (!willRestart) throw err;
        this.metrics.nodeUp.set(this.labels(rt), 0);
        rt.ctx.setStatus({ state: 'down', message: `restarting after an error: ${err.message}` });
        await safeClose(rt);
        const delay = backoffDelay(attempt, policy.initialDelayMs, policy.maxDelayMs);
        attempt++;
        if (!(await sleep(delay, rt.signal))) break;
        for (const port of rt.outputs.keys()) {
          await this.emit(rt, port, { type: 'discontinuity', streamId: rt.ctx.stream, reason: `restart after error: ${err.message}` });
        }
        rt.instance = await rt.spec.kind.create(rt.spec.options as never, rt.ctx);
        if (!rt.spec.kind.reportsStatus) rt.ctx.setStatus({ state: 'ok' });
        this.metrics.restarts.inc(this.labels(rt));
        this.metrics.nodeUp.set(this.labels(rt), 1);
        this.events$.next({ type: 'node-restarted', node: rt.spec.name, attempt });
      }
    }
    await this.finishNode(rt);
  }

  private async runConsumer(rt: NodeRuntime): Promise<void> {
    const isSink = Object.keys(rt.spec.kind.outputs).length === 0;
    const labels = this.labels(rt);
    let chain: Promise<void> = Promise.resolve();
    const handle = async (port: string, p: Packet): Promise<void> => {
      const frame = p.type === 'video' || p.type === 'depth';
      if (frame) this.metrics.framesIn.inc(labels);
      const t0 = performance.now();
      await rt.instance!.process?.(port, p);
      if (frame) {
        this.metrics.processSeconds.observe(labels, (performance.now() - t0) / 1000);
        if (isSink) this.metrics.latencySeconds.observe(labels, Math.max(0, nowMs() - p.arrivalMs) / 1000);
      }
    };
    let error: Error | null = null;
    let wake: () => void = () => {};
    let active = 0;
    const drain = async (port: string, q: EdgeQueue): Promise<void> => {
      try {
        for (;;) {
          const p = await q.take();
          this.metrics.edgeDepth.set({ edge: q.name }, q.length);
          if (this.failure || error) return;
          if (p.type === 'eos') return;
          // One packet at a time per node, whichever input it came from.
          chain = chain.then(() => handle(port, p));
          await chain;
        }
      } catch (e) {
        error ??= asError(e);
      } finally {
        active--;
        const i = rt.inputs.findIndex((x) => x.queue === q);
        if (i >= 0 && rt.spec.kind.multiStream) rt.inputs.splice(i, 1);
        wake();
      }
    };
    const begin = (port: string, q: EdgeQueue) => {
      active++;
      void drain(port, q);
    };
    for (const { port, queue } of rt.inputs) begin(port, queue);
    // A multi-stream node of a pipeline that takes streams at run time waits for them until the graph stops.
    const waitsForStreams = rt.spec.kind.multiStream === true && (this.pipeline.server.admin || this.dynamicStreams) && this.pipeline.streams !== null;
    rt.attach = (port, q) => {
      rt.inputs.push({ port, queue: q });
      begin(port, q);
    };
    const onAbort = () => wake();
    this.abort.signal.addEventListener('abort', onAbort);
    try {
      for (;;) {
        if (error) throw error;
        if (this.failure) return;
        if (active === 0 && !(waitsForStreams && !this.abort.signal.aborted)) break;
        await new Promise<void>((r) => (wake = r));
      }
    } finally {
      this.abort.signal.removeEventListener('abort', onAbort);
      rt.attach = undefined;
    }
    await rt.instance!.flush?.();
    await this.finishNode(rt);
  }

  private async finishNode(rt: NodeRuntime): Promise<void> {
    for (const port of rt.outputs.keys()) await this.emit(rt, port, EOS);
    for (const tap of rt.taps.values()) tap.complete();
    this.metrics.nodeUp.set(this.labels(rt), 0);
    rt.ctx.setStatus({ ...this.status.get(rt.spec.name), state: 'finished' });
    this.events$.next({ type: 'node-finished', node: rt.spec.name });
  }

  private async nodeFailed(rt: NodeRuntime, err: Error): Promise<void> {
    const stream = rt.spec.stream !== undefined ? this.streams.get(rt.spec.stream) : undefined;
    if (stream && !this.failure && !this.abort.signal.aborted) {
      this.markStreamFailed(stream, rt, err);
      // Its edges end: nodes after it drain and finish, the shared nodes stop taking from this stream.
      for (const { queue } of rt.inputs) queue.close();
      await this.finishNode(rt).catch(() => {});
      rt.ctx.setStatus({ state: 'down', message: `failed: ${err.message}` });
      return;
    }
    await this.fail(rt, err);
  }

  private markStreamFailed(st: StreamRuntime, rt: NodeRuntime, err: Error): void {
    if (st.state === 'failed') return;
    st.state = 'failed';
    st.error = `node "${rt.spec.name}" failed: ${err.message}`;
    rt.ctx.log.error({ err }, `stream "${st.name}" failed (node "${rt.spec.name}"); the other streams go on`);
    st.abort.abort();
    this.events$.next({ type: 'stream-failed', stream: st.name, node: rt.spec.name, error: err });
  }

  /** A stream that failed while starting: its nodes never run, its edges into shared nodes end now. */
  private retireFailedStream(st: StreamRuntime): void {
    for (const rt of st.nodes) {
      for (const { queue } of rt.inputs) queue.close();
      for (const qs of rt.outputs.values()) for (const q of qs) q.offer(EOS);
      rt.ctx.setStatus({ state: 'down', message: st.error });
    }
    st.done = this.closeStreamNodes(st);
    for (const rt of st.nodes) rt.instance = null;
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

/** Why a stream could not be added or removed, with the HTTP status that says it. */
export class StreamChangeError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'StreamChangeError';
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

function round(v: number): number {
  return Math.round(v * 100) / 100;
}

/** Kinds of the sources upstream of a node (walking the edges back; nodes from `specs` or already in the graph). */
function upstreamSourceKinds(name: string, specs: readonly ResolvedNode[], edges: readonly ResolvedEdge[], existing: Map<string, NodeRuntime>): string[] {
  const kindOf = (n: string) => specs.find((s) => s.name === n)?.kind ?? existing.get(n)?.spec.kind;
  const kinds = new Set<string>();
  const seen = new Set<string>([name]);
  const frontier = [name];
  while (frontier.length > 0) {
    const n = frontier.pop()!;
    for (const e of edges) {
      if (e.to.node !== n || seen.has(e.from.node)) continue;
      seen.add(e.from.node);
      const k = kindOf(e.from.node);
      if (k?.role === 'source') kinds.add(k.kind);
      else frontier.push(e.from.node);
    }
  }
  return [...kinds].sort();
}
