import type { Logger } from 'pino';
import { constants as osConstants } from 'node:os';
import { stopAllPipelines } from '../media/gst.js';

// Leaving the process without hanging: GStreamer threads blocked in the addon are joined at
// exit, so every path out of a long-running command goes through here.

/** The conventional exit status of a process stopped by a signal: 128 + its number (SIGINT 130, SIGTERM 143). */
export function signalExitCode(sig: NodeJS.Signals): number {
  return 128 + (osConstants.signals[sig] ?? 1);
}

/** Exit now with `code`, after unblocking GStreamer's threads and flushing the log. */
export function exitNow(code: number, log?: Logger): never {
  stopAllPipelines();
  try {
    log?.flush?.();
  } catch {
    /* the log destination may be gone (a closed pipe) */
  }
  process.exit(code);
}

/**
 * Leave at once because of a (second) signal, the way a shell expects: die by that signal with its
 * default action (status 128 + n). Unlike process.exit this does not tear down worker threads, so
 * a model run in progress in an inference worker cannot abort the exit, and no blocked GStreamer
 * thread is joined.
 */
export function exitBySignal(sig: NodeJS.Signals, log?: Logger): never {
  try {
    log?.flush?.();
  } catch {
    /* the log destination may be gone */
  }
  process.removeAllListeners(sig);
  process.kill(process.pid, sig);
  // Delivery is immediate on Linux; should it not be, leave the ordinary way.
  return exitNow(signalExitCode(sig), log);
}

/**
 * A fault nobody handled leaves the process in an unknown state: log it once, then exit 1
 * promptly instead of printing a trace and hanging on a blocked thread.
 */
export function exitOnFatalError(log: Logger): void {
  const fatal = (err: unknown, what: string) => {
    log.fatal({ err }, `${what}: exiting`);
    exitNow(1, log);
  };
  process.on('uncaughtException', (err) => fatal(err, 'internal error (uncaught exception)'));
  process.on('unhandledRejection', (err) => fatal(err, 'internal error (unhandled promise rejection)'));
}
