import { z } from 'zod';
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { Counter, Gauge, type Registry } from 'prom-client';
import { defineNode } from '../../graph/node-kind.js';
import { backoffDelay } from '../../graph/backoff.js';
import type { VideoFrame } from '../../graph/packets.js';
import { readAppSink } from '../../media/appsink-reader.js';
import { quoteProp } from '../../media/launch.js';
import { redactUrls } from '../../util/redact.js';
import { sleep } from '../../util/sleep.js';
import { FrameIntrinsics, kOption, kSizeOption, stampIntrinsics } from './intrinsics.js';

// An RTSP camera or server (H.264/H.265/MJPEG, whatever decodebin can decode), as a live source.
// The node reconnects by itself, inside run(), with exponential backoff and jitter: a dropped
// network link or a rebooting camera costs a discontinuity, never the pipeline. Credentials
// (in the URL or in user/password) go to rtspsrc as properties and never reach a log line, an
// error message or a metric label: the URL is only ever logged redacted.

export const rtspOptions = z
  .object({
    url: z
      .string()
      .regex(/^rtsps?:\/\/[^\s]+$/i, 'must be an rtsp:// or rtsps:// URL')
      .refine((u) => URL.canParse(u), 'is not a valid URL')
      .describe('rtsp://[user:pass@]host[:port]/path (rtsps:// for TLS); credentials are never logged.'),
    user: z.string().min(1).optional().describe('RTSP user name (overrides the one in the URL).'),
    password: z.string().optional().describe('RTSP password (or in the URL); never logged.'),
    transport: z.enum(['tcp', 'udp']).default('tcp').describe('RTP transport.'),
    latencyMs: z.number().int().min(0).max(60_000).default(200).describe('rtspsrc jitter buffer, in milliseconds.'),
    width: z.number().int().min(8).max(8192).optional().describe('Scale to this width (keeps the aspect when height is unset).'),
    height: z.number().int().min(8).max(8192).optional().describe('Scale to this height.'),
    stallTimeoutMs: z.number().int().min(100).default(5000).describe('No frame for this long while connected = stall: reconnect.'),
    firstFrameTimeoutMs: z.number().int().min(100).default(10_000).describe('No first frame this long after connecting = failed attempt.'),
    reconnect: z
      .object({
        initialDelayMs: z.number().int().min(0).default(250).describe('First delay between reconnect attempts (doubles per failure, with jitter).'),
        maxDelayMs: z
          .number()
          .int()
          .min(0)
          .default(2000)
          .describe('Cap of the delay between attempts: a live camera that comes back is picked up within about this long.'),
        healthyMs: z
          .number()
          .int()
          .min(0)
          .default(5000)
          .describe('A session that delivered frames this long resets the backoff (a flapping stream keeps backing off).'),
        maxAttempts: z
          .number()
          .int()
          .min(-1)
          .default(-1)
          .describe(
            'Failed attempts since the last healthy session before the node gives up (and fails its pipeline, or its stream in a multi-stream pipeline); -1 = forever.',
          ),
      })
      .strict()
      .prefault({})
      .describe('Reconnection with exponential backoff and jitter.'),
    queue: z.number().int().min(1).max(256).default(2).describe('Appsink bound (frames); a live source drops the oldest when downstream is slower.'),
    streamId: z.string().min(1).optional().describe('Stream id stamped on frames (default: the stream or node name).'),
    K: kOption,
    kSize: kSizeOption,
  })
  .strict();

export type RtspOptions = z.infer<typeof rtspOptions>;

export interface RtspTarget {
  /** The URL without user-info: safe to log. */
  readonly location: string;
  readonly user?: string;
  readonly password?: string;
}

/** Split user-info off an RTSP URL; explicit user/password options win over the URL's. */
export function rtspTarget(url: string, user?: string, password?: string): RtspTarget {
  const u = new URL(url);
  const urlUser = u.username ? safeDecode(u.username) : undefined;
  const urlPassword = u.password ? safeDecode(u.password) : undefined;
  const location = `${u.protocol}//${u.host}${u.pathname}${u.search}`;
  return { location, user: user ?? urlUser, password: password ?? urlPassword };
}

