// The fleet on this machine, end to end: a real nats-server (JetStream), N synthetic cameras in the
// fleet's list, W `fleet worker` processes and one `fleet gateway` of the built CLI, a NATS client
// of its own on dcl.depth.* (what the workers made) and one WebSocket subscriber on the gateway
// (what it delivered). Per configuration CAMERASxWORKERS it prints:
//   - frames made (depth messages on the bus) vs frames delivered through the gateway, matched by
//     (camera, worker, seq) over the frames published in the measured window, and their ratio;
//   - the latency the bus + gateway add: WebSocket receive time minus the header's publishedMs
//     (same machine, same clock), p50/p95 in ms, next to the bus alone (our NATS client's receive
//     time minus publishedMs);
//   - nats-server's CPU time (/proc/PID/stat utime+stime) as a share of the CPU time of every
//     process of the run (workers, gateway, nats-server) and as % of one core;
//   - os.loadavg() before and after (the machine is shared: other work may run beside the bench).
// Then the takeover (on 4x2): --kills times kill -9 the worker holding the most cameras, time
// from the kill until every moved camera's first depth frame from another worker is on the bus
// (and at the gateway, marked discont), start a replacement worker (new --id) and wait until the
// cameras are balanced again before the next kill.
//
//   node --import tsx bench/fleet.bench.ts [--seconds 30] [--kills 10] [--configs 1x1,4x2,8x2]
//       [--model synthetic-small] [--takeover 4x2] [--ttl 3000] [--fps 8] [--size 128]
//       [--set depth.window=8 --set ...]   (replaces the default depth settings)
//       [--settle 300]   (seconds to wait for the fleet to settle before a measurement / rebalance)
//       [--logs DIR]   (every fleet process's log, written to DIR/CONFIG-NAME.log when it stops)
//
// Needs nats-server (scripts/setup.sh) and the built CLI (npx tsc -p .). A print-out, not a test.

import { parseArgs } from 'node:util';
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import WebSocket from 'ws';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Kvm, type KV } from '@nats-io/kv';
import { LEASES_BUCKET } from '../src/fleet/subjects.js';
import { decodeFrameMessage } from '../src/protocol/frame-message.js';
import { startCli, type CliProcess } from '../test/helpers/cli-process.js';
import { natsServerAvailable, startNats, type NatsFixture } from '../test/helpers/nats-server.js';
import { until } from '../test/helpers/wait.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '30' },
    kills: { type: 'string', default: '10' },
    configs: { type: 'string', default: '1x1,4x2,8x2' },
    model: { type: 'string', default: 'synthetic-small' },
    takeover: { type: 'string', default: '4x2' },
    ttl: { type: 'string', default: '3000' },
    fps: { type: 'string', default: '8' },
    size: { type: 'string', default: '128' },
    set: { type: 'string', multiple: true },
    logs: { type: 'string' },
    settle: { type: 'string', default: '300' },
  },
});

const ROOT = resolve(import.meta.dirname, '..');
const CLI = join(ROOT, 'bin', 'depthcrafter-live.js');
const SECONDS = Number(values.seconds);
const KILLS = Number(values.kills);
const TTL = Number(values.ttl);
const FPS = Number(values.fps);
const SIZE = Number(values.size);
const MODEL = values.model!;
const SETTLE_MS = Number(values.settle) * 1000;
/** Depth settings small enough for a 2-core machine to keep up at least partly (a window of 8 frames at 8 fps is 1 s). */
const DEPTH_SETS = values.set && values.set.length > 0 ? values.set : ['depth.window=8', 'depth.overlap=2', 'depth.steps=1'];
const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

interface Spec {
  readonly cameras: number;
  readonly workers: number;
  readonly label: string;
}

function parseSpec(s: string): Spec {
  const m = /^(\d+)x(\d+)$/.exec(s.trim());
  if (!m || Number(m[1]) < 1 || Number(m[2]) < 1) throw new Error(`configuration ${JSON.stringify(s)}: CAMERASxWORKERS, e.g. 4x2`);
  return { cameras: Number(m[1]), workers: Number(m[2]), label: `${m[1]}x${m[2]}` };
}
const CONFIGS = values
  .configs!.split(',')
  .filter((s) => s.trim() !== '')
  .map(parseSpec);
const TAKEOVER = values.takeover && values.takeover !== 'none' && KILLS > 0 ? parseSpec(values.takeover) : null;

// ---------------------------------------------------------------------------------------------
// Everything started here, so that any exit (normal, error, signal) kills it.

const children: CliProcess[] = [];
/** The same, by CONFIG-NAME, for --logs. */
const named: Array<[string, CliProcess]> = [];
const servers: NatsFixture[] = [];
const sockets: WebSocket[] = [];
let cleaned = false;

function writeLogs(): void {
  if (!values.logs) return;
  mkdirSync(values.logs, { recursive: true });
  for (const [name, p] of named) writeFileSync(join(values.logs, `${name}.log`), p.stderr);
}

function cleanup(): void {
  if (cleaned) return;
  cleaned = true;
  try {
    writeLogs();
  } catch {
    /* best effort */
  }
  for (const ws of sockets) ws.terminate();
  for (const c of children) if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill('SIGKILL');
  for (const s of servers) s.stop();
}
process.on('exit', cleanup);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(sig, () => {
    log(`${sig}: stopping every process of the bench`);
    cleanup();
    process.exit(128 + (sig === 'SIGINT' ? 2 : sig === 'SIGTERM' ? 15 : 1));
  });
}

const started = performance.now();
function log(msg: string): void {
  process.stderr.write(`[${((performance.now() - started) / 1000).toFixed(1).padStart(6)} s] ${msg}\n`);
}

/** Wall clock in ms, the way the nodes stamp publishedMs (performance.timeOrigin + now). */
const wallNow = (): number => performance.timeOrigin + performance.now();

// ---------------------------------------------------------------------------------------------
// The bus, the gateway subscriber, the CLI.

interface BusFrame {
  readonly camera: string;
  readonly worker: string;
  readonly seq: number;
  readonly publishedMs: number;
  readonly interpolated: boolean;
  /** performance.now() at receipt. */
  readonly at: number;
  /** Wall clock at receipt. */
  readonly wall: number;
}

