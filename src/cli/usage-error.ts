import { UserError } from '../util/errors.js';
/** A bad command line or input file: exit code 2, message only (no stack). */
export class UsageError extends UserError {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}