/** The launch string (up to the appsink) for an RTSP source. It carries the credentials: never log it. */
export function rtspLaunch(o: Pick<RtspOptions, 'url' | 'user' | 'password' | 'transport' | 'latencyMs' | 'width' | 'height'>): string {
  const t = rtspTarget(o.url, o.user, o.password);
  const auth = (t.user !== undefined ? ` user-id=${quoteProp(t.user)}` : '') + (t.password !== undefined ? ` user-pw=${quoteProp(t.password)}` : '');
  // Square pixels: with one side given, videoscale then picks the other to keep the picture's aspect
  // (without it, it keeps the height and changes the pixel aspect ratio instead: a stretched image).
  const size =
    (o.width !== undefined ? `,width=${o.width}` : '') +
    (o.height !== undefined ? `,height=${o.height}` : '') +
    (o.width !== undefined || o.height !== undefined ? ',pixel-aspect-ratio=1/1' : '');
  return (
    `rtspsrc location=${quoteProp(t.location)} protocols=${o.transport} latency=${o.latencyMs}${auth}` +
    ` ! decodebin ! videoconvert ! videoscale ! video/x-raw,format=RGB${size}`
  );
}

/** Remove credentials from any text (GStreamer messages may echo the URL or the launch string). */
export function scrubCredentials(text: string, secrets: readonly (string | undefined)[] = []): string {
  let out = redactUrls(text).replace(/\b(user-id|user-pw)=("(?:[^"\\]|\\.)*"|\S+)/g, '$1=***');
  for (const s of secrets) {
    if (s !== undefined && s.length >= 3) out = out.split(s).join('***');
  }
  return out;
}

/** Per-graph source connection metrics (get-or-create: several source nodes share them). */
export function sourceMetrics(registry: Registry): { connected: Gauge<'node' | 'stream'>; reconnects: Counter<'node' | 'stream'> } {
  const connected =
    (registry.getSingleMetric('dcl_source_connected') as Gauge<'node' | 'stream'> | undefined) ??
    new Gauge({
      name: 'dcl_source_connected',
      help: '1 while a live source receives frames, 0 while it is connecting or reconnecting',
      labelNames: ['node', 'stream'],
      registers: [registry],
    });
  const reconnects =
    (registry.getSingleMetric('dcl_source_reconnects_total') as Counter<'node' | 'stream'> | undefined) ??
    new Counter({ name: 'dcl_source_reconnects_total', help: 'Reconnection attempts of a live source', labelNames: ['node', 'stream'], registers: [registry] });
  return { connected, reconnects };
}

