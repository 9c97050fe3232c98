import type { Logger } from 'pino';
import { createPipeline, packRgb, parseFraction, type BusMessage, type Caps } from './gst.js';
import { nowMs, type VideoFrame } from '../graph/packets.js';
import { redactUrls } from '../util/redact.js';

// Runs a GStreamer launch string that ends in raw RGB video, and hands each frame to a callback.
// The next buffer is pulled only after the callback's promise resolves, so a `block` edge
// downstream fills the (bounded) appsink and GStreamer pauses upstream: lossless file reading.
// With drop=true the appsink itself discards old buffers: a live source is never blocked.

export interface AppSinkReaderOptions {
  /** Launch string up to, not including, the appsink; it must produce video/x-raw,format=RGB. */
  readonly launch: string;
  readonly streamId: string;
  readonly log: Logger;
  readonly signal: AbortSignal;
  /** Appsink queue bound. */
  readonly maxBuffers?: number;
  /** Let the appsink drop its oldest buffers when full (live sources) instead of blocking upstream. */
  readonly drop?: boolean;
  /** Pace to the clock (sync=true) or run as fast as downstream takes frames. */
  readonly sync?: boolean;
  /** First sequence number (a restarted source continues its numbering). */
  readonly firstSeq?: number;
  /** Called with each frame; the next frame is pulled when the returned promise resolves. */
  readonly onFrame: (frame: VideoFrame) => Promise<void> | void;
  /** Called once if no frame arrives within this many ms after start (stall detection), then rejects. */
  readonly firstFrameTimeoutMs?: number;
  readonly stallTimeoutMs?: number;
  /** Called once with the negotiated caps and the stream duration in seconds (-1 when unknown), before the first frame. */
  readonly onStart?: (info: { caps: Caps; durationSec: number; fps: number | undefined }) => void;
}

export interface AppSinkResult {
  readonly frames: number;
  readonly nextSeq: number;
  /** 'eos' when the stream ended, 'stopped' when the signal aborted. */
  readonly end: 'eos' | 'stopped';
}

export class GStreamerError extends Error {
  constructor(
    message: string,
    readonly element?: string,
    readonly debug?: string,
  ) {
    super(message);
    this.name = 'GStreamerError';
  }
}

