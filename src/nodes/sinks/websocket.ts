import { z } from 'zod';
import { WebSocketServer, type WebSocket } from 'ws';
import type { IncomingMessage } from 'node:http';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { defineNode, type NodeContext } from '../../graph/node-kind.js';
import { COLORMAP_NAMES, colormapByName } from '../../io/colormap.js';
import { nowMs, type DepthFrame, type Packet, type VideoFrame } from '../../graph/packets.js';
import { DEFAULT_SUBSCRIPTION, encodeFrameMessage, type FrameHeader, type Subscription } from '../../protocol/frame-message.js';
import { parseSubscription, SubscriptionError } from '../../protocol/subscription.js';
import { Counter } from 'prom-client';

// Broadcasts frames to WebSocket subscribers on the pipeline's HTTP server. Each subscriber has
// its own backpressure: when its socket buffer is over the limit, frames are dropped for it
// alone (and counted), so a stalled client never slows the pipeline or the other clients.

export const websocketOptions = z
  .object({
    path: z.string().startsWith('/').default('/ws'),
    /** Per-subscriber send buffer bound, in bytes; beyond it frames are dropped for that subscriber. */
    maxBufferedBytes: z.number().int().min(1024).default(8 * 1024 * 1024),
    /** Largest message a client may send (control messages are small JSON). */
    maxClientMessageBytes: z.number().int().min(64).max(1 << 20).default(4096),
    /** Name of the environment variable holding the access token; when that variable is set, clients must present it. */
    tokenEnv: z.string().default('DCL_TOKEN'),
    /** Allowed browser origins; empty means same-origin and non-browser clients only. */
    allowedOrigins: z.array(z.string()).default([]),
    /** Serve the browser viewer at / (and its colour maps at /colormaps.json). */
    viewer: z.boolean().default(true),
  })
  .strict();

interface Subscriber {
  readonly ws: WebSocket;
  sub: Subscription;
  dropped: number;
  sent: number;
}

