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
  checkChunk(chunk);
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`frame count must be a non-negative integer, got ${n}`);
  const out: Chunk[] = [];
  for (let start = 0; start < n; start += chunk) out.push({ start, end: Math.min(start + chunk, n) });
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
    throw new RangeError(`finalizedUpTo must be a non-negative integer, got ${finalizedUpTo}`);
  }
  return finalizedUpTo - (finalizedUpTo % chunk);
}

function checkChunk(chunk: number): void {
  if (!Number.isInteger(chunk) || chunk < 1) throw new RangeError(`chunk must be a positive integer, got ${chunk}`);
}
