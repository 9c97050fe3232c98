import { OptionError } from '../../util/errors.js';
// Parity-critical: the temporal decoder mixes frames within a chunk, so these boundaries decide the output; guarded by test/engine-math.test.ts and test/depth-session.test.ts.

/** The reference decodes latents in temporal clips of 8 frames (decode_chunk_size). */
export const DECODE_CHUNK = 8;

export interface Chunk {
  readonly start: number;
  readonly end: number;
}

/**
 * Decode chunks aligned to global frame indices 0, 8, 16, ...; the last may be
 * shorter (38 frames -> 8,8,8,8,6). The temporal decoder mixes frames within a
 * chunk, so the boundaries must match the reference for parity.
 */
export function decodeChunks(n: number, chunk = DECODE_CHUNK): Chunk[] {
  if (!Number.isInteger(n) || n < 0) throw new OptionError(`frame count must be a non-negative integer, got ${n}`);
  return readyChunks(0, n, true, chunk);
}

/**
 * Streaming: the chunks to decode now, when frames before `decodedUpTo` are decoded and those
 * before `finalUpTo` are final. Only full chunks go before the video ends; then the tail follows.
 * `decodedUpTo` is a chunk boundary (every chunk before the tail is full).
 */
export function readyChunks(decodedUpTo: number, finalUpTo: number, ended: boolean, chunk = DECODE_CHUNK): Chunk[] {
  checkChunk(chunk);
  if (!Number.isInteger(decodedUpTo) || decodedUpTo < 0 || decodedUpTo % chunk !== 0) {
    throw new OptionError(`decodedUpTo must be a non-negative multiple of ${chunk}, got ${decodedUpTo}`);
  }
  const end = ended ? finalUpTo : finalChunkEnd(finalUpTo, chunk);
  const out: Chunk[] = [];
  for (let start = decodedUpTo; start < end; start += chunk) out.push({ start, end: Math.min(start + chunk, end) });
  return out;
}

/**
 * Streaming: once frames [0, finalizedUpTo) are final, every full chunk ending
 * at or before the returned index can be decoded. It is the largest multiple of
 * `chunk` <= finalizedUpTo; the tail chunk waits until the video ends.
 */
export function finalChunkEnd(finalizedUpTo: number, chunk = DECODE_CHUNK): number {
  checkChunk(chunk);
  if (!Number.isInteger(finalizedUpTo) || finalizedUpTo < 0) {
    throw new OptionError(`finalizedUpTo must be a non-negative integer, got ${finalizedUpTo}`);
  }
  return finalizedUpTo - (finalizedUpTo % chunk);
}

function checkChunk(chunk: number): void {
  if (!Number.isInteger(chunk) || chunk < 1) throw new OptionError(`chunk must be a positive integer, got ${chunk}`);
}
