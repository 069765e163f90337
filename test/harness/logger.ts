import type { Logger } from '../../src/log.js';

/** A Logger that records message texts, to observe which path the code took. */
export function recordingLogger(lines: string[]): Logger {
  const logger: Logger = {
    debug: (m) => void lines.push(m),
    info: (m) => void lines.push(m),
    warn: (m) => void lines.push(m),
    error: (m) => void lines.push(m),
    child: () => logger,
  };
  return logger;
}
