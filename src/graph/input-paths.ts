import { existsSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { PROJECT_ROOT } from '../util/project-root.js';

// Where a relative input path in a pipeline file points (a model pack, a video, a folder of
// frames): next to the pipeline file first, so a file copied to another folder with its inputs
// still works; then the current folder (how the shipped files were always run); for a model pack
// also the project's own folder and its models/ (`model: synthetic-small`). The first that exists
// wins; when none does the path is left as written, and the pre-start checks name it.

export type InputPathKind = 'file' | 'folder' | 'pack';

export function resolveInputPath(value: string, pipelineFile: string, kind: InputPathKind): string {
  return firstExisting(value, [dirname(resolve(pipelineFile)), process.cwd()], kind);
}

/** A command-line --model: the current folder first, then the project's own packs (`--model synthetic-small`). */
export function resolvePackArg(value: string): string {
  return firstExisting(value, [process.cwd()], 'pack');
}

function firstExisting(value: string, bases: readonly string[], kind: InputPathKind): string {
  if (value === '' || isAbsolute(value) || /^[a-z][a-z0-9+.-]*:\/\//i.test(value)) return value;
  const candidates = bases.map((b) => resolve(b, value));
  if (kind === 'pack') candidates.push(join(PROJECT_ROOT, value), join(PROJECT_ROOT, 'models', value));
  return candidates.find((c) => existsSync(c)) ?? value;
}
