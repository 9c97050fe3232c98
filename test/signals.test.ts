import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cliFixture, serving, startCli } from './helpers/cli-process.js';
import { until, within } from './helpers/wait.js';

// Signals at every phase, to the real CLI, with real output files checked by real readers
// (numpy for .npz, GStreamer for .mp4): a file under its final name is always complete.

const PY = '/usr/bin/python3';
const numpyOk = spawnSync(PY, ['-c', 'import numpy'], { stdio: 'ignore' }).status === 0;

/** numpy can load the npz and it holds float32 depth [N, H, W]. */
function npzLoads(path: string): boolean {
  return (
    spawnSync(PY, ['-c', `import numpy as np, sys; d = np.load(sys.argv[1])['depth']; assert d.dtype == np.float32 and d.ndim == 3`, path], { stdio: 'ignore' })
      .status === 0
  );
}

/** GStreamer decodes the MP4 to the end. */
function mp4Plays(path: string): boolean {
  return (
    spawnSync('gst-launch-1.0', ['-q', 'filesrc', `location=${path}`, '!', 'qtdemux', '!', 'h264parse', '!', 'avdec_h264', '!', 'fakesink'], {
      stdio: 'ignore',
      timeout: 30_000,
    }).status === 0
  );
}

describe('signals to `run` with file sinks', () => {
  const fx = cliFixture('dcl-signals-');
  const children = fx.children;

  const pipeline = (out: string) => `
name: signals
server: { host: 127.0.0.1, port: 0 }
nodes:
  source: { kind: test-pattern, options: { pattern: ball, width: 256, height: 256, fps: 30 } }
  depth: { kind: depth, options: { model: tiny-random, window: 16, overlap: 4, steps: 8, maxRes: 256, stride: 1 } }
  npz: { kind: npz, options: { path: ${join(out, 'depth.npz')} } }
  mp4: { kind: mp4, options: { path: ${join(out, 'depth.mp4')} } }
  png: { kind: png-sequence, options: { dir: ${join(out, 'png')} } }
edges:
  - { from: source, to: depth, queue: { capacity: 4, policy: drop-oldest } }
  - { from: depth, to: npz, queue: { capacity: 64, policy: block } }
  - { from: depth, to: mp4, queue: { capacity: 64, policy: block } }
  - { from: depth, to: png, queue: { capacity: 64, policy: block } }
`;

  for (const [name, signals] of [
    ['one SIGTERM: drains, every output complete', ['SIGTERM']],
    ['SIGTERM twice: dies at once by the signal (143), nothing partial under a final name', ['SIGTERM', 'SIGTERM']],
    ['SIGINT then SIGTERM while draining: dies by SIGTERM', ['SIGINT', 'SIGTERM']],
  ] as const) {
    test(name, { skip: numpyOk ? false : 'needs python3-numpy' }, async () => {
      const out = mkdtempSync(join(fx.tmp, 'out-'));
      const file = join(out, 'p.yaml');
      writeFileSync(file, pipeline(out));
      const run = startCli(['run', file]);
      children.push(run);
      await serving(run);
      await until(
        () => existsSync(join(out, 'png')) && readdirSync(join(out, 'png')).filter((n) => n.endsWith('.png')).length >= 16,
        60_000,
        '16 depth frames written',
        () => run.stderr.slice(-3000),
      );
      // The second signal after the first was seen (signals sent together may be delivered as one), while the drain still runs.
      run.child.kill(signals[0]);
      if (signals.length > 1) {
        await until(() => run.lines.some((l) => String(l.msg).startsWith('stopping')), 10_000, 'the first signal to be seen');
        assert.ok(!run.lines.some((l) => l.msg === 'pipeline finished'), 'still draining when the second signal comes');
        run.child.kill(signals[1]);
      }
      const { code, signal } = await within(30_000, `exit after ${signals.join(' + ')}`, run.exit);
      if (signals.length === 1) assert.equal(code, 0, run.stderr.slice(-3000));
      else {
        // It dies by the second signal (status 143 in a shell).
        assert.ok(signal === signals[1] && code === null, `${code} ${signal}: ${run.stderr.slice(-3000)}`);
        assert.ok(
          run.lines.some((l) => String(l.msg).startsWith('second signal: exiting')),
          run.stderr.slice(-3000),
        );
      }
      assert.doesNotMatch(run.stderr, /Napi::Error|uncaught|\n\s+at /i, 'no crash trace');
      // Whatever exists under a final name is complete.
      const npz = join(out, 'depth.npz');
      const mp4 = join(out, 'depth.mp4');
      if (signals.length === 1) assert.ok(existsSync(npz) && existsSync(mp4), 'a drained run finalises its files');
      if (existsSync(npz)) assert.ok(npzLoads(npz), 'the npz under its final name loads');
      if (existsSync(mp4)) assert.ok(mp4Plays(mp4), 'the MP4 under its final name plays');
      const pngs = readdirSync(join(out, 'png'));
      assert.ok(
        pngs.every((n) => n.endsWith('.png') || n.endsWith('.partial')),
        pngs.join(' '),
      );
      if (signals.length === 1) {
        assert.deepEqual(
          readdirSync(out).filter((n) => n.startsWith('.') || n.endsWith('.tmp')),
          [],
          'no temporaries after a drained run',
        );
      } else {
        // The next run removes the temporaries the hard exit left.
        const again = startCli(['run', file]);
        children.push(again);
        await serving(again);
        again.child.kill('SIGTERM');
        await within(20_000, 'second run exit', again.exit);
        const left = readdirSync(out).filter((n) => (n.startsWith('.') || n.endsWith('.tmp')) && n.includes(String(run.child.pid)));
        assert.deepEqual(left, [], 'temporaries of the killed run are removed by the next');
      }
    });
  }

  test('SIGTERM during start-up exits promptly', async () => {
    const out = mkdtempSync(join(fx.tmp, 'out-'));
    const file = join(out, 'p.yaml');
    writeFileSync(file, pipeline(out).replace('window: 16, overlap: 4, steps: 8, maxRes: 256', 'window: 6, overlap: 2, steps: 1, maxRes: 128'));
    const run = startCli(['run', file]);
    children.push(run);
    await until(() => run.stderr.length > 0 || run.lines.length > 0, 20_000, 'the process to log something');
    run.child.kill('SIGTERM');
    const { code, signal } = await within(30_000, 'exit after an early SIGTERM', run.exit).catch((e: Error) => {
      throw new Error(`${e.message}; stderr:\n${run.stderr.slice(-3000)}`);
    });
    assert.ok(code === 0 || code === 143 || signal === 'SIGTERM', `exit ${code} ${signal}:\n${run.stderr.slice(-2000)}`);
  });
});

