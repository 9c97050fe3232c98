import { z } from 'zod';
import type { Logger } from 'pino';
import type { Subscription } from '@nats-io/nats-core';
import { defineNode } from '../../graph/node-kind.js';
import type { VideoFrame } from '../../graph/packets.js';
import { decodeFrameMessage, type FrameHeader } from '../../protocol/frame-message.js';
import { createPipeline, packRgb, type GstElement, type GstPipeline } from '../../media/gst.js';
import { sharedNats } from '../../fleet/nats.js';
import { EDGE_HEADER, framesSubject } from '../../fleet/subjects.js';

// The worker half of an edge camera (camera URL `edge:`): the JPEG frames that `fleet edge NAME`
// publishes on dcl.frames.NAME, decoded by GStreamer (appsrc ! jpegdec ! videoconvert ! appsink:
// the decoding runs on GStreamer's threads; the main thread only parses the small DCL1 header and
// copies the compressed bytes in) and emitted as video frames with the edge's sequence numbers and
// timestamps. Messages wait in a bounded queue (the oldest dropped, marked on the next frame) while
// the decoder holds its few frames. An edge that restarts (a new edge id, or its numbering going
// back) is passed on as a discontinuity; no frames for `staleMs` shows the stream as down.

export const natsFramesOptions = z
  .object({
    url: z
      .string()
      .min(1)
      .optional()
      .describe(
        "NATS server(s), nats://host:port[,host:port] or tls://; default: the process's fleet connection (a fleet worker's), else nats://127.0.0.1:4222. Credentials from DCL_NATS_TOKEN or DCL_NATS_USER/DCL_NATS_PASSWORD.",
      ),
    camera: z.string().min(1).optional().describe("Camera whose frames to take from dcl.frames.<camera> (default: this stream's name)."),
    staleMs: z.number().int().min(100).default(5000).describe('No frame for this long: the stream is shown down.'),
    queue: z
      .number()
      .int()
      .min(1)
      .max(256)
      .default(4)
      .describe('JPEG messages held while the decoder is busy; beyond it the oldest are dropped (marked on the next frame).'),
    fps: z
      .number()
      .min(0)
      .max(1000)
      .default(0)
      .describe("Take at most this many frames per second (by the edge's presentation times; the rest are skipped); 0: every frame."),
  })
  .strict();

/**
 * Frames handed to GStreamer and not yet emitted. One: jpegdec drops some undecodable images
 * without a word, so with two in flight a later frame could be taken for the dropped one; with one,
 * a frame that does not come out within DECODE_TIMEOUT_MS restarts the decoder instead. (The
 * pipeline has one streaming thread, so a second frame in flight would only hide the hand-off.)
 */
const DECODE_IN_FLIGHT = 1;
const DECODE_TIMEOUT_MS = 2000;

interface Pending {
  readonly header: FrameHeader;
  readonly jpeg: Uint8Array;
  readonly edge: string;
  /** Messages dropped from the queue right before this one. */
  droppedBefore: number;
}

