// What each node says about itself, for /healthz and the viewer: one state per node and one for
// the pipeline. Nodes report with ctx.setStatus(); the runtime reports restarts and ends.

export type NodeState = 'starting' | 'ok' | 'degraded' | 'down' | 'finished';

export interface NodeStatus {
  readonly state: NodeState;
  /** One line for people: what is happening and, when not ok, why. */
  readonly message?: string;
  /** Figures behind the state (rates, counts), JSON-serialisable. */
  readonly details?: Readonly<Record<string, number | string | boolean | null>>;
}

export type PipelineState = 'starting' | 'ok' | 'degraded' | 'down';

export interface StatusSnapshot {
  readonly state: PipelineState;
  readonly nodes: Readonly<Record<string, NodeStatus & { readonly kind: string }>>;
}

export class StatusBoard {
  private readonly nodes = new Map<string, NodeStatus & { kind: string }>();

  set(node: string, kind: string, status: NodeStatus): void {
    this.nodes.set(node, { kind, ...status });
  }

  delete(node: string): void {
    this.nodes.delete(node);
  }

  get(node: string): NodeStatus | undefined {
    return this.nodes.get(node);
  }

  /** The pipeline is as bad as its worst node: down > degraded > starting > ok (finished counts as ok). */
  snapshot(): StatusSnapshot {
    let state: PipelineState = 'ok';
    const rank: Record<PipelineState, number> = { ok: 0, starting: 1, degraded: 2, down: 3 };
    for (const s of this.nodes.values()) {
      const st: PipelineState = s.state === 'finished' ? 'ok' : s.state;
      if (rank[st] > rank[state]) state = st;
    }
    return { state, nodes: Object.fromEntries(this.nodes) };
  }
}
