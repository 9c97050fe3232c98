// Credentials in URLs (rtsp://user:pass@host/...) must never reach logs or metric labels.

/** Longest URL scheme looked for in front of "://" (real ones are short; bounding it keeps the scan linear). */
const MAX_SCHEME = 32;

function isSchemeChar(c: number, first: boolean): boolean {
  const letter = (c >= 97 && c <= 122) || (c >= 65 && c <= 90);
  return first ? letter : letter || (c >= 48 && c <= 57) || c === 43 || c === 45 || c === 46; // + - .
}

function isDelimiter(c: number): boolean {
  // '/', '@', or whitespace (the user-info of a URL holds none of them)
  return c === 47 || c === 64 || c === 32 || (c >= 9 && c <= 13) || c === 0xa0 || c === 0x2028 || c === 0x2029 || c === 0xfeff;
}

/**
 * Replace the user-info part of every URL in a string ("scheme://user[:password]@") with "***@".
 * One pass over the text (no backtracking regular expression: a long hostile string costs linear
 * time, not quadratic).
 */
export function redactUrls(text: string): string {
  let out = '';
  let copied = 0;
  let from = 0;
  for (;;) {
    const sep = text.indexOf('://', from);
    if (sep < 0) break;
    from = sep + 3;
    // A scheme: a letter, then letters, digits, + - . right before "://".
    let s = sep;
    while (s > 0 && sep - s < MAX_SCHEME && isSchemeChar(text.charCodeAt(s - 1), false)) s--;
    while (s < sep && !isSchemeChar(text.charCodeAt(s), true)) s++;
    if (s === sep) continue;
    // User-info: up to the first delimiter, which must be '@', with a non-empty user before any ':'.
    let e = from;
    while (e < text.length && !isDelimiter(text.charCodeAt(e))) e++;
    if (e >= text.length || text.charCodeAt(e) !== 64) continue;
    const colon = text.indexOf(':', from);
    const userEnd = colon >= 0 && colon < e ? colon : e;
    if (userEnd === from) continue;
    out += text.slice(copied, from) + '***@';
    copied = e + 1;
    from = e + 1;
  }
  return copied === 0 ? text : out + text.slice(copied);
}

/** Cut a string that is too long to log, saying how much was left out. */
export function clipForLog(text: string, max = 2000): string {
  return text.length <= max ? text : `${text.slice(0, max)}…[${text.length - max} more characters]`;
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
  if (typeof value === 'string') return clipForLog(redactUrls(value)) as T;
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
