// What `infer` says while it works: the phase, frames done, rate and time left. One line redrawn
// on a terminal; plain lines every few seconds in a log (CI, a pipe), so a long run is never silent.

export type InferPhase = 'infer' | 'write';

export interface ProgressState {
  readonly phase: InferPhase;
  readonly framesIn: number;
  readonly framesOut: number;
  /** Frames the input will give, when known. */
  readonly total?: number;
  /** Seconds since the phase began. */
  readonly elapsedS: number;
  /** Outputs being written (write phase). */
  readonly writing?: readonly string[];
}

export function progressLine(s: ProgressState): string {
  if (s.phase === 'write') return `writing ${s.writing?.join(', ') || 'outputs'} (${s.framesOut} frames) ${formatSeconds(s.elapsedS)}`;
  const rate = s.elapsedS > 0 ? s.framesOut / s.elapsedS : 0;
  const pct = s.total ? ` ${Math.min(100, Math.floor((100 * s.framesOut) / s.total))}%` : '';
  const of = s.total ? `/${s.total}` : '';
  const left = s.total && rate > 0 && s.framesOut > 0 ? `, ETA ${formatSeconds(Math.max(0, (s.total - s.framesOut) / rate))}` : '';
  return `inferring: depth ${s.framesOut}${of}${pct} (decoded ${s.framesIn}), ${rate.toFixed(1)} frames/s${left}, ${formatSeconds(s.elapsedS)} elapsed`;
}

export function formatSeconds(s: number): string {
  if (!Number.isFinite(s)) return '-';
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  const m = Math.floor(s / 60);
  return `${m} min ${String(Math.round(s - 60 * m)).padStart(2, '0')} s`;
}
