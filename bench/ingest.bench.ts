// Ingest speed: a 1080p H.264 file decoded to RGB by gst-launch-1.0 into fakesink, against the
// project's appsink reader pulling every frame into JS and the `file` source node running in a
// graph. The variants alternate within each repeat, so they see the same machine load; the ratio
// is gst-launch wall / ours (1.0 = as fast as GStreamer alone).
//   node --import tsx bench/ingest.bench.ts [--frames 600] [--repeat 3] [--size 1920x1080]
//        [--only gst,gst-same,reader,graph] [--launch "EXTRA LAUNCH STRING FOR THE READER"]
// Variants:
//   gst       gst-launch-1.0 filesrc ! decodebin ! videoconvert ! video/x-raw,format=RGB ! fakesink
//   gst-same  gst-launch-1.0 of the reader's own launch string (the same elements and properties)
//             ! fakesink sync=false enable-last-sample=false
//   reader    readAppSink() on that launch string, every frame handed to JS
//   graph     a `file` source node behind a block edge into a counting sink, through the graph runtime
// CPU is user+system: for gst-launch the child's rusage (cutime/cstime of this process after it is
// reaped), for the in-process variants process.cpuUsage() (all threads: GStreamer's too). GC counts
// and pause time come from a PerformanceObserver on 'gc' entries.
process.env.UV_THREADPOOL_SIZE ??= '16'; // as the CLI does (bin/depthcrafter-live.js)

import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { PerformanceObserver } from 'node:perf_hooks';
import { z } from 'zod';
import { appSinkLaunch, readAppSink } from '../src/media/appsink-reader.js';
import { quoteProp } from '../src/media/launch.js';
import { fileLaunch } from '../src/nodes/sources/file.js';
import { defineNode } from '../src/graph/node-kind.js';
import { parsePipeline } from '../src/graph/pipeline-file.js';
import { Graph } from '../src/graph/runtime.js';
import { builtinRegistry } from '../src/nodes/index.js';
import { createLogger } from '../src/util/log.js';

const { values } = parseArgs({
  options: {
    frames: { type: 'string', default: '600' },
    repeat: { type: 'string', default: '3' },
    size: { type: 'string', default: '1920x1080' },
    only: { type: 'string', default: 'gst,gst-same,reader,graph' },
    launch: { type: 'string' },
    clip: { type: 'string' },
  },
});
const N = Number(values.frames);
const repeats = Number(values.repeat);
const [W, H] = values.size!.split('x').map(Number);
const only = values.only!.split(',');
const log = createLogger({ level: 'warn', pretty: false });

