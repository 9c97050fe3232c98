// Credentials in URLs (rtsp://user:pass@host/...) must never reach logs or metric labels.

const USERINFO = /([a-z][a-z0-9+.-]*:\/\/)([^/@\s:]+)(?::[^/@\s]*)?@/gi;

/** Replace the user-info part of every URL in a string with "***@". */
export function redactUrls(text: string): string {
  return text.replace(USERINFO, '$1***@');
}

/** Deep-copy a value with every string passed through redactUrls. */
export function redactDeep<T>(value: T): T {
  if (typeof value === 'string') return redactUrls(value) as T;
  if (Array.isArray(value)) return value.map(redactDeep) as T;
  if (value !== null && typeof value === 'object' && !(value instanceof Error) && !ArrayBuffer.isView(value)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = redactDeep(v);
    return out as T;
  }
  return value;
}
