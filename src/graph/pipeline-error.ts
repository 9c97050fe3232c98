/**
 * A mistake in a pipeline file, found before any frame flows. The message always names the file
 * and, where they apply, the node and the field, so a user can go straight to the line.
 */
export class PipelineError extends Error {
  readonly exitCode = 2;
  constructor(
    readonly file: string,
    readonly detail: string,
    readonly node?: string,
    readonly field?: string,
  ) {
    const where = [node !== undefined ? `node "${node}"` : '', field !== undefined ? `field "${field}"` : '']
      .filter(Boolean)
      .join(', ');
    super(`${file}: ${where ? where + ': ' : ''}${detail}`);
    this.name = 'PipelineError';
  }
}
