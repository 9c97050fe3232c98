// bench/gpu-check.sh --dry-run --device cpu: every step of the GPU check (models of the real classes, export with
// fused attention, clips, the reference PyTorch pipeline, `infer` on the cpu provider, the table) on the CPU at a tiny
// shape. Needs the export Python (tools/requirements-export.txt; DCL_EXPORT_PYTHON, .venv-export, python3) and is
// skipped with that reason where it is missing, like test/export-depthcrafter.test.ts.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { findPython } from './helpers/find-python.js';
import { ROOT, ensureBuilt } from './helpers/build-cli.js';

const { python, why } = findPython([...['torch', 'diffusers', 'transformers', 'onnx', 'onnxruntime'], 'PIL']);
const SKIP = python ? false : `the export Python is missing (${why}); set DCL_EXPORT_PYTHON or make .venv-export (tools/requirements-export.txt)`;

const work = mkdtempSync(path.join(tmpdir(), 'dcl-gpu-check-'));
after(() => rmSync(work, { recursive: true, force: true }));

test('bench/gpu-check.sh --dry-run --device cpu runs every step and prints the table', { skip: SKIP, timeout: 600_000 }, () => {
  ensureBuilt();
  const r = spawnSync('bash', [path.join(ROOT, 'bench', 'gpu-check.sh'), '--dry-run', '--device', 'cpu', '--work', work, '--threads', '1'], {
    cwd: ROOT,
    encoding: 'utf8',
    env: { ...process.env, DCL_EXPORT_PYTHON: python! },
    timeout: 590_000,
  });
  assert.equal(r.status, 0, `${r.stdout.slice(-3000)}\n${r.stderr.slice(-3000)}`);
  for (const s of ['models', 'pack', 'clip 128x64', 'reference 128x64', 'infer cpu 128x64', 'reference 192x128', 'infer cpu 192x128']) {
    assert.match(r.stdout, new RegExp(`\\[gpu-check\\] ${s}: ok`), `${s} ran`);
  }
  assert.match(
    r.stdout,
    /\| size \| provider \| image enc \| VAE enc \| UNet \| VAE dec \| total ms\/frame \| ratio to reference \| peak RSS MiB \| depth vs reference \|/,
  );
  const report = JSON.parse(readFileSync(path.join(work, 'report.json'), 'utf8'));
  assert.equal(report.dryRun, true);
  const ours = report.runs.filter((x: { provider: string }) => x.provider === 'cpu');
  assert.equal(ours.length, 2);
  for (const row of ours) {
    assert.ok(row.ok, JSON.stringify(row));
    for (const k of ['imageEncoder', 'vaeEncoder', 'unet', 'vaeDecoder', 'total']) assert.ok(row.msPerFrame[k] > 0, `${row.size} ${k}`);
    assert.ok(row.ratioToReference > 0);
  }
  // the same noise at the first size: our engine on the fused-attention pack against the PyTorch reference
  assert.ok(ours[0].depthMaxAbsDiffToReference < 1e-3, `depth vs reference ${ours[0].depthMaxAbsDiffToReference}`);
  const packReport = JSON.parse(readFileSync(path.join(work, 'pack', 'export-report.json'), 'utf8'));
  assert.equal(packReport.unet.ops.unfusedAttention, 0);
  assert.ok(packReport.unet.ops.MultiHeadAttention > 0);
});
