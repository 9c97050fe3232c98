import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const ROOT = resolve(import.meta.dirname, '..', '..');
/** The CLI entry point as users run it (it imports dist/). */
export const CLI = join(ROOT, 'bin', 'depthcrafter-live.js');

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestMtime(p));
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, statSync(p).mtimeMs);
  }
  return newest;
}

/** Build dist/ when it is missing or older than any source file, so CLI tests run the current code. */
export function ensureBuilt(): void {
  const main = join(ROOT, 'dist', 'cli', 'main.js');
  if (existsSync(main) && statSync(main).mtimeMs >= newestMtime(join(ROOT, 'src'))) return;
  const r = spawnSync(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 120_000,
  });
  // Type errors do not stop tsc from emitting; a missing entry point does.
  if (r.status !== 0) process.stderr.write(`tsc exited ${r.status}:\n${r.stdout}${r.stderr}\n`);
  assert.ok(existsSync(main), `tsc did not produce dist/cli/main.js:\n${r.stdout}${r.stderr}`);
}