async function watchBus(url: string): Promise<{ nc: NatsConnection; frames: BusFrame[] }> {
  const nc = await connect({ servers: url, name: 'fleet-bench bus watcher', maxReconnectAttempts: -1, reconnectTimeWait: 250 });
  const frames: BusFrame[] = [];
  nc.subscribe('dcl.depth.*', {
    callback: (err, m) => {
      if (err) return;
      const wall = wallNow();
      const { header } = decodeFrameMessage(m.data);
      frames.push({
        camera: m.subject.slice('dcl.depth.'.length),
        worker: header.worker ?? m.headers?.get('Dcl-Worker') ?? '?',
        seq: header.seq,
        publishedMs: header.publishedMs ?? NaN,
        interpolated: header.interpolated === true,
        at: performance.now(),
        wall,
      });
    },
  });
  return { nc, frames };
}

interface GwFrame {
  readonly stream: string;
  readonly worker: string;
  readonly seq: number;
  readonly publishedMs: number;
  readonly discont: boolean;
  readonly format: string;
  readonly at: number;
  readonly wall: number;
}

interface Subscriber {
  readonly ws: WebSocket;
  readonly got: GwFrame[];
  stats: { sent: number; dropped: number };
  closed: string | null;
}

function subscribe(wsUrl: string): Subscriber {
  const ws = new WebSocket(wsUrl);
  sockets.push(ws);
  const s: Subscriber = { ws, got: [], stats: { sent: 0, dropped: 0 }, closed: null };
  ws.on('error', (e) => (s.closed ??= `error: ${e.message}`));
  ws.on('close', (code, reason) => (s.closed ??= `closed ${code} ${reason.toString()}`));
  ws.on('message', (data, isBinary) => {
    if (!isBinary) {
      try {
        const m = JSON.parse(data.toString()) as { type?: string; sent?: number; dropped?: number };
        if (m.type === 'stats') s.stats = { sent: m.sent ?? 0, dropped: m.dropped ?? 0 };
      } catch {
        /* not ours */
      }
      return;
    }
    const wall = wallNow();
    const { header } = decodeFrameMessage(data as Buffer);
    if (header.kind !== 'depth') return;
    s.got.push({
      stream: header.stream,
      worker: header.worker ?? '?',
      seq: header.seq,
      publishedMs: header.publishedMs ?? NaN,
      discont: header.discont === true,
      format: header.format,
      at: performance.now(),
      wall,
    });
  });
  return s;
}

function fleetCli(nats: string, args: string[]): Promise<{ status: number; stdout: string; stderr: string; why: string }> {
  return new Promise((res) => {
    execFile(
      process.execPath,
      [CLI, 'fleet', ...args, '--nats', nats, '--lease-ttl', String(TTL)],
      { encoding: 'utf8', cwd: ROOT, timeout: 60_000 },
      (err, stdout, stderr) =>
        res({
          status: err ? (typeof err.code === 'number' ? err.code : 1) : 0,
          stdout,
          stderr,
          why: err
            ? `exit ${String(err.code)}${err.signal ? `, signal ${err.signal}` : ''}${err.killed ? ' (killed: timeout)' : ''}: ${stderr.slice(-2000) || err.message}`
            : '',
        }),
    );
  });
}

interface CameraRow {
  readonly name: string;
  readonly worker: string | null;
}

const byName = (a: CameraRow, b: CameraRow) => a.name.localeCompare(b.name, 'en', { numeric: true });
let listFailures = 0;
async function cameraList(nats: string): Promise<CameraRow[]> {
  for (let attempt = 1; ; attempt++) {
    const r = await fleetCli(nats, ['camera', 'list', '--json']);
    if (r.status === 0) return (JSON.parse(r.stdout) as { cameras: CameraRow[] }).cameras.map((c) => ({ name: c.name, worker: c.worker })).sort(byName);
    listFailures++;
    log(`fleet camera list --json failed (attempt ${attempt}): ${r.why}`);
    if (attempt >= 3) throw new Error(`fleet camera list failed: ${r.why}`);
  }
}

function holders(rows: readonly CameraRow[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const r of rows) if (r.worker) out.set(r.worker, [...(out.get(r.worker) ?? []), r.name]);
  return out;
}

const describeRows = (rows: readonly CameraRow[]): string => rows.map((r) => `${r.name}:${r.worker ?? '-'}`).join(' ');

// ---------------------------------------------------------------------------------------------
// CPU time from /proc (a process and its descendants), in clock ticks.

function statFields(pid: number): string[] | null {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after "(comm) ": [0] = field 3 (state), [1] = ppid, [11] = utime (14), [12] = stime (15).
    return s.slice(s.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}

function descendants(root: number): number[] {
  const parent = new Map<number, number>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const f = statFields(Number(d));
    if (f) parent.set(Number(d), Number(f[1]));
  }
  const out = [root];
  for (let i = 0; i < out.length; i++) for (const [pid, pp] of parent) if (pp === out[i]) out.push(pid);
  return out;
}

function cpuTicks(root: number): number {
  let t = 0;
  for (const pid of descendants(root)) {
    const f = statFields(pid);
    if (f) t += Number(f[11]) + Number(f[12]);
  }
  return t;
}

async function metric(httpBase: string, name: string): Promise<number> {
  try {
    const text = await (await fetch(new URL('/metrics', httpBase))).text();
    let sum = 0;
    for (const line of text.split('\n'))
      if (line.startsWith(`${name}{`) || line.startsWith(`${name} `)) sum += Number(line.slice(line.lastIndexOf(' ') + 1)) || 0;
    return sum;
  } catch {
    return NaN;
  }
}

// ---------------------------------------------------------------------------------------------
// Small statistics.

function quantile(xs: readonly number[], q: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const pos = (s.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return s[lo] + (s[hi] - s[lo]) * (pos - lo);
}
const median = (xs: readonly number[]) => quantile(xs, 0.5);
const f1 = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : '-');
const f2 = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : '-');
const loadStr = (l: number[]) => l.map((x) => x.toFixed(2)).join('/');

