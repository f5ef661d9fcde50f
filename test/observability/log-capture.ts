/**
 * A pino logger whose JSON lines are kept in memory, so a test can look for the
 * lines a request produced (no file, no stdout).
 */
import { pino, type Level, type Logger } from 'pino';

export interface LogLine {
  level: number;
  msg: string;
  requestId?: string;
  [field: string]: unknown;
}

export interface CapturedLog {
  logger: Logger;
  readonly lines: LogLine[];
  /** Lines carrying `requestId`. */
  forRequest(requestId: string): LogLine[];
}

export function captureLog(name: string, level: Level = 'debug'): CapturedLog {
  const lines: LogLine[] = [];
  const logger = pino(
    { name, level },
    {
      write(line: string) {
        lines.push(JSON.parse(line) as LogLine);
      },
    },
  );
  return { logger, lines, forRequest: (id) => lines.filter((l) => l.requestId === id) };
}
