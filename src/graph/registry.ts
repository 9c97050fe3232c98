import type { NodeKind } from './node-kind.js';

/** The node kinds a pipeline file may name. Tests add their own kinds to a fresh registry. */
export class NodeRegistry {
  private readonly kinds = new Map<string, NodeKind>();

  constructor(kinds: Iterable<NodeKind> = []) {
    for (const k of kinds) this.add(k);
  }

  add(kind: NodeKind): this {
    if (this.kinds.has(kind.kind)) throw new Error(`node kind "${kind.kind}" is registered twice`);
    this.kinds.set(kind.kind, kind);
    return this;
  }

  get(kind: string): NodeKind | undefined {
    return this.kinds.get(kind);
  }

  names(): string[] {
    return [...this.kinds.keys()].sort();
  }

  all(): NodeKind[] {
    return [...this.kinds.values()];
  }
}
