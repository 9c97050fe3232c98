import { z } from 'zod';
import { WebSocketServer, type WebSocket } from 'ws';
import type { IncomingMessage } from 'node:http';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineNode, type NodeContext } from '../../graph/node-kind.js';
import { COLORMAP_NAMES, colormapByName } from '../../io/colormap.js';
import { FrameEncoder, defaultEncodeWorkers, type EncodeJob } from './frame-encoder.js';
import { nowMs, type DepthFrame, type Intrinsics, type Packet, type VideoFrame } from '../../graph/packets.js';
import { DEFAULT_SUBSCRIPTION, decodeFrameMessage, encodeFrameMessage, scaleIntrinsics, type FrameHeader, type Subscription } from '../../protocol/frame-message.js';
import { parseSubscription, SubscriptionError, unknownStreams } from '../../protocol/subscription.js';
import { Counter } from 'prom-client';
import { presentedToken, refuseUpgrade } from '../../server/http-hub.js';
import { clipForLog } from '../../util/redact.js';

// Broadcasts frames to WebSocket subscribers on the pipeline's HTTP server. Each subscriber has
// its own backpressure: when its socket buffer is over the limit, frames are dropped for it
// alone (and counted), so a stalled client never slows the pipeline or the other clients.
// Payloads that need per-pixel work (u16, colour-mapped jpeg/png depth, jpeg RGB) are produced by
// encoder threads (frame-encoder.ts), once per frame and format whatever the number of subscribers
// that want them; each subscriber's messages go out in frame order. When the encoder falls behind
// (encodeQueue frames outstanding), the frame is dropped for the subscribers that need an encoded
// payload, and counted like any other drop; raw rgb24/f32 subscribers are not held up.

export const websocketOptions = z
  .object({
    path: z.string().startsWith('/').default('/ws').describe('WebSocket path on the pipeline\'s server (one sink per path).'),
    maxBufferedBytes: z.number().int().min(1024).default(8 * 1024 * 1024).describe('Per-subscriber send buffer bound, in bytes; beyond it frames are dropped for that subscriber.'),
    maxClientMessageBytes: z.number().int().min(64).max(1 << 20).default(4096).describe('Largest message a client may send (control messages are small JSON).'),
    tokenEnv: z.string().default('DCL_TOKEN').describe('Name of the environment variable holding the access token; when that variable is set, clients must present it.'),
    allowedOrigins: z.array(z.string()).default([]).describe('Allowed browser origins; empty means same-origin and non-browser clients only.'),
    viewer: z.boolean().default(true).describe('Serve the browser viewer at / (with its scripts, colour maps at /colormaps.json and the three.js build it uses for the 3D view).'),
    jpegQuality: z.number().int().min(1).max(100).default(80).describe('JPEG quality (1..100) of jpeg depth and RGB payloads.'),
    encodeWorkers: z.number().int().min(1).max(16).optional().describe('Encoder threads for u16/jpeg/png payloads (default: one per spare core, at most 2).'),
    encodeQueue: z.number().int().min(1).max(256).default(64).describe('Frames being encoded or waiting for an encoder thread; beyond it frames are dropped for subscribers that need encoding (a window of several streams comes out at once: room for the burst).'),
    encodeWaitMs: z.number().int().min(0).max(60_000).default(0).describe('How long a frame may wait for room in the encoder queue before it is dropped (0: drop at once, never slowing the pipeline).'),
  })
  .strict();

interface Subscriber {
  readonly ws: WebSocket;
  sub: Subscription;
  dropped: number;
  /** Streams whose discontinuity mark was on a frame dropped for this subscriber: its next frame of them carries it. */
  readonly owedDiscont: Set<string>;
  sent: number;
  /** Delivery of this subscriber's frames, in order (each link waits for its frame's payloads). */
  chain: Promise<void>;
}

/** One message a subscriber wants for a frame; equal keys within a frame share one message. */
interface Want {
  readonly key: string;
  readonly frame: VideoFrame | DepthFrame;
  readonly format: FrameHeader['format'];
  readonly colormap?: string;
  /** Ground truth of the depth frame's source (encoded with accuracy figures). */
  readonly gt?: boolean;
}

