// Soak: the demo pipeline through the real CLI for a long time while WebSocket subscribers join
// and leave; prints RSS and open file descriptors of the pipeline process every minute and their
// least-squares slopes per hour (the goal is flat).
//   node --import tsx bench/soak.ts [--minutes 60] [--subscribers 10] [--pipeline pipelines/demo.yaml]
import { parseArgs } from 'node:util';
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { WebSocket } from 'ws';

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '60' },
    subscribers: { type: 'string', default: '10' },
    pipeline: { type: 'string', default: 'pipelines/demo.yaml' },
  },
});
const ROOT = resolve(import.meta.dirname, '..');
const minutes = Number(values.minutes);
const maxSubs = Number(values.subscribers);

const port = await new Promise<number>((res) => {
  const s = createServer().listen(0, '127.0.0.1', () => {
    const p = (s.address() as { port: number }).port;
    s.close(() => res(p));
  });
});
const child = spawn(process.execPath, [join(ROOT, 'bin', 'depthcrafter-live.js'), 'run', resolve(values.pipeline!), '--set', `server.port=${port}`], {
  cwd: ROOT,
  env: { ...process.env, CI: '1' },
  stdio: ['ignore', 'ignore', 'pipe'],
});
let log = '';
child.stderr.on('data', (c: Buffer) => (log = (log + c.toString()).slice(-100_000)));
for (let i = 0; !log.includes('serving at'); i++) {
  if (i > 600 || child.exitCode !== null) throw new Error(`did not start:\n${log}`);
  await new Promise((r) => setTimeout(r, 50));
}

const rss = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))?.[1] ?? NaN) / 1024;
const fds = () => readdirSync(`/proc/${child.pid}/fd`).length;
const clients = new Set<WebSocket>();
let received = 0;
let joins = 0;
const formats = ['u16', 'f32', 'jpeg', 'png'];
const churn = setInterval(() => {
  // Each second: maybe one joins (random format, sometimes with RGB), maybe one leaves.
  if (clients.size < maxSubs && Math.random() < 0.5) {
    const fmt = formats[Math.floor(Math.random() * formats.length)];
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws?format=${fmt}&rgb=${Math.random() < 0.5 ? 1 : 0}`);
    ws.on('message', () => received++);
    ws.on('error', () => {});
    ws.on('close', () => clients.delete(ws));
    clients.add(ws);
    joins++;
  }
  if (clients.size > 0 && Math.random() < 0.3) [...clients][Math.floor(Math.random() * clients.size)].close();
}, 1000);

const samples: Array<{ min: number; rss: number; fds: number }> = [];
console.log(
  `soak: ${values.pipeline}, ${minutes} min, up to ${maxSubs} subscribers joining and leaving; load ${loadavg()
    .map((v) => v.toFixed(2))
    .join(' ')}`,
);
console.log('min  RSS MiB  fds  subscribers  messages received');
for (let m = 0; m <= minutes; m++) {
  if (m > 0) await new Promise((r) => setTimeout(r, 60_000));
  samples.push({ min: m, rss: rss(), fds: fds() });
  console.log(`${String(m).padStart(3)}  ${rss().toFixed(0).padStart(7)}  ${String(fds()).padStart(3)}  ${String(clients.size).padStart(11)}  ${received}`);
}
clearInterval(churn);
for (const c of clients) c.close();
child.kill('SIGTERM');
await new Promise((r) => child.once('exit', r));

/** Least-squares slope per hour, over the samples after the first 5 minutes (warm-up). */
const slope = (ys: number[], xs: number[]) => {
  const n = xs.length;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  const num = xs.reduce((a, x, i) => a + (x - mx) * (ys[i] - my), 0);
  const den = xs.reduce((a, x) => a + (x - mx) ** 2, 0);
  return den > 0 ? (num / den) * 60 : NaN;
};
const warm = samples.filter((s) => s.min >= Math.min(5, minutes / 2));
console.log(
  `joins ${joins}; RSS slope ${slope(
    warm.map((s) => s.rss),
    warm.map((s) => s.min),
  ).toFixed(1)} MiB/h, fd slope ${slope(
    warm.map((s) => s.fds),
    warm.map((s) => s.min),
  ).toFixed(2)} /h (after warm-up); exit code ${child.exitCode}`,
);
process.exit(0);
