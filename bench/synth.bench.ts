// Render speed of the synthetic scene generator on one thread: frames/s at 256x256 and 512x288 over
// several seeds (indoor and outdoor), after a warm-up. Optionally writes a preview frame pair.
//   node --import tsx bench/synth.bench.ts [--frames N] [--seeds 1,2,3] [--preview DIR]
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { generateScene } from '../src/synth/generate.js';
import { Renderer } from '../src/synth/renderer.js';
import { depthPreview } from '../src/synth/depth-export.js';
import { encodePngRGB } from '../src/io/png16.js';

const { values } = parseArgs({
  options: {
    frames: { type: 'string', default: '60' },
    seeds: { type: 'string', default: '1,2,3,4,5,6,7,8' },
    preview: { type: 'string' },
    'preview-seed': { type: 'string', default: '12' },
    'preview-frame': { type: 'string', default: '120' },
  },
});
const frames = Number(values.frames);
const seeds = values.seeds!.split(',').map(Number);
const sizes: [number, number][] = [
  [256, 256],
  [512, 288],
];
const fps = 30;

console.log(`synthetic renderer, ${frames} frames per seed, fov 60, one thread`);
for (const [w, h] of sizes) {
  let totalMs = 0;
  let total = 0;
  const per: string[] = [];
  for (const seed of seeds) {
    const scene = generateScene(seed);
    const r = new Renderer(scene, { width: w, height: h, fovDeg: 60 });
    const rgb = new Uint8Array(w * h * 3);
    const depth = new Float32Array(w * h);
    for (let i = 0; i < 5; i++) r.render(i / fps, rgb, depth); // warm-up
    const t0 = performance.now();
    for (let i = 0; i < frames; i++) r.render((i + 5) / fps, rgb, depth);
    const ms = performance.now() - t0;
    totalMs += ms;
    total += frames;
    per.push(`${seed}:${scene.kind[0]}${scene.objects.length}=${((1000 * frames) / ms).toFixed(0)}`);
  }
  console.log(
    `${w}x${h}: ${((1000 * total) / totalMs).toFixed(1)} frames/s (${(totalMs / total).toFixed(2)} ms/frame)  per seed [seed:kind+objects=fps] ${per.join(' ')}`,
  );
}

if (values.preview) {
  mkdirSync(values.preview, { recursive: true });
  const seed = Number(values['preview-seed']);
  const [w, h] = [512, 288];
  const f = new Renderer(generateScene(seed), { width: w, height: h, fovDeg: 60 }).render(Number(values['preview-frame']) / fps);
  writeFileSync(join(values.preview, 'synth-preview-rgb.png'), encodePngRGB(f.rgb, w, h));
  writeFileSync(join(values.preview, 'synth-preview-depth.png'), encodePngRGB(depthPreview(f.depth), w, h));
  console.log(`preview (seed ${seed}) written to ${values.preview}`);
}