export const natsFramesNode = defineNode({
  kind: 'nats-frames',
  role: 'source',
  description: 'Video frames of an edge camera from NATS (JPEG on dcl.frames.<camera>, published by `fleet edge`), decoded by GStreamer',
  inputs: {},
  outputs: { video: 'video' },
  options: natsFramesOptions,
  reportsStatus: true,
  restart: { maxRestarts: Infinity, initialDelayMs: 250, maxDelayMs: 5000 },
  async create(o, ctx) {
    const camera = o.camera ?? ctx.stream;
    const url = o.url ?? processNatsUrl(ctx.shared.keys()) ?? 'nats://127.0.0.1:4222';
    const conn = await sharedNats(ctx.shared, url, ctx.log, 'depthcrafter-live worker');
    const nc = conn.value;
    const queue: Pending[] = [];
    let droppedInQueue = 0;
    let wake: (() => void) | null = null;
    let bad = 0;
    let lastTakenPts: number | null = null;
    const sub: Subscription = nc.subscribe(framesSubject(camera), {
      callback: (err, m) => {
        if (err) return;
        let msg: { header: FrameHeader; payload: Uint8Array };
        try {
          msg = decodeFrameMessage(m.data);
          const h = msg.header;
          if (h.kind !== 'rgb' || h.format !== 'jpeg') throw new Error(`expected kind rgb, format jpeg; got ${h.kind}, ${h.format}`);
          checkJpeg(msg.payload, h.width, h.height);
        } catch (e) {
          if (bad++ % 100 === 0) ctx.log.warn({ err: e, camera }, 'ignoring a malformed frame message on the bus');
          return;
        }
        const h = msg.header;
        if (o.fps > 0) {
          if (lastTakenPts !== null && h.ptsMs >= lastTakenPts && h.ptsMs - lastTakenPts < 1000 / o.fps - 2) return;
          lastTakenPts = h.ptsMs;
        }
        // Its own copy: the client's read buffer is reused for later messages.
        const item: Pending = { header: h, jpeg: new Uint8Array(msg.payload), edge: m.headers?.get(EDGE_HEADER) ?? '', droppedBefore: 0 };
        if (queue.length >= o.queue) {
          // The oldest goes; the frame now first in line (or this one) carries the count.
          const gone = queue.shift()!;
          (queue[0] ?? item).droppedBefore += gone.droppedBefore + 1;
          droppedInQueue++;
        }
        queue.push(item);
        wake?.();
      },
    });

    let frames = 0;
    let lastFrameAt = performance.now();
    let lastEdge: string | undefined;
    let decodeMs = 0;
    let decodeErrors = 0;
    const report = () => {
      const age = performance.now() - lastFrameAt;
      const details = { edge: lastEdge ?? null, frames, dropped: droppedInQueue, decodeMs: Math.round(decodeMs * 100) / 100, decodeErrors };
      if (frames > 0 && age < o.staleMs) ctx.setStatus({ state: 'ok', message: `frames from edge ${lastEdge}`, details });
      else
        ctx.setStatus({
          state: frames === 0 ? 'starting' : 'down',
          message:
            frames === 0
              ? `waiting for an edge to publish camera ${camera} (fleet edge ${camera} URL)`
              : `no frames from the edge for ${(age / 1000).toFixed(0)} s (last edge ${lastEdge})`,
          details,
        });
    };
    report();
    const timer = setInterval(report, 1000);
    timer.unref();

    return {
      async run() {
        const decoded: Array<{ frame: VideoFrame; edge: string }> = [];
        let emitted = 0;
        let pushed = 0;
        let lost = 0;
        const decoder = new JpegDecoder<Pending & { pushedAt: number }>(ctx.log, DECODE_TIMEOUT_MS, {
          onFrame: (p, rgb, width, height) => {
            decodeMs = decodeMs === 0 ? performance.now() - p.pushedAt : decodeMs * 0.9 + (performance.now() - p.pushedAt) * 0.1;
            const h = p.header;
            const droppedBefore = p.droppedBefore + lost;
            lost = 0;
            decoded.push({
              edge: p.edge,
              frame: {
                type: 'video',
                streamId: ctx.stream,
                seq: h.seq,
                ptsMs: h.ptsMs,
                // The edge's arrival time, as its header gives it: latency counts from the camera.
                arrivalMs: (h.publishedMs ?? Date.now()) - h.latencyMs,
                width,
                height,
                data: rgb,
                ...(h.intrinsics ? { intrinsics: h.intrinsics } : {}),
                ...(droppedBefore > 0 ? { droppedBefore } : {}),
              },
            });
            wake?.();
          },
          onReset: (n, err) => {
            // The frames inside the failed decoder are lost; the next one says so.
            decodeErrors++;
            lost += n;
            pushed -= n;
            if (decodeErrors % 100 === 1) ctx.log.warn({ camera, err, lost: n, decodeErrors }, 'JPEG decoding failed: restarting the decoder');
            wake?.();
          },
        });
        const pump = () => {
          // In the decoder, decoded and waiting, or being emitted: at most DECODE_IN_FLIGHT.
          while (pushed - emitted < DECODE_IN_FLIGHT && queue.length > 0) {
            const next = queue.shift()!;
            decoder.push(next.jpeg, { ...next, pushedAt: performance.now() });
            pushed++;
          }
        };
        const stop = () => wake?.();
        ctx.signal.addEventListener('abort', stop, { once: true });
        let lastSeq = -1;
        try {
          while (!ctx.signal.aborted) {
            pump();
            const next = decoded.shift();
            if (!next) {
              await new Promise<void>((r) => (wake = r));
              wake = null;
              continue;
            }
            const f = next.frame;
            if ((lastEdge !== undefined && next.edge !== lastEdge) || f.seq <= lastSeq) {
              await ctx.emit('video', {
                type: 'discontinuity',
                streamId: ctx.stream,
                reason:
                  next.edge !== lastEdge
                    ? `the edge of camera ${camera} restarted (${lastEdge} -> ${next.edge})`
                    : `the edge of camera ${camera} restarted its numbering`,
                nextSeq: f.seq,
              });
            }
            const first = frames === 0;
            lastEdge = next.edge;
            lastSeq = f.seq;
            lastFrameAt = performance.now();
            frames++;
            if (first || frames % 30 === 0) report();
            await ctx.emit('video', f);
            emitted++;
          }
        } finally {
          ctx.signal.removeEventListener('abort', stop);
          decoder.close();
        }
      },
      async close() {
        clearInterval(timer);
        sub.unsubscribe();
        await conn.release();
      },
    };
  },
});

