import { DEFAULT_SUBSCRIPTION, type Subscription } from './frame-message.js';
import { COLORMAP_NAMES } from '../io/colormap.js';

export class SubscriptionError extends Error {}

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
    if (typeof cm !== 'string' || !(COLORMAP_NAMES as readonly string[]).includes(cm)) throw new SubscriptionError(`colormap must be one of ${COLORMAP_NAMES.join(', ')}`);
    out.colormap = cm;
  }
  if (!(src instanceof URLSearchParams)) {
    for (const k of Object.keys(src)) {
      if (!['type', 'format', 'rgb', 'rgbFormat', 'colormap', 'gt'].includes(k)) throw new SubscriptionError(`unknown field "${k}"`);
    }
  }
  return out;
}

function flag(v: unknown, name: string, current: boolean): boolean {
  if (v === undefined) return current;
  if (v === true || v === '1' || v === 'true') return true;
  if (v === false || v === '0' || v === 'false') return false;
  throw new SubscriptionError(`${name} must be true or false`);
}
