import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PerformanceObserver, constants as perfConstants } from 'node:perf_hooks';

import { appSinkLaunch, readAppSink } from '../src/media/appsink-reader.js';
import { decodeToRgbLaunch, toRgbLaunch } from '../src/media/launch.js';
import { fileLaunch } from '../src/nodes/sources/file.js';
import type { VideoFrame } from '../src/graph/packets.js';
import { createLogger } from '../src/util/log.js';

// The reader's ingest path with real GStreamer: the launch strings it builds (queue, scaling before
// the RGB conversion, a bounded appsink without a last-sample reference), consumers that take
// frames synchronously or throw, and the GC behaviour with large frames.

const log = createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'silent', pretty: false });
const tmp = mkdtempSync(join(tmpdir(), 'dcl-ingest-'));
const CLIP = join(tmp, 'bars.mp4');
const FRAMES = 30;

before(() => {
  // Colour bars that move: large flat areas, so a frame scaled in I420 and one scaled in RGB agree closely.
  execFileSync('gst-launch-1.0', [
    '-q',
    'videotestsrc',
    `num-buffers=${FRAMES}`,
    'pattern=smpte',
    'horizontal-speed=2',
    '!',
    'video/x-raw,width=320,height=240,framerate=30/1',
    '!',
    'videoconvert',
    '!',
    'x264enc',
    'speed-preset=ultrafast',
    'pass=qual',
    'quantizer=10',
    '!',
    'mp4mux',
    '!',
    'filesink',
    `location=${CLIP}`,
  ]);
});
after(() => rmSync(tmp, { recursive: true, force: true }));

async function readAll(launch: string): Promise<VideoFrame[]> {
  const out: VideoFrame[] = [];
  const res = await readAppSink({ launch, streamId: 't', log, signal: new AbortController().signal, onFrame: (f) => void out.push(f) });
  assert.equal(res.end, 'eos');
  assert.equal(res.frames, out.length);
  return out;
}

describe('ingest launch strings', () => {
  test('a queue decouples the decoder; scaling comes before the RGB conversion', () => {
    assert.equal(toRgbLaunch(), 'queue max-size-buffers=2 max-size-bytes=0 max-size-time=0 ! videoconvert ! video/x-raw,format=RGB');
    assert.match(toRgbLaunch({ width: 64 }), /! videoscale ! videoconvert ! video\/x-raw,format=RGB,width=64$/);
    assert.match(
      fileLaunch({ path: '/a b.mp4', width: 64, height: 48 }),
      /^filesrc location="\/a b\.mp4" ! decodebin ! queue .* ! videoscale ! videoconvert ! video\/x-raw,format=RGB,width=64,height=48$/,
    );
    assert.match(decodeToRgbLaunch('file:///x.mp4'), /^uridecodebin uri="file:\/\/\/x\.mp4" ! queue /);
    assert.equal(appSinkLaunch('X', { maxBuffers: 3, drop: true }), 'X ! appsink name=dclsink max-buffers=3 drop=true sync=false enable-last-sample=false');
  });

  test('every frame of a file, full size and scaled in I420, matches the full frame scaled in JS', { timeout: 60_000 }, async () => {
    const full = await readAll(fileLaunch({ path: CLIP }));
    const half = await readAll(fileLaunch({ path: CLIP, width: 160, height: 120 }));
    assert.equal(full.length, FRAMES);
    assert.equal(half.length, FRAMES);
    assert.deepEqual(
      half.map((f) => f.seq),
      full.map((f) => f.seq),
    );
    for (let i = 0; i < FRAMES; i++) {
      const a = full[i];
      const b = half[i];
      assert.equal(a.width, 320);
      assert.equal(b.width, 160);
      assert.equal(b.height, 120);
      assert.equal(b.data.length, 160 * 120 * 3, 'packed RGB');
      // 2x2 box average of the full frame against GStreamer's scaled one.
      let diff = 0;
      for (let y = 0; y < 120; y++) {
        for (let x = 0; x < 160; x++) {
          for (let c = 0; c < 3; c++) {
            const p = (yy: number, xx: number) => a.data[(yy * 320 + xx) * 3 + c];
            const box = (p(2 * y, 2 * x) + p(2 * y, 2 * x + 1) + p(2 * y + 1, 2 * x) + p(2 * y + 1, 2 * x + 1)) / 4;
            diff += Math.abs(box - b.data[(y * 160 + x) * 3 + c]);
          }
        }
      }
      const mean = diff / (160 * 120 * 3);
      assert.ok(mean < 6, `frame ${i}: mean abs difference ${mean.toFixed(2)} to the JS-scaled full frame`);
    }
  });
});

describe('reader consumers', () => {
  test('a consumer that returns at once gets every frame, in order, with pts from the frame rate', { timeout: 60_000 }, async () => {
    const seqs: number[] = [];
    const pts: number[] = [];
    const res = await readAppSink({
      launch: fileLaunch({ path: CLIP }),
      streamId: 't',
      log,
      signal: new AbortController().signal,
      firstSeq: 100,
      onFrame: (f) => {
        seqs.push(f.seq);
        pts.push(f.ptsMs);
      },
    });
    assert.equal(res.frames, FRAMES);
    assert.equal(res.nextSeq, 100 + FRAMES);
    assert.deepEqual(
      seqs,
      Array.from({ length: FRAMES }, (_, i) => 100 + i),
    );
    pts.forEach((p, i) => assert.ok(Math.abs(p - (i * 1000) / 30) < 1e-6));
  });

  test('a consumer that throws synchronously fails the reader with its error and stops the pipeline', { timeout: 60_000 }, async () => {
    let calls = 0;
    await assert.rejects(
      readAppSink({
        launch: fileLaunch({ path: CLIP }),
        streamId: 't',
        log,
        signal: new AbortController().signal,
        onFrame: () => {
          if (++calls === 3) throw new Error('consumer broke');
        },
      }),
      /consumer broke/,
    );
    assert.equal(calls, 3, 'no frame after the failing one');
  });

  test('large frames do not drive V8 into a full GC every few frames', { timeout: 120_000 }, async () => {
    // 1280x720 RGB is 2.7 MB a frame, each a fresh Buffer from the binding. With V8's concurrent array buffer
    // sweeping lagging on a busy machine this cost a mark-compact every ~10 frames; synchronous sweeping frees them
    // in the scavenges.
    const frames = 150;
    let major = 0;
    let minor = 0;
    const obs = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) {
        const kind = (e as unknown as { detail?: { kind?: number } }).detail?.kind;
        if (kind === perfConstants.NODE_PERFORMANCE_GC_MAJOR) major++;
        else if (kind === perfConstants.NODE_PERFORMANCE_GC_MINOR) minor++;
      }
    });
    obs.observe({ entryTypes: ['gc'] });
    let bytes = 0;
    const res = await readAppSink({
      launch: `videotestsrc num-buffers=${frames} pattern=ball ! video/x-raw,width=1280,height=720,framerate=30/1 ! videoconvert ! video/x-raw,format=RGB`,
      streamId: 't',
      log,
      signal: new AbortController().signal,
      onFrame: (f) => {
        bytes += f.data.byteLength;
      },
    });
    obs.disconnect(); // entries still undelivered only lower the counts: the bound below stays an upper one
    assert.equal(res.frames, frames);
    assert.equal(bytes, frames * 1280 * 720 * 3);
    assert.ok(minor > 0, 'the frames were collected by scavenges');
    assert.ok(major <= 5, `${major} mark-compacts for ${frames} frames of 2.7 MB (${minor} scavenges)`);
  });
});