/** The server list of the one NATS connection this process already holds (a fleet worker's), if there is exactly one. */
function processNatsUrl(keys: readonly string[]): string | undefined {
  const urls = keys.filter((k) => k.startsWith('nats:')).map((k) => k.slice('nats:'.length));
  return urls.length === 1 ? urls[0] : undefined;
}

/**
 * Cheap structural check of a JPEG before GStreamer sees it (a truncated or foreign file would
 * stop the decoder's pipeline): start and end markers, and a frame header whose size is the
 * message's. Walks the marker segments only, never the pixels.
 */
export function checkJpeg(b: Uint8Array, width: number, height: number): void {
  if (b.length < 4 || b[0] !== 0xff || b[1] !== 0xd8) throw new Error('payload is not a JPEG (no SOI marker)');
  if (b[b.length - 2] !== 0xff || b[b.length - 1] !== 0xd9) throw new Error('JPEG is truncated (no EOI marker)');
  let i = 2;
  while (i + 4 <= b.length) {
    if (b[i] !== 0xff) throw new Error(`JPEG marker expected at byte ${i}`);
    const marker = b[i + 1];
    if (marker === 0xff) {
      i++; // fill byte
      continue;
    }
    const len = (b[i + 2] << 8) | b[i + 3];
    // SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC).
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      if (i + 9 > b.length) break;
      const h = (b[i + 5] << 8) | b[i + 6];
      const w = (b[i + 7] << 8) | b[i + 8];
      if (w !== width || h !== height) throw new Error(`JPEG is ${w}x${h}, its header says ${width}x${height}`);
      return;
    }
    if (marker === 0xda) break; // start of scan before any frame header
    i += 2 + len;
  }
  throw new Error('JPEG has no frame header');
}

interface DecoderEvents<T> {
  /** A decoded frame (packed RGB) for the tag it was pushed with, in push order. */
  readonly onFrame: (tag: T, rgb: Uint8Array, width: number, height: number) => void;
  /** The pipeline failed; `lost` frames pushed into it will not come out. A new one starts on the next push. */
  readonly onReset: (lost: number, err: Error) => void;
}