export const websocketNode = defineNode({
  kind: 'websocket',
  role: 'sink',
  description: 'Broadcast video and depth frames to WebSocket subscribers',
  inputs: { frames: 'any' },
  outputs: {},
  options: websocketOptions,
  // One sink serves every stream of a multi-stream pipeline; subscribers choose with ?stream=.
  multiStream: true,
  claims: (o) => [{ resource: `ws-path:${o.path}`, what: `WebSocket path ${o.path}`, field: 'options.path' }],
  create(o, ctx) {
    const tokenValue = process.env[o.tokenEnv];
    if (tokenValue !== undefined && tokenValue.trim() === '') {
      throw new RangeError(`${o.tokenEnv} is set but empty: set it to a token to require one, or unset it to allow any client`);
    }
    const token = tokenValue;
    ctx.log.info(
      { path: o.path, auth: token ? 'token' : 'none' },
      token ? `WebSocket ${o.path}: clients must present the token in ${o.tokenEnv}` : `WebSocket ${o.path}: no token required (set ${o.tokenEnv} to require one)`,
    );
    const subscribers = new Set<Subscriber>();
    const wss = new WebSocketServer({ noServer: true, maxPayload: o.maxClientMessageBytes, perMessageDeflate: false });
    const registry = ctx.metrics.registry;
    const dropped =
      (registry.getSingleMetric('dcl_ws_subscriber_dropped_total') as Counter<'node'> | undefined) ??
      new Counter({ name: 'dcl_ws_subscriber_dropped_total', help: 'Frames dropped for slow WebSocket subscribers', labelNames: ['node'], registers: [registry] });
    const clients =
      (registry.getSingleMetric('dcl_ws_connections_total') as Counter<'node'> | undefined) ??
      new Counter({ name: 'dcl_ws_connections_total', help: 'WebSocket connections accepted', labelNames: ['node'], registers: [registry] });
    const encodedTotal =
      (registry.getSingleMetric('dcl_ws_encoded_total') as Counter<'node' | 'payload'> | undefined) ??
      new Counter({ name: 'dcl_ws_encoded_total', help: 'Payloads encoded for WebSocket subscribers (once per frame and format)', labelNames: ['node', 'payload'], registers: [registry] });
    const encoder = new FrameEncoder({
      workers: o.encodeWorkers ?? defaultEncodeWorkers(),
      maxInFlight: o.encodeQueue,
      onError: (err) => ctx.log.warn({ err }, 'encoder thread failed; starting another'),
    });
    let encodeFailures = 0;
    let sawDepth = false;
    const afterGap = new Set<string>();

    const checkStreams = (sub: Subscription) => {
      const known = ctx.streams.names();
      const unknown = unknownStreams(sub, known);
      if (unknown.length > 0) throw new SubscriptionError(`unknown stream${unknown.length > 1 ? 's' : ''} ${unknown.map((u) => `"${clipForLog(u, 60)}"`).join(', ')} (streams: ${known.join(', ') || 'none'})`);
    };

    if (o.viewer && !ctx.http.hasRoute('/')) mountViewer(ctx.http, ctx.log);
    ctx.http.upgrade(o.path, (req, socket, head) => {
      const refusal = checkAccess(req, token, o.allowedOrigins);
      if (refusal) {
        ctx.log.warn({ reason: refusal.reason, origin: req.headers.origin }, 'WebSocket connection refused');
        refuseUpgrade(socket, refusal.status, refusal.reason);
        return;
      }
      let sub: Subscription;
      try {
        sub = parseSubscription(new URL(req.url ?? '/', 'http://x').searchParams, DEFAULT_SUBSCRIPTION);
        checkStreams(sub);
      } catch (e) {
        refuseUpgrade(socket, 400, (e as Error).message);
        return;
      }
      wss.handleUpgrade(req, socket, head, (ws) => {
        const s: Subscriber = { ws, sub, dropped: 0, sent: 0, chain: Promise.resolve(), owedDiscont: new Set() };
        subscribers.add(s);
        // Start the encoder threads before the first frame needs them (not for plain video pipelines).
        if (sawDepth || sub.rgbFormat === 'jpeg') encoder.warm();
        clients.inc({ node: ctx.name });
        ctx.log.info({ subscribers: subscribers.size }, 'subscriber connected');
        ws.on('message', (data, isBinary) => {
          if (isBinary) {
            ws.close(1003, 'binary messages are not accepted');
            return;
          }
          try {
            const msg = JSON.parse(data.toString()) as unknown;
            if (msg === null || typeof msg !== 'object' || (msg as { type?: unknown }).type !== 'subscribe') {
              throw new SubscriptionError('expected {"type":"subscribe", ...}');
            }
            const next = parseSubscription(msg as Record<string, unknown>, s.sub);
            checkStreams(next);
            s.sub = next;
          } catch (e) {
            const reason = e instanceof SubscriptionError ? e.message : 'malformed JSON';
            ctx.log.warn({ reason }, 'closing subscriber after a malformed message');
            ws.close(1007, reason.slice(0, 120));
          }
        });
        ws.on('error', (err) => ctx.log.warn({ err }, 'subscriber socket error'));
        ws.on('close', () => {
          subscribers.delete(s);
          ctx.log.info({ subscribers: subscribers.size, sent: s.sent, dropped: s.dropped }, 'subscriber left');
        });
      });
    });

    // Each subscriber learns its own drop count (shared frame messages cannot carry it).
    const statsTimer = setInterval(() => {
      for (const s of subscribers) {
        if (s.ws.readyState === s.ws.OPEN) s.ws.send(JSON.stringify({ type: 'stats', sent: s.sent, dropped: s.dropped }));
      }
    }, 1000);
    statsTimer.unref();

    const drop = (s: Subscriber, f: VideoFrame | DepthFrame) => {
      if (discontinuous.has(f)) s.owedDiscont.add(f.streamId);
      s.dropped++;
      dropped.inc({ node: ctx.name });
    };

    return {
      async process(_port: string, p: Packet) {
        if (p.type === 'discontinuity') {
          afterGap.add(p.streamId);
          return;
        }
        if (p.type !== 'video' && p.type !== 'depth') return;
        // The first frame after a discontinuity says so (GStreamer's DISCONT): subscribers must not relate it to the one before.
        if (afterGap.delete(p.streamId)) {
          discontinuous.add(p);
          if (p.type === 'depth' && p.source) discontinuous.add(p.source);
        }
        if (p.type === 'depth') sawDepth = true;
        if (subscribers.size === 0) return;
        const targets: Array<{ s: Subscriber; wants: Want[] }> = [];
        const toEncode = new Map<string, Want>();
        for (const s of subscribers) {
          if (s.ws.readyState !== s.ws.OPEN) continue;
          if (s.sub.streams && !s.sub.streams.includes(p.streamId)) continue;
          if (s.ws.bufferedAmount > o.maxBufferedBytes) {
            drop(s, p);
            continue;
          }
          const wants = wantsFor(p, s.sub);
          for (const w of wants) if (needsEncoding(w)) toEncode.set(w.key, w);
          targets.push({ s, wants });
        }
        if (targets.length === 0) return;

        // One encoder request per frame, holding each wanted encoded payload once.
        let encoded: Promise<Uint8Array[]> | null = null;
        const encodedKeys = [...toEncode.keys()];
        if (encodedKeys.length > 0) {
          const jobs = encodedKeys.map((k) => jobFor(toEncode.get(k)!, o.jpegQuality));
          encoded = encoder.tryEncode(jobs);
          if (!encoded && o.encodeWaitMs > 0 && (await encoder.waitForSlot(o.encodeWaitMs))) encoded = encoder.tryEncode(jobs);
        }
        const messages = new Map<string, Promise<Buffer | null>>();
        if (encoded) {
          const all = encoded.then(
            (outs) => outs,
            (err: Error) => {
              if (encodeFailures++ % 100 === 0) ctx.log.warn({ err, failures: encodeFailures }, 'encoding a frame failed; dropping it for image subscribers');
              return null;
            },
          );
          encodedKeys.forEach((k, i) => {
            const w = toEncode.get(k)!;
            messages.set(
              k,
              all.then((outs) => {
                if (!outs) return null;
                encodedTotal.inc({ node: ctx.name, payload: `${w.frame.type === 'depth' ? 'depth' : 'rgb'}-${w.format}` });
                return frameMessage(w, outs[i]);
              }),
            );
          });
        }
        for (const { s, wants } of targets) {
          if (!encoded && wants.some(needsEncoding)) {
            drop(s, p);
            continue;
          }
          const msgs = wants.map((w) => {
            let m = messages.get(w.key);
            if (!m) messages.set(w.key, (m = Promise.resolve(frameMessage(w, rawPayload(w)))));
            return m;
          });
          s.chain = s.chain.then(async () => {
            const ready = await Promise.all(msgs);
            if (ready.some((m) => m === null)) {
              drop(s, p);
              return;
            }
            if (s.ws.readyState !== s.ws.OPEN) return;
            const owed = s.owedDiscont.delete(p.streamId) && !discontinuous.has(p);
            for (const m of ready) s.ws.send(owed ? withDiscont(m!) : m!);
            s.sent++;
          }).catch((err: unknown) => ctx.log.warn({ err }, 'sending to a subscriber failed'));
        }
      },
      async flush() {
        // Frames still being encoded go out before the sink reports it is done.
        await Promise.all([...subscribers].map((s) => s.chain));
      },
      async close() {
        clearInterval(statsTimer);
        let waited: NodeJS.Timeout | undefined;
        await Promise.race([Promise.all([...subscribers].map((s) => s.chain)), new Promise((r) => (waited = setTimeout(r, 2000)))]);
        clearTimeout(waited);
        await encoder.close();
        for (const s of subscribers) s.ws.close(1001, 'pipeline stopping');
        // A stalled subscriber never answers the close handshake: do not let it hold the shutdown for ws's 30 s timeout.
        const force = setTimeout(() => {
          for (const s of subscribers) s.ws.terminate();
        }, 1000);
        await new Promise<void>((resolve) => wss.close(() => resolve()));
        clearTimeout(force);
      },
    };
  },
});