// ---------------------------------------------------------------------------------------------
// One configuration: a fresh nats-server and fleet.

interface Fleet {
  readonly spec: Spec;
  readonly nats: NatsFixture;
  readonly bus: Awaited<ReturnType<typeof watchBus>>;
  readonly workers: Map<string, CliProcess>;
  readonly gateway: CliProcess;
  readonly gatewayHttp: string;
  readonly sub: Subscriber;
  readonly cameras: string[];
  /** The leases bucket, read directly (cheap polling; `fleet camera list --json` confirms). */
  readonly leases: KV;
  /** Lease holders or publishers this bench did not start: foreign processes (a shared machine). */
  readonly foreign: Set<string>;
  /** Wall clock (ms) when the workers were started. */
  readonly startedWall: number;
  nextWorker: number;
}

/**
 * Notes worker ids (lease holders, publishers seen on the bus) that this bench did not start.
 * Not from listing the workers bucket: kv.keys() can hang for good when a key's TTL runs out
 * during the listing (seen with @nats-io/kv 3.x and nats-server 2.9).
 */
function checkForeign(f: Fleet, ids: Iterable<string | null>): void {
  const ours = new Set((ranBy.get(f.spec) ?? []).map(([id]) => id));
  for (const id of ids) {
    if (id === null) continue;
    if (ours.has(id) || f.foreign.has(id)) continue;
    f.foreign.add(id);
    log(`${f.spec.label}: FOREIGN worker "${id}" in this fleet (not started by the bench: another process on this machine connected to its nats-server)`);
  }
}

/** Who holds each camera, from the leases bucket (what `fleet camera list` reports, without starting a process). */
async function leaseRows(f: Fleet): Promise<CameraRow[]> {
  return Promise.all(
    f.cameras.map(async (name) => {
      const e = await f.leases.get(name).catch(() => null);
      let worker: string | null = null;
      if (e?.operation === 'PUT') {
        try {
          worker = (JSON.parse(e.string()) as { worker?: string }).worker ?? null;
        } catch {
          /* not a lease record */
        }
      }
      return { name, worker };
    }),
  ).then((rows) => rows.sort(byName));
}

function workerArgs(nats: string, id: string, capacity: number): string[] {
  return [
    'fleet',
    'worker',
    '--nats',
    nats,
    '--id',
    id,
    '--capacity',
    String(capacity),
    '--lease-ttl',
    String(TTL),
    '--model',
    MODEL,
    ...DEPTH_SETS.flatMap((s) => ['--set', s]),
  ];
}

function startWorker(f: Fleet | { nats: NatsFixture; workers: Map<string, CliProcess>; spec: Spec }, id: string): CliProcess {
  const w = startCli(workerArgs(f.nats.url, id, f.spec.cameras));
  children.push(w);
  f.workers.set(id, w);
  ranBy.set(f.spec, [...(ranBy.get(f.spec) ?? []), [id, w]]);
  named.push([`${f.spec.label}-${id}`, w]);
  return w;
}