export function readAppSink(opts: AppSinkReaderOptions): Promise<AppSinkResult> {
  const maxBuffers = opts.maxBuffers ?? 4;
  const launch = appSinkLaunch(opts.launch, { maxBuffers, drop: opts.drop, sync: opts.sync });
  const pipeline = createPipeline(launch);
  const sink = pipeline.findChild('dclsink');
  if (!sink) throw new GStreamerError('appsink not found in pipeline');
  let seq = opts.firstSeq ?? 0;
  let frames = 0;
  let firstPtsMs: number | null = null;
  let settled = false;

  return new Promise<AppSinkResult>((resolve, reject) => {
    let lastFrameAt = performance.now();
    const startedAt = lastFrameAt;
    const finish = (err: Error | null, end: 'eos' | 'stopped' = 'eos') => {
      if (settled) return;
      settled = true;
      clearInterval(watchdog);
      opts.signal.removeEventListener('abort', onAbort);
      try {
        pipeline.stop();
      } catch {
        /* already stopped */
      }
      if (err) reject(err);
      else resolve({ frames, nextSeq: seq, end });
    };
    const onAbort = () => finish(null, 'stopped');
    opts.signal.addEventListener('abort', onAbort, { once: true });
    if (opts.signal.aborted) queueMicrotask(onAbort); // aborted before we listened

    const watchdog = setInterval(() => {
      const now = performance.now();
      if (frames === 0 && opts.firstFrameTimeoutMs !== undefined && now - startedAt > opts.firstFrameTimeoutMs) {
        finish(new GStreamerError(`no frame within ${opts.firstFrameTimeoutMs} ms of start`));
      } else if (frames > 0 && opts.stallTimeoutMs !== undefined && now - lastFrameAt > opts.stallTimeoutMs) {
        finish(new GStreamerError(`stream stalled: no frame for ${opts.stallTimeoutMs} ms`));
      }
    }, 100);
    watchdog.unref();

    pipeline.pollBus((msg: BusMessage) => {
      if (settled) return;
      if (msg.type === 'error') {
        const text = redactUrls(`${msg.message ?? 'GStreamer error'} (element ${msg._src_element_name ?? '?'})`);
        finish(new GStreamerError(text, msg._src_element_name, msg.debug ? redactUrls(String(msg.debug)) : undefined));
      } else if (msg.type === 'warning') {
        opts.log.warn({ element: msg._src_element_name, warning: msg.message }, 'GStreamer warning');
      }
    });

    // Caps come as a new object with every sample: parse them again only when they change.
    let capsKey = '';
    let width = 0;
    let height = 0;
    let fps: number | undefined;
    const pullNext = () => {
      if (!settled) sink.pull(onSample);
    };
    const onError = (err: unknown) => finish(err instanceof Error ? err : new Error(String(err)));
    const onSample = (buf: Buffer | null, caps: Caps) => {
      if (settled) return;
      if (buf === null) {
        // A null sample is end of stream, or a stop/error whose bus message may still be on its way.
        setTimeout(() => finish(null, opts.signal.aborted ? 'stopped' : 'eos'), 50);
        return;
      }
      const key = `${caps.format}/${caps.width}/${caps.height}/${caps.framerate}`;
      if (key !== capsKey) {
        width = Number(caps.width);
        height = Number(caps.height);
        if (caps.format !== 'RGB' || !width || !height) {
          finish(new GStreamerError(`expected RGB video from the source, got caps ${JSON.stringify(caps)}`));
          return;
        }
        fps = parseFraction(caps.framerate as string | undefined);
        capsKey = key;
      }
      const arrivalMs = nowMs();
      if (firstPtsMs === null) {
        let durationSec = -1;
        try {
          durationSec = pipeline.queryDuration();
        } catch {
          /* live sources have no duration */
        }
        opts.onStart?.({ caps, durationSec, fps });
      }
      firstPtsMs ??= arrivalMs;
      lastFrameAt = performance.now();
      let frame: VideoFrame;
      try {
        frame = {
          type: 'video',
          streamId: opts.streamId,
          seq: seq++,
          // The binding does not expose buffer timestamps: use the frame rate when known, else arrival time.
          ptsMs: ptsFor(frames, fps, arrivalMs - firstPtsMs),
          arrivalMs,
          width,
          height,
          // A view of the binding's own copy when rows are not padded (no second copy).
          data: packRgb(buf, width, height),
        };
      } catch (e) {
        finish(e as Error);
        return;
      }
      frames++;
      let r: Promise<void> | void;
      try {
        r = opts.onFrame(frame);
      } catch (e) {
        onError(e);
        return;
      }
      // A consumer that is done at once gets the next frame without a promise round per frame.
      if (r === undefined) pullNext();
      else Promise.resolve(r).then(pullNext, onError);
    };

    try {
      pipeline.play();
      sink.pull(onSample);
    } catch (e) {
      finish(new GStreamerError(`cannot start pipeline: ${(e as Error).message}`));
    }
  });
}

/**
 * The appsink for a reader's launch string: bounded (max-buffers), blocking upstream unless `drop`
 * (live sources), and without the last-sample reference a base sink keeps by default (one more
 * frame held alive for nothing: nobody asks for it).
 */
export function appSinkLaunch(launch: string, o: { maxBuffers: number; drop?: boolean; sync?: boolean }): string {
  return `${launch} ! appsink name=dclsink max-buffers=${o.maxBuffers} drop=${o.drop ? 'true' : 'false'} sync=${o.sync ? 'true' : 'false'} enable-last-sample=false`;
}

function ptsFor(index: number, fps: number | undefined, elapsedMs: number): number {
  return fps && fps > 0 ? (index * 1000) / fps : elapsedMs;
}