const VIEWER_DIR = fileURLToPath(new URL('../../../src/server/viewer/', import.meta.url));

/**
 * The viewer's files: a fixed list of paths (nothing else under the folders is reachable). three.js and its
 * OrbitControls come from node_modules (the `three` dependency), never from a CDN: the viewer works offline.
 */
interface ViewerFile {
  readonly path: string;
  readonly file: string;
  readonly type: string;
  /** A pinned dependency's file (cached by browsers for a day). */
  readonly immutable?: boolean;
}

function viewerFiles(log: NodeContext['log']): ViewerFile[] {
  const js = 'text/javascript; charset=utf-8';
  const files: ViewerFile[] = [
    { path: '/viewer.js', file: join(VIEWER_DIR, 'viewer.js'), type: js },
    { path: '/pointcloud.js', file: join(VIEWER_DIR, 'pointcloud.js'), type: js },
    { path: '/favicon.svg', file: join(VIEWER_DIR, 'favicon.svg'), type: 'image/svg+xml' },
    // Browsers ask for /favicon.ico whatever the page says: the same SVG (they sniff the type from the header).
    { path: '/favicon.ico', file: join(VIEWER_DIR, 'favicon.svg'), type: 'image/svg+xml' },
  ];
  try {
    const require = createRequire(import.meta.url);
    const threeBuild = dirname(require.resolve('three')); // node_modules/three/build (the require entry is build/three.cjs)
    files.push(
      { path: '/vendor/three/three.module.js', file: join(threeBuild, 'three.module.js'), type: js, immutable: true },
      { path: '/vendor/three/three.core.js', file: join(threeBuild, 'three.core.js'), type: js, immutable: true },
      { path: '/vendor/three/addons/controls/OrbitControls.js', file: require.resolve('three/examples/jsm/controls/OrbitControls.js'), type: js, immutable: true },
    );
  } catch {
    // A checkout whose node_modules predates the dependency: the viewer works, its 3D view says it is unavailable.
    log.warn('the "three" package is not installed (run npm install): the viewer\'s 3D view is unavailable');
  }
  return files;
}