/** Warnings and errors the fleet processes logged (JSON lines at level >= 40), by message. */
function warnings(procs: Iterable<[string, CliProcess]>): string[] {
  const counts = new Map<string, number>();
  for (const [name, p] of procs) {
    for (const l of p.lines) {
      if (typeof l.level !== 'number' || l.level < 40) continue;
      const msg = String(l.msg ?? '').replace(/"[^"]*"/g, '"…"');
      const key = `${name.replace(/\d+$/, '*')}: ${msg}`;
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
  }
  return [...counts].map(([k, n]) => `${n} x ${k}`);
}

async function startFleet(spec: Spec): Promise<Fleet> {
  const nats = await startNats();
  servers.push(nats);
  log(`${spec.label}: nats-server (JetStream) at ${nats.url}, pid ${nats.nodes[0].child.pid}`);
  const bus = await watchBus(nats.url);
  const cameras: string[] = [];
  for (let k = 1; k <= spec.cameras; k++) {
    const name = `cam${k}`;
    const r = await fleetCli(nats.url, ['camera', 'add', name, `synthetic:?seed=${k}&fps=${FPS}&width=${SIZE}&height=${SIZE}`]);
    if (r.status !== 0) throw new Error(`fleet camera add ${name} failed: ${r.why}`);
    cameras.push(name);
  }
  const workers = new Map<string, CliProcess>();
  const partial = { nats, workers, spec };
  const startedWall = wallNow();
  for (let i = 1; i <= spec.workers; i++) startWorker(partial, `w${i}`);
  const gateway = startCli(['fleet', 'gateway', '--nats', nats.url, '--port', '0', '--lease-ttl', String(TTL)]);
  children.push(gateway);
  named.push([`${spec.label}-gateway`, gateway]);
  const line = await until(
    () => gateway.lines.find((l) => typeof l.msg === 'string' && l.msg.startsWith('fleet gateway serving at')),
    60_000,
    'the gateway to listen',
    () => gateway.stderr.slice(-3000),
  );
  const gatewayHttp = String(line.url);
  // format=f32: the frames' own bytes (no encoder that could drop a frame when busy).
  const sub = subscribe(`${gatewayHttp.replace(/^http/, 'ws')}ws?format=f32`);
  const leases = await new Kvm(bus.nc).open(LEASES_BUCKET);
  const fleet: Fleet = {
    spec,
    nats,
    bus,
    workers,
    gateway,
    gatewayHttp,
    sub,
    cameras,
    leases,
    foreign: new Set<string>(),
    startedWall,
    nextWorker: spec.workers + 1,
  };
  log(
    `${spec.label}: ${spec.cameras} camera(s), ${spec.workers} worker(s) (pids ${[...workers.values()].map((w) => w.child.pid).join(', ')}), gateway at ${gatewayHttp} (pid ${gateway.child.pid})`,
  );
  return fleet;
}

function exitedEarly(f: Fleet): string | undefined {
  for (const [id, w] of [...f.workers, ['gateway', f.gateway] as [string, CliProcess]]) {
    if (w.child.exitCode !== null || w.child.signalCode !== null) return `${id} exited (${w.child.exitCode ?? w.child.signalCode}): ${w.stderr.slice(-2000)}`;
  }
  return undefined;
}

interface Served {
  readonly rows: CameraRow[];
  /** The condition held; false: the wait gave up after its time limit (the run goes on, with a note). */
  readonly ok: boolean;
  readonly waitedMs: number;
}

/**
 * `settled` (before a measurement): every camera leased, every live worker holding its fair part
 * (at least floor(N/W), at most ceil(N/W)), unchanged for one lease TTL, then a frame of every
 * camera from its holder on the bus and at the gateway. `balanced` (between kills): every camera
 * leased by a live worker and every live worker holding some. Gives up after `timeoutMs` with
 * ok: false rather than failing the run (the fleet may keep moving cameras on a loaded machine).
 */
async function waitServed(f: Fleet, what: string, mode: 'settled' | 'balanced', timeoutMs: number): Promise<Served> {
  const t0 = performance.now();
  const live = () => [...f.workers.keys()];
  let previous = '';
  let stableSince = 0;
  let last: CameraRow[] = [];
  let rows: CameraRow[] | undefined;
  try {
    rows = await until(
      async () => {
        const dead = exitedEarly(f);
        if (dead) throw new Error(dead);
        await delay(250);
        let list = await leaseRows(f);
        checkForeign(
          f,
          list.map((r) => r.worker),
        );
        last = list;
        const by = holders(list);
        const n = f.cameras.length;
        const w = live().length;
        const served = list.length === n && list.every((r) => r.worker && live().includes(r.worker));
        if (mode === 'balanced') {
          if (!(served && live().every((id) => (by.get(id)?.length ?? 0) > 0))) return undefined;
          list = await cameraList(f.nats.url);
          return list.every((r) => r.worker && live().includes(r.worker)) && live().every((id) => list.some((r) => r.worker === id)) ? list : undefined;
        }
        const ok =
          served &&
          live().every((id) => {
            const k = by.get(id)?.length ?? 0;
            return k >= Math.floor(n / w) && k <= Math.ceil(n / w);
          });
        const now = JSON.stringify(list);
        if (!ok || now !== previous) {
          previous = now;
          stableSince = performance.now();
          return undefined;
        }
        if (performance.now() - stableSince < TTL) return undefined;
        // Confirmed the way a user would see it.
        list = await cameraList(f.nats.url);
        if (JSON.stringify(list) !== now) return undefined;
        return list;
      },
      timeoutMs,
      what,
    );
  } catch (e) {
    if (!/^timed out/.test((e as Error).message)) throw e;
    log(`${what}: NOT ${mode} within ${timeoutMs / 1000} s (going on anyway); last list: ${describeRows(last)}`);
    return { rows: last, ok: false, waitedMs: performance.now() - t0 };
  }
  // And flowing: a frame of every camera from its lease holder on the bus and at the gateway.
  const since = performance.now();
  const flowing = await until(
    () =>
      rows.every(
        (r) =>
          f.sub.got.some((g) => g.stream === r.name && g.worker === r.worker && g.at > since) &&
          f.bus.frames.some((b) => b.camera === r.name && b.worker === r.worker && b.at > since),
      ),
    60_000,
    'frames',
  ).then(
    () => true,
    () => false,
  );
  const waitedMs = performance.now() - t0;
  if (!flowing) log(`${what}: leases ${mode}, but not every camera's holder delivered a frame within 60 s (going on anyway): ${describeRows(rows)}`);
  else log(`${what}: ${mode} after ${(waitedMs / 1000).toFixed(1)} s: ${describeRows(rows)}`);
  return { rows, ok: flowing, waitedMs };
}

/** "lease on camera X lost" lines the workers logged between two wall-clock times (ms). */
function leaseLosses(f: Fleet, fromMs: number, toMs: number): number {
  let n = 0;
  for (const [, p] of ranBy.get(f.spec) ?? []) {
    for (const l of p.lines) if (typeof l.msg === 'string' && /^lease on camera .* lost/.test(l.msg) && Number(l.time) >= fromMs && Number(l.time) < toMs) n++;
  }
  return n;
}

/** Worker changes of each camera among frames (ordered by publishedMs), summed over cameras. */
function ownerChanges(frames: readonly BusFrame[]): number {
  const byCam = new Map<string, BusFrame[]>();
  for (const b of frames) byCam.set(b.camera, [...(byCam.get(b.camera) ?? []), b]);
  let n = 0;
  for (const fs of byCam.values()) {
    fs.sort((x, y) => x.publishedMs - y.publishedMs);
    for (let i = 1; i < fs.length; i++) if (fs[i].worker !== fs[i - 1].worker) n++;
  }
  return n;
}

/** Every process of a fleet that ran, by name (killed workers too), for --logs. */
const ranBy = new Map<Fleet['spec'], Array<[string, CliProcess]>>();

async function stopFleet(f: Fleet): Promise<void> {
  f.sub.ws.terminate();
  writeLogs();
  await f.bus.nc.close().catch(() => {});
  const procs = [...f.workers.values(), f.gateway];
  for (const p of procs) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
  await Promise.all(procs.map((p) => p.exit));
  const server = f.nats.nodes[0].child;
  const gone = new Promise((r) => (server.exitCode !== null || server.signalCode !== null ? r(null) : server.once('exit', r)));
  f.nats.stop();
  await gone;
  const i = servers.indexOf(f.nats);
  if (i >= 0) servers.splice(i, 1);
}

// ---------------------------------------------------------------------------------------------
// The measurement.

interface Measured {
  readonly spec: Spec;
  readonly seconds: number;
  readonly offered: number;
  readonly made: number;
  readonly interpolated: number;
  readonly delivered: number;
  readonly unmatchedGw: number;
  readonly lostByCamera: Map<string, number>;
  readonly madeByCamera: Map<string, number>;
  readonly busP50: number;
  readonly busP95: number;
  readonly p50: number;
  readonly p95: number;
  readonly p99: number;
  readonly max: number;
  readonly cpu: { nats: number; workers: number; gateway: number; bench: number };
  readonly wsDropped: number;
  readonly edgeDropped: number;
  readonly formats: string[];
  readonly leaseLosses: number;
  readonly ownerChanges: number;
  /** Gateway receive minus bench bus receive, same frame (what the gateway adds to the bus). */
  readonly gwAfterBusP50: number;
  readonly gwAfterBusP95: number;
  settle: Served | null;
  lossesBeforeSettled: number;
  readonly foreign: string[];
  loadBefore: number[];
  loadAfter: number[];
}

async function measure(f: Fleet): Promise<Measured> {
  const pids = { nats: f.nats.nodes[0].child.pid!, workers: [...f.workers.values()].map((w) => w.child.pid!), gateway: f.gateway.child.pid! };
  const sample = () => ({ nats: cpuTicks(pids.nats), workers: pids.workers.reduce((a, p) => a + cpuTicks(p), 0), gateway: cpuTicks(pids.gateway) });
  const wsDropped0 = f.sub.stats.dropped;
  const edge0 = await metric(f.gatewayHttp, 'dcl_edge_dropped_total');
  const cpu0 = sample();
  const bench0 = process.cpuUsage();
  const t0 = wallNow();
  log(`${f.spec.label}: measuring for ${SECONDS} s`);
  await delay(SECONDS * 1000); // the measured window itself
  const t1 = wallNow();
  const cpu1 = sample();
  const bench1 = process.cpuUsage(bench0);
  const inWindow = (ms: number) => ms >= t0 && ms < t1;
  // publishedMs passes through the gateway unchanged: with it the key stays unique when a worker restarts a camera.
  const key = (stream: string, worker: string, seq: number, publishedMs: number) => `${stream}/${worker}/${seq}/${publishedMs}`;
  // Frames published before t1 may still be on their way to the gateway: wait until all have come
  // or none has come for 2 s.
  let lastCount = -1;
  let lastChange = performance.now();
  await until(
    () => {
      const bus = f.bus.frames.filter((b) => inWindow(b.publishedMs)).length;
      const gw = f.sub.got.filter((g) => inWindow(g.publishedMs)).length;
      if (gw !== lastCount) {
        lastCount = gw;
        lastChange = performance.now();
      }
      return gw >= bus || performance.now() - lastChange > 2000;
    },
    30_000,
    'the last frames of the window at the gateway',
  );
  const busFrames = f.bus.frames.filter((b) => inWindow(b.publishedMs));
  checkForeign(f, new Set(busFrames.map((b) => b.worker)));
  const gwFrames = f.sub.got.filter((g) => inWindow(g.publishedMs));
  const gwKeys = new Set(gwFrames.map((g) => key(g.stream, g.worker, g.seq, g.publishedMs)));
  const busKeys = new Set(busFrames.map((b) => key(b.camera, b.worker, b.seq, b.publishedMs)));
  const lostByCamera = new Map<string, number>();
  const madeByCamera = new Map<string, number>();
  for (const b of busFrames) {
    madeByCamera.set(b.camera, (madeByCamera.get(b.camera) ?? 0) + 1);
    if (!gwKeys.has(key(b.camera, b.worker, b.seq, b.publishedMs))) lostByCamera.set(b.camera, (lostByCamera.get(b.camera) ?? 0) + 1);
  }
  const lat = gwFrames.map((g) => g.wall - g.publishedMs);
  const busWallByKey = new Map(busFrames.map((b) => [key(b.camera, b.worker, b.seq, b.publishedMs), b.wall]));
  const gwAfterBus = gwFrames.flatMap((g) => {
    const w = busWallByKey.get(key(g.stream, g.worker, g.seq, g.publishedMs));
    return w === undefined ? [] : [g.wall - w];
  });
  const busLat = busFrames.map((b) => b.wall - b.publishedMs);
  const ticks = (a: number) => a / CLK_TCK;
  return {
    spec: f.spec,
    seconds: (t1 - t0) / 1000,
    offered: Math.round(f.cameras.length * FPS * ((t1 - t0) / 1000)),
    made: busFrames.length,
    interpolated: busFrames.filter((b) => b.interpolated).length,
    delivered: gwFrames.filter((g) => busKeys.has(key(g.stream, g.worker, g.seq, g.publishedMs))).length,
    unmatchedGw: gwFrames.filter((g) => !busKeys.has(key(g.stream, g.worker, g.seq, g.publishedMs))).length,
    lostByCamera,
    madeByCamera,
    busP50: quantile(busLat, 0.5),
    busP95: quantile(busLat, 0.95),
    p50: quantile(lat, 0.5),
    p95: quantile(lat, 0.95),
    p99: quantile(lat, 0.99),
    max: lat.length ? Math.max(...lat) : NaN,
    cpu: {
      nats: ticks(cpu1.nats - cpu0.nats),
      workers: ticks(cpu1.workers - cpu0.workers),
      gateway: ticks(cpu1.gateway - cpu0.gateway),
      bench: (bench1.user + bench1.system) / 1e6,
    },
    wsDropped: f.sub.stats.dropped - wsDropped0,
    edgeDropped: (await metric(f.gatewayHttp, 'dcl_edge_dropped_total')) - edge0,
    formats: [...new Set(gwFrames.map((g) => g.format))],
    leaseLosses: leaseLosses(f, t0, t1),
    ownerChanges: ownerChanges(busFrames),
    gwAfterBusP50: quantile(gwAfterBus, 0.5),
    gwAfterBusP95: quantile(gwAfterBus, 0.95),
    settle: null,
    lossesBeforeSettled: 0,
    foreign: [...f.foreign],
    loadBefore: [],
    loadAfter: [],
  };
}

function printMeasured(m: Measured): void {
  const total = m.cpu.nats + m.cpu.workers + m.cpu.gateway;
  const lost = [...m.lostByCamera].map(([c, n]) => `${c}:${n}`).join(' ') || 'none';
  const perCam = [...m.madeByCamera.values()].map((n) => n / m.seconds);
  console.log(`\n### ${m.spec.label}: ${m.spec.cameras} camera(s) x ${m.spec.workers} worker(s), ${m.seconds.toFixed(1)} s measured`);
  console.log(`- frames offered by the sources: ~${m.offered} (${m.spec.cameras} x ${FPS} fps)`);
  console.log(
    `- frames made (depth on the bus): ${m.made} (${(m.made / m.seconds).toFixed(1)} fps; per camera ${f1(Math.min(...perCam))}..${f1(Math.max(...perCam))} fps; ${m.made ? ((100 * m.interpolated) / m.made).toFixed(0) : 0}% interpolated by rate adaptation)`,
  );
  console.log(
    `- frames via the gateway: ${m.delivered} (ratio ${f2(m.delivered / m.made)}); bus frames that never reached the subscriber, by camera: ${lost}${m.unmatchedGw ? `; ${m.unmatchedGw} gateway frames not seen on the bus` : ''}`,
  );
  console.log(
    `- gateway drops in the window: WebSocket subscriber ${m.wsDropped}, edge queues (dcl_edge_dropped_total) ${Number.isFinite(m.edgeDropped) ? m.edgeDropped : '?'}; payload format(s) received: ${m.formats.join(', ') || '-'}`,
  );
  console.log(`- latency publishedMs -> bench's NATS client (bus alone): p50 ${f1(m.busP50)} ms, p95 ${f1(m.busP95)} ms`);
  console.log(
    `- latency publishedMs -> gateway WebSocket receive (bus + gateway): p50 ${f1(m.p50)} ms, p95 ${f1(m.p95)} ms, p99 ${f1(m.p99)} ms, max ${f1(m.max)} ms; gateway receive minus bus receive of the same frame: p50 ${f1(m.gwAfterBusP50)} ms, p95 ${f1(m.gwAfterBusP95)} ms`,
  );
  console.log(
    `- CPU s over the window: nats-server ${m.cpu.nats.toFixed(2)}, workers ${m.cpu.workers.toFixed(2)}, gateway ${m.cpu.gateway.toFixed(2)} (bench itself ${m.cpu.bench.toFixed(2)}, not counted); nats-server = ${f1((100 * m.cpu.nats) / total)}% of the run's CPU, ${f1((100 * m.cpu.nats) / m.seconds)}% of one core; all fleet processes ${f1((100 * total) / m.seconds)}% of one core (${cpus().length} cores)`,
  );
  if (m.settle)
    console.log(
      `- before the window: ${m.settle.ok ? `settled (every camera leased, balanced, unchanged for one TTL, frames flowing) after ${f1(m.settle.waitedMs / 1000)} s, ${m.lossesBeforeSettled} "lease lost" in the workers' logs until then` : `NOT settled after ${f1(m.settle.waitedMs / 1000)} s (measured anyway)`}; in the window: ${m.leaseLosses} "lease lost" in the workers' logs, ${m.ownerChanges} camera moves between workers on the bus`,
    );
  if (m.foreign.length) console.log(`- FOREIGN workers in this fleet (not started by the bench; the figures are not clean): ${m.foreign.join(', ')}`);
  console.log(`- load average (1/5/15 min) before ${loadStr(m.loadBefore)}, after ${loadStr(m.loadAfter)}`);
}

// ---------------------------------------------------------------------------------------------
// Takeover.

interface Takeover {
  readonly n: number;
  readonly victim: string;
  readonly moved: string[];
  readonly busMs: number[];
  readonly gwMs: number[];
  readonly discontOk: boolean[];
  readonly by: string[];
  readonly rebalanceMs: number;
  readonly rebalanced: boolean;
  readonly replacement: string;
  /** "lease lost" lines of the surviving workers between the kill and the last moved camera's first frame. */
  readonly survivorLosses: number;
  readonly note: string;
}

async function takeovers(f: Fleet): Promise<Takeover[]> {
  const out: Takeover[] = [];
  for (let n = 1; n <= KILLS; n++) {
    const rows = await cameraList(f.nats.url);
    const by = holders(rows);
    const [victim, moved] = [...by].sort((a, b) => b[1].length - a[1].length || a[0].localeCompare(b[0]))[0];
    const busFrom = f.bus.frames.length;
    const gwFrom = f.sub.got.length;
    const killedAt = performance.now();
    f.workers.get(victim)!.child.kill('SIGKILL');
    f.workers.delete(victim);
    log(`takeover ${n}/${KILLS}: kill -9 ${victim} holding ${moved.join(', ')}`);
    const killedWall = wallNow();
    const firstOn = <T extends { at: number; worker: string }>(list: readonly T[], from: number, cam: (x: T) => string) =>
      moved.map((c) => {
        for (let i = from; i < list.length; i++) {
          const x = list[i];
          if (cam(x) === c && x.worker !== victim && x.at > killedAt) return x;
        }
        return undefined;
      });
    // Not within 90 s is a finding, not a reason to stop: the row says so.
    const firsts = await until(() => (firstOn(f.bus.frames, busFrom, (b) => b.camera).every(Boolean) ? true : undefined), 90_000, 'takeover').catch(
      () => false,
    );
    const gwDone = await until(() => (firstOn(f.sub.got, gwFrom, (g) => g.stream).every(Boolean) ? true : undefined), firsts ? 60_000 : 1, 'gateway').catch(
      () => false,
    );
    const busFirst = firstOn(f.bus.frames, busFrom, (b) => b.camera);
    const gwFirsts = firstOn(f.sub.got, gwFrom, (g) => g.stream);
    const survivorLosses = leaseLosses(f, killedWall, Math.max(killedWall, ...busFirst.map((b) => (b ? b.wall : wallNow()))));
    const busMs = busFirst.map((b) => (b ? b.at - killedAt : NaN));
    const gwMs = gwFirsts.map((g) => (g ? g.at - killedAt : NaN));
    const discontOk = gwFirsts.map((g) => g?.discont === true);
    // Frames of the victim at the gateway after the kill (in flight): not a fault unless late.
    const late = f.sub.got.slice(gwFrom).filter((g) => g.worker === victim && g.at > killedAt + 1000).length;
    log(
      `takeover ${n}: on the bus after ${busMs.map((ms) => (ms / 1000).toFixed(2)).join(', ')} s, at the gateway after ${gwMs.map((ms) => (ms / 1000).toFixed(2)).join(', ')} s (discont ${discontOk.join(', ')}) by ${busFirst.map((b) => b?.worker ?? 'nobody').join(', ')}${firsts && gwDone ? '' : ' (NOT COMPLETE)'}; ${survivorLosses} "lease lost" meanwhile`,
    );
    const replacement = `w${f.nextWorker++}`;
    const repAt = performance.now();
    startWorker(f, replacement);
    const served = await waitServed(f, `after takeover ${n} (+${replacement})`, 'balanced', SETTLE_MS);
    out.push({
      n,
      victim,
      moved,
      busMs,
      gwMs,
      discontOk,
      by: busFirst.map((b) => b?.worker ?? 'nobody'),
      rebalanceMs: performance.now() - repAt,
      rebalanced: served.ok,
      replacement,
      survivorLosses,
      note: [
        firsts ? '' : 'not every moved camera taken over within 90 s',
        gwDone ? '' : 'not every moved camera at the gateway',
        late > 0 ? `${late} frames of ${victim} at the gateway > 1 s after its kill` : '',
        survivorLosses > 0 ? `${survivorLosses} "lease lost" by the surviving workers before the takeover completed` : '',
        served.ok ? '' : 'not rebalanced',
      ]
        .filter(Boolean)
        .join('; '),
    });
  }
  return out;
}

/**
 * Two workers publishing one camera at the same time: per camera and worker, the frames (by
 * publishedMs) fall into sessions (a gap over 2 s ends one); sessions of two workers on one
 * camera whose time spans intersect are an overlap. Hand-overs (one stops, then the other starts)
 * never intersect.
 */
function overlaps(frames: readonly BusFrame[]): string[] {
  const sessions = new Map<string, Array<{ worker: string; first: number; last: number; n: number }>>();
  const open = new Map<string, { worker: string; first: number; last: number; n: number }>();
  for (const b of [...frames].sort((x, y) => x.publishedMs - y.publishedMs)) {
    const k = `${b.camera}\u0000${b.worker}`;
    const cur = open.get(k);
    if (cur && b.publishedMs - cur.last <= 2000) {
      cur.last = b.publishedMs;
      cur.n++;
      continue;
    }
    const next = { worker: b.worker, first: b.publishedMs, last: b.publishedMs, n: 1 };
    open.set(k, next);
    sessions.set(b.camera, [...(sessions.get(b.camera) ?? []), next]);
  }
  const hhmmss = (ms: number) => new Date(ms).toISOString().slice(11, 23);
  const out: string[] = [];
  for (const [cam, ss] of sessions) {
    for (let i = 0; i < ss.length; i++) {
      for (let j = i + 1; j < ss.length; j++) {
        const a = ss[i];
        const b = ss[j];
        if (a.worker !== b.worker && a.first < b.last && b.first < a.last)
          out.push(
            `${cam}: ${a.worker} ${hhmmss(a.first)}-${hhmmss(a.last)} (${a.n} frames) and ${b.worker} ${hhmmss(b.first)}-${hhmmss(b.last)} (${b.n} frames)`,
          );
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  if (!natsServerAvailable) throw new Error('nats-server is not installed (apt-get install nats-server; scripts/setup.sh installs it)');
  if (!existsSync(join(ROOT, 'dist', 'cli', 'main.js'))) throw new Error('the CLI is not built: npx tsc -p .');
  console.log(`# Fleet benchmark`);
  console.log(
    `\nnode ${process.version}, ${cpus().length} cores (${cpus()[0]?.model ?? '?'}), CLK_TCK ${CLK_TCK}, nats-server ${execFileSync('nats-server', ['--version'], { encoding: 'utf8' }).trim()}`,
  );
  console.log(
    `configurations ${CONFIGS.map((c) => c.label).join(', ')}; ${SECONDS} s measured each; takeover on ${TAKEOVER?.label ?? 'none'} x ${KILLS} kills`,
  );
  console.log(
    `cameras: synthetic:?seed=K&fps=${FPS}&width=${SIZE}&height=${SIZE}; workers: --capacity N --lease-ttl ${TTL} --model ${MODEL} ${DEPTH_SETS.map((s) => `--set ${s}`).join(' ')}; gateway: --port 0; subscriber: /ws?format=f32`,
  );
  console.log(`load average at start (1/5/15 min): ${loadStr(loadavg())} (a shared machine: other work may run beside the bench, so the figures are noisy)`);

  const results: Measured[] = [];
  let takeoverRows: Takeover[] = [];
  const overlapsBy = new Map<string, string[]>();
  const foreignBy = new Map<string, string[]>();
  const allWarnings: string[] = [];
  const plan = [...CONFIGS.map((c) => ({ spec: c, measure: true, takeover: TAKEOVER?.label === c.label }))];
  if (TAKEOVER && !plan.some((p) => p.takeover)) plan.push({ spec: TAKEOVER, measure: false, takeover: true });
  for (const p of plan) {
    const loadBefore = loadavg();
    log(`${p.spec.label}: starting (load ${loadStr(loadBefore)})`);
    const f = await startFleet(p.spec);
    try {
      const settle = await waitServed(f, p.spec.label, 'settled', SETTLE_MS);
      if (p.measure) {
        const settledWall = wallNow();
        const m = await measure(f);
        m.settle = settle;
        m.lossesBeforeSettled = leaseLosses(f, f.startedWall - 1000, settledWall);
        m.loadBefore = loadBefore;
        m.loadAfter = loadavg();
        results.push(m);
        printMeasured(m);
      }
      if (p.takeover) {
        takeoverRows = await takeovers(f);
      }
      overlapsBy.set(p.spec.label, overlaps(f.bus.frames));
      checkForeign(f, new Set(f.bus.frames.map((b) => b.worker)));
      if (f.foreign.size) foreignBy.set(p.spec.label, [...f.foreign]);
    } catch (e) {
      // What the fleet processes said last, to tell why.
      for (const [name, c] of [...f.workers, ['gateway', f.gateway] as [string, CliProcess]]) {
        process.stderr.write(`--- ${name} (pid ${c.child.pid}), last log lines:\n${c.stderr.split('\n').slice(-25).join('\n')}\n`);
      }
      throw e;
    } finally {
      const w = warnings([...(ranBy.get(f.spec) ?? []), ['gateway', f.gateway] as [string, CliProcess]]);
      if (w.length) {
        allWarnings.push(`${p.spec.label}:`, ...w.map((s) => `  ${s}`));
        log(`${p.spec.label}: warnings/errors of the fleet processes:`);
        for (const line of w) log(`${p.spec.label}:   ${line}`);
      }
      await stopFleet(f);
    }
  }

  console.log(`\n## Throughput, latency, bus CPU\n`);
  console.log(`| config | frames made | frames via gateway | ratio | bus+gateway p50/p95 ms | nats-server CPU share | load before/after |`);
  console.log(`|---|---|---|---|---|---|---|`);
  for (const m of results) {
    const total = m.cpu.nats + m.cpu.workers + m.cpu.gateway;
    console.log(
      `| ${m.spec.label} | ${m.made} (${(m.made / m.seconds).toFixed(1)} fps) | ${m.delivered} | ${f2(m.delivered / m.made)} | ${f1(m.p50)} / ${f1(m.p95)} | ${f1((100 * m.cpu.nats) / total)}% of run CPU (${f1((100 * m.cpu.nats) / m.seconds)}% of a core) | ${loadStr(m.loadBefore)} -> ${loadStr(m.loadAfter)} |`,
    );
  }
  console.log(`\n## Settling (workers started -> every camera leased, balanced, unchanged for one TTL, frames flowing)\n`);
  console.log(
    `| config | settled after s | "lease lost" until settled | "lease lost" / camera moves in the window | frames interpolated | gateway minus bus receive p50/p95 ms |`,
  );
  console.log(`|---|---|---|---|---|---|`);
  for (const m of results) {
    console.log(
      `| ${m.spec.label} | ${m.settle ? `${f1(m.settle.waitedMs / 1000)}${m.settle.ok ? '' : ' (NOT settled)'}` : '-'} | ${m.lossesBeforeSettled} | ${m.leaseLosses} / ${m.ownerChanges} | ${m.made ? ((100 * m.interpolated) / m.made).toFixed(0) : '-'}% | ${f1(m.gwAfterBusP50)} / ${f1(m.gwAfterBusP95)} |`,
    );
  }
  if (TAKEOVER) {
    console.log(
      `\n## Takeover (${TAKEOVER.label}, lease TTL ${TTL / 1000} s, window ${DEPTH_SETS.find((s) => s.startsWith('depth.window='))?.split('=')[1] ?? '?'} frames at ${FPS} fps)\n`,
    );
    console.log(
      `| kill | victim | moved cameras | taken by | bus: first frame from another worker, s | gateway, s | discont at gateway | replacement, rebalanced after s | note |`,
    );
    console.log(`|---|---|---|---|---|---|---|---|---|`);
    for (const t of takeoverRows) {
      console.log(
        `| ${t.n} | ${t.victim} | ${t.moved.join(', ')} | ${t.by.join(', ')} | ${t.busMs.map((ms) => (ms / 1000).toFixed(2)).join(', ')} | ${t.gwMs.map((ms) => (ms / 1000).toFixed(2)).join(', ')} | ${t.discontOk.map((d) => (d ? 'yes' : 'NO')).join(', ')} | ${t.replacement}, ${(t.rebalanceMs / 1000).toFixed(1)} | ${t.note} |`,
      );
    }
    const busAll = takeoverRows.map((t) => Math.max(...t.busMs) / 1000);
    const gwAll = takeoverRows.map((t) => Math.max(...t.gwMs) / 1000);
    const perCam = takeoverRows.flatMap((t) => t.busMs.map((ms) => ms / 1000));
    console.log(`\ntakeover time (kill -> every moved camera's first frame from another worker), over ${busAll.length} kills:`);
    console.log(
      `- on the bus: min ${f2(Math.min(...busAll))} s, median ${f2(median(busAll))} s, max ${f2(Math.max(...busAll))} s (per camera: min ${f2(Math.min(...perCam))}, median ${f2(median(perCam))}, max ${f2(Math.max(...perCam))} s)`,
    );
    console.log(`- at the gateway: min ${f2(Math.min(...gwAll))} s, median ${f2(median(gwAll))} s, max ${f2(Math.max(...gwAll))} s`);
    const discontMissing = takeoverRows.reduce((a, t) => a + t.discontOk.filter((d) => !d).length, 0);
    console.log(
      `- first frame after a takeover marked discont at the gateway: ${takeoverRows.reduce((a, t) => a + t.discontOk.length, 0) - discontMissing} of ${takeoverRows.reduce((a, t) => a + t.discontOk.length, 0)}`,
    );
    const repOk = takeoverRows.filter((t) => t.rebalanced);
    console.log(
      `- rebalanced after a replacement worker joined: ${repOk.length} of ${takeoverRows.length}; time: median ${f1(median(takeoverRows.map((t) => t.rebalanceMs / 1000)))} s, max ${f1(Math.max(...takeoverRows.map((t) => t.rebalanceMs / 1000)))} s`,
    );
  }
  console.log(`\n## Two workers publishing one camera at once (bus frames by publishedMs, whole run of each config)\n`);
  for (const [label, o] of overlapsBy)
    console.log(`- ${label}: ${o.length ? `${o.length}: ${o.slice(0, 10).join('; ')}${o.length > 10 ? '; ...' : ''}` : 'none'}`);
  console.log(
    `\nforeign workers (lease holders or publishers on a fleet's bus not started by the bench): ${foreignBy.size ? [...foreignBy].map(([l, ids]) => `${l}: ${ids.join(', ')}`).join('; ') : 'none'}`,
  );
  if (listFailures) console.log(`\n\`fleet camera list --json\` failed ${listFailures} time(s) (retried; see the log lines above)`);
  console.log(`\nload average at the end (1/5/15 min): ${loadStr(loadavg())}`);
  if (allWarnings.length) console.log(`\nwarnings/errors logged by the fleet processes:\n${allWarnings.join('\n')}`);
}

main().then(
  () => {
    cleanup();
    process.exit(0);
  },
  (e: unknown) => {
    process.stderr.write(`fleet bench failed: ${(e as Error).stack ?? String(e)}\n`);
    cleanup();
    process.exit(1);
  },
);
