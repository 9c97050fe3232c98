// The fleet through real parts: a real nats-server (and a real 3-node NATS cluster), real
// `fleet worker` and `fleet gateway` processes of the built CLI, the loopback RTSP test server for
// one camera, a real WebSocket client on the gateway, and a NATS client watching the bus itself
// (which worker published each frame, from the Dcl-Worker header).

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import WebSocket from 'ws';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { decodeFrameMessage, type FrameHeader } from '../src/protocol/frame-message.js';
import { startCli, killAll, type CliProcess } from './helpers/cli-process.js';
import { ensureBuilt } from './helpers/build-cli.js';
import { connectionNames, natsServerAvailable, startNats, startNatsCluster, type NatsFixture } from './helpers/nats-server.js';
import { until } from './helpers/wait.js';
import { freePort } from './helpers/net.js';

const SKIP = natsServerAvailable ? false : 'nats-server is not installed (apt-get install nats-server; scripts/setup.sh installs it)';
const TTL = 3000;
/** Small, fast depth settings: a window of 8 frames at 8 fps is 1 s. */
const WINDOW_FRAMES = 8;
const FPS = 8;
const DEPTH = [
  '--set',
  'depth.model=tiny-random',
  '--set',
  `depth.window=${WINDOW_FRAMES}`,
  '--set',
  'depth.overlap=2',
  '--set',
  'depth.steps=1',
  '--set',
  'depth.maxRes=64',
];

const PYTHON = '/usr/bin/python3';
const RTSP_SCRIPT = join(import.meta.dirname, 'fixtures', 'rtsp_server.py');
const rtspAvailable = spawnSync(PYTHON, ['-c', "import gi; gi.require_version('GstRtspServer','1.0')"], { stdio: 'ignore' }).status === 0;

interface BusFrame {
  readonly camera: string;
  readonly worker: string;
  readonly seq: number;
  readonly at: number;
}

/** Every depth frame on the bus, with the worker that published it. */
async function watchBus(url: string): Promise<{ nc: NatsConnection; frames: BusFrame[] }> {
  const nc = await connect({ servers: url.split(','), maxReconnectAttempts: -1, reconnectTimeWait: 250 });
  const frames: BusFrame[] = [];
  nc.subscribe('dcl.depth.*', {
    callback: (err, m) => {
      if (err) return;
      const { header } = decodeFrameMessage(m.data);
      frames.push({ camera: m.subject.slice('dcl.depth.'.length), worker: m.headers?.get('Dcl-Worker') ?? '?', seq: header.seq, at: performance.now() });
    },
  });
  return { nc, frames };
}

/** Depth headers a gateway subscriber receives, with their arrival times. */
function subscribe(wsUrl: string): { ws: WebSocket; got: Array<FrameHeader & { at: number }> } {
  const ws = new WebSocket(wsUrl);
  ws.on('error', () => {}); // closed by the test's end while connecting
  const got: Array<FrameHeader & { at: number }> = [];
  ws.on('message', (data, isBinary) => {
    if (!isBinary) return;
    const { header } = decodeFrameMessage(data as Buffer);
    if (header.kind === 'depth') got.push({ ...header, at: performance.now() });
  });
  return { ws, got };
}

/** For each camera, the workers that published it in order of their turns: [A] or [A, B], never [A, B, A]. */
function turns(frames: readonly BusFrame[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const f of frames) {
    const t = out.get(f.camera) ?? [];
    if (t[t.length - 1] !== f.worker) t.push(f.worker);
    out.set(f.camera, t);
  }
  return out;
}

/** A short fleet command, run without blocking this process (the bus watcher keeps stamping frames as they come). */
function fleetCli(nats: string, args: string[], ttl = TTL): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [join(import.meta.dirname, '..', 'bin', 'depthcrafter-live.js'), 'fleet', ...args, '--nats', nats, '--lease-ttl', String(ttl)],
      { encoding: 'utf8' },
      (err, stdout, stderr) => resolve({ status: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }),
    );
  });
}

async function gatewayUrl(gw: CliProcess): Promise<string> {
  const line = await until(
    () => gw.lines.find((l) => typeof l.msg === 'string' && l.msg.startsWith('fleet gateway serving at')),
    30_000,
    'the gateway to listen',
    () => gw.stderr.slice(-3000),
  );
  return String(line.url);
}