function mountViewer(http: NodeContext['http'], log: NodeContext['log']): void {
  const html = readFileSync(join(VIEWER_DIR, 'index.html'));
  const luts = JSON.stringify(Object.fromEntries(COLORMAP_NAMES.map((n) => [n, Array.from(colormapByName(n))])));
  http.route('/', (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-cache' }).end(html);
  });
  http.route('/colormaps.json', (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' }).end(luts);
  });
  for (const f of viewerFiles(log)) {
    // Read on first request and kept (three.js is about 2 MB: only pipelines whose viewer is opened hold it).
    let body: Promise<Buffer> | null = null;
    http.route(f.path, async (_req, res) => {
      body ??= readFile(f.file).catch((e: unknown) => {
        body = null;
        throw e;
      });
      const bytes = await body;
      // The viewer's own files may change with a checkout (no-cache revalidates); a pinned three.js build does not within a day.
      res.writeHead(200, { 'content-type': f.type, 'cache-control': f.immutable ? 'public, max-age=86400' : 'no-cache' }).end(bytes);
    });
  }
}

/** The messages a subscriber wants for a frame, in sending order (RGB before its depth). */
function wantsFor(p: VideoFrame | DepthFrame, sub: Subscription): Want[] {
  const rgb = (f: VideoFrame): Want => ({ key: `rgb:${sub.rgbFormat}`, frame: f, format: sub.rgbFormat });
  if (p.type === 'video') return [rgb(p)];
  const out: Want[] = [];
  if (sub.rgb && p.source) out.push(rgb(p.source));
  const image = sub.depthFormat === 'jpeg' || sub.depthFormat === 'png';
  if (sub.gt && p.source?.gtDepth) out.push({ key: 'gt', frame: p, format: 'f32', gt: true });
  out.push(
    image
      ? { key: `depth:${sub.depthFormat}:${sub.colormap}`, frame: p, format: sub.depthFormat, colormap: sub.colormap }
      : { key: `depth:${sub.depthFormat}`, frame: p, format: sub.depthFormat },
  );
  return out;
}

