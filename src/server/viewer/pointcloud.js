// The 3D view: each depth pixel as a point, coloured by the RGB frame, seen through three.js with orbit controls.
// The unprojection runs on the GPU: the depth and RGB frames are uploaded as textures as they arrive, and the
// vertex shader places pixel (u, v) at depth z along its camera ray (JavaScript only repacks RGB into RGBA).
//
// Depth from disparity. The payload is relative, affine-invariant disparity d in [0, 1] (near = 1): the true
// inverse depth is s * d + t for unknown s > 0 and t. We pick one plausible member of that family by fixing the
// depth range: the nearest point (d = 1) at depth 1 and the farthest (d = 0) at depth R (the "depth range" slider,
// default 10), i.e. 1 / z = a * d + b with b = 1 / R and a = 1 - 1 / R. Shapes are right up to that choice
// (a wrong R bends planes slightly); the unit is arbitrary, not metres.
//
// Rays. Pinhole intrinsics (fx, fy, cx, cy) in pixels of the depth frame (the header's `intrinsics`, already scaled
// to the depth's size by the server) when the source knows them, else a guess: 60 degrees horizontal field of view,
// square pixels, principal point at the centre. OpenCV camera axes (x right, y down, z forward) map to three.js's
// (x right, y up, looking down -z), so the initial view, from the source camera, shows the picture as filmed.
import * as THREE from 'three';
import { OrbitControls } from 'three/addons/controls/OrbitControls.js';

const FALLBACK_FOV_DEG = 60;

const vertexShader = /* glsl */ `
uniform sampler2D disparity;
uniform sampler2D rgb;
uniform vec4 K;          // fx, fy, cx, cy in depth pixels
uniform vec2 inverseDepth; // 1 / z = inverseDepth.x * d + inverseDepth.y
uniform float pointPx;   // point size in drawing-buffer pixels at the depth it was seen from
varying vec3 vColor;
void main() {
  vec2 px = position.xy; // the pixel (u, v) of this point
  float d = clamp(texelFetch(disparity, ivec2(px), 0).r, 0.0, 1.0);
  float z = 1.0 / (inverseDepth.x * d + inverseDepth.y);
  vec3 p = vec3((px.x - K.z) / K.x * z, -(px.y - K.w) / K.y * z, -z);
  vColor = texture2D(rgb, (px + 0.5) / vec2(textureSize(disparity, 0))).rgb;
  vec4 mv = modelViewMatrix * vec4(p, 1.0);
  gl_Position = projectionMatrix * mv;
  // Seen from the source camera, neighbouring points are one pixel apart on screen whatever their depth;
  // nearer the point than that, it grows, farther away it shrinks.
  gl_PointSize = clamp(pointPx * z / max(-mv.z, 1e-3), 1.0, 64.0);
}`;

const fragmentShader = /* glsl */ `
varying vec3 vColor;
void main() { gl_FragColor = vec4(vColor, 1.0); }`;

/** Pinhole intrinsics guessed from a horizontal field of view (square pixels, centred principal point). */
export function guessIntrinsics(width, height, fovDeg = FALLBACK_FOV_DEG) {
  const fx = width / 2 / Math.tan((fovDeg * Math.PI) / 360);
  return { fx, fy: fx, cx: (width - 1) / 2, cy: (height - 1) / 2 };
}

export class PointCloudView {
  /** @param {HTMLCanvasElement} canvas */
  constructor(canvas) {
    this.canvas = canvas;
    // preserveDrawingBuffer: snapshots and tests read the picture back after it is shown.
    this.renderer = new THREE.WebGLRenderer({ canvas, antialias: false, preserveDrawingBuffer: true });
    this.renderer.setPixelRatio(Math.min(2, window.devicePixelRatio || 1));
    this.renderer.setClearColor(0x000000, 1);
    this.scene = new THREE.Scene();
    this.camera = new THREE.PerspectiveCamera(50, 4 / 3, 0.01, 1000);
    this.controls = new OrbitControls(this.camera, canvas);
    this.controls.addEventListener('change', () => this.requestRender());
    this.range = 10;
    this.frames = 0; // depth frames shown
    this.renders = 0;
    this.size = null; // { width, height } of the depth grid
    this.K = null;
    this.intrinsicsFrom = null; // 'source' or 'assumed'
    this.material = new THREE.ShaderMaterial({
      vertexShader,
      fragmentShader,
      uniforms: {
        disparity: { value: null },
        rgb: { value: null },
        K: { value: new THREE.Vector4(1, 1, 0, 0) },
        inverseDepth: { value: new THREE.Vector2(0.9, 0.1) },
        pointPx: { value: 1.5 },
      },
    });
    this.points = null;
    this.pending = false;
    this.resizeObserver = new ResizeObserver(() => this.resize());
    this.resizeObserver.observe(canvas);
  }

  /** Far / near depth ratio (see the top of the file). */
  setRange(r) {
    this.range = r;
    this.material.uniforms.inverseDepth.value.set(1 - 1 / r, 1 / r);
    this.requestRender();
  }