function startRtsp(port: number): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(PYTHON, [RTSP_SCRIPT, String(port)], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.on('data', (d: Buffer) => d.toString().includes('READY') && resolve(child));
    child.once('exit', (code) => reject(new Error(`RTSP test server exited (${code})`)));
  });
}

describe('fleet on one nats-server: 3 cameras, 2 workers, 1 gateway', { skip: SKIP, timeout: 240_000 }, () => {
  let nats: NatsFixture;
  let bus: Awaited<ReturnType<typeof watchBus>>;
  let rtsp: ChildProcess | null = null;
  const children: CliProcess[] = [];
  const workers = new Map<string, CliProcess>();
  let sub: ReturnType<typeof subscribe>;
  let gatewayHttp = '';
  let gateway: CliProcess;

  before(
    async () => {
      ensureBuilt();
      nats = await startNats();
      bus = await watchBus(nats.url);
      let third = `synthetic:?seed=3&fps=${FPS}&width=96&height=96`;
      if (rtspAvailable) {
        const port = await freePort();
        rtsp = await startRtsp(port);
        third = `rtsp://127.0.0.1:${port}/test`;
      }
      for (const [name, url] of [
        ['lobby', `synthetic:?seed=1&fps=${FPS}&width=96&height=96`],
        ['door', `synthetic:?seed=2&fps=${FPS}&width=96&height=96`],
        ['yard', third],
      ]) {
        const r = await fleetCli(nats.url, ['camera', 'add', name, url]);
        assert.equal(r.status, 0, r.stderr);
      }
      for (const id of ['wA', 'wB']) {
        const w = startCli(['fleet', 'worker', '--nats', nats.url, '--id', id, '--capacity', '3', '--lease-ttl', String(TTL), ...DEPTH]);
        workers.set(id, w);
        children.push(w);
      }
      const gw = startCli(['fleet', 'gateway', '--nats', nats.url, '--port', '0', '--lease-ttl', String(TTL)]);
      children.push(gw);
      gateway = gw;
      gatewayHttp = await gatewayUrl(gw);
      // f32: raw payloads, so a busy encoder cannot drop the frame that carries the takeover's discont mark.
      sub = subscribe(`${gatewayHttp.replace(/^http/, 'ws')}ws?format=f32`);
    },
    { timeout: 120_000 },
  );

  after(async () => {
    sub?.ws.close();
    killAll(children);
    rtsp?.kill('SIGKILL');
    await bus?.nc.close();
    nats?.stop();
  });

  it('every camera is served by exactly one worker, both workers serve, and the gateway delivers all three', async () => {
    // The first worker up may claim everything, then hand cameras back as the other joins: wait until the leases hold still for a TTL.
    let previous = '';
    let stableSince = 0;
    const leases = await until(
      async () => {
        const r = await fleetCli(nats.url, ['camera', 'list', '--json']);
        const cams = (JSON.parse(r.stdout || '{"cameras":[]}') as { cameras: Array<{ name: string; worker: string | null }> }).cameras;
        const ok = cams.length === 3 && cams.every((c) => c.worker) && new Set(cams.map((c) => c.worker)).size === 2;
        const now = JSON.stringify(cams);
        if (!ok || now !== previous) {
          previous = now;
          stableSince = performance.now();
          return undefined;
        }
        return performance.now() - stableSince > TTL ? cams : undefined;
      },
      90_000,
      'three cameras leased by two workers, for a TTL',
      () => previous,
    );
    const since = performance.now();
    await until(
      () => ['lobby', 'door', 'yard'].every((c) => sub.got.filter((h) => h.stream === c && h.at > since).length >= 3),
      60_000,
      'depth of all three cameras through the gateway',
      () => JSON.stringify(sub.got.slice(-5)),
    );
    // On the bus, in the same period, each camera came from one worker: its lease holder.
    const recent = bus.frames.filter((f) => f.at > since);
    for (const { name, worker } of leases) {
      const from = new Set(recent.filter((f) => f.camera === name).map((f) => f.worker));
      assert.deepEqual([...from], [worker], `camera ${name}: published by ${[...from].join(', ')}, leased to ${worker}`);
    }
    // The gateway's subscribers see which worker made each frame; /streams and /fleet list the fleet's cameras.
    for (const { name, worker } of leases)
      assert.ok(
        sub.got.some((h) => h.stream === name && h.worker === worker),
        `gateway frames of ${name} name worker ${worker}`,
      );
    let streams = '';
    await until(
      async () => {
        const v = (await (await fetch(`${gatewayHttp}streams`)).json()) as { streams: Array<{ name: string; state: string; fpsOut: number }> };
        streams = JSON.stringify(v);
        return (
          v.streams
            .map((x) => x.name)
            .sort()
            .join() === 'door,lobby,yard' && v.streams.every((x) => x.state === 'ok' && x.fpsOut > 0)
        );
      },
      20_000,
      "the gateway's /streams: three cameras, ok, frames flowing",
      () =>
        `${streams}\ngateway: ${gateway.stderr
          .split('\n')
          .filter((l) => !l.includes('"level":30'))
          .slice(-10)
          .join('\n')}`,
    );
    const fleet = (await (await fetch(`${gatewayHttp}fleet`)).json()) as { cameras: Array<{ name: string; worker: string }> };
    assert.deepEqual(Object.fromEntries(fleet.cameras.map((c) => [c.name, c.worker])), Object.fromEntries(leases.map((c) => [c.name, c.worker])));
  });

  it('kill -9 a worker: the other serves its cameras within the lease TTL + a window, with a new sequence; never two workers at once', async (t) => {
    const list = JSON.parse((await fleetCli(nats.url, ['camera', 'list', '--json'])).stdout) as { cameras: Array<{ name: string; worker: string }> };
    const victim = list.cameras[0].worker;
    const survivor = victim === 'wA' ? 'wB' : 'wA';
    const moved = list.cameras.filter((c) => c.worker === victim).map((c) => c.name);
    const killedAt = performance.now();
    workers.get(victim)!.child.kill('SIGKILL');
    const taken = await until(
      () => {
        const firsts = moved.map((c) => bus.frames.find((f) => f.camera === c && f.worker === survivor && f.at > killedAt));
        return firsts.every(Boolean) ? firsts.map((f) => f!) : undefined;
      },
      60_000,
      `${survivor} to take over ${moved.join(', ')}`,
    );
    const times = taken.map((f) => f.at - killedAt);
    t.diagnostic(
      `takeover of ${moved.join(', ')} after kill -9 of ${victim}: ${times.map((ms) => `${(ms / 1000).toFixed(2)} s`).join(', ')} (lease TTL ${TTL / 1000} s, window ${WINDOW_FRAMES / FPS} s)`,
    );
    // TTL + one window + the renew period and the model's first window on a loaded 2-core machine.
    for (const ms of times) assert.ok(ms < TTL + (WINDOW_FRAMES / FPS) * 1000 + 6000, `takeover took ${ms.toFixed(0)} ms`);
    // The subscriber sees the camera move: another worker, and the first frame from it marked as a discontinuity.
    await until(
      () => moved.every((c) => sub.got.some((h) => h.stream === c && h.worker === survivor && h.at > killedAt)),
      30_000,
      'the takeover through the gateway',
    );
    for (const c of moved) {
      const first = sub.got.find((h) => h.stream === c && h.worker === survivor && h.at > killedAt)!;
      const around = sub.got
        .filter((h) => h.stream === c && h.at > killedAt - 2000)
        .slice(0, 12)
        .map((h) => `${h.worker}:${h.seq}${h.discont ? '!' : ''}@${(h.at - killedAt).toFixed(0)}`);
      assert.equal(first.discont, true, `camera ${c}: the first frame from ${survivor} is marked discont (${around.join(' ')})`);
      assert.ok(!sub.got.some((h) => h.stream === c && h.worker === survivor && h.at > killedAt && h !== first && h.discont), `camera ${c}: one discontinuity`);
    }
    // Over the whole run so far, no camera ever went back and forth between workers.
    for (const [camera, order] of turns(bus.frames)) assert.ok(new Set(order).size === order.length, `camera ${camera} turns: ${order.join(' -> ')}`);
  });

  it('a camera removed from the list stops within the lease TTL', async (t) => {
    await until(() => bus.frames.some((f) => f.camera === 'door' && f.at > performance.now() - 1000), 30_000, 'door to be served');
    const r = await fleetCli(nats.url, ['camera', 'remove', 'door']);
    // The removal has happened by the time the CLI exits; starting the clock before the spawn would count the CLI's
    // start-up (seconds on a loaded machine) as the fleet's reaction time.
    const removedAt = performance.now();
    assert.equal(r.status, 0, r.stderr);
    // Quiet for 2 s: stopped.
    await until(
      () => {
        const last = bus.frames.filter((f) => f.camera === 'door').pop()!;
        return performance.now() - last.at > 2000 ? last : undefined;
      },
      30_000,
      'door to stop',
    );
    const lastAt = bus.frames.filter((f) => f.camera === 'door').pop()!.at;
    t.diagnostic(`door's last frame ${((lastAt - removedAt) / 1000).toFixed(2)} s after its removal (TTL ${TTL / 1000} s)`);
    assert.ok(lastAt - removedAt < TTL, `stopped ${(lastAt - removedAt).toFixed(0)} ms after removal`);
    const again = await fleetCli(nats.url, ['camera', 'remove', 'door']);
    assert.equal(again.status, 2);
    assert.match(again.stderr, /no camera "door"/);
  });
});

