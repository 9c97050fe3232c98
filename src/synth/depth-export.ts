/** Converting rendered metric depth for files and for looking at it. */
import { applyColormap, INFERNO_LUT } from '../io/colormap.js';

/** Scale of the 16-bit depth PNGs: stored value * DEPTH_SCALE = metres. */
export const DEPTH_SCALE = 0.001;

/**
 * Metres to uint16 millimetres: round(d * 1000), clamped to 65535; 0 (invalid) stays 0 and a valid
 * depth never becomes 0 (at least 1 mm).
 */
export function depthToMillimetres(depth: Float32Array, out = new Uint16Array(depth.length)): Uint16Array {
  for (let i = 0; i < depth.length; i++) {
    const d = depth[i];
    if (!(d > 0)) {
      out[i] = 0;
      continue;
    }
    const mm = Math.round(d / DEPTH_SCALE);
    out[i] = mm > 65535 ? 65535 : mm < 1 ? 1 : mm;
  }
  return out;
}

/**
 * A picture of a depth map: inverse depth normalised to the frame's valid range (near = bright),
 * inferno colour map, invalid pixels black.
 */
export function depthPreview(depth: Float32Array): Uint8Array {
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < depth.length; i++) {
    const d = depth[i];
    if (d > 0) {
      const inv = 1 / d;
      if (inv < lo) lo = inv;
      if (inv > hi) hi = inv;
    }
  }
  const norm = new Float32Array(depth.length);
  const span = hi > lo ? hi - lo : 1;
  for (let i = 0; i < depth.length; i++) norm[i] = depth[i] > 0 ? 0.05 + (0.95 * (1 / depth[i] - lo)) / span : 0;
  const rgb = applyColormap(norm, INFERNO_LUT, new Uint8Array(depth.length * 3));
  for (let i = 0; i < depth.length; i++) if (!(depth[i] > 0)) rgb.fill(0, i * 3, i * 3 + 3);
  return rgb;
}
