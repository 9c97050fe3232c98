/**
 * CPU ray caster for scene descriptions: one primary ray per pixel centre, analytic intersections,
 * Lambert + hemispherical ambient shading, shadow rays, distance fog.
 *
 * Outputs, per pixel (row-major):
 *  - rgb: packed RGB uint8 (display gamma 2.2 applied to the linear shading result);
 *  - depth: float32 PLANAR depth in metres, i.e. the hit point's z in the camera frame (distance
 *    along the optical axis, not along the ray), as depth sensors and datasets store it.
 *    0 where the ray hits nothing (the sky): invalid.
 *
 * Speed: everything that depends only on the frame (object transforms, the camera origin in each
 * object's frame, material records) is computed once per frame into typed arrays; each object's
 * bounding sphere is projected to a screen rectangle and listed in the 16x16 tiles it covers, so a
 * pixel tests only the objects that can cover it. Shadow rays test objects behind a bounding
 * sphere rejection, and only the objects that can reach the tile's hit points (see tileCasters).
 * The per-pixel loop allocates nothing.
 */
import type { Material, SceneDescription } from './scene.js';
import { cameraPose, intrinsics, type CameraPose, type Intrinsics } from './camera.js';
import { boundingRadius, objectPose } from './motion.js';
import { albedo, compileMaterials } from './texture.js';
import { EPS, hitBoxIO, hitCylinderIO } from './intersect.js';
import { OptionError } from '../util/errors.js';

export interface RenderSize {
  readonly width: number;
  readonly height: number;
  /** Horizontal field of view in degrees. */
  readonly fovDeg: number;
}

export interface RenderedFrame {
  readonly rgb: Uint8Array;
  readonly depth: Float32Array;
  readonly pose: CameraPose;
}

const TILE = 16;
/** Object record: see compileFrame. */
const OS = 24;
const SPHERE = 0;
const BOX = 1;
const CYL = 2;
/** Environment faces (hit codes are -10 - face). Room: 0..5 = -x, +x, floor, ceiling, -z, +z. */
const GROUND = 6;
const BACKDROP = 7;
const SKY = -1;
const LUT_SIZE = 4096;

export class Renderer {
  readonly width: number;
  readonly height: number;
  readonly fovDeg: number;
  readonly intrinsics: Intrinsics;
  private readonly nObj: number;
  private readonly radii: Float64Array;
  private readonly mats: Float64Array;
  /** Material index of environment faces 0..7 (-1 = none). */
  private readonly envMat = new Int32Array(8).fill(-1);
  private readonly roomBounds = new Float64Array(6);
  private readonly isRoom: boolean;
  private readonly backdropR: number;
  private readonly hills: Float64Array; // [base, (amp, k, phase)*]
  private readonly skyline: Float64Array;
  private readonly sky = new Float64Array(6);
  private readonly obj: Float64Array;
  private readonly xs: Float64Array;
  private readonly ys: Float64Array;
  private readonly tilesX: number;
  private readonly tilesY: number;
  private readonly tileCount: Int32Array;
  private readonly tileList: Int32Array;
  private readonly lut = new Uint8Array(LUT_SIZE + 1);
  private readonly col = new Float64Array(3);
  /**
   * Scratch for passing numbers between the hot functions without boxing them:
   * 0-9 intersection io (intersect.ts HIT_IO), 10-13 shade inputs (t, dx, dy, dz),
   * 14-20 shadow ray (point, direction, max distance), 21-22 backdrop point, 23 its height.
   */
  private readonly s = new Float64Array(24);
  /** albedo() io (texture.ts ALBEDO_IO). */
  private readonly io = new Float64Array(16);
  /** Per tile: nearest hit parameter and hit code of each pixel; shadow casters. */
  private readonly tileT = new Float64Array(TILE * TILE);
  private readonly tileHit = new Int32Array(TILE * TILE);
  private readonly casters: Int32Array;
  private casterCount = 0;
  // Per-frame camera and light state.
  private ox = 0;
  private oy = 0;
  private oz = 0;
  private sunX = 0;
  private sunY = 1;
  private sunZ = 0;
  private readonly pointLight: boolean;
  private readonly lightX: number = 0;
  private readonly lightY: number = 0;
  private readonly lightZ: number = 0;
  private readonly lightRange: number = 1;
  private readonly lightIntensity: number;
  private readonly ambient: number;
  private readonly exposure: number;
  private readonly fogDensity: number;
  private readonly fogColour: Float64Array;

