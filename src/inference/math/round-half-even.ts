// Parity-critical: Python's round, which sizes the reference's frames; guarded by test/engine-math.test.ts.

/**
 * Python 3 `round(x)` for numbers: round half to even ("banker's rounding").
 *
 * The reference sizes frames with Python `round`, so 4.5 -> 4 and 5.5 -> 6,
 * whereas JS `Math.round` would give 5 and 6. Non-finite inputs pass through.
 */
export function roundHalfEven(x: number): number {
  if (!Number.isFinite(x)) return x;
  const f = Math.floor(x);
  // x - floor(x) is exact in binary64, so the tie test below is exact too.
  const frac = x - f;
  if (frac < 0.5) return f;
  if (frac > 0.5) return f + 1;
  return f % 2 === 0 ? f : f + 1;
}
