// Parity-critical: which noise frame each window frame gets (the reference's block roll); guarded by test/engine-math.test.ts and test/depth-session.test.ts.

/**
 * Noise bookkeeping (spec §4, §11). The reference draws ONE window-sized block
 * Z0 of initial noise and, after each window, rotates it right by the overlap:
 * Z := concat(Z[-O:], Z[:W-O]). So window k sees Z_k[i] = Z0[(i - k*O) mod W],
 * and a frame shared by two windows gets the same noise in both.
 */

/** Index into Z0 of the noise frame used by frame `frameInWindow` of window `windowIndex`. */
export function noiseFrameIndex(windowIndex: number, frameInWindow: number, window: number, overlap: number): number {
  // Double modulo: a true (non-negative, never -0) mod for negative offsets.
  return (((frameInWindow - windowIndex * overlap) % window) + window) % window;
}

/**
 * Same index from the absolute frame number. Window k starts at k*(W - O), so
 * i - k*O = a - k*W, which is a mod W: the noise depends on the frame alone.
 */
export function noiseFrameIndexAbsolute(absoluteFrame: number, window: number): number {
  return absoluteFrame % window;
}

// Note: when the whole video fits in one window the reference shrinks the
// window to n (and the noise block with it) and uses overlap 0; pass those
// effective values here.
