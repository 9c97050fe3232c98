import type { WebSocket } from 'ws';
import type { Logger } from 'pino';
import type { Subscription } from '../../protocol/frame-message.js';
import { withDiscont } from './messages.js';

// One connected client: what it subscribed to, its own drop accounting, and the in-order delivery
// of its messages. Its memory is bounded: frames are dropped for it alone while its socket buffer
// is over the limit, and a pending delivery holds only messages that are being encoded, which the
// encoder's queue bound limits.

export class Subscriber {
  sent = 0;
  dropped = 0;
  /** Streams whose discontinuity mark was on a frame dropped for this subscriber: its next frame of them carries it. */
  private readonly owedDiscont = new Set<string>();
  /** Delivery of this subscriber's frames, in order (each link waits for its frame's payloads). */
  private chain: Promise<void> = Promise.resolve();

  constructor(
    readonly ws: WebSocket,
    public sub: Subscription,
    /** Called for every drop (the shared counter). */
    private readonly onDrop: () => void,
  ) {}

  get open(): boolean {
    return this.ws.readyState === this.ws.OPEN;
  }

  /** Whether the subscription includes the stream. */
  follows(streamId: string): boolean {
    return !this.sub.streams || this.sub.streams.includes(streamId);
  }

  /** Whether the socket's send buffer is over the bound (frames are then dropped for this subscriber). */
  congested(maxBufferedBytes: number): boolean {
    return this.ws.bufferedAmount > maxBufferedBytes;
  }

  /** Count a frame dropped for this subscriber; `discont`: the frame carried a discontinuity mark, owed to the next one. */
  drop(streamId: string, discont: boolean): void {
    if (discont) this.owedDiscont.add(streamId);
    this.dropped++;
    this.onDrop();
  }

  /**
   * Send a frame's messages after those of the frames before it, once they are ready; a null
   * message (its encoding failed) drops the frame.
   */
  deliver(streamId: string, discont: boolean, messages: ReadonlyArray<Promise<Buffer | null>>, log: Logger): void {
    this.chain = this.chain
      .then(async () => {
        const ready = await Promise.all(messages);
        if (ready.some((m) => m === null)) {
          this.drop(streamId, discont);
          return;
        }
        if (!this.open) return;
        const owed = this.owedDiscont.delete(streamId) && !discont;
        for (const m of ready) this.ws.send(owed ? withDiscont(m!) : m!);
        this.sent++;
      })
      .catch((err: unknown) => log.warn({ err }, 'sending to a subscriber failed'));
  }

  /** Resolves when every frame handed to deliver() has been sent or dropped. */
  delivered(): Promise<void> {
    return this.chain;
  }
}