export const rtspNode = defineNode({
  kind: 'rtsp',
  role: 'source',
  description: 'RTSP stream (decoded to RGB), reconnecting with backoff',
  inputs: {},
  outputs: { video: 'video' },
  options: rtspOptions,
  reportsStatus: true,
  async check(o, ctx) {
    // A name that does not resolve here may still resolve where and when the pipeline runs: a doubt, not a mistake.
    const host = new URL(o.url).hostname.replace(/^\[|\]$/g, '');
    if (isIP(host) !== 0) return;
    const ok = await Promise.race([
      lookup(host).then(
        () => true,
        () => false,
      ),
      new Promise<boolean>((r) => setTimeout(() => r(true), 2000).unref()),
    ]);
    if (!ok) ctx.warn(`the RTSP host "${host}" does not resolve from this machine`);
  },
  create(o, ctx) {
    const target = rtspTarget(o.url, o.user, o.password);
    const secrets = [target.password, target.user];
    const safeUrl = target.location;
    const launch = rtspLaunch(o);
    const streamId = o.streamId ?? ctx.stream;
    const K = FrameIntrinsics.fromOptions(o);
    const node = ctx.name;
    const labels = { node, stream: ctx.stream };
    const m = sourceMetrics(ctx.metrics.registry);
    m.connected.set(labels, 0);
    m.reconnects.inc(labels, 0);
    ctx.setStatus({ state: 'starting', message: `connecting to ${safeUrl}`, details: { connected: false } });

    return {
      async run() {
        let retries = 0; // reconnect attempts since the last healthy session
        let framesSinceBreak = 0;
        let sessionStart = 0;
        let authFailures = 0;
        let firstArrivalMs: number | null = null;
        try {
          for (;;) {
            if (ctx.signal.aborted) return;
            let sessionFrames = 0;
            let ptsOffset = 0;
            const t0 = performance.now();
            ctx.log.info({ url: safeUrl, transport: o.transport, attempt: retries }, 'connecting to RTSP stream');
            let reason: string;
            let emitError: unknown = null;
            try {
              const res = await readAppSink({
                launch,
                streamId,
                log: ctx.log,
                signal: ctx.signal,
                maxBuffers: o.queue,
                drop: true,
                sync: false,
                firstSeq: ctx.sequence.value,
                stallTimeoutMs: o.stallTimeoutMs,
                firstFrameTimeoutMs: o.firstFrameTimeoutMs,
                onFrame: (f: VideoFrame) => {
                  if (sessionFrames === 0) {
                    sessionStart = performance.now();
                    authFailures = 0;
                    m.connected.set(labels, 1);
                    // Timestamps continue across reconnects: time since the node's first frame.
                    firstArrivalMs ??= f.arrivalMs;
                    ptsOffset = f.arrivalMs - firstArrivalMs;
                    ctx.log.info({ url: safeUrl, width: f.width, height: f.height, connectMs: Math.round(performance.now() - t0) }, 'RTSP stream connected');
                    ctx.setStatus({ state: 'ok', message: `connected to ${safeUrl} (${f.width}x${f.height})`, details: { connected: true } });
                  }
                  sessionFrames++;
                  framesSinceBreak++;
                  ctx.sequence.value = f.seq + 1;
                  const out = stampIntrinsics(f, K);
                  return ctx.emit('video', ptsOffset === 0 ? out : { ...out, ptsMs: f.ptsMs + ptsOffset }).catch((e: unknown) => {
                    emitError = e; // a graph error, not a network one: do not reconnect over it
                    throw e;
                  });
                },
              });
              if (res.end === 'stopped' || ctx.signal.aborted) return;
              reason = 'end of stream (the server closed the session or the connection)';
            } catch (e) {
              if (ctx.signal.aborted) return;
              if (emitError !== null) throw emitError;
              reason = scrubCredentials(e instanceof Error ? e.message : String(e), secrets);
              // A launch string GStreamer cannot build (a missing plugin) will not get better by retrying.
              // eslint-disable-next-line preserve-caught-error -- the cause would carry the URL's credentials; `reason` is scrubbed
              if (/GStreamer rejected the pipeline|cannot load the GStreamer binding/.test(reason)) throw new Error(`rtsp ${safeUrl}: ${reason}`);
            }
            m.connected.set(labels, 0);
            if (sessionFrames > 0 && performance.now() - sessionStart >= o.reconnect.healthyMs) retries = 0;
            if (framesSinceBreak > 0) {
              framesSinceBreak = 0;
              await ctx.emit('video', { type: 'discontinuity', streamId, reason: `RTSP stream lost (${reason}); reconnecting`, nextSeq: ctx.sequence.value });
            }
            if (o.reconnect.maxAttempts >= 0 && retries >= o.reconnect.maxAttempts) {
              throw new Error(`rtsp ${safeUrl}: giving up after ${retries} reconnect attempt${retries === 1 ? '' : 's'}: ${reason}`);
            }
            const delayMs = backoffDelay(retries, o.reconnect.initialDelayMs, o.reconnect.maxDelayMs);
            retries++;
            const auth = isAuthFailure(reason);
            ctx.setStatus({
              state: 'down',
              message: auth ? `authentication failed for ${safeUrl}: check the user and password` : `reconnecting to ${safeUrl}: ${reason}`,
              details: { connected: false, attempt: retries, retryInMs: Math.round(delayMs), authFailed: auth },
            });
            if (auth) {
              // One clear error, not a warning every attempt: retrying goes on quietly (a password may be fixed on the camera).
              if (authFailures++ === 0) ctx.log.error({ url: safeUrl, reason }, 'RTSP authentication failed: check the user and password (retrying quietly)');
              else ctx.log.debug({ url: safeUrl, attempt: retries }, 'RTSP authentication failed again');
            } else {
              ctx.log.warn(
                { url: safeUrl, reason, attempt: retries, delayMs },
                sessionFrames > 0 ? 'RTSP stream lost; reconnecting' : 'RTSP connection failed; retrying',
              );
            }
            if (!(await sleep(delayMs, ctx.signal))) return;
            m.reconnects.inc(labels);
          }
        } finally {
          m.connected.set(labels, 0);
        }
      },
    };
  },
});

/** rtspsrc reports a 401 from the server as "Unauthorized" / "Not authorized". */
export function isAuthFailure(reason: string): boolean {
  return /unauthori[sz]ed|not authori[sz]ed|\b401\b/i.test(reason);
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
