// `depthcrafter-live models get depthcrafter`, offline: tiny randomly initialised models of the real classes
// (tools/make_tiny_depthcrafter.py) are put into a Hugging Face hub cache laid out as huggingface_hub lays it out
// (models--{org}--{name}/{refs/main, snapshots/<commit>/... -> ../../blobs/<hash>, blobs/, trees/<commit>.json}),
// checked with huggingface_hub's own scan_cache_dir and snapshot_download(local_files_only=True); then the real
// CLI runs with HF_HUB_OFFLINE=1 and HF_HOME/HF_HUB_CACHE pointing there, so nothing is downloaded. Needs a
// Python with torch, diffusers, transformers, onnx, onnxruntime and huggingface_hub (tools/requirements-export.txt;
// DCL_EXPORT_PYTHON, default .venv-export/bin/python, then python3; PYTHONPATH as needed); skipped with the
// reason elsewhere. `models list` and the usage errors need no Python.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { loadModelPack } from '../src/inference/pack/load-pack.js';
import { readPackManifest } from '../src/inference/pack/manifest.js';
import { CLI, ROOT, ensureBuilt } from './helpers/build-cli.js';
import { EXPORT_MODULES, findPython } from './helpers/find-python.js';

const TOOLS = path.join(ROOT, 'tools');
const UNET_REPO = 'tencent/DepthCrafter';
const SVD_REPO = 'stabilityai/stable-video-diffusion-img2vid-xt';
const UNET_COMMIT = createHash('sha1').update('tiny DepthCrafter').digest('hex');
const SVD_COMMIT = createHash('sha1').update('tiny SVD-xt').digest('hex');

const { python, why } = findPython([...EXPORT_MODULES, 'huggingface_hub']);
const SKIP = python ? false : `torch/diffusers/transformers/onnx/huggingface_hub not importable (${why}); set DCL_EXPORT_PYTHON and PYTHONPATH to run`;

function cli(args: string[], env: Record<string, string | undefined>, timeout = 600_000) {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd: ROOT, env: { ...process.env, ...env }, encoding: 'utf8', timeout, maxBuffer: 64 << 20 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function py(args: string[], env: Record<string, string | undefined> = {}): string {
  const r = spawnSync(python!, args, { encoding: 'utf8', maxBuffer: 64 << 20, env: { ...process.env, ...env } });
  if (r.status !== 0) throw new Error(`python ${args[0]} failed (${r.status}): ${r.stderr.slice(-3000)}`);
  return r.stdout;
}

// ---------------------------------------------------------------------------------------------
// a hub cache laid out by hand, after huggingface_hub's documented cache layout (guides/manage-cache):
// blobs named by their hash (sha256 for LFS files, the git blob sha1 otherwise), snapshot files as relative
// symlinks to them, refs/<branch> holding the commit, and (huggingface_hub >= 1.33) trees/<commit>.json, the
// cached listing of every file of the repo at that commit, also those not downloaded.

const isLfs = (p: string) => /\.(safetensors|bin|onnx|pt|ckpt)$/.test(p);
const gitBlobSha1 = (data: Buffer) => createHash('sha1').update(`blob ${data.length}\0`).update(data).digest('hex');
const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');
const lfsPointer = (oid: string, size: number) => Buffer.from(`version https://git-lfs.github.com/spec/v1\noid sha256:${oid}\nsize ${size}\n`);

interface TreeEntry {
  size: number;
  blob_id: string;
  lfs_sha256?: string;
  lfs_size?: number;
}

function addRepoToCache(
  cache: string,
  repo: string,
  commit: string,
  files: Record<string, string>,
  opts: { tree: boolean; notDownloaded?: Record<string, number> },
): void {
  const storage = path.join(cache, `models--${repo.replace('/', '--')}`);
  const snapshot = path.join(storage, 'snapshots', commit);
  mkdirSync(path.join(storage, 'blobs'), { recursive: true });
  mkdirSync(path.join(storage, 'refs'), { recursive: true });
  const tree: Record<string, TreeEntry> = {};
  for (const [repoPath, src] of Object.entries(files)) {
    const data = readFileSync(src);
    const blob = isLfs(repoPath) ? sha256(data) : gitBlobSha1(data);
    const blobPath = path.join(storage, 'blobs', blob);
    if (!existsSync(blobPath)) writeFileSync(blobPath, data);
    const link = path.join(snapshot, ...repoPath.split('/'));
    mkdirSync(path.dirname(link), { recursive: true });
    symlinkSync(path.relative(path.dirname(link), blobPath), link);
    tree[repoPath] = isLfs(repoPath)
      ? { size: data.length, blob_id: gitBlobSha1(lfsPointer(blob, data.length)), lfs_sha256: blob, lfs_size: data.length }
      : { size: data.length, blob_id: blob };
  }
  for (const [repoPath, size] of Object.entries(opts.notDownloaded ?? {})) {
    const oid = sha256(Buffer.from(repoPath));
    tree[repoPath] = isLfs(repoPath)
      ? { size, blob_id: gitBlobSha1(lfsPointer(oid, size)), lfs_sha256: oid, lfs_size: size }
      : { size, blob_id: gitBlobSha1(Buffer.from(repoPath)) };
  }
  writeFileSync(path.join(storage, 'refs', 'main'), commit);
  if (opts.tree) {
    mkdirSync(path.join(storage, 'trees'), { recursive: true });
    const sorted = Object.fromEntries(
      Object.keys(tree)
        .sort()
        .map((k) => [k, tree[k]]),
    );
    writeFileSync(path.join(storage, 'trees', `${commit}.json`), JSON.stringify({ format_version: 1, files: sorted }, null, 1));
  }
}

function listTree(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) out.push(path.join(e.parentPath, e.name));
  return out.sort();
}