// --- the clip ---------------------------------------------------------------------------------
const dir = join(tmpdir(), 'dcl-ingest-bench');
mkdirSync(dir, { recursive: true });
const clip = values.clip ?? join(dir, `zoneplate-${W}x${H}-${N}.mp4`);
if (!existsSync(clip)) {
  const t0 = performance.now();
  const part = `${clip}.partial.mp4`;
  // A moving zone plate (fine detail everywhere, changing every frame) at about 6 Mb/s: the decoder
  // works about as hard as on camera footage (a flat test pattern decodes several times faster).
  execFileSync('gst-launch-1.0', [
    '-q',
    'videotestsrc',
    `num-buffers=${N}`,
    'pattern=zone-plate',
    'kx2=20',
    'ky2=20',
    'kt=1',
    '!',
    `video/x-raw,width=${W},height=${H},framerate=30/1`,
    '!',
    'videoconvert',
    '!',
    'x264enc',
    'speed-preset=veryfast',
    'bitrate=8000',
    'key-int-max=60',
    '!',
    'video/x-h264,profile=high',
    '!',
    'mp4mux',
    '!',
    'filesink',
    `location=${part}`,
  ]);
  renameSync(part, clip);
  console.log(`generated ${clip} (${N} frames ${W}x${H} H.264) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}

const readerLaunch = values.launch ?? fileLaunch({ path: clip });
const plainLaunch = `filesrc location=${quoteProp(clip)} ! decodebin ! videoconvert ! video/x-raw,format=RGB`;

// --- measuring ----------------------------------------------------------------------------------
interface Run {
  wallS: number;
  cpuS: number;
  frames: number;
  gcs: number;
  gcMs: number;
  /** Minor page faults (fresh pages touched: each one the kernel zeroes and maps). */
  faults: number;
}

const TICK = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
function selfStat(): string[] {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  // Fields after the command: index 0 is field 3 (state), so field n is at index n - 3.
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}
/** CPU seconds of this process's reaped children (cutime + cstime). */
function childCpuS(): number {
  const f = selfStat();
  return (Number(f[13]) + Number(f[14])) / TICK;
}
const childFaults = () => Number(selfStat()[8]); // cminflt
const ownFaults = () => Number(selfStat()[7]); // minflt
function ownCpuS(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

let gcCount = 0;
let gcMs = 0;
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    gcCount++;
    gcMs += e.duration;
  }
}).observe({ entryTypes: ['gc'] });

function gstLaunch(launch: string, sink = 'fakesink sync=false'): Promise<Run> {
  // gst-launch takes the description as separate words; quoted locations stay one word.
  const args = ['-q', ...splitLaunch(`${launch} ! ${sink}`)];
  const c0 = childCpuS();
  const f0 = childFaults();
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const p = spawn('gst-launch-1.0', args, { stdio: ['ignore', 'ignore', 'inherit'] });
    p.on('error', reject);
    p.on('close', (code) => {
      const wallS = (performance.now() - t0) / 1000;
      if (code !== 0) reject(new Error(`gst-launch-1.0 exited with ${code}`));
      else resolve({ wallS, cpuS: childCpuS() - c0, frames: N, gcs: 0, gcMs: 0, faults: childFaults() - f0 });
    });
  });
}

function splitLaunch(s: string): string[] {
  const out: string[] = [];
  const re = /(?:[^\s"]+|"(?:[^"\\]|\\.)*")+/g;
  for (const m of s.matchAll(re)) out.push(m[0].replace(/"((?:[^"\\]|\\.)*)"/g, (_, v: string) => v.replace(/\\(.)/g, '$1')));
  return out;
}

async function inProcess(body: () => Promise<number>): Promise<Run> {
  const g0 = gcCount;
  const gm0 = gcMs;
  const c0 = ownCpuS();
  const f0 = ownFaults();
  const t0 = performance.now();
  const frames = await body();
  const wallS = (performance.now() - t0) / 1000;
  const cpuS = ownCpuS() - c0;
  const faults = ownFaults() - f0;
  await new Promise((r) => setTimeout(r, 50)); // let the observer deliver the last gc entries
  return { wallS, cpuS, frames, gcs: gcCount - g0, gcMs: gcMs - gm0, faults };
}

function reader(): Promise<Run> {
  return inProcess(async () => {
    let sum = 0;
    const res = await readAppSink({
      launch: readerLaunch,
      streamId: 'bench',
      log,
      signal: new AbortController().signal,
      maxBuffers: 4,
      onFrame: (f) => {
        sum += f.data[(f.seq * 7919) % f.data.length]; // touch the frame
      },
    });
    if (sum < 0) console.log(sum);
    return res.frames;
  });
}

let counted = 0;
const countNode = defineNode({
  kind: 'bench-count',
  role: 'sink',
  description: 'counts video frames (bench)',
  inputs: { in: 'any' },
  outputs: {},
  options: z.object({}).strict(),
  create() {
    return {
      process(_port: string, p: { type: string }) {
        if (p.type === 'video') counted++;
      },
    };
  },
});

function graph(): Promise<Run> {
  return inProcess(async () => {
    counted = 0;
    const registry = builtinRegistry().add(countNode);
    const yaml = `name: ingest-bench
server: { enabled: false }
nodes:
  src: { kind: file, options: { path: ${JSON.stringify(clip)} } }
  sink: { kind: bench-count }
edges:
  - { from: src.video, to: sink.in, queue: { capacity: 4, policy: block } }
`;
    const g = new Graph(parsePipeline(yaml, 'ingest-bench.yaml', registry, { env: {} }), { log });
    await g.start();
    await g.done;
    await g.stop();
    return counted;
  });
}

const variants: Record<string, () => Promise<Run>> = {
  gst: () => gstLaunch(plainLaunch),
  'gst-same': () => gstLaunch(readerLaunch, 'fakesink sync=false enable-last-sample=false'),
  reader,
  graph,
};

// --- run ---------------------------------------------------------------------------------------
const la = () =>
  loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');
console.log(`ingest bench: ${N} frames ${W}x${H} H.264 -> RGB, ${repeats} repeats, variants ${only.join(', ')}`);
console.log(`gst launch:    ${plainLaunch} ! fakesink sync=false`);
console.log(`reader launch: ${appSinkLaunch(readerLaunch, { maxBuffers: 4 })}`);
console.log(`load average before: ${la()}`);
const results: Record<string, Run[]> = {};
for (let r = 0; r < repeats; r++) {
  const line: string[] = [];
  for (const v of only) {
    const fn = variants[v];
    if (!fn) throw new Error(`unknown variant ${v}`);
    const res = await fn();
    if (res.frames !== N) console.warn(`warning: ${v} got ${res.frames} frames, expected ${N}`);
    (results[v] ??= []).push(res);
    line.push(`${v} ${res.wallS.toFixed(2)} s`);
  }
  console.log(`repeat ${r + 1}: ${line.join(', ')}  (load ${la()})`);
}
console.log(`load average after: ${la()}`);

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const spread = (xs: number[], d = 2) => `${median(xs).toFixed(d)} [${Math.min(...xs).toFixed(d)}-${Math.max(...xs).toFixed(d)}]`;
const base = results.gst;
console.log('\nvariant   | wall s             | CPU s              | frames/s           | ratio gst/ours     | GCs | GC ms | faults/frame');
for (const v of only) {
  const rs = results[v];
  const ratios = base ? rs.map((x, i) => base[i].wallS / x.wallS) : [];
  console.log(
    [
      v.padEnd(9),
      spread(rs.map((x) => x.wallS)).padEnd(18),
      spread(rs.map((x) => x.cpuS)).padEnd(18),
      spread(
        rs.map((x) => x.frames / x.wallS),
        1,
      ).padEnd(18),
      (ratios.length ? spread(ratios) : '-').padEnd(18),
      String(Math.round(median(rs.map((x) => x.gcs)))).padStart(3),
      median(rs.map((x) => x.gcMs))
        .toFixed(0)
        .padStart(5),
      median(rs.map((x) => x.faults / x.frames)).toFixed(0),
    ].join(' | '),
  );
}
process.exit(0);
