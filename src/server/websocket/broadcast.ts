import type { Logger } from 'pino';
import type { DepthFrame, VideoFrame } from '../../graph/packets.js';
import type { DiscontinuityMarks } from './discontinuity.js';
import type { EncodeDispatch } from './encode-dispatch.js';
import { frameMessage } from './messages.js';
import type { Subscriber } from './subscriber.js';
import { needsEncoding, rawPayload, wantsFor, type Want } from './wants.js';

// One frame to every subscriber that follows its stream. Each subscriber has its own
// backpressure: while its socket buffer is over the bound the frame is dropped for it alone (and
// counted), so a stalled client never slows the pipeline or the others. Payloads are made once per
// frame and format; raw rgb24/f32 subscribers never wait for the encoder.

export interface BroadcastOptions {
  readonly maxBufferedBytes: number;
  readonly marks: DiscontinuityMarks;
  readonly encoding: EncodeDispatch;
  readonly log: Logger;
}

export async function broadcastFrame(p: VideoFrame | DepthFrame, subscribers: Iterable<Subscriber>, o: BroadcastOptions): Promise<void> {
  const discont = o.marks.has(p);
  const targets: Array<{ s: Subscriber; wants: Want[] }> = [];
  const toEncode = new Map<string, Want>();
  for (const s of subscribers) {
    if (!s.open || !s.follows(p.streamId)) continue;
    if (s.congested(o.maxBufferedBytes)) {
      s.drop(p.streamId, discont);
      continue;
    }
    const wants = wantsFor(p, s.sub);
    for (const w of wants) if (needsEncoding(w)) toEncode.set(w.key, w);
    targets.push({ s, wants });
  }
  if (targets.length === 0) return;

  const message = (w: Want, payload: Uint8Array) => frameMessage(w, payload, o.marks.has(w.frame));
  const encoded = await o.encoding.request(toEncode, message);
  // Raw payloads join the encoded ones: one message per key for all subscribers.
  const shared = encoded ?? new Map<string, Promise<Buffer | null>>();
  for (const { s, wants } of targets) {
    if (!encoded && wants.some(needsEncoding)) {
      s.drop(p.streamId, discont);
      continue;
    }
    const msgs = wants.map((w) => {
      let m = shared.get(w.key);
      if (!m) shared.set(w.key, (m = Promise.resolve(message(w, rawPayload(w)))));
      return m;
    });
    s.deliver(p.streamId, discont, msgs, o.log);
  }
}