describe('signals to `infer`', () => {
  const fx = cliFixture('dcl-infer-signals-');
  const children = fx.children;
  let clip: string;
  before(
    () => {
      clip = join(fx.tmp, 'long.mp4');
      execFileSync('gst-launch-1.0', [
        '-q',
        'videotestsrc',
        'num-buffers=240',
        'pattern=ball',
        '!',
        'video/x-raw,width=512,height=256,framerate=30/1',
        '!',
        'videoconvert',
        '!',
        'x264enc',
        'speed-preset=ultrafast',
        '!',
        'mp4mux',
        '!',
        'filesink',
        `location=${clip}`,
      ]);
    },
    { timeout: 120_000 },
  );

  for (const phase of ['inferring', 'writing outputs'] as const) {
    test(`SIGTERM while ${phase}: exit 143 with a message, no outputs, no temporaries, no empty folder`, async () => {
      const out = join(fx.tmp, `out-${phase.replace(' ', '-')}`);
      const run = startCli([
        'infer',
        clip,
        '--out',
        out,
        '--window',
        '12',
        '--overlap',
        '4',
        '--steps',
        '1',
        '--max-res',
        '512',
        '--model',
        'models/tiny-random',
      ]);
      children.push(run);
      const mark = phase === 'inferring' ? 'model pack loaded' : 'writing outputs';
      await until(
        () => run.lines.some((l) => l.msg === mark),
        60_000,
        `"${mark}"`,
        () => run.stderr.slice(-2000),
      );
      run.child.kill('SIGTERM');
      const { code } = await within(20_000, 'exit after SIGTERM', run.exit);
      assert.equal(code, 143, run.stderr.slice(-2000));
      assert.match(run.stderr, /interrupted \(SIGTERM\): no outputs were written/);
      assert.ok(!existsSync(out) || readdirSync(out).length === 0, `nothing left in ${out}: ${existsSync(out) ? readdirSync(out).join(' ') : ''}`);
      assert.ok(!existsSync(out), 'the folder the run created is removed');
    });
  }
});
