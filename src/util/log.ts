import { pino, type Logger, type DestinationStream } from 'pino';
import { redactError, redactUrls, redactDeep } from './redact.js';

// JSON logs by default (for collectors), pretty on a TTY (for people). Every string field and
// message goes through URL redaction so credentials never reach a log line.

export interface LogOptions {
  level?: string;
  pretty?: boolean;
  destination?: DestinationStream;
}

export function createLogger(opts: LogOptions = {}): Logger {
  const pretty = opts.pretty ?? (process.stderr.isTTY === true && !process.env.CI);
  const base = {
    level: opts.level ?? process.env.LOG_LEVEL ?? 'info',
    hooks: {
      logMethod(this: Logger, args: unknown[], method: (...a: unknown[]) => void) {
        method.apply(
          this,
          args.map((a) => (typeof a === 'string' ? redactUrls(a) : a instanceof Error ? redactError(a) : redactDeep(a))),
        );
      },
    },
    formatters: {},
  };
  if (opts.destination) return pino(base, opts.destination);
  if (pretty) {
    return pino({
      ...base,
      transport: { target: 'pino-pretty', options: { destination: 2, colorize: true, translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname', singleLine: true } },
    });
  }
  // Synchronous: log volume is low, and a line written just before a hard exit must not be lost in a buffer.
  return pino(base, pino.destination({ dest: 2, sync: true }));
}
