// Credentials in URLs (rtsp://user:pass@host/...) must never reach logs or metric labels.

const USERINFO = /([a-z][a-z0-9+.-]*:\/\/)([^/@\s:]+)(?::[^/@\s]*)?@/gi;

/** Replace the user-info part of every URL in a string with "***@". */
export function redactUrls(text: string): string {
  return text.replace(USERINFO, '$1***@');
}

/**
 * Copy of an error with its message, stack, cause and own string fields redacted. It keeps the
 * prototype (so `instanceof` and pino's error serializer still work).
 */
export function redactError<E extends Error>(e: E, depth = 0): E {
  const copy = Object.create(Object.getPrototypeOf(e) as object) as E;
  for (const [k, v] of Object.entries(e)) {
    (copy as Record<string, unknown>)[k] = depth < 4 ? redactDeep(v, depth + 1) : undefined;
  }
  const define = (key: string, value: unknown) => Object.defineProperty(copy, key, { value, writable: true, configurable: true, enumerable: false });
  define('message', redactUrls(e.message));
  if (e.stack !== undefined) define('stack', redactUrls(e.stack));
  if (e.name !== Object.getPrototypeOf(e)?.name) define('name', e.name);
  if (e.cause !== undefined) define('cause', depth < 4 ? redactDeep(e.cause, depth + 1) : undefined);
  return copy;
}

/** Deep-copy a value with every string (errors nested in objects included) passed through redactUrls. */
export function redactDeep<T>(value: T, depth = 0): T {
  if (typeof value === 'string') return redactUrls(value) as T;
  if (value instanceof Error) return redactError(value, depth);
  if (depth > 16 && value !== null && typeof value === 'object') return '[too deep to redact]' as T;
  if (Array.isArray(value)) return value.map((v) => redactDeep(v, depth + 1)) as T;
  if (value !== null && typeof value === 'object' && !ArrayBuffer.isView(value)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = redactDeep(v, depth + 1);
    return out as T;
  }
  return value;
}
