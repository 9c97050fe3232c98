import { DEFAULT_SUBSCRIPTION, type Subscription } from './frame-message.js';
import { COLORMAP_NAMES } from '../io/colormap.js';
import { UserError } from '../util/errors.js';

export class SubscriptionError extends UserError {}

const DEPTH_FORMATS = ['u16', 'f32', 'jpeg', 'png'] as const;
const RGB_FORMATS = ['rgb24', 'jpeg'] as const;

/**
 * Read a subscriber's choices from a query string (`?format=f32&rgb=1&colormap=turbo`) or a JSON
 * control message (`{"type":"subscribe","format":"f32","rgb":true}`). Unknown values are errors.
 */
export function parseSubscription(src: URLSearchParams | Record<string, unknown>, base: Subscription = DEFAULT_SUBSCRIPTION): Subscription {
  const get = (k: string): unknown => (src instanceof URLSearchParams ? (src.get(k) ?? undefined) : src[k]);
  const out: Subscription = { ...base };
  const format = get('format');
  if (format !== undefined) {
    if (!DEPTH_FORMATS.includes(format as never)) throw new SubscriptionError(`format must be one of ${DEPTH_FORMATS.join(', ')}`);
    out.depthFormat = format as Subscription['depthFormat'];
  }
  out.rgb = flag(get('rgb'), 'rgb', out.rgb);
  out.gt = flag(get('gt'), 'gt', out.gt);
  const rgbFormat = get('rgbFormat');
  if (rgbFormat !== undefined) {
    if (!RGB_FORMATS.includes(rgbFormat as never)) throw new SubscriptionError(`rgbFormat must be one of ${RGB_FORMATS.join(', ')}`);
    out.rgbFormat = rgbFormat as Subscription['rgbFormat'];
  }
  const cm = get('colormap');
  if (cm !== undefined) {
    if (typeof cm !== 'string' || !(COLORMAP_NAMES as readonly string[]).includes(cm))
      throw new SubscriptionError(`colormap must be one of ${COLORMAP_NAMES.join(', ')}`);
    out.colormap = cm;
  }
  const streams = src instanceof URLSearchParams ? (src.has('stream') ? src.getAll('stream') : undefined) : src.stream;
  if (streams !== undefined) out.streams = parseStreams(streams);
  if (!(src instanceof URLSearchParams)) {
    for (const k of Object.keys(src)) {
      if (!['type', 'format', 'rgb', 'rgbFormat', 'colormap', 'gt', 'stream'].includes(k)) throw new SubscriptionError(`unknown field "${k}"`);
    }
  }
  return out;
}

/**
 * `stream=a&stream=b`, `stream=a,b` or `{"stream": ["a","b"]}` choose streams; `*` (or "all")
 * means every stream, including streams added later.
 */
function parseStreams(v: unknown): string[] | null {
  const list = typeof v === 'string' ? [v] : Array.isArray(v) && v.every((x) => typeof x === 'string') ? (v as string[]) : null;
  if (!list) throw new SubscriptionError('stream must be a stream name or a list of names');
  const names = list
    .flatMap((x) => x.split(','))
    .map((x) => x.trim())
    .filter((x) => x !== '');
  if (names.length === 0) throw new SubscriptionError('stream is empty: name a stream, or * for all');
  if (names.includes('*') || names.includes('all')) return null;
  if (names.length > 256) throw new SubscriptionError('at most 256 streams may be named');
  return [...new Set(names)];
}

/** Names a subscriber asked for that the pipeline does not serve. */
export function unknownStreams(sub: Subscription, known: readonly string[]): string[] {
  return (sub.streams ?? []).filter((s) => !known.includes(s));
}

function flag(v: unknown, name: string, current: boolean): boolean {
  if (v === undefined) return current;
  if (v === true || v === '1' || v === 'true') return true;
  if (v === false || v === '0' || v === 'false') return false;
  throw new SubscriptionError(`${name} must be true or false`);
}
