/**
 * Exponential backoff with full jitter: a random delay in [base/2, base] where base doubles per
 * attempt up to the cap. Jitter keeps many cameras from reconnecting in lock-step.
 */
export function backoffDelay(attempt: number, initialMs: number, maxMs: number, random: () => number = Math.random): number {
  const base = Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 30));
  return Math.round(base / 2 + (random() * base) / 2);
}