/** rgb24 and f32 payloads are the frame's own bytes; everything else is made by the encoder. */
function needsEncoding(w: Want): boolean {
  return w.gt === true || !(w.format === 'rgb24' || w.format === 'f32');
}

function jobFor(w: Want, quality: number): EncodeJob {
  const f = w.frame;
  const base = { width: f.width, height: f.height, format: w.format as EncodeJob['format'], quality };
  if (w.gt && f.type === 'depth' && f.source?.gtDepth) {
    return { ...base, format: 'gt', depth: f.data, gtDepth: f.source.gtDepth, gtWidth: f.source.width, gtHeight: f.source.height };
  }
  return f.type === 'depth' ? { ...base, depth: f.data, colormap: w.colormap } : { ...base, rgb: f.data };
}

function rawPayload(w: Want): Uint8Array {
  const d = w.frame.data;
  return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
}

function frameMessage(w: Want, payload: Uint8Array): Buffer {
  const f = w.frame;
  if (w.gt && f.type === 'depth' && f.source) {
    // The encoder put AbsRel and delta1 in front of the GT disparity.
    const metrics = new Float32Array(payload.buffer.slice(payload.byteOffset, payload.byteOffset + 8));
    const round = (v: number) => (Number.isFinite(v) ? Math.round(v * 1e4) / 1e4 : undefined);
    const header: FrameHeader = {
      ...baseHeader(f),
      width: f.source.width,
      height: f.source.height,
      kind: 'gt',
      format: 'f32',
      window: f.window,
      absrel: round(metrics[0]),
      delta1: round(metrics[1]),
      ...intrinsicsField(f.source.intrinsics, f.source, f.source),
    };
    return encodeFrameMessage(header, payload.subarray(8));
  }
  const header: FrameHeader =
    f.type === 'depth'
      ? {
          ...baseHeader(f),
          kind: 'depth',
          format: w.format,
          window: f.window,
          ...(f.interpolated ? { interpolated: true } : {}),
          ...(w.colormap ? { colormap: w.colormap } : {}),
          ...(f.source ? intrinsicsField(f.source.intrinsics, f.source, f) : {}),
        }
      : { ...baseHeader(f), kind: 'rgb', format: w.format, ...intrinsicsField(f.intrinsics, f, f) };
  return encodeFrameMessage(header, payload);
}

/** The header's `intrinsics` for a message of size `to`, from the source frame's (of size `from`); nothing when unknown. */
function intrinsicsField(k: Intrinsics | undefined, from: { width: number; height: number }, to: { width: number; height: number }): { intrinsics?: Intrinsics } {
  if (!k) return {};
  const s = scaleIntrinsics(k, from, to);
  const r = (v: number) => Math.round(v * 1e4) / 1e4;
  return { intrinsics: { fx: r(s.fx), fy: r(s.fy), cx: r(s.cx), cy: r(s.cy) } };
}

/** The same message with `discont: true` in its header (a subscriber that missed the marked frame). */
function withDiscont(msg: Buffer): Buffer {
  const { header, payload } = decodeFrameMessage(msg);
  return encodeFrameMessage({ ...header, discont: true }, payload);
}

/** Frames that follow a discontinuity of their stream (marked `discont` in their header). */
const discontinuous = new WeakSet<VideoFrame | DepthFrame>();

function baseHeader(f: VideoFrame | DepthFrame): Omit<FrameHeader, 'kind' | 'format'> {
  return { ...(discontinuous.has(f) ? { discont: true } : {}), stream: f.streamId, seq: f.seq, ptsMs: f.ptsMs, width: f.width, height: f.height, latencyMs: Math.round((nowMs() - f.arrivalMs) * 10) / 10, ...(f.fleet ? { worker: f.fleet.worker, publishedMs: f.fleet.publishedMs } : {}) };
}

function checkAccess(req: IncomingMessage, token: string | undefined, allowedOrigins: readonly string[]): { status: number; reason: string } | null {
  const origin = req.headers.origin;
  if (origin !== undefined) {
    const sameOrigin = (() => {
      try {
        return new URL(origin).host === req.headers.host;
      } catch {
        return false;
      }
    })();
    if (!sameOrigin && !allowedOrigins.includes(origin) && !allowedOrigins.includes('*')) {
      return { status: 403, reason: `origin ${clipForLog(origin, 200)} is not allowed` };
    }
  }
  if (token !== undefined) {
    if (presentedToken(req) !== token) return { status: 401, reason: 'a valid access token is required' };
  }
  return null;
}
