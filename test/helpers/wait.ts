import { setTimeout as delay } from 'node:timers/promises';

// Waiting on conditions instead of fixed sleeps: a loaded CI machine only makes these slower,
// never wrong.

/** Resolve with `p`, or reject naming `what` when it takes longer than `ms`. */
export async function within<T>(ms: number, what: string, p: Promise<T>): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, rej) => (t = setTimeout(() => rej(new Error(`${what}: not within ${ms} ms`)), ms)))]);
  } finally {
    clearTimeout(t);
  }
}

/**
 * Poll `get` until it returns something other than undefined/false; reject after `ms`.
 * `detail` adds context (e.g. a child's stderr) to the timeout message.
 */
export async function until<T>(get: () => T | undefined | false | Promise<T | undefined | false>, ms: number, what: string, detail?: () => string): Promise<T> {
  const end = performance.now() + ms;
  for (;;) {
    const v = await get();
    if (v !== undefined && v !== false) return v;
    if (performance.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}${detail ? `; ${detail()}` : ''}`);
    await delay(20);
  }
}
