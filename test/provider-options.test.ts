// Execution-provider options (src/inference/pack/provider-options.ts, docs/gpu.md): one structure from the pack
// manifest, the depth node, the CLI and DCL_PROVIDER_OPTIONS into onnxruntime-node's session options. What
// onnxruntime-node 1.30 passes (deviceId for cuda/tensorrt, preferredLayout for webgpu) goes into the
// executionProviders entries; what it cannot pass is an error naming the option; options for another device are
// ignored with a note. The webgpu case runs for real on lavapipe when scripts/setup-vulkan.sh has run.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Worker } from 'node:worker_threads';

import {
  cliProviderOptions,
  mergeProviderOptions,
  parseProviderOptionFlags,
  parseProviderOptions,
  PROVIDER_OPTIONS_ENV,
  ProviderOptionsError,
  resolveExecutionProviders,
  withProviderOptionsEnv,
} from '../src/inference/pack/provider-options.js';
import { loadModelPack, ModelPackError } from '../src/inference/pack/load-pack.js';
import { packSessionOptions } from '../src/inference/pack/execution-provider.js';
import { DepthEngine } from '../src/inference/engine/depth-engine.js';
import { depthNode, depthOptions } from '../src/nodes/inference/depth.js';
import { CheckError } from '../src/graph/check.js';
import { bundledVulkanIcd } from '../src/inference/pack/vulkan-env.js';
import { CLI, ROOT, ensureBuilt } from './helpers/build-cli.js';

const TINY = join(ROOT, 'models', 'tiny-random');

describe('provider options: parsing and validation', () => {
  test('a valid object parses; an unknown key and a bad value are errors naming the option and the source', () => {
    assert.deepEqual(parseProviderOptions({ deviceId: 1, webgpuPreferredLayout: 'NHWC' }, 'x'), { deviceId: 1, webgpuPreferredLayout: 'NHWC' });
    assert.deepEqual(parseProviderOptions(undefined, 'x'), {});
    assert.throws(
      () => parseProviderOptions({ deviceID: 1 }, 'pipeline.yaml'),
      (e: Error) => {
        assert.ok(e instanceof ProviderOptionsError);
        assert.match(e.message, /^pipeline\.yaml: unknown provider option "deviceID" \(did you mean "deviceId"\?\); known: deviceId, trtFp16, /);
        return true;
      },
    );
    assert.throws(() => parseProviderOptions({ deviceId: -1 }, 'src'), /^RangeError|src: provider option "deviceId": /);
    assert.throws(() => parseProviderOptions({ deviceId: 1.5 }, 'src'), /src: provider option "deviceId"/);
    assert.throws(() => parseProviderOptions({ cudnnConvAlgoSearch: 'FAST' }, 'src'), /src: provider option "cudnnConvAlgoSearch": .*EXHAUSTIVE/);
    assert.throws(() => parseProviderOptions({ webgpuPreferredLayout: 'nhwc' }, 'src'), /provider option "webgpuPreferredLayout"/);
  });

  test('--provider-option KEY=VALUE flags: numbers and booleans converted, bad ones named', () => {
    assert.deepEqual(parseProviderOptionFlags(['deviceId=2', 'webgpuPreferredLayout=NHWC', 'trtFp16=true']), {
      deviceId: 2,
      webgpuPreferredLayout: 'NHWC',
      trtFp16: true,
    });
    assert.throws(() => parseProviderOptionFlags(['deviceId']), /--provider-option deviceId: expected KEY=VALUE/);
    assert.throws(() => parseProviderOptionFlags(['fp16=true']), /--provider-option: unknown provider option "fp16" \(did you mean "trtFp16"\?\)/);
    assert.throws(() => parseProviderOptionFlags(['deviceId=first']), /--provider-option: provider option "deviceId"/);
  });

  test('later sources win field by field', () => {
    assert.deepEqual(mergeProviderOptions({ deviceId: 0, webgpuPreferredLayout: 'NCHW' }, undefined, { deviceId: 3 }), {
      deviceId: 3,
      webgpuPreferredLayout: 'NCHW',
    });
  });
});

