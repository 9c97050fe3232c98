// The project's two kinds of failure, told apart by type (never by message text):
//   - a user error: something the user gave is wrong (a broken pipeline file, a bad option value, a missing model,
//     an unreadable input, a malformed request). The CLI exits with 2 and prints the message, which names what is
//     wrong. `UserError` is its base; `OptionError` (a setting outside what it can take) is also a `RangeError`.
//   - a runtime fault: anything else (a crashed worker, a GStreamer failure mid-stream, a bug). Exit code 1.
// A `WrappingError` (a node's failure, for instance) adds where it happened and counts as what it wraps.

export class UserError extends Error {
  constructor(message?: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A setting with a value it cannot take (window 111, a negative fps...). A RangeError, and a user error. */
export class OptionError extends RangeError {
  constructor(message?: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Adds context to another error (which node, which stream) and is classified as that error. */
export class WrappingError extends Error {
  constructor(
    message: string,
    override readonly cause: Error,
  ) {
    super(message, { cause });
  }
}

export function isUserError(e: unknown): boolean {
  if (e instanceof UserError || e instanceof OptionError) return true;
  return e instanceof WrappingError && isUserError(e.cause);
}

/** 2 for a user error, 1 for a runtime fault. */
export function exitCodeFor(e: unknown): 1 | 2 {
  return isUserError(e) ? 2 : 1;
}

/**
 * An error that crossed a thread boundary as its name and message, rebuilt so that it keeps its kind.
 * `known` maps names of user-error classes to constructors of the same class where the receiver has them.
 */
export function errorFromWorker(name: string, message: string, known: Record<string, (message: string) => Error> = {}): Error {
  const make = known[name];
  if (make) return make(message);
  // A plain RangeError from a worker is a fault there (a bug, an engine limit): only option errors are the user's.
  if (name === 'OptionError') return new OptionError(message);
  return Object.assign(new Error(message), { name });
}
