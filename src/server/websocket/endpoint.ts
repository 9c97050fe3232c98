import { WebSocketServer, type WebSocket } from 'ws';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { refuseUpgrade, type HttpHub } from '../http-hub.js';
import { DEFAULT_SUBSCRIPTION, type Subscription } from '../../protocol/frame-message.js';
import { parseSubscription, SubscriptionError, unknownStreams } from '../../protocol/subscription.js';
import { clipForLog } from '../../util/redact.js';
import { checkAccess } from './access.js';
import { Subscriber } from './subscriber.js';

// A WebSocket path on the pipeline's HTTP server: it admits clients (access control, then the
// subscription in the query string), keeps the set of subscribers and applies their control
// messages ({"type":"subscribe", ...} changes a subscription). A malformed message closes that
// client alone, with the reason.

export interface EndpointOptions {
  readonly path: string;
  /** Largest message a client may send. */
  readonly maxClientMessageBytes: number;
  /** Token clients must present; undefined: none required. */
  readonly token: string | undefined;
  readonly allowedOrigins: readonly string[];
  /** The streams a subscription may name. */
  readonly streams: () => string[];
  readonly log: Logger;
  /** A client connected. */
  readonly onConnect: (s: Subscriber) => void;
  /** A frame was dropped for a subscriber. */
  readonly onDrop: () => void;
}

export class WebSocketEndpoint {
  readonly subscribers = new Set<Subscriber>();
  private readonly wss: WebSocketServer;

  constructor(
    http: HttpHub,
    private readonly o: EndpointOptions,
  ) {
    this.wss = new WebSocketServer({ noServer: true, maxPayload: o.maxClientMessageBytes, perMessageDeflate: false });
    http.upgrade(o.path, (req, socket, head) => this.upgrade(req, socket, head));
  }

  /** Resolves when every subscriber's frames are sent or dropped, or after `ms`. */
  async drain(ms?: number): Promise<void> {
    const all = Promise.all([...this.subscribers].map((s) => s.delivered()));
    if (ms === undefined) {
      await all;
      return;
    }
    let waited: NodeJS.Timeout | undefined;
    await Promise.race([all, new Promise((r) => (waited = setTimeout(r, ms)))]);
    clearTimeout(waited);
  }

  /** Close every subscriber (1001) and stop accepting. */
  async close(): Promise<void> {
    for (const s of this.subscribers) s.ws.close(1001, 'pipeline stopping');
    // A stalled subscriber never answers the close handshake: do not let it hold the shutdown for ws's 30 s timeout.
    const force = setTimeout(() => {
      for (const s of this.subscribers) s.ws.terminate();
    }, 1000);
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
    clearTimeout(force);
  }

  private upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const { log } = this.o;
    const refusal = checkAccess(req, this.o.token, this.o.allowedOrigins);
    if (refusal) {
      log.warn({ reason: refusal.reason, origin: req.headers.origin }, 'WebSocket connection refused');
      refuseUpgrade(socket, refusal.status, refusal.reason);
      return;
    }
    let sub: Subscription;
    try {
      sub = parseSubscription(new URL(req.url ?? '/', 'http://x').searchParams, DEFAULT_SUBSCRIPTION);
      this.checkStreams(sub);
    } catch (e) {
      refuseUpgrade(socket, 400, (e as Error).message);
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => this.admit(ws, sub));
  }

  private admit(ws: WebSocket, sub: Subscription): void {
    const { log } = this.o;
    const s = new Subscriber(ws, sub, this.o.onDrop);
    this.subscribers.add(s);
    this.o.onConnect(s);
    log.info({ subscribers: this.subscribers.size }, 'subscriber connected');
    ws.on('message', (data, isBinary) => {
      if (isBinary) {
        ws.close(1003, 'binary messages are not accepted');
        return;
      }
      try {
        s.sub = this.resubscribe(data.toString(), s.sub);
      } catch (e) {
        const reason = e instanceof SubscriptionError ? e.message : 'malformed JSON';
        log.warn({ reason }, 'closing subscriber after a malformed message');
        ws.close(1007, reason.slice(0, 120));
      }
    });
    ws.on('error', (err) => log.warn({ err }, 'subscriber socket error'));
    ws.on('close', () => {
      this.subscribers.delete(s);
      log.info({ subscribers: this.subscribers.size, sent: s.sent, dropped: s.dropped }, 'subscriber left');
    });
  }

  /** The subscription a control message asks for (throws SubscriptionError, or SyntaxError for bad JSON). */
  private resubscribe(text: string, current: Subscription): Subscription {
    const msg = JSON.parse(text) as unknown;
    if (msg === null || typeof msg !== 'object' || (msg as { type?: unknown }).type !== 'subscribe') {
      throw new SubscriptionError('expected {"type":"subscribe", ...}');
    }
    const next = parseSubscription(msg as Record<string, unknown>, current);
    this.checkStreams(next);
    return next;
  }

  private checkStreams(sub: Subscription): void {
    const known = this.o.streams();
    const unknown = unknownStreams(sub, known);
    if (unknown.length > 0)
      throw new SubscriptionError(
        `unknown stream${unknown.length > 1 ? 's' : ''} ${unknown.map((u) => `"${clipForLog(u, 60)}"`).join(', ')} (streams: ${known.join(', ') || 'none'})`,
      );
  }
}