describe('provider options: into executionProviders', () => {
  test('what onnxruntime-node 1.30 passes reaches the provider entries', () => {
    assert.deepEqual(resolveExecutionProviders('cpu').executionProviders, ['cpu']);
    assert.deepEqual(resolveExecutionProviders('cuda', { deviceId: 1 }).executionProviders, [{ name: 'cuda', deviceId: 1 }]);
    assert.deepEqual(resolveExecutionProviders('tensorrt', { deviceId: 1 }).executionProviders, [
      { name: 'tensorrt', deviceId: 1 },
      { name: 'cuda', deviceId: 1 },
    ]);
    assert.deepEqual(resolveExecutionProviders('tensorrt').executionProviders, ['tensorrt', 'cuda']);
    assert.deepEqual(resolveExecutionProviders('webgpu', { webgpuPreferredLayout: 'NHWC' }).executionProviders, [{ name: 'webgpu', preferredLayout: 'NHWC' }]);
  });

  test('options for another device are ignored with a note (cpu: all of them; webgpu: deviceId, which its binding rejects)', () => {
    const r = resolveExecutionProviders('cpu', { deviceId: 0, trtFp16: true, webgpuPreferredLayout: 'NHWC' });
    assert.deepEqual(r.executionProviders, ['cpu']);
    assert.deepEqual(r.notes, [
      'providerOptions.deviceId is for cuda/tensorrt: ignored on device cpu',
      'providerOptions.trtFp16 is for tensorrt: ignored on device cpu',
      'providerOptions.webgpuPreferredLayout is for webgpu: ignored on device cpu',
    ]);
    const w = resolveExecutionProviders('webgpu', { deviceId: 0 });
    assert.deepEqual(w.executionProviders, ['webgpu'], 'no deviceId in the webgpu entry');
    assert.equal(w.notes.length, 1);
    assert.deepEqual(resolveExecutionProviders('cuda', { trtFp16: true }).notes, ['providerOptions.trtFp16 is for tensorrt: ignored on device cuda']);
  });

  test('an option onnxruntime-node 1.30 cannot pass is an error on its device, naming it (never a silent no-op)', () => {
    for (const [device, opts, key] of [
      ['tensorrt', { trtFp16: true }, 'trtFp16'],
      ['tensorrt', { trtEngineCacheDir: '/tmp/trt' }, 'trtEngineCacheDir'],
      ['tensorrt', { trtMaxWorkspaceBytes: 1 << 30 }, 'trtMaxWorkspaceBytes'],
      ['cuda', { cudnnConvAlgoSearch: 'HEURISTIC' }, 'cudnnConvAlgoSearch'],
      ['tensorrt', { cudnnConvAlgoSearch: 'DEFAULT' }, 'cudnnConvAlgoSearch'],
    ] as const) {
      assert.throws(
        () => resolveExecutionProviders(device, opts),
        (e: Error) => {
          assert.ok(e instanceof ProviderOptionsError && e instanceof RangeError);
          assert.equal((e as ProviderOptionsError).option, key);
          assert.ok(e.message.startsWith(`providerOptions.${key} (device ${device}): onnxruntime-node 1.30 cannot pass it`), e.message);
          return true;
        },
      );
    }
    assert.match(
      String(
        (() => {
          try {
            resolveExecutionProviders('tensorrt', { trtFp16: true });
          } catch (e) {
            return (e as Error).message;
          }
        })(),
      ),
      /float16 pack/,
    );
  });

  test('packSessionOptions: the merged options in the session options object, and the source of a bad one named', () => {
    const { sessionOptions, notes } = packSessionOptions('tensorrt', {
      intraOpNumThreads: 2,
      providerOptions: { manifest: { deviceId: 0, webgpuPreferredLayout: 'NHWC' }, env: { deviceId: 1 }, caller: { deviceId: 2 } },
    });
    assert.deepEqual(sessionOptions, {
      executionProviders: [
        { name: 'tensorrt', deviceId: 2 },
        { name: 'cuda', deviceId: 2 },
      ],
      graphOptimizationLevel: 'all',
      intraOpNumThreads: 2,
      extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } },
    });
    assert.deepEqual(notes, ['manifest.json providerOptions.webgpuPreferredLayout is for webgpu: ignored on device tensorrt']);
    assert.throws(
      () => packSessionOptions('tensorrt', { providerOptions: { manifest: { trtFp16: true } } }),
      /^ProviderOptionsError|manifest\.json providerOptions\.trtFp16 \(device tensorrt\)/,
    );
    assert.throws(
      () => packSessionOptions('cuda', { providerOptions: { env: { cudnnConvAlgoSearch: 'HEURISTIC' } } }),
      new RegExp(`${PROVIDER_OPTIONS_ENV}\\.cudnnConvAlgoSearch \\(device cuda\\)`),
    );
  });
});