export const websocketNode = defineNode({
  kind: 'websocket',
  role: 'sink',
  description: 'Broadcast video and depth frames to WebSocket subscribers',
  inputs: { frames: 'any' },
  outputs: {},
  options: websocketOptions,
  create(o, ctx) {
    const token = process.env[o.tokenEnv] || undefined;
    const subscribers = new Set<Subscriber>();
    const wss = new WebSocketServer({ noServer: true, maxPayload: o.maxClientMessageBytes, perMessageDeflate: false });
    const registry = ctx.metrics.registry;
    const dropped =
      (registry.getSingleMetric('dcl_ws_subscriber_dropped_total') as Counter<'node'> | undefined) ??
      new Counter({ name: 'dcl_ws_subscriber_dropped_total', help: 'Frames dropped for slow WebSocket subscribers', labelNames: ['node'], registers: [registry] });
    const clients =
      (registry.getSingleMetric('dcl_ws_connections_total') as Counter<'node'> | undefined) ??
      new Counter({ name: 'dcl_ws_connections_total', help: 'WebSocket connections accepted', labelNames: ['node'], registers: [registry] });

    if (o.viewer && !ctx.http.hasRoute('/')) mountViewer(ctx.http);
    ctx.http.upgrade(o.path, (req, socket, head) => {
      const refusal = checkAccess(req, token, o.allowedOrigins);
      if (refusal) {
        ctx.log.warn({ reason: refusal.reason, origin: req.headers.origin }, 'WebSocket connection refused');
        socket.end(`HTTP/1.1 ${refusal.status}\r\nConnection: close\r\nContent-Type: text/plain\r\n\r\n${refusal.reason}\n`);
        return;
      }
      let sub: Subscription;
      try {
        sub = parseSubscription(new URL(req.url ?? '/', 'http://x').searchParams, DEFAULT_SUBSCRIPTION);
      } catch (e) {
        socket.end(`HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Type: text/plain\r\n\r\n${(e as Error).message}\n`);
        return;
      }
      wss.handleUpgrade(req, socket, head, (ws) => {
        const s: Subscriber = { ws, sub, dropped: 0, sent: 0 };
        subscribers.add(s);
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
            s.sub = parseSubscription(msg as Record<string, unknown>, s.sub);
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

    return {
      process(_port: string, p: Packet) {
        if (p.type !== 'video' && p.type !== 'depth') return;
        if (subscribers.size === 0) return;
        const cache = new Map<string, Buffer>();
        for (const s of subscribers) {
          if (s.ws.readyState !== s.ws.OPEN) continue;
          if (s.ws.bufferedAmount > o.maxBufferedBytes) {
            s.dropped++;
            dropped.inc({ node: ctx.name });
            continue;
          }
          for (const msg of messagesFor(p, s, cache)) s.ws.send(msg);
          s.sent++;
        }
      },
      async close() {
        clearInterval(statsTimer);
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

function mountViewer(http: NodeContext['http']): void {
  const html = readFileSync(fileURLToPath(new URL('../../../src/server/viewer/index.html', import.meta.url)));
  const luts = JSON.stringify(Object.fromEntries(COLORMAP_NAMES.map((n) => [n, Array.from(colormapByName(n))])));
  http.route('/', (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-cache' }).end(html);
  });
  http.route('/colormaps.json', (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' }).end(luts);
  });
}

function messagesFor(p: VideoFrame | DepthFrame, s: Subscriber, cache: Map<string, Buffer>): Buffer[] {
  const out: Buffer[] = [];
  if (p.type === 'video') {
    out.push(cached(cache, 'rgb', () => rgbMessage(p)));
    return out;
  }
  const fmt = s.sub.depthFormat === 'jpeg' || s.sub.depthFormat === 'png' ? 'u16' : s.sub.depthFormat;
  if (s.sub.rgb && p.source) out.push(cached(cache, 'rgb', () => rgbMessage(p.source!)));
  out.push(cached(cache, `depth-${fmt}`, () => depthMessage(p, fmt)));
  return out;
}

function cached(cache: Map<string, Buffer>, key: string, make: () => Buffer): Buffer {
  let m = cache.get(key);
  if (!m) cache.set(key, (m = make()));
  return m;
}

function baseHeader(f: VideoFrame | DepthFrame): Omit<FrameHeader, 'kind' | 'format'> {
  return { stream: f.streamId, seq: f.seq, ptsMs: f.ptsMs, width: f.width, height: f.height, latencyMs: Math.round((nowMs() - f.arrivalMs) * 10) / 10 };
}

function rgbMessage(f: VideoFrame): Buffer {
  return encodeFrameMessage({ ...baseHeader(f), kind: 'rgb', format: 'rgb24' }, f.data);
}

function depthMessage(f: DepthFrame, format: 'u16' | 'f32'): Buffer {
  const header: FrameHeader = { ...baseHeader(f), kind: 'depth', format, window: f.window };
  if (format === 'f32') return encodeFrameMessage(header, new Uint8Array(f.data.buffer, f.data.byteOffset, f.data.byteLength));
  const u16 = new Uint16Array(f.data.length);
  for (let i = 0; i < u16.length; i++) {
    const v = f.data[i];
    u16[i] = v <= 0 ? 0 : v >= 1 ? 65535 : Math.round(v * 65535);
  }
  return encodeFrameMessage(header, new Uint8Array(u16.buffer));
}

function checkAccess(req: IncomingMessage, token: string | undefined, allowedOrigins: readonly string[]): { status: string; reason: string } | null {
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
      return { status: '403 Forbidden', reason: `origin ${origin} is not allowed` };
    }
  }
  if (token !== undefined) {
    const url = new URL(req.url ?? '/', 'http://x');
    const presented = url.searchParams.get('token') ?? req.headers.authorization?.replace(/^Bearer\s+/i, '');
    if (presented !== token) return { status: '401 Unauthorized', reason: 'a valid access token is required' };
  }
  return null;
}
