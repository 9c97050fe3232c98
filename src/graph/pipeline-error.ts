import { UserError } from '../util/errors.js';
/**
 * A mistake in a pipeline file, found before any frame flows. The message always names the file
 * and, where they apply, the node and the field, so a user can go straight to the line.
 */
export class PipelineError extends UserError {
  constructor(
    readonly file: string,
    readonly detail: string,
    readonly node?: string,
    readonly field?: string,
    /** The line in the file the mistake is on, when it could be found. */
    readonly line?: number,
  ) {
    const where = [node !== undefined ? `node "${node}"` : '', field !== undefined ? `field "${field}"` : ''].filter(Boolean).join(', ');
    super(`${file}: ${where ? where + ': ' : ''}${detail}${line !== undefined ? ` (line ${line})` : ''}`);
    this.name = 'PipelineError';
  }
}
