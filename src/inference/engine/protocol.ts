import type { SessionChoices } from './session-config.js';
import type { PackDevice } from '../pack/load-pack.js';
import type { StageStats } from '../backend/model-stages.js';
import type { Resolution } from '../math/resolution.js';
import type { PreparedFrame, PrepTimes } from './frame-prep.js';
import type { MessagePort } from 'node:worker_threads';

// Messages between the main thread and an inference worker. One worker holds one model pack on
// one device and serves any number of streams: every stream message names its stream, and each
// stream has its own session state (windows, noise, stitching, live normalisation, fill).

/** Stream messages may also come through this port (from the frame-preparation worker). */
export interface ConnectRequest {
  readonly type: 'connect';
  readonly port: MessagePort;
}

/** Load the pack (once per worker). */
export interface LoadRequest {
  readonly type: 'load';
  readonly packDir: string;
  readonly device: PackDevice;
  readonly threads?: number;
  /** The VAE decoder runs in the frame worker (the inference worker does not load it). */
  readonly remoteDecoder?: boolean;
}

/** Inference worker -> frame worker: decode a chunk of stitched latents (already divided by the scaling factor). */
export interface DecodeRequest {
  readonly type: 'decode';
  readonly id: number;
  readonly latents: Float32Array;
  readonly frames: number;
  readonly h: number;
  readonly w: number;
}

export type DecodeReply =
  | { readonly type: 'decoded'; readonly id: number; readonly depth: Float32Array[] }
  | { readonly type: 'decode-failed'; readonly id: number; readonly name: string; readonly message: string };

/** Open a stream on the loaded pack. */
export interface OpenRequest {
  readonly type: 'open';
  readonly stream: number;
  readonly choices: SessionChoices;
  /** External noise (infer --noise): pixel [N,3,H,W] and latent [1,W,4,h,w]. */
  readonly noise?: { pixel: Float32Array; pixelFrames: number; latent: Float32Array; latentFrames: number };
  /** Live output: normalise each depth frame with a slowly adapting robust range (in the worker). */
  readonly live?: { alpha?: number; clip?: number };
  /** Frames may carry `fill` fractions: keep the last depth frame of a sequence to interpolate from. */
  readonly fill?: boolean;
}

export interface FrameRequest {
  readonly type: 'frame';
  readonly stream: number;
  readonly rgb: Uint8Array;
  readonly width: number;
  readonly height: number;
  readonly stride: number;
  /** Frames skipped before this one (by stride): where each lies in time between the previous computed frame (0) and this one (1). */
  readonly fill?: readonly number[];
}

/** A frame after the frame-preparation worker (frame-prep.ts): the encoders' inputs, and the input frame's size. */
export interface PreparedFrameRequest {
  readonly type: 'prepared';
  readonly stream: number;
  readonly width: number;
  readonly height: number;
  readonly prepared: PreparedFrame;
  readonly fill?: readonly number[];
}

/** The frame-preparation worker could not prepare a frame: the stream fails with this error, in order. */
export interface PrepFailedRequest {
  readonly type: 'prep-failed';
  readonly stream: number;
  readonly name: string;
  readonly message: string;
}

export type StreamRequest =
  | OpenRequest
  | FrameRequest
  | PreparedFrameRequest
  | PrepFailedRequest
  | { readonly type: 'end'; readonly stream: number }
  | { readonly type: 'release'; readonly stream: number };

export type ToWorker = ConnectRequest | LoadRequest | StreamRequest | { readonly type: 'stats' } | { readonly type: 'close' };

export interface WorkerDepth {
  readonly index: number;
  readonly depth: Float32Array;
  readonly window: number;
  /** Range of the raw depth values, so normalisation needs no pass over pixels on the main thread. */
  readonly min: number;
  readonly max: number;
  /** Stitched latent [C,h,w] (only when the session keeps latents). */
  readonly latent?: Float32Array;
  /** Depth of the frames skipped before this one, interpolated from the previous output (same order as the frame's `fill`). */
  readonly fills?: Float32Array[];
}

/** The settings a session runs with: the pack's defaults where the caller chose nothing. */
export interface ResolvedSettings {
  readonly window: number;
  readonly overlap: number;
  readonly steps: number;
  readonly guidance: number;
  readonly decodeChunk: number;
}

export interface PackInfo {
  readonly packName: string;
  readonly dtype: string;
  readonly description: string;
  readonly latentChannels: number;
  readonly downsample: number;
  /** The manifest says the weights are random (its depth means nothing). */
  readonly randomWeights: boolean;
  /** The manifest's training domain, when it names one. */
  readonly trainingDomain?: 'synthetic' | 'real';
}

export type FromWorker =
  | ({ readonly type: 'loaded' } & PackInfo)
  | { readonly type: 'opened'; readonly stream: number; readonly settings: ResolvedSettings }
  | {
      readonly type: 'started';
      readonly stream: number;
      readonly resolution: Resolution;
      readonly window: number;
      readonly overlap: number;
      readonly steps: number;
      readonly guidance: number;
    }
  /** A frame was handled: `busyMs` of work (encode, and the window when one ran), the depth frames that became final. */
  | { readonly type: 'accepted'; readonly stream: number; readonly outputs: WorkerDepth[]; readonly busyMs: number; readonly windowRan: boolean }
  | { readonly type: 'ended'; readonly stream: number; readonly outputs: WorkerDepth[] }
  /** Depth frames whose decode finished between the stream's frames (the decoder runs in the frame worker). */
  | { readonly type: 'depth'; readonly stream: number; readonly outputs: WorkerDepth[] }
  | { readonly type: 'released'; readonly stream: number }
  | { readonly type: 'stats'; readonly stats: StageStats; readonly rssBytes: number; readonly busyMs: number }
  /** From the frame worker. */
  | { readonly type: 'prep-stats'; readonly times: PrepTimes; readonly decoder: { readonly ms: number; readonly calls: number; readonly frames: number } }
  | { readonly type: 'decoder-loaded' }
  /** `stream` set: that stream failed (the others go on); unset: the worker failed. */
  | { readonly type: 'error'; readonly stream?: number; readonly message: string; readonly name: string };