  constructor(
    readonly scene: SceneDescription,
    size: RenderSize,
  ) {
    const { width, height, fovDeg } = size;
    if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) throw new OptionError(`invalid render size ${width}x${height}`);
    this.width = width;
    this.height = height;
    this.fovDeg = fovDeg;
    this.intrinsics = intrinsics(width, height, fovDeg);
    const { fx, fy, cx, cy } = this.intrinsics;
    this.xs = Float64Array.from({ length: width }, (_, u) => (u - cx) / fx);
    this.ys = Float64Array.from({ length: height }, (_, v) => (v - cy) / fy);

    const materials: Material[] = scene.objects.map((o) => o.material);
    const addMat = (m: Material): number => materials.push(m) - 1;
    const env = scene.environment;
    this.isRoom = env.kind === 'room';
    let backdropR = 0;
    let hills = new Float64Array(0);
    let skyline = new Float64Array(0);
    if (env.kind === 'room') {
      const [w, h, d] = env.size;
      if (!(w > 0 && h > 0 && d > 0)) throw new OptionError('room size must be positive');
      this.roomBounds.set([-w / 2, w / 2, 0, h, -d / 2, d / 2]);
      this.envMat.set([addMat(env.walls[0]), addMat(env.walls[1]), addMat(env.floor), addMat(env.ceiling), addMat(env.walls[2]), addMat(env.walls[3])]);
    } else {
      if (env.ground) this.envMat[GROUND] = addMat(env.ground);
      if (env.backdrop) {
        backdropR = env.backdrop.radius;
        this.envMat[BACKDROP] = addMat(env.backdrop.material);
        const p = env.backdrop.profile;
        if (p.kind === 'hills') hills = Float64Array.from([p.base, ...p.waves.flatMap((w) => [w.amp, w.k, w.phase])]);
        else skyline = Float64Array.from(p.segments);
      }
      this.sky.set([...env.sky.horizon, ...env.sky.zenith]);
    }
    this.backdropR = backdropR;
    this.hills = hills;
    this.skyline = skyline;
    this.mats = compileMaterials(materials);
    this.nObj = scene.objects.length;
    this.radii = Float64Array.from(scene.objects, boundingRadius);
    this.obj = new Float64Array(this.nObj * OS);
    this.casters = new Int32Array(Math.max(1, this.nObj));
    this.tilesX = Math.ceil(width / TILE);
    this.tilesY = Math.ceil(height / TILE);
    this.tileCount = new Int32Array(this.tilesX * this.tilesY);
    this.tileList = new Int32Array(this.tilesX * this.tilesY * Math.max(1, this.nObj));
    for (let i = 0; i <= LUT_SIZE; i++) this.lut[i] = Math.round(255 * Math.pow(i / LUT_SIZE, 1 / 2.2));
    const L = scene.lighting;
    this.pointLight = L.light.kind === 'point';
    this.lightIntensity = L.light.intensity;
    this.ambient = L.ambient;
    this.exposure = L.exposure ?? 1;
    this.fogDensity = L.fog ? L.fog.density : 0;
    this.fogColour = Float64Array.from(L.fog ? L.fog.color : [0, 0, 0]);
    if (L.light.kind === 'point') {
      [this.lightX, this.lightY, this.lightZ] = L.light.position;
      this.lightRange = L.light.range;
    }
    if (scene.lighting.light.kind === 'sun') {
      const [x, y, z] = scene.lighting.light.direction;
      const l = Math.hypot(x, y, z);
      this.sunX = x / l;
      this.sunY = y / l;
      this.sunZ = z / l;
    }
  }

  /** Renders the scene at time t (seconds). Pass rgb/depth to reuse buffers. */
  render(t: number, rgb?: Uint8Array, depth?: Float32Array): RenderedFrame {
    const n = this.width * this.height;
    rgb ??= new Uint8Array(n * 3);
    depth ??= new Float32Array(n);
    if (rgb.length !== n * 3 || depth.length !== n) throw new OptionError('render: output buffers have the wrong size');
    const pose = cameraPose(this.scene.camera, t);
    this.compileFrame(pose, t);
    this.trace(pose, rgb, depth);
    return { rgb, depth, pose };
  }

  /**
   * Object record (OS numbers): 0 type, 1-3 centre, 4-12 rotation R (world = R local + centre,
   * row-major), 13-15 camera origin in local coordinates, 16-18 shape parameters (sphere r; box
   * half extents; cylinder r, half height), 19 bounding radius, 20-22 camera origin - centre
   * (world), 23 |origin - centre|^2 - r^2 (spheres).
   */
  private compileFrame(pose: CameraPose, t: number): void {
    const [ox, oy, oz] = pose.position;
    this.ox = ox;
    this.oy = oy;
    this.oz = oz;
    const obj = this.obj;
    this.tileCount.fill(0);
    const { fx, fy, cx, cy } = this.intrinsics;
    const r = pose.right;
    const d = pose.down;
    const f = pose.forward;
    this.scene.objects.forEach((o, k) => {
      const { centre: c, rotation: R } = objectPose(o, t);
      const b = k * OS;
      const s = o.shape;
      obj[b] = s.kind === 'sphere' ? SPHERE : s.kind === 'box' ? BOX : CYL;
      obj[b + 1] = c[0];
      obj[b + 2] = c[1];
      obj[b + 3] = c[2];
      for (let i = 0; i < 9; i++) obj[b + 4 + i] = R[i];
      const wx = ox - c[0];
      const wy = oy - c[1];
      const wz = oz - c[2];
      obj[b + 13] = R[0] * wx + R[3] * wy + R[6] * wz;
      obj[b + 14] = R[1] * wx + R[4] * wy + R[7] * wz;
      obj[b + 15] = R[2] * wx + R[5] * wy + R[8] * wz;
      if (s.kind === 'sphere') {
        obj[b + 16] = s.radius;
      } else if (s.kind === 'box') {
        obj[b + 16] = s.size[0] / 2;
        obj[b + 17] = s.size[1] / 2;
        obj[b + 18] = s.size[2] / 2;
      } else {
        obj[b + 16] = s.radius;
        obj[b + 17] = s.height / 2;
      }
      const rad = this.radii[k];
      obj[b + 19] = rad;
      obj[b + 20] = wx;
      obj[b + 21] = wy;
      obj[b + 22] = wz;
      obj[b + 23] = wx * wx + wy * wy + wz * wz - (s.kind === 'sphere' ? s.radius * s.radius : 0);

      // Screen rectangle of the bounding sphere (exact bounds of its projection, padded by a pixel).
      const X = -(wx * r[0] + wy * r[1] + wz * r[2]);
      const Y = -(wx * d[0] + wy * d[1] + wz * d[2]);
      const Z = -(wx * f[0] + wy * f[1] + wz * f[2]);
      const xr = angularBounds(X, Z, rad);
      if (!xr) return;
      const yr = angularBounds(Y, Z, rad);
      if (!yr) return;
      const u0 = Math.max(0, Math.floor(cx + fx * xr[0]) - 1);
      const u1 = Math.min(this.width - 1, Math.ceil(cx + fx * xr[1]) + 1);
      const v0 = Math.max(0, Math.floor(cy + fy * yr[0]) - 1);
      const v1 = Math.min(this.height - 1, Math.ceil(cy + fy * yr[1]) + 1);
      if (u0 > u1 || v0 > v1) return;
      const stride = Math.max(1, this.nObj);
      for (let ty = Math.floor(v0 / TILE); ty <= Math.floor(v1 / TILE); ty++) {
        for (let tx = Math.floor(u0 / TILE); tx <= Math.floor(u1 / TILE); tx++) {
          const tile = ty * this.tilesX + tx;
          this.tileList[tile * stride + this.tileCount[tile]++] = k;
        }
      }
    });
  }

  private trace(pose: CameraPose, rgb: Uint8Array, depth: Float32Array): void {
    const { width, height, xs, ys, obj, tileCount, tileList, isRoom, tileT, tileHit } = this;
    const stride = Math.max(1, this.nObj);
    const ox = this.ox;
    const oy = this.oy;
    const oz = this.oz;
    const [rx, ry, rz] = pose.right;
    const [dnx, dny, dnz] = pose.down;
    const [fwx, fwy, fwz] = pose.forward;
    const rb = this.roomBounds;
    const groundMat = this.envMat[GROUND];
    const R = this.backdropR;
    const cBack = ox * ox + oz * oz - R * R;
    const shadows = this.scene.lighting.shadows && this.nObj > 0;
    const col = this.col;
    const lut = this.lut;
    const sc = this.s;
    for (let ty = 0; ty < this.tilesY; ty++) {
      const v0 = ty * TILE;
      const vEnd = Math.min(height, v0 + TILE);
      for (let tx = 0; tx < this.tilesX; tx++) {
        const tile = ty * this.tilesX + tx;
        const cnt = tileCount[tile];
        const list = tile * stride;
        const u0 = tx * TILE;
        const uEnd = Math.min(width, u0 + TILE);
        // Pass 1: nearest hit of every pixel of the tile, and the bounds of the hit points.
        let minX = Infinity;
        let minY = Infinity;
        let minZ = Infinity;
        let maxX = -Infinity;
        let maxY = -Infinity;
        let maxZ = -Infinity;
        for (let v = v0; v < vEnd; v++) {
          const yv = ys[v];
          const rowX = fwx + dnx * yv;
          const rowY = fwy + dny * yv;
          const rowZ = fwz + dnz * yv;
          for (let u = u0; u < uEnd; u++) {
            const xu = xs[u];
            const dx = rowX + rx * xu;
            const dy = rowY + ry * xu;
            const dz = rowZ + rz * xu;
            let best = Infinity;
            let hit = SKY;
            // Environment.
            if (isRoom) {
              if (dx > 0) {
                best = (rb[1] - ox) / dx;
                hit = -11;
              } else if (dx < 0) {
                best = (rb[0] - ox) / dx;
                hit = -10;
              }
              if (dy > 0) {
                const t = (rb[3] - oy) / dy;
                if (t < best) {
                  best = t;
                  hit = -13;
                }
              } else if (dy < 0) {
                const t = (rb[2] - oy) / dy;
                if (t < best) {
                  best = t;
                  hit = -12;
                }
              }
              if (dz > 0) {
                const t = (rb[5] - oz) / dz;
                if (t < best) {
                  best = t;
                  hit = -15;
                }
              } else if (dz < 0) {
                const t = (rb[4] - oz) / dz;
                if (t < best) {
                  best = t;
                  hit = -14;
                }
              }
            } else {
              if (groundMat >= 0 && dy < 0 && oy > 0) {
                best = -oy / dy;
                hit = -10 - GROUND;
              }
              if (R > 0) {
                const a = dx * dx + dz * dz;
                if (a > 0) {
                  const b = ox * dx + oz * dz;
                  const t = (-b + Math.sqrt(b * b - a * cBack)) / a;
                  if (t < best) {
                    const y = oy + t * dy;
                    if (y >= 0) {
                      sc[21] = ox + t * dx;
                      sc[22] = oz + t * dz;
                      this.backdropHeight();
                      if (y < sc[23]) {
                        best = t;
                        hit = -10 - BACKDROP;
                      }
                    }
                  }
                }
              }
            }
            // Objects that may cover this tile.
            for (let j = 0; j < cnt; j++) {
              const k = tileList[list + j];
              const b = k * OS;
              const type = obj[b];
              // eslint-disable-next-line no-useless-assignment -- every branch below sets it; the default keeps unknown types a miss
              let t = Infinity;
              if (type === SPHERE) {
                const bb = obj[b + 20] * dx + obj[b + 21] * dy + obj[b + 22] * dz;
                if (bb >= 0) continue;
                const a = dx * dx + dy * dy + dz * dz;
                const disc = bb * bb - a * obj[b + 23];
                if (disc < 0) continue;
                t = (-bb - Math.sqrt(disc)) / a;
                if (!(t > EPS)) continue;
              } else {
                // Ray in the object's frame: origin precomputed per frame, direction R^T d.
                sc[0] = obj[b + 13];
                sc[1] = obj[b + 14];
                sc[2] = obj[b + 15];
                sc[3] = obj[b + 4] * dx + obj[b + 7] * dy + obj[b + 10] * dz;
                sc[4] = obj[b + 5] * dx + obj[b + 8] * dy + obj[b + 11] * dz;
                sc[5] = obj[b + 6] * dx + obj[b + 9] * dy + obj[b + 12] * dz;
                sc[6] = obj[b + 16];
                sc[7] = obj[b + 17];
                sc[8] = obj[b + 18];
                if (type === BOX) hitBoxIO(sc, 0);
                else hitCylinderIO(sc, 0);
                t = sc[9];
              }
              if (t < best) {
                best = t;
                hit = k;
              }
            }
            const j = (v - v0) * TILE + (u - u0);
            tileT[j] = best;
            tileHit[j] = hit;
            if (hit !== SKY) {
              const px = ox + best * dx;
              const py = oy + best * dy;
              const pz = oz + best * dz;
              if (px < minX) minX = px;
              if (px > maxX) maxX = px;
              if (py < minY) minY = py;
              if (py > maxY) maxY = py;
              if (pz < minZ) minZ = pz;
              if (pz > maxZ) maxZ = pz;
            }
          }
        }
        // Pass 2: objects that can shadow any point of the tile.
        this.casterCount = shadows && minX <= maxX ? this.tileCasters(minX, minY, minZ, maxX, maxY, maxZ) : 0;
        // Pass 3: shade.
        for (let v = v0; v < vEnd; v++) {
          const yv = ys[v];
          const rowX = fwx + dnx * yv;
          const rowY = fwy + dny * yv;
          const rowZ = fwz + dnz * yv;
          for (let u = u0; u < uEnd; u++) {
            const xu = xs[u];
            const dx = rowX + rx * xu;
            const dy = rowY + ry * xu;
            const dz = rowZ + rz * xu;
            const j = (v - v0) * TILE + (u - u0);
            const hit = tileHit[j];
            const i = v * width + u;
            sc[11] = dx;
            sc[12] = dy;
            sc[13] = dz;
            if (hit === SKY) {
              depth[i] = 0;
              this.skyColour();
            } else {
              const best = tileT[j];
              depth[i] = best;
              sc[10] = best;
              this.shade(hit);
            }
            const o3 = i * 3;
            let c = col[0] * LUT_SIZE;
            rgb[o3] = lut[c >= LUT_SIZE ? LUT_SIZE : c > 0 ? (c + 0.5) | 0 : 0];
            c = col[1] * LUT_SIZE;
            rgb[o3 + 1] = lut[c >= LUT_SIZE ? LUT_SIZE : c > 0 ? (c + 0.5) | 0 : 0];
            c = col[2] * LUT_SIZE;
            rgb[o3 + 2] = lut[c >= LUT_SIZE ? LUT_SIZE : c > 0 ? (c + 0.5) | 0 : 0];
          }
        }
      }
    }
  }

  /**
   * Lists in this.casters the objects whose bounding sphere comes within reach of a shadow ray from
   * any point in the box: the box's bounding ball (m, rho) swept towards the light (a ray along the
   * sun direction, or the segment to the point light) must pass within R + rho of the object's centre.
   */
  private tileCasters(x0: number, y0: number, z0: number, x1: number, y1: number, z1: number): number {
    const mx = (x0 + x1) / 2;
    const my = (y0 + y1) / 2;
    const mz = (z0 + z1) / 2;
    const rho = 0.5 * Math.sqrt((x1 - x0) ** 2 + (y1 - y0) ** 2 + (z1 - z0) ** 2);
    const obj = this.obj;
    const light = this.scene.lighting.light;
    let sx: number;
    let sy: number;
    let sz: number;
    let len: number;
    if (light.kind === 'point') {
      sx = light.position[0] - mx;
      sy = light.position[1] - my;
      sz = light.position[2] - mz;
      len = Math.sqrt(sx * sx + sy * sy + sz * sz);
      if (len > 0) {
        sx /= len;
        sy /= len;
        sz /= len;
      }
    } else {
      sx = this.sunX;
      sy = this.sunY;
      sz = this.sunZ;
      len = Infinity;
    }
    let n = 0;
    for (let k = 0; k < this.nObj; k++) {
      const b = k * OS;
      const cx = obj[b + 1] - mx;
      const cy = obj[b + 2] - my;
      const cz = obj[b + 3] - mz;
      let s = cx * sx + cy * sy + cz * sz;
      if (s < 0) s = 0;
      else if (s > len) s = len;
      const ex = cx - s * sx;
      const ey = cy - s * sy;
      const ez = cz - s * sz;
      const reach = obj[b + 19] + rho;
      if (ex * ex + ey * ey + ez * ez <= reach * reach) this.casters[n++] = k;
    }
    return n;
  }

  /** Height of the backdrop profile at world (s[21], s[22]) into s[23]. */
  private backdropHeight(): void {
    const sc = this.s;
    const a = Math.atan2(sc[22], sc[21]);
    const sk = this.skyline;
    if (sk.length > 0) {
      let i = Math.floor(((a + Math.PI) / (2 * Math.PI)) * sk.length);
      if (i >= sk.length) i = sk.length - 1;
      sc[23] = sk[i];
      return;
    }
    const h = this.hills;
    let y = h[0];
    for (let j = 1; j + 2 < h.length; j += 3) y += h[j] * Math.sin(h[j + 1] * a + h[j + 2]);
    sc[23] = y;
  }

  /** Sky colour for the ray direction s[11..13] into this.col. */
  private skyColour(): void {
    const sc = this.s;
    const dx = sc[11];
    const dy = sc[12];
    const dz = sc[13];
    const e = dy / Math.sqrt(dx * dx + dy * dy + dz * dz);
    const m = e > 0 ? Math.sqrt(e) : 0;
    const s = this.sky;
    const ex = this.exposure;
    this.col[0] = (s[0] + (s[3] - s[0]) * m) * ex;
    this.col[1] = (s[1] + (s[4] - s[1]) * m) * ex;
    this.col[2] = (s[2] + (s[5] - s[2]) * m) * ex;
  }

  /** Shades the hit `hit` at ray parameter s[10] along direction s[11..13] into this.col (linear RGB). */
  private shade(hit: number): void {
    const sc = this.s;
    const t = sc[10];
    const dx = sc[11];
    const dy = sc[12];
    const dz = sc[13];
    const px = this.ox + t * dx;
    const py = this.oy + t * dy;
    const pz = this.oz + t * dz;
    let nx = 0;
    let ny = 0;
    let nz = 0;
    let tx = px; // texture-space point
    let ty = py;
    let tz = pz;
    let skip = -1;
    let mat: number;
    if (hit >= 0) {
      const obj = this.obj;
      const b = hit * OS;
      const type = obj[b];
      const wx = px - obj[b + 1];
      const wy = py - obj[b + 2];
      const wz = pz - obj[b + 3];
      // Local point: R^T (p - c).
      const lx = obj[b + 4] * wx + obj[b + 7] * wy + obj[b + 10] * wz;
      const ly = obj[b + 5] * wx + obj[b + 8] * wy + obj[b + 11] * wz;
      const lz = obj[b + 6] * wx + obj[b + 9] * wy + obj[b + 12] * wz;
      let lnx = 0;
      let lny = 0;
      let lnz = 0;
      if (type === SPHERE) {
        const inv = 1 / obj[b + 16];
        lnx = lx * inv;
        lny = ly * inv;
        lnz = lz * inv;
      } else if (type === BOX) {
        const ax = Math.abs(lx) / obj[b + 16];
        const ay = Math.abs(ly) / obj[b + 17];
        const az = Math.abs(lz) / obj[b + 18];
        if (ax >= ay && ax >= az) {
          lnx = lx > 0 ? 1 : -1;
          skip = 0;
        } else if (ay >= az) {
          lny = ly > 0 ? 1 : -1;
          skip = 1;
        } else {
          lnz = lz > 0 ? 1 : -1;
          skip = 2;
        }
      } else {
        const rr = Math.sqrt(lx * lx + lz * lz);
        if (Math.abs(Math.abs(ly) - obj[b + 17]) < Math.abs(rr - obj[b + 16])) {
          lny = ly > 0 ? 1 : -1;
          skip = 1;
        } else if (rr > 0) {
          lnx = lx / rr;
          lnz = lz / rr;
        }
      }
      nx = obj[b + 4] * lnx + obj[b + 5] * lny + obj[b + 6] * lnz;
      ny = obj[b + 7] * lnx + obj[b + 8] * lny + obj[b + 9] * lnz;
      nz = obj[b + 10] * lnx + obj[b + 11] * lny + obj[b + 12] * lnz;
      tx = lx;
      ty = ly;
      tz = lz;
      mat = hit;
    } else {
      const face = -10 - hit;
      mat = this.envMat[face];
      if (face < 6) {
        const axis = face >> 1;
        const sgn = face & 1 ? -1 : 1; // inward normal
        if (axis === 0) nx = sgn;
        else if (axis === 1) ny = sgn;
        else nz = sgn;
        skip = axis;
      } else if (face === GROUND) {
        ny = 1;
        skip = 1;
      } else {
        const rr = Math.sqrt(px * px + pz * pz);
        nx = -px / rr;
        nz = -pz / rr;
      }
    }
    // Face the camera.
    const dlen = Math.sqrt(dx * dx + dy * dy + dz * dz);
    let ndv = (nx * dx + ny * dy + nz * dz) / dlen;
    if (ndv > 0) {
      nx = -nx;
      ny = -ny;
      nz = -nz;
    } else ndv = -ndv;
    const dist = t * dlen;
    const io = this.io;
    io[0] = tx;
    io[1] = ty;
    io[2] = tz;
    io[3] = dist / (this.intrinsics.fx * (ndv > 0.15 ? ndv : 0.15)); // pixel footprint on the surface
    albedo(this.mats, mat, skip, io);

    let lx: number;
    let ly: number;
    let lz: number;
    let lmax = Infinity;
    let intensity = this.lightIntensity;
    if (this.pointLight) {
      lx = this.lightX - px;
      ly = this.lightY - py;
      lz = this.lightZ - pz;
      const ld = Math.sqrt(lx * lx + ly * ly + lz * lz);
      lx /= ld;
      ly /= ld;
      lz /= ld;
      lmax = ld;
      const q = ld / this.lightRange;
      intensity /= 1 + q * q;
    } else {
      lx = this.sunX;
      ly = this.sunY;
      lz = this.sunZ;
    }
    let diffuse = nx * lx + ny * ly + nz * lz;
    if (diffuse > 0 && this.casterCount > 0) {
      const off = 1e-4 * (1 + dist);
      sc[14] = px + nx * off;
      sc[15] = py + ny * off;
      sc[16] = pz + nz * off;
      sc[17] = lx;
      sc[18] = ly;
      sc[19] = lz;
      sc[20] = lmax;
      if (this.occluded(hit)) diffuse = 0;
    }
    const light = this.ambient * (0.8 + 0.2 * ny) + (diffuse > 0 ? diffuse * intensity : 0);
    let r = io[4] * light;
    let g = io[5] * light;
    let bl = io[6] * light;
    const fd = this.fogDensity;
    if (fd > 0) {
      const keep = Math.exp(-fd * dist);
      const fc = this.fogColour;
      r = fc[0] + (r - fc[0]) * keep;
      g = fc[1] + (g - fc[1]) * keep;
      bl = fc[2] + (bl - fc[2]) * keep;
    }
    const ex = this.exposure;
    const col = this.col;
    col[0] = r * ex;
    col[1] = g * ex;
    col[2] = bl * ex;
  }

  /**
   * Whether a tile shadow caster other than `skip` blocks the unit ray p + s l for 0 < s < smax,
   * with p = s[14..16], l = s[17..19], smax = s[20].
   */
  private occluded(skip: number): boolean {
    const obj = this.obj;
    const sc = this.s;
    const px = sc[14];
    const py = sc[15];
    const pz = sc[16];
    const lx = sc[17];
    const ly = sc[18];
    const lz = sc[19];
    const smax = sc[20];
    const casters = this.casters;
    for (let c = 0; c < this.casterCount; c++) {
      const k = casters[c];
      if (k === skip) continue; // convex: a surface never shadows itself on its lit side
      const b = k * OS;
      const wx = px - obj[b + 1];
      const wy = py - obj[b + 2];
      const wz = pz - obj[b + 3];
      const rad = obj[b + 19];
      const bb = wx * lx + wy * ly + wz * lz;
      const cc = wx * wx + wy * wy + wz * wz - rad * rad;
      if (cc > 0 && bb > 0) continue; // bounding sphere behind
      if (bb * bb - cc < 0) continue; // misses the bounding sphere
      const type = obj[b];
      let s: number;
      if (type === SPHERE) {
        // The bounding sphere is the sphere.
        s = -bb - Math.sqrt(bb * bb - cc);
        if (!(s > EPS)) s = -bb + Math.sqrt(bb * bb - cc);
        if (!(s > EPS)) continue;
      } else {
        sc[0] = obj[b + 4] * wx + obj[b + 7] * wy + obj[b + 10] * wz;
        sc[1] = obj[b + 5] * wx + obj[b + 8] * wy + obj[b + 11] * wz;
        sc[2] = obj[b + 6] * wx + obj[b + 9] * wy + obj[b + 12] * wz;
        sc[3] = obj[b + 4] * lx + obj[b + 7] * ly + obj[b + 10] * lz;
        sc[4] = obj[b + 5] * lx + obj[b + 8] * ly + obj[b + 11] * lz;
        sc[5] = obj[b + 6] * lx + obj[b + 9] * ly + obj[b + 12] * lz;
        sc[6] = obj[b + 16];
        sc[7] = obj[b + 17];
        sc[8] = obj[b + 18];
        if (type === BOX) hitBoxIO(sc, 0);
        else hitCylinderIO(sc, 0);
        s = sc[9];
      }
      if (s < smax) return true;
    }
    return false;
  }
}

/**
 * Bounds of x / z over a disc of radius rad centred at (X, Z) in a plane through the camera,
 * restricted to z > 0: [lo, hi] (possibly infinite), or null if the disc is entirely behind.
 */
function angularBounds(X: number, Z: number, rad: number): [number, number] | null {
  const l2 = X * X + Z * Z;
  if (l2 <= rad * rad) return [-Infinity, Infinity];
  const a = Math.atan2(X, Z);
  const h = Math.asin(rad / Math.sqrt(l2));
  const lo = a - h;
  const hi = a + h;
  const q = Math.PI / 2;
  if (hi <= -q || lo >= q) return null;
  return [lo <= -q ? -Infinity : Math.tan(lo), hi >= q ? Infinity : Math.tan(hi)];
}

/** Renders one frame of `scene` at time t. For many frames, keep a Renderer instead. */
export function renderScene(scene: SceneDescription, t: number, size: RenderSize): RenderedFrame {
  return new Renderer(scene, size).render(t);
}

/** Scene time of frame `index` at `fps` frames per second. */
export function frameTime(index: number, fps: number): number {
  return index / fps;
}
