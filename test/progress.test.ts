// The infer progress line: phase, frames, rate, time left; formatted the same on a terminal and in a log.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatSeconds, progressLine } from '../src/cli/progress.js';

test('infer progress: frames, percent, rate and ETA while inferring; the outputs while writing', () => {
  assert.equal(
    progressLine({ phase: 'infer', framesIn: 130, framesOut: 120, total: 200, elapsedS: 20 }),
    'inferring: depth 120/200 60% (decoded 130), 6.0 frames/s, ETA 13 s, 20 s elapsed',
  );
  assert.equal(
    progressLine({ phase: 'infer', framesIn: 5, framesOut: 0, elapsedS: 1.5 }),
    'inferring: depth 0 (decoded 5), 0.0 frames/s, 1.5 s elapsed',
    'no total: no percent, no ETA',
  );
  assert.equal(
    progressLine({ phase: 'write', framesIn: 200, framesOut: 200, elapsedS: 75, writing: ['a_depth.npz', 'a_vis.mp4'] }),
    'writing a_depth.npz, a_vis.mp4 (200 frames) 1 min 15 s',
  );
  assert.equal(formatSeconds(3.25), '3.3 s');
  assert.equal(formatSeconds(3600), '60 min 00 s');
});
