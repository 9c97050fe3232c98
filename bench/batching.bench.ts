// Would batching the windows of several streams into one model call help? The pack contract
// fixes the UNet's batch axis at 1 ([1,T,8,h,w], docs/model-pack.md), and the VAE decoder is
// temporal (its frames interact), so only the per-frame encoders can batch across streams today.
// This measures them: K frames (one from each of K streams) as K calls of N=1 versus one call of
// N=K, same sessions and threads as the engine, repeated, ratios side by side.
//
//   node --import tsx bench/batching.bench.ts [--model models/synthetic-small] [--streams 4] [--repeat 7] [--size 128]
import { parseArgs } from 'node:util';
import { loadavg } from 'node:os';
import { loadModelPack } from '../src/inference/pack/load-pack.js';
import { OrtStages } from '../src/inference/backend/ort-stages.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: 'models/synthetic-small' },
    streams: { type: 'string', default: '4' },
    repeat: { type: 'string', default: '7' },
    size: { type: 'string', default: '128' },
  },
});
const K = Number(values.streams);
const S = Number(values.size);
const pack = await loadModelPack(values.model!, { device: 'cpu' });
const stages = new OrtStages(pack);
const clipSize = pack.manifest.imageEncoder.size;
const clip = new Float32Array(K * 3 * clipSize * clipSize).map((_, i) => Math.sin(i) * 0.5);
const px = new Float32Array(K * 3 * S * S).map((_, i) => Math.cos(i) * 0.5);

async function time(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

const rows: Record<string, number[]> = { 'image encoder': [], 'VAE encoder': [] };
const per: Record<string, { one: number[]; batch: number[] }> = { 'image encoder': { one: [], batch: [] }, 'VAE encoder': { one: [], batch: [] } };
const clipFrame = 3 * clipSize * clipSize;
const pxFrame = 3 * S * S;
// Warm-up: ORT sizes its buffers on the first runs of each shape.
for (let i = 0; i < 2; i++) {
  await stages.encodeImage(clip.subarray(0, clipFrame), 1);
  await stages.encodeImage(clip, K);
  await stages.encodeLatent(px.subarray(0, pxFrame), 1, S, S);
  await stages.encodeLatent(px, K, S, S);
}
for (let r = 0; r < Number(values.repeat); r++) {
  const oneImg = await time(async () => {
    for (let k = 0; k < K; k++) await stages.encodeImage(clip.subarray(k * clipFrame, (k + 1) * clipFrame), 1);
  });
  const batchImg = await time(() => stages.encodeImage(clip, K));
  const oneLat = await time(async () => {
    for (let k = 0; k < K; k++) await stages.encodeLatent(px.subarray(k * pxFrame, (k + 1) * pxFrame), 1, S, S);
  });
  const batchLat = await time(() => stages.encodeLatent(px, K, S, S));
  rows['image encoder'].push(oneImg / batchImg);
  rows['VAE encoder'].push(oneLat / batchLat);
  per['image encoder'].one.push(oneImg / K);
  per['image encoder'].batch.push(batchImg / K);
  per['VAE encoder'].one.push(oneLat / K);
  per['VAE encoder'].batch.push(batchLat / K);
}
const med = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
const span = (v: number[]) => `${Math.min(...v).toFixed(2)}-${Math.max(...v).toFixed(2)}`;
console.log(
  `batching across ${K} streams: ${values.model} at ${S}x${S}, CPU, ${values.repeat} repeats; load ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}`,
);
console.log('stage           ms/frame N=1 (median, range)   ms/frame N=K (median, range)   speed-up K x N=1 / N=K (median, range)');
for (const stage of Object.keys(rows)) {
  const p = per[stage];
  console.log(
    `${stage.padEnd(15)} ${med(p.one).toFixed(2).padStart(8)} (${span(p.one)})${' '.repeat(12)}${med(p.batch).toFixed(2).padStart(8)} (${span(p.batch)})${' '.repeat(12)}${med(rows[stage]).toFixed(2)} (${span(rows[stage])})`,
  );
}
await pack.release();
