import { WebSocket } from 'ws';
import { decodeFrameMessage, type FrameHeader } from '../protocol/frame-message.js';

// A small client for the DCL1 WebSocket stream (docs/websocket-protocol.md), exported by the
// package as `depthcrafter-live/client`: it connects with the chosen subscription, turns each
// message into its header and typed payload, and reconnects with backoff when the server goes away.
//
//   import { DclClient } from 'depthcrafter-live/client';
//   const c = new DclClient('ws://127.0.0.1:8080/ws', { format: 'f32', stream: ['cam1'] });
//   c.onFrame = (f) => { if (f.depth) console.log(f.header.stream, f.header.seq, f.depth[0]); };

export interface ClientOptions {
  /** Depth payload: f32 (Float32Array), u16 (Uint16Array), or a colour-mapped jpeg/png image (bytes). */
  readonly format?: 'f32' | 'u16' | 'jpeg' | 'png';
  /** Also receive the RGB frame of each depth frame. */
  readonly rgb?: boolean;
  /** Streams to receive (default: all). */
  readonly stream?: readonly string[];
  readonly colormap?: string;
  /** Access token (DCL_TOKEN on the server). */
  readonly token?: string;
  /** Reconnect after a lost connection (default true), waiting 250 ms doubling up to maxDelayMs. */
  readonly reconnect?: boolean;
  readonly maxDelayMs?: number;
}

export interface ClientFrame {
  readonly header: FrameHeader;
  /** Disparity in [0,1] (near = large): f32 as is, u16 as 0..65535. */
  readonly depth?: Float32Array | Uint16Array;
  /** Packed RGB, 3 bytes a pixel (rgb24). */
  readonly rgb?: Uint8Array;
  /** An encoded image (jpeg/png depth, jpeg RGB). */
  readonly image?: Uint8Array;
}

export class DclClient {
  onFrame: (f: ClientFrame) => void = () => {};
  /** Per-subscriber counts the server sends once a second. */
  onStats: (s: { sent: number; dropped: number }) => void = () => {};
  onOpen: () => void = () => {};
  /** A connection ended (code and reason from the server); the client reconnects unless closed. */
  onClose: (code: number, reason: string) => void = () => {};
  onError: (e: Error) => void = () => {};
  private ws: WebSocket | null = null;
  private closed = false;
  private delay = 250;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    readonly url: string,
    private readonly opts: ClientOptions = {},
  ) {
    this.connect();
  }

  /** Change what this connection receives (applies from the next frame). */
  subscribe(change: Pick<ClientOptions, 'format' | 'rgb' | 'stream' | 'colormap'>): void {
    Object.assign(this.opts as Record<string, unknown>, change);
    this.ws?.send(
      JSON.stringify({
        type: 'subscribe',
        ...(change.format ? { format: change.format } : {}),
        ...(change.rgb !== undefined ? { rgb: change.rgb } : {}),
        ...(change.stream ? { stream: [...change.stream] } : {}),
        ...(change.colormap ? { colormap: change.colormap } : {}),
      }),
    );
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.ws?.close(1000, 'client closed');
  }

  private connect(): void {
    const u = new URL(this.url);
    const o = this.opts;
    if (o.format) u.searchParams.set('format', o.format);
    if (o.rgb) u.searchParams.set('rgb', '1');
    if (o.stream) u.searchParams.set('stream', o.stream.join(','));
    if (o.colormap) u.searchParams.set('colormap', o.colormap);
    if (o.token) u.searchParams.set('token', o.token);
    const ws = new WebSocket(u);
    this.ws = ws;
    ws.on('open', () => {
      this.delay = 250;
      this.onOpen();
    });
    ws.on('message', (data: Buffer, isBinary) => {
      try {
        if (!isBinary) {
          const m = JSON.parse(data.toString()) as { type?: string; sent?: number; dropped?: number };
          if (m.type === 'stats') this.onStats({ sent: m.sent ?? 0, dropped: m.dropped ?? 0 });
          return;
        }
        this.onFrame(toFrame(data));
      } catch (e) {
        this.onError(e as Error);
      }
    });
    ws.on('error', (e) => this.onError(e));
    ws.on('close', (code, reason) => {
      this.onClose(code, reason.toString());
      if (this.closed || this.opts.reconnect === false) return;
      this.timer = setTimeout(() => this.connect(), this.delay);
      this.delay = Math.min(this.delay * 2, this.opts.maxDelayMs ?? 5000);
    });
  }
}

/** One DCL1 message as header and typed payload (a copy aligned for typed arrays). */
export function toFrame(message: Uint8Array): ClientFrame {
  const { header, payload } = decodeFrameMessage(message);
  // A real copy (Buffer#slice would share the socket's memory at an odd offset): typed arrays need alignment.
  const bytes = new Uint8Array(payload.byteLength);
  bytes.set(payload);
  if (header.format === 'f32') return { header, depth: new Float32Array(bytes.buffer, 0, bytes.byteLength / 4) };
  if (header.format === 'u16') return { header, depth: new Uint16Array(bytes.buffer, 0, bytes.byteLength / 2) };
  if (header.format === 'rgb24') return { header, rgb: bytes };
  return { header, image: bytes };
}
