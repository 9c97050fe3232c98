/**
 * Analytic ray-primitive intersections. Rays are o + t d with d NOT necessarily unit length:
 * the renderer uses camera rays whose forward component is 1, so that t is the planar depth.
 * Each function returns the smallest t > EPS where the ray meets the surface, or Infinity.
 * Box and cylinder work in the primitive's local frame (centred, axis-aligned); callers transform.
 */

export const EPS = 1e-7;

/** Plane n . x = k. */
export function hitPlane(ox: number, oy: number, oz: number, dx: number, dy: number, dz: number, nx: number, ny: number, nz: number, k: number): number {
  const den = nx * dx + ny * dy + nz * dz;
  if (den === 0) return Infinity;
  const t = (k - (nx * ox + ny * oy + nz * oz)) / den;
  return t > EPS ? t : Infinity;
}

/** Sphere of radius r centred at the origin; (ox, oy, oz) is the ray origin relative to the centre. */
export function hitSphere(ox: number, oy: number, oz: number, dx: number, dy: number, dz: number, r: number): number {
  const a = dx * dx + dy * dy + dz * dz;
  const b = ox * dx + oy * dy + oz * dz;
  const c = ox * ox + oy * oy + oz * oz - r * r;
  const disc = b * b - a * c;
  if (disc < 0 || a === 0) return Infinity;
  const s = Math.sqrt(disc);
  let t = (-b - s) / a;
  if (t > EPS) return t;
  t = (-b + s) / a;
  return t > EPS ? t : Infinity;
}

/**
 * In-place calling convention for the hot paths (a double passed to or returned from a function
 * that is not inlined is boxed on the heap): io[k..k+2] ray origin, io[k+3..k+5] direction,
 * io[k+6..k+8] shape parameters; the result goes to io[k+9].
 */
export const HIT_IO = { origin: 0, dir: 3, params: 6, result: 9, size: 10 } as const;
const IO = new Float64Array(HIT_IO.size);

/** Axis-aligned box [-hx, hx] x [-hy, hy] x [-hz, hz] (slab method). */
export function hitBox(ox: number, oy: number, oz: number, dx: number, dy: number, dz: number, hx: number, hy: number, hz: number): number {
  IO[0] = ox;
  IO[1] = oy;
  IO[2] = oz;
  IO[3] = dx;
  IO[4] = dy;
  IO[5] = dz;
  IO[6] = hx;
  IO[7] = hy;
  IO[8] = hz;
  hitBoxIO(IO, 0);
  return IO[9];
}

/** hitBox on io[k..]: params = half extents hx, hy, hz. */
export function hitBoxIO(io: Float64Array, k: number): void {
  const ox = io[k],
    oy = io[k + 1],
    oz = io[k + 2];
  const dx = io[k + 3],
    dy = io[k + 4],
    dz = io[k + 5];
  const hx = io[k + 6],
    hy = io[k + 7],
    hz = io[k + 8];
  io[k + 9] = Infinity;
  let tn = -Infinity;
  let tf = Infinity;
  if (dx !== 0) {
    const inv = 1 / dx;
    const t1 = (-hx - ox) * inv;
    const t2 = (hx - ox) * inv;
    if (t1 < t2) {
      if (t1 > tn) tn = t1;
      if (t2 < tf) tf = t2;
    } else {
      if (t2 > tn) tn = t2;
      if (t1 < tf) tf = t1;
    }
  } else if (ox < -hx || ox > hx) return;
  if (dy !== 0) {
    const inv = 1 / dy;
    const t1 = (-hy - oy) * inv;
    const t2 = (hy - oy) * inv;
    if (t1 < t2) {
      if (t1 > tn) tn = t1;
      if (t2 < tf) tf = t2;
    } else {
      if (t2 > tn) tn = t2;
      if (t1 < tf) tf = t1;
    }
  } else if (oy < -hy || oy > hy) return;
  if (dz !== 0) {
    const inv = 1 / dz;
    const t1 = (-hz - oz) * inv;
    const t2 = (hz - oz) * inv;
    if (t1 < t2) {
      if (t1 > tn) tn = t1;
      if (t2 < tf) tf = t2;
    } else {
      if (t2 > tn) tn = t2;
      if (t1 < tf) tf = t1;
    }
  } else if (oz < -hz || oz > hz) return;
  if (tn > tf || tf <= EPS) return;
  io[k + 9] = tn > EPS ? tn : tf;
}

/** Cylinder of radius r around the y axis, y in [-hh, hh], closed by caps. */
export function hitCylinder(ox: number, oy: number, oz: number, dx: number, dy: number, dz: number, r: number, hh: number): number {
  IO[0] = ox;
  IO[1] = oy;
  IO[2] = oz;
  IO[3] = dx;
  IO[4] = dy;
  IO[5] = dz;
  IO[6] = r;
  IO[7] = hh;
  hitCylinderIO(IO, 0);
  return IO[9];
}

/** hitCylinder on io[k..]: params = radius, half height. */
export function hitCylinderIO(io: Float64Array, k: number): void {
  const ox = io[k],
    oy = io[k + 1],
    oz = io[k + 2];
  const dx = io[k + 3],
    dy = io[k + 4],
    dz = io[k + 5];
  const r = io[k + 6],
    hh = io[k + 7];
  let best = Infinity;
  io[k + 9] = Infinity;
  const a = dx * dx + dz * dz;
  const r2 = r * r;
  if (a > 0) {
    const b = ox * dx + oz * dz;
    const c = ox * ox + oz * oz - r2;
    const disc = b * b - a * c;
    if (disc < 0) return; // misses the infinite cylinder, so the caps too
    const s = Math.sqrt(disc);
    let t = (-b - s) / a;
    if (t > EPS && Math.abs(oy + t * dy) <= hh) best = t;
    else {
      t = (-b + s) / a;
      if (t > EPS && Math.abs(oy + t * dy) <= hh) best = t;
    }
  } else if (ox * ox + oz * oz > r2) return;
  if (dy !== 0) {
    const inv = 1 / dy;
    let t = (hh - oy) * inv;
    if (t > EPS && t < best) {
      const x = ox + t * dx;
      const z = oz + t * dz;
      if (x * x + z * z <= r2) best = t;
    }
    t = (-hh - oy) * inv;
    if (t > EPS && t < best) {
      const x = ox + t * dx;
      const z = oz + t * dz;
      if (x * x + z * z <= r2) best = t;
    }
  }
  io[k + 9] = best;
}
