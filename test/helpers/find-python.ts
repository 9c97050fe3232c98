import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { ROOT } from './build-cli.js';

// The Python of the export tools (tools/requirements-export.txt) for tests that run them: DCL_EXPORT_PYTHON,
// then the project's .venv-export, then python3 on PATH; the first one that imports every module wins.
// PYTHONPATH passes through (a diffusers source tree where the package index has none).

export const EXPORT_MODULES = ['torch', 'diffusers', 'transformers', 'onnx', 'onnxruntime'] as const;

export interface FoundPython {
  /** The interpreter, or null when none imports the modules. */
  python: string | null;
  /** Why each candidate was rejected (for the skip message). */
  why: string;
}

export function findPython(modules: readonly string[] = EXPORT_MODULES): FoundPython {
  const candidates = [process.env.DCL_EXPORT_PYTHON, path.join(ROOT, '.venv-export', 'bin', 'python'), 'python3'].filter(
    (p): p is string => !!p && (p === 'python3' || existsSync(p)),
  );
  const reasons: string[] = [];
  for (const python of candidates) {
    const r = spawnSync(python, ['-c', `import ${modules.join(', ')}`], { encoding: 'utf8' });
    if (r.status === 0) return { python, why: '' };
    reasons.push(`${python}: ${(r.stderr || r.error?.message || '').trim().split('\n').pop()}`);
  }
  return { python: null, why: reasons.join('; ') || 'no Python found' };
}
