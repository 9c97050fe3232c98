import type { Logger } from 'pino';
import type { FrameEncoder } from '../../nodes/sinks/frame-encoder.js';
import { jobFor, type Want } from './wants.js';

// Hands the payloads of one frame that need per-pixel work to the encoder threads, as one request
// holding each wanted payload once, whatever the number of subscribers that want it. When the
// encoder is behind (its queue bound reached, after waiting up to encodeWaitMs), nothing is
// queued: the caller drops the frame for the subscribers that needed an encoded payload.

export interface EncodeDispatchOptions {
  readonly jpegQuality: number;
  /** How long a frame may wait for room in the encoder queue (0: not at all). */
  readonly encodeWaitMs: number;
  readonly log: Logger;
  /** Called once per payload encoded (for the metric). */
  readonly onEncoded: (w: Want) => void;
}

export class EncodeDispatch {
  private failures = 0;

  constructor(
    private readonly encoder: FrameEncoder,
    private readonly o: EncodeDispatchOptions,
  ) {}

  /**
   * The messages of `wants` (by key), each resolving to null if encoding failed; null when the
   * encoder had no room. `message` makes a want's message from its encoded payload.
   */
  async request(wants: ReadonlyMap<string, Want>, message: (w: Want, payload: Uint8Array) => Buffer): Promise<Map<string, Promise<Buffer | null>> | null> {
    const messages = new Map<string, Promise<Buffer | null>>();
    if (wants.size === 0) return messages;
    const entries = [...wants.values()];
    const jobs = entries.map((w) => jobFor(w, this.o.jpegQuality));
    let encoded = this.encoder.tryEncode(jobs);
    if (!encoded && this.o.encodeWaitMs > 0 && (await this.encoder.waitForSlot(this.o.encodeWaitMs))) encoded = this.encoder.tryEncode(jobs);
    if (!encoded) return null;
    const all = encoded.then(
      (outs) => outs,
      (err: Error) => {
        if (this.failures++ % 100 === 0) this.o.log.warn({ err, failures: this.failures }, 'encoding a frame failed; dropping it for image subscribers');
        return null;
      },
    );
    entries.forEach((w, i) => {
      messages.set(
        w.key,
        all.then((outs) => {
          if (!outs) return null;
          this.o.onEncoded(w);
          return message(w, outs[i]);
        }),
      );
    });
    return messages;
  }
}