// the fp16 files of the real repos: tencent/DepthCrafter's single UNet file holds fp16 tensors under the plain
// name; SVD-xt has *.fp16.safetensors beside the fp32 files of vae/ and image_encoder/
const MAKE_FP16 = `
import sys
from safetensors.torch import load_file, save_file
d = sys.argv[1]
half = lambda sd: {k: (v.half() if v.is_floating_point() else v) for k, v in sd.items()}
u = d + "/unet/diffusion_pytorch_model.safetensors"
save_file(half(load_file(u)), u, metadata={"format": "pt"})
for sub, stem in (("vae", "diffusion_pytorch_model"), ("image_encoder", "model")):
    src = f"{d}/svd/{sub}/{stem}.safetensors"
    save_file(half(load_file(src)), f"{d}/svd/{sub}/{stem}.fp16.safetensors", metadata={"format": "pt"})
`;

// what a download of the SVD-xt folders that matter leaves in the cache (both variants of the weights)
const SVD_FILES = [
  'model_index.json',
  'feature_extractor/preprocessor_config.json',
  'scheduler/scheduler_config.json',
  'vae/config.json',
  'vae/diffusion_pytorch_model.safetensors',
  'vae/diffusion_pytorch_model.fp16.safetensors',
  'image_encoder/config.json',
  'image_encoder/model.safetensors',
  'image_encoder/model.fp16.safetensors',
];

const VERIFY_CACHE = `
import json, sys
from huggingface_hub import get_cached_repo_tree, scan_cache_dir, snapshot_download
from huggingface_hub.errors import IncompleteSnapshotError
cache, unet, svd = sys.argv[1:4]
patterns = json.loads(sys.argv[4])
info = scan_cache_dir(cache)
snaps = {unet: snapshot_download(unet, cache_dir=cache, local_files_only=True),
         svd: snapshot_download(svd, cache_dir=cache, local_files_only=True, allow_patterns=patterns)}
try:  # the whole repo is not there: the cached tree listing says so
    snapshot_download(svd, cache_dir=cache, local_files_only=True)
    incomplete = ""
except IncompleteSnapshotError as e:
    incomplete = str(e)
tree = sorted(f.path for f in get_cached_repo_tree(svd, cache_dir=cache))
print(json.dumps({"repos": sorted(r.repo_id for r in info.repos), "warnings": [str(w) for w in info.warnings],
                  "files": {r.repo_id: r.nb_files for r in info.repos}, "snapshots": snaps, "svdTree": tree, "incomplete": incomplete}))
`;

