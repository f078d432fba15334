/**
 * @module
 * A small levelled logger. One line per event, `key=value` fields, no payloads and no secrets:
 * callers pass only what is safe to print (targets, sizes, codes), never tokens or passwords.
 * Under systemd (a snap daemon: stdout and stderr go to the journal) each line starts with its
 * sd-daemon priority, so journald files warnings and errors as such, not all as info.
 */

export type LogLevel = 'debug' | 'info' | 'notice' | 'warn' | 'error';
export type LogFields = Record<string, string | number | boolean | undefined | null>;

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, notice: 25, warn: 30, error: 40 };

/**
 * The sd-daemon(3) priority of each level: journald reads a leading `<N>` of a line as its
 * priority (3 err, 4 warning, 5 notice, 6 info, 7 debug) and strips it.
 */
export const JOURNAL_PRIORITY: Readonly<Record<LogLevel, number>> = { error: 3, warn: 4, notice: 5, info: 6, debug: 7 };

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  /** Normal but significant: a state change an operator wants to see (journal priority 5). */
  notice(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** A logger that prefixes every message with `scope`. */
  child(scope: string): Logger;
}

export interface LoggerOptions {
  /** Lowest level printed. Default: `$LOG_LEVEL` or `info`. */
  level?: LogLevel;
  /** Where a line goes. Default: info/debug to stdout, warn/error to stderr. */
  sink?: (level: LogLevel, line: string) => void;
  /** Prefix each line with an ISO time stamp. Default: true unless running under systemd/snapd. */
  timestamps?: boolean;
  /**
   * Start each line with its journal priority (`<3>` … `<7>`, see {@link JOURNAL_PRIORITY}).
   * Default: true when the lines go to stdout/stderr (no `sink`) and `$JOURNAL_STREAM` is set,
   * i.e. systemd connected them to the journal; off the device lines stay as they are.
   */
  journal?: boolean;
}

/**
 * Control characters that must never reach a log line raw: C0 (newlines and tabs included), DEL,
 * C1 and the Unicode line and paragraph separators. A value can come from outside (a user name in
 * an unverified token, a reason a VNC server sent): raw, these would forge lines or drive the
 * terminal that shows the log (ESC sequences).
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point: they are escaped
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g;
// biome-ignore lint/suspicious/noControlCharactersInRegex: as above
const HAS_CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;

/** `s` with every control character written as `\xNN` (up to U+00FF) or `\uNNNN`. */
export function escapeControl(s: string): string {
  return s.replace(CONTROL, (c) => {
    const code = c.charCodeAt(0);
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}

/**
 * Renders a value: bare when it is plain, else in double quotes with `\` and `"` escaped; control
 * characters are always escaped (see {@link escapeControl}). Keeps lines machine-readable and one
 * line per event, whatever a value holds.
 */
function formatValue(value: string | number | boolean): string {
  const s = String(value);
  if (s !== '' && !/[\s"=\\]/.test(s) && !HAS_CONTROL.test(s)) return s;
  return `"${escapeControl(s.replace(/["\\]/g, '\\$&'))}"`;
}

/** Renders `msg key=value …`, skipping undefined fields. */
export function formatLine(msg: string, fields?: LogFields): string {
  let line = escapeControl(msg);
  if (fields) {
    for (const [key, value] of Object.entries(fields)) {
      if (value === undefined || value === null) continue;
      line += ` ${key}=${formatValue(value)}`;
    }
  }
  return line;
}

function defaultSink(level: LogLevel, line: string): void {
  if (level === 'warn' || level === 'error') process.stderr.write(`${line}\n`);
  else process.stdout.write(`${line}\n`);
}

function parseLevel(value: string | undefined): LogLevel | undefined {
  return value && value in ORDER ? (value as LogLevel) : undefined;
}

/** Creates a logger; see {@link LoggerOptions} for defaults. */
export function createLogger(options: LoggerOptions = {}, scope = ''): Logger {
  const level = options.level ?? parseLevel(process.env.LOG_LEVEL) ?? 'info';
  const sink = options.sink ?? defaultSink;
  // Under systemd (snap daemons) journald stamps each line already.
  const timestamps = options.timestamps ?? process.env.INVOCATION_ID === undefined;
  const journal = options.journal ?? (options.sink === undefined && process.env.JOURNAL_STREAM !== undefined);
  const min = ORDER[level];
  const write = (lvl: LogLevel, msg: string, fields?: LogFields): void => {
    if (ORDER[lvl] < min) return;
    const prefix = `${(journal ? `<${JOURNAL_PRIORITY[lvl]}>` : '') + (timestamps ? `${new Date().toISOString()} ` : '') + lvl.padEnd(5)} `;
    sink(lvl, prefix + (scope ? `${escapeControl(scope)}: ` : '') + formatLine(msg, fields));
  };
  return {
    debug: (msg, fields) => write('debug', msg, fields),
    info: (msg, fields) => write('info', msg, fields),
    notice: (msg, fields) => write('notice', msg, fields),
    warn: (msg, fields) => write('warn', msg, fields),
    error: (msg, fields) => write('error', msg, fields),
    child: (child) => createLogger({ level, sink: options.sink, timestamps, journal }, scope ? `${scope}.${child}` : child),
  };
}

/** A logger that drops everything (for library use without output). */
export const silentLogger: Logger = {
  debug() {},
  info() {},
  notice() {},
  warn() {},
  error() {},
  child: () => silentLogger,
};
