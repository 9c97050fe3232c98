// How many cameras a worker should hold: its share of the cameras among the live workers, never
// more than its capacity. A worker below its share claims free cameras; above it (a worker joined)
// it hands the surplus back at its next tick so that the newcomer can take it. Pure, for tests.

export interface ShareInput {
  readonly cameras: number;
  /** Capacities of the live workers, this one included. */
  readonly capacities: readonly number[];
  readonly capacity: number;
}

/**
 * Water-filling: every worker gets the same number of cameras, except where its capacity is lower
 * (the rest spreads over the others); ties round up so that every camera finds a worker when the
 * capacities allow.
 */
export function fairShare({ cameras, capacities, capacity }: ShareInput): number {
  const caps = [...capacities].sort((a, b) => a - b);
  let left = cameras;
  for (let i = 0; i < caps.length; i++) {
    const even = Math.ceil(left / (caps.length - i));
    if (caps[i] >= even) return Math.min(capacity, even);
    if (caps[i] === capacity) return capacity;
    left -= caps[i];
  }
  return Math.min(capacity, Math.max(0, left));
}
