import { readdirSync, unlinkSync } from 'node:fs';
import { rename, unlink, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

// Outputs are written under a temporary name in their folder and renamed into place when they are
// complete, so a file under its final name is never partial: a failed run, a signal or a crash
// leaves either nothing, the previous file, or a hidden temporary that the next run removes.

/** The temporary name `path` is written under by this process. */
export function partialPath(path: string, pid = process.pid): string {
  return join(dirname(path), `.${basename(path)}.${pid}.partial`);
}

/** Temporaries for `path` left by processes that no longer run (killed before they could clean up). */
export function removeStalePartials(path: string, extraSuffixes: readonly string[] = []): string[] {
  const dir = dirname(path);
  const base = basename(path);
  const removed: string[] = [];
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return removed;
  }
  const patterns = [new RegExp(`^\\.${escape(base)}\\.(\\d+)\\.partial$`), ...extraSuffixes.map((s) => new RegExp(`^${escape(base)}\\.(\\d+)${escape(s)}$`))];
  for (const name of names) {
    for (const re of patterns) {
      const m = re.exec(name);
      if (!m || isRunning(Number(m[1]))) continue;
      try {
        unlinkSync(join(dir, name));
        removed.push(join(dir, name));
      } catch {
        /* gone already, or not ours to remove */
      }
    }
  }
  return removed;
}

function isRunning(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Write a whole file under its temporary name, then rename it into place. */
export async function writeFileAtomic(path: string, data: Uint8Array): Promise<void> {
  const tmp = partialPath(path);
  try {
    await writeFile(tmp, data);
    await rename(tmp, path);
  } catch (e) {
    await unlink(tmp).catch(() => {});
    throw e;
  }
}
