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
  const rgb = get('rgb');
  if (rgb !== undefined) {
    if (rgb === true || rgb === '1' || rgb === 'true') out.rgb = true;
    else if (rgb === false || rgb === '0' || rgb === 'false') out.rgb = false;
    else throw new SubscriptionError('rgb must be true or false');
  }
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
      if (!['type', 'format', 'rgb', 'rgbFormat', 'colormap'].includes(k)) throw new SubscriptionError(`unknown field "${k}"`);
    }
  }
  return out;
}