  /**
   * Show one depth frame. `depth`: Float32Array of width x height disparities; `rgb`: { data (rgb24), width,
   * height } of the source frame or null; `intrinsics`: { fx, fy, cx, cy } in depth pixels, or null to guess.
   */
  update(depth, width, height, rgb, intrinsics) {
    const resized = !this.size || this.size.width !== width || this.size.height !== height;
    if (resized) this.rebuild(width, height);
    const from = intrinsics ? 'source' : 'assumed';
    const K = intrinsics ?? guessIntrinsics(width, height);
    const changedK = !this.K || ['fx', 'fy', 'cx', 'cy'].some((k) => Math.abs(this.K[k] - K[k]) > 1e-6);
    this.K = K;
    this.intrinsicsFrom = from;
    this.material.uniforms.K.value.set(K.fx, K.fy, K.cx, K.cy);

    const dispTex = this.material.uniforms.disparity.value;
    dispTex.image.data.set(depth.subarray(0, width * height));
    dispTex.needsUpdate = true;
    this.setColour(rgb, width, height);
    if (resized || changedK) this.resetView();
    this.frames++;
    this.requestRender();
  }

  /** A grid of width x height points (position = the pixel) and the textures they read. */
  rebuild(width, height) {
    if (this.points) {
      this.scene.remove(this.points);
      this.points.geometry.dispose();
    }
    this.material.uniforms.disparity.value?.dispose();
    const grid = new Float32Array(width * height * 3);
    for (let v = 0, i = 0; v < height; v++)
      for (let u = 0; u < width; u++, i += 3) {
        grid[i] = u;
        grid[i + 1] = v;
      }
    const geometry = new THREE.BufferGeometry();
    geometry.setAttribute('position', new THREE.BufferAttribute(grid, 3));
    this.points = new THREE.Points(geometry, this.material);
    this.points.frustumCulled = false; // the positions are pixel indices, not where the points are drawn
    this.scene.add(this.points);
    const disp = new THREE.DataTexture(new Float32Array(width * height), width, height, THREE.RedFormat, THREE.FloatType);
    disp.minFilter = disp.magFilter = THREE.NearestFilter;
    disp.generateMipmaps = false;
    this.material.uniforms.disparity.value = disp;
    this.size = { width, height };
    this.pointSize();
  }

  /** The RGB texture (the source frame, any size: sampled at each depth pixel's position). */
  setColour(rgb, _width, _height) {
    let tex = this.material.uniforms.rgb.value;
    const w = rgb?.width ?? 1;
    const h = rgb?.height ?? 1;
    if (!tex || tex.image.width !== w || tex.image.height !== h) {
      tex?.dispose();
      tex = new THREE.DataTexture(new Uint8Array(w * h * 4), w, h, THREE.RGBAFormat, THREE.UnsignedByteType);
      tex.minFilter = tex.magFilter = THREE.LinearFilter;
      tex.generateMipmaps = false;
      tex.colorSpace = THREE.NoColorSpace; // the bytes are shown as they are (sRGB in, sRGB out)
      this.material.uniforms.rgb.value = tex;
    }
    const out = tex.image.data;
    if (!rgb) {
      out.fill(200); // no RGB frame: light grey points
    } else {
      // rgb24 to RGBA (WebGL uploads of 3-byte rows need care; 4 bytes per texel always work).
      const src = rgb.data;
      for (let i = 0, j = 0, n = w * h; i < n; i++, j += 3) {
        out[4 * i] = src[j];
        out[4 * i + 1] = src[j + 1];
        out[4 * i + 2] = src[j + 2];
        out[4 * i + 3] = 255;
      }
    }
    tex.needsUpdate = true;
  }

  /** Back to the source camera's pose, looking at the middle of the depth range. */
  resetView() {
    if (!this.K || !this.size) return;
    const { height } = this.size;
    this.camera.fov = (2 * Math.atan(height / 2 / this.K.fy) * 180) / Math.PI;
    this.camera.position.set(0, 0, 0);
    this.controls.target.set(0, 0, -Math.sqrt(this.range)); // the geometric middle of [1, R]
    this.camera.up.set(0, 1, 0);
    this.camera.lookAt(this.controls.target);
    this.camera.updateProjectionMatrix();
    this.controls.update();
    this.requestRender();
  }

  /** Points as large as a depth pixel on screen, from the source camera (depth pixels need not be square there). */
  pointSize() {
    if (!this.size) return;
    const buffer = this.renderer.getDrawingBufferSize(new THREE.Vector2());
    const px = Math.max(buffer.x / this.size.width, buffer.y / this.size.height);
    this.material.uniforms.pointPx.value = Math.max(1.5, 1.15 * px);
  }

  resize() {
    const w = this.canvas.clientWidth;
    const h = this.canvas.clientHeight;
    if (w === 0 || h === 0) return;
    this.renderer.setSize(w, h, false);
    this.camera.aspect = w / h;
    this.camera.updateProjectionMatrix();
    this.pointSize();
    this.requestRender();
  }

  requestRender() {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => {
      this.pending = false;
      if (!this.points) return;
      this.renderer.render(this.scene, this.camera);
      this.renders++;
    });
  }

  clear() {
    if (this.points) {
      this.scene.remove(this.points);
      this.points.geometry.dispose();
      this.points = null;
    }
    this.size = null;
    this.K = null;
    this.frames = 0;
    this.renderer.clear();
  }
}