describe('fleet on a 3-node NATS cluster: a node dies, the fleet goes on', { skip: SKIP, timeout: 240_000 }, () => {
  // Longer than JetStream's leader election after a node loss (a few seconds), so leases survive it.
  const CLUSTER_TTL = 8000;
  let nats: NatsFixture;
  const children: CliProcess[] = [];
  let sub: ReturnType<typeof subscribe>;

  before(
    async () => {
      ensureBuilt();
      nats = await startNatsCluster();
      for (const name of ['c1', 'c2']) {
        const r = await fleetCli(
          nats.url,
          ['camera', 'add', name, `synthetic:?seed=${name === 'c1' ? 4 : 5}&fps=${FPS}&width=96&height=96`, '--replicas', '3'],
          CLUSTER_TTL,
        );
        assert.equal(r.status, 0, r.stderr);
      }
      children.push(
        startCli(['fleet', 'worker', '--nats', nats.url, '--id', 'wC', '--capacity', '2', '--lease-ttl', String(CLUSTER_TTL), '--replicas', '3', ...DEPTH]),
      );
      const gw = startCli(['fleet', 'gateway', '--nats', nats.url, '--port', '0', '--lease-ttl', String(CLUSTER_TTL), '--replicas', '3']);
      children.push(gw);
      sub = subscribe(`${(await gatewayUrl(gw)).replace(/^http/, 'ws')}ws`);
    },
    { timeout: 120_000 },
  );

  after(() => {
    sub?.ws.close();
    killAll(children);
    nats?.stop();
  });

  it('kill -9 the node the worker is connected to: worker and gateway reconnect and frames resume', async (t) => {
    await until(() => ['c1', 'c2'].every((c) => sub.got.filter((h) => h.stream === c).length >= 3), 90_000, 'frames of both cameras through the gateway');
    const node = await until(
      async () => {
        for (const n of nats.nodes) if ((await connectionNames(n)).some((name) => name.includes('worker wC'))) return n;
        return undefined;
      },
      10_000,
      "the worker's NATS node",
    );
    const killedAt = performance.now();
    node.child.kill('SIGKILL');
    const resumed = await until(
      () => {
        const firsts = ['c1', 'c2'].map((c) => sub.got.find((h) => h.stream === c && h.at > killedAt + 500));
        return firsts.every(Boolean) ? firsts.map((h) => h!.at - killedAt) : undefined;
      },
      60_000,
      'frames to resume after the node died',
    );
    t.diagnostic(`node ${node.name} killed: frames of c1, c2 resumed after ${resumed.map((ms) => `${(ms / 1000).toFixed(2)} s`).join(', ')}`);
    // The fleet's state is served by the two nodes left (once JetStream has re-elected its leaders): one worker per camera.
    let last = '';
    await until(
      async () => {
        const r = await fleetCli(
          nats.nodes
            .filter((n) => n !== node)
            .map((n) => n.url)
            .join(','),
          ['camera', 'list', '--json'],
          CLUSTER_TTL,
        );
        last = r.stdout + r.stderr;
        if (r.status !== 0) return undefined;
        return (JSON.parse(r.stdout) as { cameras: Array<{ worker: string }> }).cameras.map((c) => c.worker).join() === 'wC,wC';
      },
      60_000,
      'the camera list from the remaining nodes: both cameras leased by wC',
      () => last,
    );
  });
});