describe('models get depthcrafter, offline from a Hugging Face cache of tiny models', { skip: SKIP }, () => {
  let tmp = '';
  let cache = '';
  let env: Record<string, string | undefined> = {};
  let cacheBefore: string[] = [];

  before(
    async () => {
      ensureBuilt();
      tmp = await mkdtemp(path.join(tmpdir(), 'dc-models-get-'));
      const models = path.join(tmp, 'models');
      py([path.join(TOOLS, 'make_tiny_depthcrafter.py'), '--out', models, '--seed', '5']);
      py(['-c', MAKE_FP16, models]);
      cache = path.join(tmp, 'hf', 'hub');
      const u = path.join(models, 'unet');
      const s = path.join(models, 'svd');
      // no tree listing for this one: a cache written by an older huggingface_hub (the snapshot folder is listed)
      addRepoToCache(
        cache,
        UNET_REPO,
        UNET_COMMIT,
        { 'config.json': path.join(u, 'config.json'), 'diffusion_pytorch_model.safetensors': path.join(u, 'diffusion_pytorch_model.safetensors') },
        { tree: false },
      );
      const svd: Record<string, string> = {};
      for (const f of SVD_FILES) svd[f] = path.join(s, ...f.split('/'));
      // the repo's other files are in its tree listing but were never downloaded (allow_patterns left them out)
      addRepoToCache(cache, SVD_REPO, SVD_COMMIT, svd, {
        tree: true,
        notDownloaded: {
          '.gitattributes': 1519,
          'README.md': 5100,
          LICENSE: 7000,
          'svd_xt.safetensors': 9559625064,
          'svd_xt_image_decoder.safetensors': 9559625064,
          'unet/config.json': 1200,
          'unet/diffusion_pytorch_model.safetensors': 6098682464,
          'unet/diffusion_pytorch_model.fp16.safetensors': 3049435836,
        },
      });
      env = {
        HF_HOME: path.join(tmp, 'hf'),
        HF_HUB_CACHE: cache,
        HF_HUB_OFFLINE: '1',
        HF_TOKEN: undefined,
        HF_ENDPOINT: undefined,
        HF_HUB_DISABLE_TELEMETRY: '1',
      };
      cacheBefore = listTree(cache);
    },
    { timeout: 300_000 },
  );
  after(async () => {
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('is a cache huggingface_hub reads as its own (scan_cache_dir, snapshot_download(local_files_only=True), the cached tree)', () => {
    const r = JSON.parse(py(['-c', VERIFY_CACHE, cache, UNET_REPO, SVD_REPO, JSON.stringify(SVD_FILES)], env));
    assert.deepEqual(r.repos, [SVD_REPO, UNET_REPO].sort());
    assert.deepEqual(r.warnings, []);
    assert.deepEqual(r.files, { [UNET_REPO]: 2, [SVD_REPO]: 9 });
    assert.equal(r.snapshots[UNET_REPO], path.join(cache, 'models--tencent--DepthCrafter', 'snapshots', UNET_COMMIT));
    assert.equal(r.snapshots[SVD_REPO], path.join(cache, 'models--stabilityai--stable-video-diffusion-img2vid-xt', 'snapshots', SVD_COMMIT));
    assert.ok(r.svdTree.includes('unet/diffusion_pytorch_model.fp16.safetensors') && r.svdTree.length === 17);
    assert.match(r.incomplete, /is incomplete: 8 file\(s\) are missing/);
  });

  it('exports the pack from the cache with HF_HUB_OFFLINE=1, loads it with loadModelPack and runs a few frames', { timeout: 600_000 }, async () => {
    const out = path.join(tmp, 'pack-fp32');
    const r = cli(['models', 'get', 'depthcrafter', '--out', out, '--python', python!, '--json'], env);
    assert.equal(r.code, 0, r.stderr.slice(-4000));
    const res = JSON.parse(r.stdout);
    // the files: the plain weights (no --variant), none of the repo's files that were not needed
    assert.deepEqual(res.repos[0].files, ['config.json', 'diffusion_pytorch_model.safetensors']);
    assert.equal(res.repos[0].commit, UNET_COMMIT);
    assert.deepEqual(res.repos[1].files, [
      'model_index.json',
      'feature_extractor/preprocessor_config.json',
      'scheduler/scheduler_config.json',
      'vae/config.json',
      'vae/diffusion_pytorch_model.safetensors',
      'image_encoder/config.json',
      'image_encoder/model.safetensors',
    ]);
    assert.ok(res.offline && res.repos.every((x: { offline: boolean; downloadedBytes: number }) => x.offline && x.downloadedBytes === 0));
    assert.deepEqual(listTree(cache), cacheBefore, 'nothing was added to the cache');
    // the check ran through the engine
    assert.equal(res.check.frames, 4);
    assert.deepEqual([res.check.width, res.check.height], [128, 64]);
    assert.ok(res.check.depthMin >= 0 && res.check.depthMax <= 1 && res.check.depthMax > res.check.depthMin, JSON.stringify(res.check));
    assert.match(r.stderr, /check: loading .* with loadModelPack on cpu/);
    // the pack
    const manifest = await readPackManifest(out);
    assert.equal(manifest.dtype, 'float32');
    assert.equal(manifest.name, 'depthcrafter');
    assert.equal(manifest.trainingDomain, 'real');
    assert.equal(manifest.randomWeights, false);
    assert.ok(
      manifest.sources!.some((s) => s.startsWith(`${UNET_REPO}@${UNET_COMMIT}`)),
      manifest.sources!.join('\n'),
    );
    assert.ok(manifest.sources!.some((s) => s.startsWith(`${SVD_REPO}@${SVD_COMMIT}`)));
    for (const f of ['image_encoder.onnx.data', 'unet.onnx.data'])
      assert.ok(existsSync(path.join(out, f)), `${f}: fp32 packs keep every file's weights in external data`);
    const pack = await loadModelPack(out, { device: 'cpu', intraOpNumThreads: 1 });
    try {
      assert.equal(pack.dtype, 'float32');
      assert.equal(pack.manifest.embeddingDim, 32);
    } finally {
      await pack.release();
    }
    // models list shows it
    const l = cli(['models', 'list', '--dir', tmp, '--json'], {});
    assert.equal(l.code, 0, l.stderr);
    const packs = JSON.parse(l.stdout).packs;
    assert.deepEqual(
      packs.map((p: { pack: string; trainingDomain: string; randomWeights: boolean }) => [p.pack, p.trainingDomain, p.randomWeights]),
      [['pack-fp32', 'real', false]],
    );
    // and a second get into the same folder wants --force
    const again = cli(['models', 'get', 'depthcrafter', '--out', out, '--python', python!], env);
    assert.equal(again.code, 2);
    assert.match(again.stderr, /already holds a model pack .*--force/);
  });

  it('--variant fp16 takes the fp16 files where the repo has them and writes an fp16 pack (using the export venv as it is)', { timeout: 600_000 }, async () => {
    const out = path.join(tmp, 'pack-fp16');
    // a venv that already has the packages is used without pip; any other Python is passed as --python
    const venv = path.dirname(path.dirname(python!));
    const env_ = existsSync(path.join(venv, 'pyvenv.cfg')) ? ['--venv', venv] : ['--python', python!];
    const r = cli(['models', 'get', 'depthcrafter', '--variant', 'fp16', '--out', out, ...env_], env);
    assert.equal(r.code, 0, r.stderr.slice(-4000));
    if (env_[0] === '--venv') assert.match(r.stderr, /export environment: .* packages present/);
    assert.doesNotMatch(r.stderr, /\[models\] export environment: pip install/);
    assert.match(r.stdout, /depthcrafter: .*pack-fp16 \(float16, .* on disk\)/);
    assert.match(r.stdout, /tencent\/DepthCrafter@[0-9a-f]{10}: 2 files, from the cache \(offline\)/);
    assert.match(r.stdout, /check: loaded with loadModelPack on cpu in .* s; 4 frames at 128x64 \(window 4, 1 step\) in .* s; depth finite, in \[/);
    const manifest = await readPackManifest(out);
    assert.equal(manifest.dtype, 'float16');
    const svdSource = manifest.sources!.find((s) => s.startsWith(SVD_REPO))!;
    assert.match(svdSource, /vae\/diffusion_pytorch_model\.fp16\.safetensors/);
    assert.match(svdSource, /image_encoder\/model\.fp16\.safetensors/);
    assert.doesNotMatch(svdSource, /vae\/diffusion_pytorch_model\.safetensors|image_encoder\/model\.safetensors/);
    assert.ok(
      manifest.sources!.some((s) => s === `${UNET_REPO}@${UNET_COMMIT}: config.json, diffusion_pytorch_model.safetensors`),
      'the UNet has no fp16 variant file: its plain (fp16) file',
    );
    assert.ok(!existsSync(path.join(out, 'image_encoder.onnx.data')), 'an fp16 pack keeps only the UNet in external data');
  });

  it('fails with exit 2 and a message naming the repo when HF_HUB_OFFLINE=1 and the cache does not have it', () => {
    const empty = path.join(tmp, 'hf-empty');
    const out = path.join(tmp, 'never');
    const r = cli(['models', 'get', 'depthcrafter', '--out', out, '--python', python!], { ...env, HF_HOME: empty, HF_HUB_CACHE: path.join(empty, 'hub') });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /error: tencent\/DepthCrafter \(revision main\) is not in the Hugging Face cache at .*hf-empty\/hub, and HF_HUB_OFFLINE=1 is set/);
    assert.ok(!existsSync(out), 'no pack folder left behind');
    assert.equal(r.stdout, '');
  });

  it('names the repo when the cache holds only part of a snapshot (offline)', () => {
    // the SVD-xt snapshot without its image encoder weights: the cached tree listing says what is missing
    const part = path.join(tmp, 'hf-part', 'hub');
    const s = path.join(tmp, 'models', 'svd');
    const svd: Record<string, string> = {};
    for (const f of [
      'model_index.json',
      'feature_extractor/preprocessor_config.json',
      'scheduler/scheduler_config.json',
      'vae/config.json',
      'vae/diffusion_pytorch_model.safetensors',
      'image_encoder/config.json',
    ])
      svd[f] = path.join(s, ...f.split('/'));
    const u = path.join(tmp, 'models', 'unet');
    addRepoToCache(
      part,
      UNET_REPO,
      UNET_COMMIT,
      { 'config.json': path.join(u, 'config.json'), 'diffusion_pytorch_model.safetensors': path.join(u, 'diffusion_pytorch_model.safetensors') },
      { tree: false },
    );
    addRepoToCache(part, SVD_REPO, SVD_COMMIT, svd, { tree: true, notDownloaded: { 'image_encoder/model.safetensors': 1000 } });
    const r = cli(['models', 'get', 'depthcrafter', '--out', path.join(tmp, 'never2'), '--python', python!], {
      ...env,
      HF_HOME: path.dirname(part),
      HF_HUB_CACHE: part,
    });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /error: stabilityai\/stable-video-diffusion-img2vid-xt: .*image_encoder\/model\.safetensors/);
  });
});

describe('models list and usage errors (no Python needed)', () => {
  before(() => ensureBuilt(), { timeout: 120_000 });

  it("lists the project's packs with name, version, randomWeights and trainingDomain", () => {
    const r = cli(['models', 'list', '--dir', path.join(ROOT, 'models'), '--json'], {});
    assert.equal(r.code, 0, r.stderr);
    const packs = JSON.parse(r.stdout).packs as Array<Record<string, unknown>>;
    const tiny = packs.find((p) => p.pack === 'tiny-random')!;
    assert.deepEqual([tiny.name, tiny.version, tiny.randomWeights, tiny.dtype], ['tiny-random', '1.0.0', true, 'float32']);
    const text = cli(['models', 'list', '--dir', path.join(ROOT, 'models')], {});
    assert.equal(text.code, 0);
    assert.match(text.stdout, /PACK +NAME +VERSION +DTYPE +RANDOM WEIGHTS +TRAINING DOMAIN +SIZE/);
    assert.match(text.stdout, /tiny-random +tiny-random +1\.0\.0 +float32 +yes/);
  });

  it('exits 2 on an unknown model, a bad --variant and a missing folder', () => {
    for (const [args, re] of [
      [['models', 'get', 'depthanything'], /unknown model "depthanything" \(known: depthcrafter\)/],
      [['models', 'get', 'depthcrafter', '--variant', 'bf16'], /--variant must be fp16/],
      [['models', 'list', '--dir', path.join(tmpdir(), 'no-such-models-dir')], /no such folder/],
    ] as const) {
      const r = cli([...args], {});
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, re);
    }
  });

  it('exits 2 naming the Python when --python lacks the packages', () => {
    const r = cli(['models', 'get', 'depthcrafter', '--out', path.join(tmpdir(), 'dc-never'), '--python', '/bin/false'], {});
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--python \/bin\/false: cannot run it/);
  });
});