/**
 * JPEG to RGB in GStreamer: `appsrc ! jpegdec ! videoconvert ! appsink`. push() copies the bytes
 * into a GstBuffer (a memcpy on the calling thread); decoding and colour conversion run on the
 * pipeline's streaming thread, and the appsink is pulled from a libuv pool thread. Frames come
 * out in push order and are matched to their tags by a FIFO (the binding gives no timestamps). A
 * decoding error ends the pipeline, and jpegdec drops some broken images silently: either way (an
 * error, or no frame within `timeoutMs` of the oldest push) the pipeline is replaced and its tags
 * reported lost. Keep one image in flight where a tag must never go to another image's frame.
 */
export class JpegDecoder<T> {
  private pipeline: GstPipeline | null = null;
  private src: GstElement | null = null;
  private generation = 0;
  private tags: Array<{ tag: T; at: number }> = [];
  private closed = false;
  private readonly watchdog: NodeJS.Timeout;

  constructor(
    private readonly log: Logger,
    private readonly timeoutMs: number,
    private readonly events: DecoderEvents<T>,
  ) {
    this.watchdog = setInterval(
      () => {
        const oldest = this.tags[0];
        if (oldest && performance.now() - oldest.at > this.timeoutMs)
          this.fail(new Error(`no frame out of the JPEG decoder within ${this.timeoutMs} ms (an image it could not decode)`));
      },
      Math.max(10, Math.min(250, timeoutMs / 4)),
    );
    this.watchdog.unref();
  }

  /** Frames pushed and not yet out. */
  get inFlight(): number {
    return this.tags.length;
  }

  push(jpeg: Uint8Array, tag: T): void {
    if (this.closed) throw new Error('JPEG decoder closed');
    if (!this.src) this.open();
    this.tags.push({ tag, at: performance.now() });
    this.src!.push(Buffer.from(jpeg.buffer, jpeg.byteOffset, jpeg.byteLength));
  }

  close(): void {
    this.closed = true;
    clearInterval(this.watchdog);
    this.drop();
  }

  private open(): void {
    const gen = ++this.generation;
    const pipeline = createPipeline(
      // parsed=true: every buffer is one whole image (no parsing across buffers).
      'appsrc name=src format=time is-live=false block=false caps=image/jpeg,parsed=true,framerate=0/1' +
        ' ! jpegdec ! videoconvert ! video/x-raw,format=RGB ! appsink name=sink max-buffers=8 drop=false sync=false',
    );
    const src = pipeline.findChild('src');
    const sink = pipeline.findChild('sink');
    if (!src || !sink) {
      pipeline.stop();
      throw new Error('JPEG decoder pipeline without appsrc/appsink');
    }
    pipeline.pollBus((m) => {
      if (gen !== this.generation) return;
      if (m.type === 'error') this.fail(new Error(`${m.message ?? 'GStreamer error'} (element ${m._src_element_name ?? '?'})`));
      else if (m.type === 'warning') this.log.debug({ element: m._src_element_name, warning: m.message }, 'GStreamer warning (JPEG decoder)');
    });
    const onSample = (buf: Buffer | null, caps: { width?: number; height?: number; format?: string }) => {
      if (gen !== this.generation) return;
      if (buf === null) {
        // Stopped, or failed (the bus message follows): the next push starts a new pipeline.
        if (!this.closed) this.fail(new Error('the JPEG decoder pipeline ended'));
        return;
      }
      const tag = this.tags.shift();
      const width = Number(caps.width);
      const height = Number(caps.height);
      if (tag !== undefined) {
        try {
          this.events.onFrame(tag.tag, packRgb(buf, width, height), width, height);
        } catch (e) {
          this.log.warn({ err: e }, 'a decoded frame could not be used');
        }
      }
      sink.pull(onSample);
    };
    pipeline.play();
    sink.pull(onSample);
    this.pipeline = pipeline;
    this.src = src;
  }

  private fail(err: Error): void {
    const lost = this.tags.length;
    this.drop();
    if (!this.closed) this.events.onReset(lost, err);
  }

  private drop(): void {
    this.generation++;
    this.tags = [];
    const p = this.pipeline;
    this.pipeline = null;
    this.src = null;
    try {
      p?.stop();
    } catch {
      /* already stopped */
    }
  }
}
