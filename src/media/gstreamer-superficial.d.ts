// Minimal types for gstreamer-superficial 1.7 (the package ships none).
declare module 'gstreamer-superficial' {
  export interface Caps {
    name?: string;
    format?: string;
    width?: number;
    height?: number;
    framerate?: string;
    [key: string]: unknown;
  }
  export interface BusMessage {
    type: string;
    name?: string;
    message?: string;
    debug?: string;
    _src_element_name?: string;
    [key: string]: unknown;
  }
  export interface GstElement {
    [property: string]: unknown;
    /** One-shot: call again from inside the callback. `buf` is null at EOS or when stopped. */
    pull(cb: (buf: Buffer | null, caps: Caps) => void): void;
    push(buf: Buffer, pts?: Buffer): void;
  }
  export class Pipeline {
    constructor(launch: string);
    play(): void;
    pause(): void;
    stop(): void;
    sendEOS(): void;
    seek(position: number, flags: number): boolean;
    queryPosition(): number;
    queryDuration(): number;
    findChild(name: string): GstElement | null;
    pollBus(cb: (msg: BusMessage) => void): void;
    /** gst_pipeline_set_auto_flush_bus: flush the bus when going to NULL (default true). */
    'auto-flush-bus': boolean;
  }
}
