import { PipelineError } from './pipeline-error.js';
import type { Pipeline } from './pipeline-file.js';
import { UserError } from '../util/errors.js';

// Checks that need more than the file itself (a model pack's limits, a device, a folder on disk,
// two nodes claiming one WebSocket path), run by `validate` and by `run` before any node starts,
// so a mistake is reported with its file, node and field instead of failing half way up.

/** A node kind's own check failed: `field` is under the node ("options.window"). */
export class CheckError extends UserError {
  constructor(
    readonly field: string | undefined,
    message: string,
  ) {
    super(message);
    this.name = 'CheckError';
  }
}

export interface CheckReport {
  /** Things that may work at run time but probably will not (e.g. a host name that does not resolve here). */
  readonly warnings: string[];
}

export async function checkPipeline(p: Pipeline): Promise<CheckReport> {
  const warnings: string[] = [];
  const claims = new Map<string, string>();
  for (const n of p.nodes) {
    for (const c of n.kind.claims?.(n.options as never) ?? []) {
      const first = claims.get(c.resource);
      if (first !== undefined) throw new PipelineError(p.file, `${c.what} is already used by node "${first}"`, n.name, c.field);
      claims.set(c.resource, n.name);
    }
  }
  for (const n of p.nodes) {
    try {
      await n.kind.check?.(n.options as never, { warn: (w) => warnings.push(`${p.file}: node "${n.name}": ${w}`) });
    } catch (e) {
      if (e instanceof CheckError) throw new PipelineError(p.file, e.message, n.name, e.field);
      throw e;
    }
  }
  return { warnings };
}
