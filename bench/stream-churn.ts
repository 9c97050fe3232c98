// Streams added and removed over and over while two others run (the admin API through the real
// CLI): prints RSS, open file descriptors and the steady streams' fps every N cycles, so a leak
// per added stream (a worker stream, a queue, a status entry) shows as a slope.
//
//   node --import tsx bench/stream-churn.ts [--cycles 60] [--every 10] [--up-s 10] [--down-s 4]
import { parseArgs } from 'node:util';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const { values } = parseArgs({
  options: {
    cycles: { type: 'string', default: '60' },
    every: { type: 'string', default: '10' },
    'up-s': { type: 'string', default: '10' },
    'down-s': { type: 'string', default: '4' },
  },
});
const ROOT = resolve(import.meta.dirname, '..');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const port = await new Promise<number>((res) => {
  const s = createServer();
  s.listen(0, '127.0.0.1', () => {
    const p = (s.address() as { port: number }).port;
    s.close(() => res(p));
  });
});
const dir = mkdtempSync(join(tmpdir(), 'dcl-churn-'));
const file = join(dir, 'p.yaml');
const cam = (n: string, seed: number) => `  - { name: ${n}, source: { kind: synthetic, options: { seed: ${seed}, fps: 8, width: 256, height: 256 } } }`;
writeFileSync(
  file,
  `name: churn
server:
  port: ${port}
  admin: true
log: { level: warn }
streams:
${cam('steady1', 1)}
${cam('steady2', 2)}
nodes:
  depth: { kind: depth, options: { model: ${join(ROOT, 'models/synthetic-small')}, window: 16, overlap: 8, steps: 2 } }
  ws: { kind: websocket, options: { viewer: false } }
edges:
  - { from: streams.video, to: depth.video, queue: { capacity: 4, policy: drop-oldest } }
  - { from: depth.depth, to: ws.frames, queue: { capacity: 64, policy: drop-oldest } }
`,
);
const child = spawn(process.execPath, [join(ROOT, 'bin', 'depthcrafter-live.js'), 'run', file], { stdio: ['ignore', 'ignore', 'inherit'] });
const base = `http://127.0.0.1:${port}`;
for (
  let i = 0;
  !(await fetch(`${base}/healthz`).then(
    () => true,
    () => false,
  ));
  i++
) {
  if (i > 600) throw new Error('CLI did not start');
  await sleep(100);
}
const rss = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))![1]) / 1024;
const fds = () => readdirSync(`/proc/${child.pid}/fd`).length;
const steadyFps = async () =>
  ((await (await fetch(`${base}/streams`)).json()) as { streams: Array<{ name: string; fpsOut: number }> }).streams
    .filter((s) => s.name.startsWith('steady'))
    .map((s) => s.fpsOut.toFixed(1))
    .join(' ');
console.log(
  `stream churn: 2 steady synthetic streams; a third added for ${values['up-s']} s and removed, ${values.cycles} cycles; load ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}`,
);
console.log('cycle  RSS MiB  fds  steady fps out');
console.log(`${'0'.padStart(5)}  ${rss().toFixed(0).padStart(7)}  ${String(fds()).padStart(3)}  ${await steadyFps()}`);
const cycles = Number(values.cycles);
let failures = 0;
for (let c = 1; c <= cycles; c++) {
  const add = await fetch(`${base}/streams`, {
    method: 'POST',
    body: JSON.stringify({ name: 'churn', source: { kind: 'synthetic', options: { seed: 100 + c, fps: 8, width: 256, height: 256 } } }),
  });
  if (add.status !== 201) failures++;
  await sleep(Number(values['up-s']) * 1000);
  const del = await fetch(`${base}/streams/churn`, { method: 'DELETE' });
  if (del.status !== 204) failures++;
  await sleep(Number(values['down-s']) * 1000);
  if (c % Number(values.every) === 0)
    console.log(`${String(c).padStart(5)}  ${rss().toFixed(0).padStart(7)}  ${String(fds()).padStart(3)}  ${await steadyFps()}`);
}
console.log(
  `failed add/remove calls: ${failures}; load ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}`,
);
child.kill('SIGTERM');
await new Promise((r) => child.once('exit', r));
rmSync(dir, { recursive: true, force: true });
