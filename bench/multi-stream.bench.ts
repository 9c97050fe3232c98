// Many streams on one machine: N synthetic cameras (different seeds) at F fps each through the
// real CLI, with the depth nodes sharing one inference worker (`engine: shared`, the default) or
// each with its own (`engine: own`). One WebSocket subscriber takes every stream; per run it
// prints peak RSS, aggregate depth fps, the spread of per-stream fps (fairness), p95 latency per
// stream, CPU use and the strides chosen. With --rtsp-kill: 4 synthetic streams and an RTSP
// stream from a loopback server (test/fixtures/rtsp_server.py), whose server is killed half way:
// the synthetic streams' fps before and after.
//
//   node --import tsx bench/multi-stream.bench.ts [--streams 1,2,4,8] [--modes shared,own]
//       [--fps 8] [--warmup 20] [--seconds 40] [--repeat 2] [--model models/synthetic-small]
//   node --import tsx bench/multi-stream.bench.ts --rtsp-kill [--seconds 40]
import { parseArgs } from 'node:util';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { WebSocket } from 'ws';
import { decodeFrameMessage } from '../src/protocol/frame-message.js';

const { values } = parseArgs({
  options: {
    streams: { type: 'string', default: '1,2,4,8' },
    modes: { type: 'string', default: 'shared,own' },
    fps: { type: 'string', default: '8' },
    warmup: { type: 'string', default: '20' },
    seconds: { type: 'string', default: '40' },
    repeat: { type: 'string', default: '2' },
    model: { type: 'string', default: 'models/synthetic-small' },
    'rtsp-kill': { type: 'boolean', default: false },
  },
});
const ROOT = resolve(import.meta.dirname, '..');
const CLI = join(ROOT, 'bin', 'depthcrafter-live.js');
const FPS = Number(values.fps);
const WARMUP_S = Number(values.warmup);
const MEASURE_S = Number(values.seconds);
const TICK = 100; // USER_HZ on Linux

function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => res(p));
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function pipelineYaml(n: number, mode: string, rtspPort?: number): string {
  const streams = Array.from(
    { length: n },
    (_, i) => `  - { name: cam${i + 1}, source: { kind: synthetic, options: { seed: ${i + 1}, fps: ${FPS}, width: 256, height: 256 } } }`,
  );
  if (rtspPort)
    streams.push(
      `  - { name: door, source: { kind: rtsp, options: { url: "rtsp://127.0.0.1:${rtspPort}/test", width: 256, reconnect: { initialDelayMs: 250, maxDelayMs: 2000, maxAttempts: -1 } } } }`,
    );
  return `name: multi-bench
server:
  port: \${PORT}
log: { level: warn }
streams:
${streams.join('\n')}
nodes:
  depth: { kind: depth, options: { model: ${resolve(ROOT, values.model!)}, window: 16, overlap: 8, steps: 2, engine: ${mode} } }
  ws: { kind: websocket }
edges:
  - { from: streams.video, to: depth.video, queue: { capacity: 4, policy: drop-oldest } }
  - { from: depth.depth, to: ws.frames, queue: { capacity: 64, policy: drop-oldest } }
`;
}

interface StreamStats {
  frames: number;
  computed: number;
  latencies: number[];
}

function procStats(pid: number): { rssMiB: number; hwmMiB: number; cpuS: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return { rssMiB: kb('VmRSS') / 1024, hwmMiB: kb('VmHWM') / 1024, cpuS: (Number(stat[11]) + Number(stat[12])) / TICK };
}

function p95(v: number[]): number {
  if (v.length === 0) return NaN;
  const s = [...v].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(0.95 * s.length))];
}

