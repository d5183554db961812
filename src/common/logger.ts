/** Structured logging with pino: one root logger per process, one child per module. */
import { type DestinationStream, type Logger, pino } from 'pino';

export type { Logger };

/** Root logger; level from DATAGRANT_LOG_LEVEL (default `info`); `destination` defaults to stdout. */
export function createLogger(
  options: { level?: string; name?: string; destination?: DestinationStream } = {},
): Logger {
  const level = options.level ?? process.env.DATAGRANT_LOG_LEVEL ?? 'info';
  const settings = {
    name: options.name ?? 'datagrant',
    level,
    // Keys, payloads and personal data are never passed to the logger; this is a second net.
    redact: {
      paths: ['*.secretKey', '*.secret', '*.passphrase', '*.authorization', 'req.headers.authorization'],
      censor: '[redacted]',
    },
  };
  return options.destination ? pino(settings, options.destination) : pino(settings);
}

/** A logger that writes nothing, for tests and library use. */
export const silentLogger: Logger = pino({ level: 'silent' });