describe('provider options: loadModelPack, the worker, the depth node, the CLI', () => {
  let tmp = '';
  let pack = '';
  before(() => {
    tmp = mkdtempSync(join(tmpdir(), 'dcl-provider-'));
    // tiny-random with providerOptions in its manifest (the ONNX files linked)
    pack = join(tmp, 'pack');
    const manifest = JSON.parse(readFileSync(join(TINY, 'manifest.json'), 'utf8'));
    spawnSync('mkdir', ['-p', pack]);
    for (const f of Object.values(manifest.files) as string[]) symlinkSync(join(TINY, f), join(pack, f));
    writeFileSync(join(pack, 'manifest.json'), JSON.stringify({ ...manifest, providerOptions: { deviceId: 0, trtFp16: true } }));
  });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  test('on cpu: the pack loads, its session options are plain cpu, the ignored options are noted', async () => {
    const loaded = await loadModelPack(pack, { device: 'cpu', intraOpNumThreads: 1, providerOptions: { webgpuPreferredLayout: 'NHWC' } });
    try {
      assert.deepEqual(loaded.sessionOptions.executionProviders, ['cpu']);
      assert.deepEqual(loaded.providerNotes, [
        'manifest.json providerOptions.deviceId is for cuda/tensorrt: ignored on device cpu',
        'manifest.json providerOptions.trtFp16 is for tensorrt: ignored on device cpu',
        'providerOptions.webgpuPreferredLayout is for webgpu: ignored on device cpu',
      ]);
    } finally {
      await loaded.release();
    }
  });

  test('a bad manifest providerOptions field is a ModelPackError naming it; so is a bad DCL_PROVIDER_OPTIONS', async () => {
    const bad = join(tmp, 'bad');
    spawnSync('cp', ['-r', pack, bad]);
    const m = JSON.parse(readFileSync(join(pack, 'manifest.json'), 'utf8'));
    writeFileSync(join(bad, 'manifest.json'), JSON.stringify({ ...m, providerOptions: { deviceid: 0 } }));
    await assert.rejects(
      loadModelPack(bad, { device: 'cpu' }),
      (e: Error) => e instanceof ModelPackError && /unknown field\(s\) "providerOptions\.deviceid"/.test(e.message),
    );
    await assert.rejects(
      withProviderOptionsEnv({}, () => {
        process.env[PROVIDER_OPTIONS_ENV] = '{"deviceId": "zero"}';
        return loadModelPack(TINY, { device: 'cpu' }).finally(() => delete process.env[PROVIDER_OPTIONS_ENV]);
      }),
      (e: Error) => e instanceof ModelPackError && e.message.includes(`${PROVIDER_OPTIONS_ENV}: provider option "deviceId"`),
    );
  });

  test('the options reach the loader in the inference worker (through its copy of the environment), and only that worker', async () => {
    // cudnnConvAlgoSearch on cuda cannot be passed by onnxruntime-node 1.30: the worker's loader says so (before it
    // would look for the CUDA libraries), which proves the option arrived there.
    await assert.rejects(
      withProviderOptionsEnv({ cudnnConvAlgoSearch: 'HEURISTIC' }, () => DepthEngine.open({ packDir: TINY, device: 'cuda', threads: 1 })),
      (e: Error) =>
        e instanceof ModelPackError && e.message.includes(`${PROVIDER_OPTIONS_ENV}.cudnnConvAlgoSearch (device cuda): onnxruntime-node 1.30 cannot pass it`),
    );
    assert.equal(process.env[PROVIDER_OPTIONS_ENV], undefined, 'the variable is restored at once');
    // a worker started inside sees it, one started after does not
    const probe = () => new Worker(`require('node:worker_threads').parentPort.postMessage(process.env.${PROVIDER_OPTIONS_ENV} ?? null)`, { eval: true });
    const read = (w: Worker) =>
      new Promise<unknown>((res) =>
        w.once('message', (m) => {
          res(m);
          void w.terminate();
        }),
      );
    assert.equal(await read(withProviderOptionsEnv({ deviceId: 3 }, probe)), '{"deviceId":3}');
    assert.equal(await read(probe()), null);
    // and the cpu engine runs with options that are for other devices
    const engine = await withProviderOptionsEnv({ deviceId: 0, webgpuPreferredLayout: 'NHWC' }, () =>
      DepthEngine.open({ packDir: TINY, device: 'cpu', threads: 1 }),
    );
    await engine.close();
  });

  test('depth node: providerOptions is an option of its own; check() names an option that cannot be honoured', async () => {
    const ok = depthOptions.parse({ model: TINY, device: 'cuda', providerOptions: { deviceId: 1 } });
    assert.deepEqual(ok.providerOptions, { deviceId: 1 });
    await depthNode.check!(ok, { warn() {} });
    assert.throws(() => depthOptions.parse({ model: TINY, providerOptions: { devic: 1 } }));
    const bad = depthOptions.parse({ model: TINY, device: 'tensorrt', providerOptions: { trtEngineCacheDir: '/tmp/trt' } });
    await assert.rejects(
      Promise.resolve().then(() => depthNode.check!(bad, { warn() {} })),
      (e: Error) => {
        assert.ok(e instanceof CheckError);
        assert.equal(e.field, 'options.providerOptions.trtEngineCacheDir');
        assert.match(e.message, /onnxruntime-node 1\.30 cannot pass it/);
        return true;
      },
    );
    // the pack's own options are checked too, and blamed on the pack
    const packBad = depthOptions.parse({ model: pack, device: 'tensorrt' });
    await assert.rejects(
      Promise.resolve().then(() => depthNode.check!(packBad, { warn() {} })),
      (e: Error) => e instanceof CheckError && e.field === 'options.model' && /providerOptions\.trtFp16/.test(e.message),
    );
    await depthNode.check!(depthOptions.parse({ model: pack, device: 'cpu' }), { warn() {} });
  });

  test('cliProviderOptions: nothing without flags or variable; flags checked, notes given, variable set', () => {
    const saved = process.env[PROVIDER_OPTIONS_ENV];
    try {
      delete process.env[PROVIDER_OPTIONS_ENV];
      assert.equal(
        cliProviderOptions([], 'cpu', () => assert.fail('no note')),
        undefined,
      );
      assert.equal(process.env[PROVIDER_OPTIONS_ENV], undefined);
      const notes: string[] = [];
      assert.deepEqual(
        cliProviderOptions(['deviceId=1'], 'cpu', (n) => notes.push(n)),
        { deviceId: 1 },
      );
      assert.deepEqual(notes, ['--provider-option.deviceId is for cuda/tensorrt: ignored on device cpu']);
      assert.equal(process.env[PROVIDER_OPTIONS_ENV], '{"deviceId":1}');
      assert.throws(() => cliProviderOptions(['trtFp16=true'], 'tensorrt', () => {}), /--provider-option\.trtFp16 \(device tensorrt\)/);
    } finally {
      if (saved === undefined) delete process.env[PROVIDER_OPTIONS_ENV];
      else process.env[PROVIDER_OPTIONS_ENV] = saved;
    }
  });

  test('infer CLI: --provider-option on cpu runs with a note; an unknown or unpassable one exits 2 naming it', { timeout: 180_000 }, () => {
    ensureBuilt();
    const frames = join(tmp, 'frames');
    const synth = spawnSync(process.execPath, [CLI, 'synth', '--frames', '3', '--size', '64x64', '--seed', '1', '--out', frames], { encoding: 'utf8' });
    assert.equal(synth.status, 0, synth.stderr);
    const infer = (...extra: string[]) =>
      spawnSync(
        process.execPath,
        [
          CLI,
          'infer',
          join(frames, 'rgb'),
          '--model',
          TINY,
          '--window',
          '3',
          '--overlap',
          '1',
          '--steps',
          '1',
          '--threads',
          '1',
          '--no-videos',
          '--out',
          join(tmp, 'out'),
          ...extra,
        ],
        { encoding: 'utf8', env: { ...process.env, [PROVIDER_OPTIONS_ENV]: '' } },
      );
    const ok = infer('--provider-option', 'deviceId=0', '--json');
    assert.equal(ok.status, 0, ok.stderr);
    assert.equal(JSON.parse(ok.stdout).frames, 3);
    assert.match(ok.stderr, /--provider-option\.deviceId is for cuda\/tensorrt: ignored on device cpu/);
    const unknown = infer('--provider-option', 'fp16=true');
    assert.equal(unknown.status, 2, unknown.stderr);
    assert.match(unknown.stderr, /unknown provider option "fp16" \(did you mean "trtFp16"\?\)/);
    const unpassable = infer('--device', 'tensorrt', '--provider-option', 'trtMaxWorkspaceBytes=1073741824');
    assert.equal(unpassable.status, 2, unpassable.stderr);
    assert.match(unpassable.stderr, /--provider-option\.trtMaxWorkspaceBytes \(device tensorrt\): onnxruntime-node 1\.30 cannot pass it/);
  });

  const icd = bundledVulkanIcd();
  const lavapipe = (file: string): NodeJS.ProcessEnv => {
    const env: NodeJS.ProcessEnv = { ...process.env, VK_ICD_FILENAMES: file };
    delete env.VK_DRIVER_FILES; // (an empty value is not "unset" to the Vulkan loader)
    delete env.VK_ADD_DRIVER_FILES;
    return env;
  };
  test(
    'webgpu (lavapipe): webgpuPreferredLayout reaches the WebGPU provider (an invalid value is rejected by it), NHWC matches NCHW',
    { skip: icd ? false : 'no .vulkan/icd.json (bash scripts/setup-vulkan.sh)', timeout: 300_000 },
    () => {
      // in a child process: the Vulkan driver must be chosen before the first WebGPU session of a process
      const script = `
      import { loadModelPack } from ${JSON.stringify(join(ROOT, 'src/inference/pack/load-pack.ts'))};
      import * as ort from 'onnxruntime-node';
      const x = new ort.Tensor('float32', Float32Array.from({ length: 3 * 64 * 64 }, (_, i) => Math.sin(i) * 0.9), [1, 3, 64, 64]);
      const out = {};
      for (const layout of ['NCHW', 'NHWC']) {
        const p = await loadModelPack(${JSON.stringify(TINY)}, { device: 'webgpu', providerOptions: { webgpuPreferredLayout: layout } });
        out[layout] = { eps: p.sessionOptions.executionProviders, y: Array.from((await p.sessions.vaeEncoder.run({ sample: x })).latent_mean.data) };
        await p.release();
      }
      let bogus = '';
      try { await ort.InferenceSession.create(${JSON.stringify(join(TINY, 'vae_encoder.onnx'))}, { executionProviders: [{ name: 'webgpu', preferredLayout: 'bogus' }] }); } catch (e) { bogus = String(e.message).split('\\n')[0]; }
      console.log(JSON.stringify({ ...out, bogus }));`;
      const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
        cwd: ROOT,
        encoding: 'utf8',
        env: lavapipe(icd!),
        timeout: 280_000,
      });
      assert.equal(r.status, 0, r.stderr.slice(-2000));
      const res = JSON.parse(r.stdout.trim().split('\n').pop()!);
      assert.deepEqual(res.NCHW.eps, [{ name: 'webgpu', preferredLayout: 'NCHW' }]);
      assert.deepEqual(res.NHWC.eps, [{ name: 'webgpu', preferredLayout: 'NHWC' }]);
      const diff = res.NCHW.y.reduce((m: number, v: number, i: number) => Math.max(m, Math.abs(v - res.NHWC.y[i])), 0);
      assert.ok(diff < 1e-4, `NHWC vs NCHW on webgpu: ${diff}`);
      assert.match(res.bogus, /webgpu|preferredLayout|layout/i, `ORT rejects a bad layout: ${res.bogus}`);
    },
  );
});

test('README/docs: docs/gpu.md lists every provider option', () => {
  const doc = existsSync(join(ROOT, 'docs', 'gpu.md')) ? readFileSync(join(ROOT, 'docs', 'gpu.md'), 'utf8') : '';
  for (const key of ['deviceId', 'trtFp16', 'trtEngineCacheDir', 'trtMaxWorkspaceBytes', 'cudnnConvAlgoSearch', 'webgpuPreferredLayout']) {
    assert.ok(doc.includes(`\`${key}\``), `docs/gpu.md mentions ${key}`);
  }
});
