/**
 * Structured JSON logs, one object per line on stdout. Field names that could carry credentials are
 * redacted here as a last line of defence; callers must not pass tokens or cookies in the first place.
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFields = Record<string, unknown>;

const LEVELS: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };
const SECRET_FIELD = /token|cookie|authorization|secret|password|session/i;

export interface Logger {
  readonly level: LogLevel;
  /** Hot reload of log.level: every line from now on follows the new level. */
  setLevel(level: LogLevel): void;
  enabled(level: LogLevel): boolean;
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
}

export function createLogger(level: LogLevel, write: (line: string) => void = (line) => process.stdout.write(line)): Logger {
  let current = level;
  let threshold = LEVELS[level];
  const emit = (lvl: LogLevel, msg: string, fields?: LogFields) => {
    if (LEVELS[lvl] < threshold) return;
    const record: LogFields = { time: new Date().toISOString(), level: lvl, msg };
    if (fields) for (const [key, value] of Object.entries(fields)) record[key] = SECRET_FIELD.test(key) ? '[redacted]' : value;
    write(`${JSON.stringify(record, errorReplacer)}\n`);
  };
  return {
    get level() {
      return current;
    },
    setLevel(next) {
      current = next;
      threshold = LEVELS[next];
    },
    enabled: (lvl) => LEVELS[lvl] >= threshold,
    debug: (msg, fields) => emit('debug', msg, fields),
    info: (msg, fields) => emit('info', msg, fields),
    warn: (msg, fields) => emit('warn', msg, fields),
    error: (msg, fields) => emit('error', msg, fields),
  };
}

function errorReplacer(_key: string, value: unknown): unknown {
  return value instanceof Error ? { name: value.name, message: value.message } : value;
}

/** A logger that drops everything (tests that do not look at logs, benchmarks). */
export const silentLogger: Logger = createLogger('error', () => undefined);