async function startCli(yaml: string, port: number): Promise<{ child: ChildProcess; dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'dcl-multi-'));
  const file = join(dir, 'p.yaml');
  writeFileSync(file, yaml);
  const child = spawn(process.execPath, [CLI, 'run', file], { env: { ...process.env, PORT: String(port) }, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
  for (let i = 0; i < 600; i++) {
    if (child.exitCode !== null) throw new Error(`CLI exited: ${err}`);
    const ok = await fetch(`http://127.0.0.1:${port}/healthz`).then(
      () => true,
      () => false,
    );
    if (ok) return { child, dir };
    await sleep(100);
  }
  throw new Error(`CLI did not listen: ${err}`);
}

function subscribe(port: number, stats: Map<string, StreamStats>, counting: { on: boolean }): WebSocket {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/ws?stream=*&format=u16`);
  ws.on('message', (data: Buffer, isBinary) => {
    if (!isBinary || !counting.on) return;
    const { header } = decodeFrameMessage(data);
    if (header.kind !== 'depth') return;
    let s = stats.get(header.stream);
    if (!s) stats.set(header.stream, (s = { frames: 0, computed: 0, latencies: [] }));
    s.frames++;
    if (!header.interpolated) s.computed++;
    s.latencies.push(header.latencyMs / 1000);
  });
  return ws;
}

async function stop(child: ChildProcess, dir: string): Promise<void> {
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), 15_000);
  await exited;
  clearTimeout(t);
  rmSync(dir, { recursive: true, force: true });
}

async function strides(port: number): Promise<string> {
  const r = (await fetch(`http://127.0.0.1:${port}/streams`).then((x) => x.json())) as { streams: Array<{ name: string; stride: number | null }> };
  return r.streams.map((s) => s.stride ?? '-').join('/');
}

interface Result {
  n: number;
  mode: string;
  hwmMiB: number;
  aggFps: number;
  computedFps: number;
  spreadPct: number;
  minFps: number;
  maxFps: number;
  p95: number[];
  cpuPct: number;
  strides: string;
}

async function runOnce(n: number, mode: string): Promise<Result> {
  const port = await freePort();
  const { child, dir } = await startCli(pipelineYaml(n, mode), port);
  const stats = new Map<string, StreamStats>();
  const counting = { on: false };
  const ws = subscribe(port, stats, counting);
  await sleep(WARMUP_S * 1000);
  const cpu0 = procStats(child.pid!).cpuS;
  counting.on = true;
  const t0 = performance.now();
  await sleep(MEASURE_S * 1000);
  counting.on = false;
  const wall = (performance.now() - t0) / 1000;
  const proc = procStats(child.pid!);
  const k = await strides(port);
  ws.close();
  await stop(child, dir);
  const names = Array.from({ length: n }, (_, i) => `cam${i + 1}`);
  const fps = names.map((s) => (stats.get(s)?.frames ?? 0) / wall);
  const mean = fps.reduce((a, b) => a + b, 0) / n;
  return {
    n,
    mode,
    hwmMiB: proc.hwmMiB,
    aggFps: fps.reduce((a, b) => a + b, 0),
    computedFps: names.reduce((a, s) => a + (stats.get(s)?.computed ?? 0), 0) / wall,
    spreadPct: mean > 0 ? ((Math.max(...fps) - Math.min(...fps)) / mean) * 100 : NaN,
    minFps: Math.min(...fps),
    maxFps: Math.max(...fps),
    p95: names.map((s) => p95(stats.get(s)?.latencies ?? [])),
    cpuPct: ((proc.cpuS - cpu0) / wall) * 100,
    strides: k,
  };
}

const f1 = (v: number) => (Number.isFinite(v) ? v.toFixed(1) : '-');

async function benchmark(): Promise<void> {
  const ns = values.streams!.split(',').map(Number);
  const modes = values.modes!.split(',');
  const repeat = Number(values.repeat);
  console.log(
    `multi-stream: ${FPS} fps per stream, 256x256, window 16 / overlap 8 / 2 steps, ${values.model}; warm-up ${WARMUP_S} s, measured ${MEASURE_S} s; load ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
  console.log(
    'run  streams  engine  peak RSS MiB  depth fps (all)  computed fps  per-stream fps min-max  spread %  p95 latency s (per stream)  CPU %  strides',
  );
  for (let r = 1; r <= repeat; r++) {
    for (const n of ns) {
      for (const mode of modes) {
        const x = await runOnce(n, mode);
        console.log(
          `${r}  ${String(n).padStart(7)}  ${mode.padEnd(6)}  ${x.hwmMiB.toFixed(0).padStart(12)}  ${f1(x.aggFps).padStart(15)}  ${f1(x.computedFps).padStart(12)}  ${`${f1(x.minFps)}-${f1(x.maxFps)}`.padStart(23)}  ${f1(x.spreadPct).padStart(8)}  ${x.p95.map(f1).join(' ').padStart(26)}  ${x.cpuPct.toFixed(0).padStart(5)}  ${x.strides}`,
        );
      }
    }
  }
  console.log(
    `load after: ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
}

async function rtspKill(): Promise<void> {
  const rtspPort = await freePort();
  const server = spawn('/usr/bin/python3', [join(ROOT, 'test', 'fixtures', 'rtsp_server.py'), String(rtspPort)], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((res) => server.stdout!.on('data', (d: Buffer) => d.toString().includes('READY') && res()));
  const port = await freePort();
  const { child, dir } = await startCli(pipelineYaml(4, 'shared', rtspPort), port);
  console.log(
    `rtsp-kill: 4 synthetic streams at ${FPS} fps + RTSP (160x120 at 30 fps, loopback); load ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
  const measure = async (label: string) => {
    const stats = new Map<string, StreamStats>();
    const counting = { on: true };
    const ws = subscribe(port, stats, counting);
    const t0 = performance.now();
    await sleep(MEASURE_S * 1000);
    const wall = (performance.now() - t0) / 1000;
    ws.close();
    const row = ['cam1', 'cam2', 'cam3', 'cam4', 'door'].map((s) => (stats.get(s)?.frames ?? 0) / wall);
    console.log(
      `${label.padEnd(22)} fps cam1..cam4 ${row.slice(0, 4).map(f1).join(' ')}  door ${f1(row[4])}  p95 s ${['cam1', 'cam2', 'cam3', 'cam4'].map((s) => f1(p95(stats.get(s)?.latencies ?? []))).join(' ')}  strides ${await strides(port)}`,
    );
    return row;
  };
  await sleep(WARMUP_S * 1000);
  const before = await measure('RTSP server up');
  server.kill('SIGKILL');
  await sleep(3000);
  const after = await measure('RTSP server killed');
  const health = (await fetch(`http://127.0.0.1:${port}/streams`).then((x) => x.json())) as { streams: Array<{ name: string; state: string }> };
  console.log(`states after the kill: ${health.streams.map((s) => `${s.name} ${s.state}`).join(', ')}`);
  const change = before.slice(0, 4).map((b, i) => (100 * (after[i] - b)) / b);
  console.log(`synthetic fps change after the kill, per stream: ${change.map((c) => `${c >= 0 ? '+' : ''}${c.toFixed(1)} %`).join(' ')}`);
  await stop(child, dir);
}

await (values['rtsp-kill'] ? rtspKill() : benchmark());
