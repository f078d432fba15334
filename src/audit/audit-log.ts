/**
 * @module
 * The audit trail on disk: who watched or operated which screen, when, from where and for how
 * long. An {@link AuditLog} is the app's {@link AuditSink}:
 *
 * - `record()` is synchronous and never throws: the event is cleaned (control characters out,
 *   anything shaped like a ctrlX token replaced, long values cut), written to the log at notice
 *   priority as one stable line (`audit event=… user=… target=…`), and queued; the queue is
 *   appended to the file by one serialised writer, so nothing is written except on events.
 * - Files: `audit.log` in the app's private data folder (`$SNAP_COMMON/app` on the device, the
 *   data folder's `app/` off it, as the VNC passwords; never the active configuration, which
 *   ctrlX archives and exports), one JSON object per line, mode 0600. An append that would take it
 *   over {@link AUDIT_FILE_MAX_BYTES} first renames it to `audit.1.log` (replacing the older one):
 *   at most two files of 256 KiB, whatever happens.
 * - Reading back (`page()`, newest first) reads at most the last 256 KiB of each file, skips a
 *   line that does not parse (a cut-off last line after a power loss, a hand edit) and serves
 *   everything recorded before the call. A restart continues the same files.
 * - A write that fails (disk full, read-only) is logged once with its code and the events of that
 *   write are lost; the app keeps running. The queue is bounded too.
 * - The CSV export ({@link auditCsv}) quotes per RFC 4180 and defuses cells a spreadsheet would
 *   run as a formula.
 */
import fsp from 'node:fs/promises';
import path from 'node:path';
import { LineLimiter, type LineLimitOptions } from '../log-limit.js';
import { silentLogger, type Logger } from '../log.js';
import { AUDIT_EVENTS, type AuditEvent, type AuditSink } from './events.js';

export const AUDIT_FILE_NAME = 'audit.log';
export const AUDIT_OLD_FILE_NAME = 'audit.1.log';
/** Each of the two files stays at or below this size. */
export const AUDIT_FILE_MAX_BYTES = 256 * 1024;
export const AUDIT_FILE_MODE = 0o600;
export const AUDIT_DIR_MODE = 0o700;
/** Most entries one page may hold. */
export const AUDIT_MAX_LIMIT = 500;
export const AUDIT_DEFAULT_LIMIT = 50;
/** Events waiting for the writer beyond this are dropped (oldest first) and counted. */
export const AUDIT_MAX_PENDING = 4096;
/** Longest user, target, name, address or session id kept (characters). */
const FIELD_MAX = 200;
/** Longest detail kept (characters). */
const DETAIL_MAX = 500;

/** The columns of the CSV export, in order. */
export const AUDIT_CSV_COLUMNS = ['time', 'event', 'user', 'target', 'targetName', 'address', 'sessionId', 'durationMs', 'detail'] as const;

export interface AuditLogOptions {
  /** The app's private data folder (created 0700 if missing); null keeps the trail in memory only. */
  dir: string | null;
  logger?: Logger;
  /** The size bound of each file (tests). Default {@link AUDIT_FILE_MAX_BYTES}. */
  maxFileBytes?: number;
  /**
   * How the journal lines are bounded under churn (the file keeps every event): per event and
   * target the first `burst` per interval in full, the rest as one counted line. Defaults as for
   * the relay's session lines (10 per 10 s).
   */
  journalLimit?: LineLimitOptions;
}

/** One page of entries, newest first. */
export interface AuditPage {
  entries: AuditEvent[];
  /** 1-based. */
  page: number;
  limit: number;
  /** True when older entries follow on the next page. */
  more: boolean;
}

/** The events a stored line may name; any other line is not an entry. */
const EVENT_NAMES: ReadonlySet<string> = new Set(AUDIT_EVENTS);

/** A ctrlX token (a JWT: base64url of `{"` starts with `eyJ`), wherever it appears in a value. */
const TOKEN_LIKE = /eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*/g;
/** C0 and C1 control characters and DEL: one line per event in the file and in the journal. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: removing control characters is the point
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/g;

/** `value` as a clean string of at most `max` characters: no control characters, no token. */
export function cleanValue(value: unknown, max = FIELD_MAX): string {
  if (value === undefined || value === null) return '';
  let s = typeof value === 'string' ? value : String(value);
  s = s.replace(CONTROL, ' ').replace(TOKEN_LIKE, '[token]');
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}

/** The event as stored: known fields only, cleaned, `time` filled in. */
export function normalizeEvent(e: AuditEvent, now = new Date()): AuditEvent {
  const time = typeof e.time === 'string' && !Number.isNaN(Date.parse(e.time)) ? new Date(e.time).toISOString() : now.toISOString();
  const out: AuditEvent = {
    time,
    event: cleanValue(e.event) as AuditEvent['event'],
    user: cleanValue(e.user),
    target: cleanValue(e.target),
    targetName: cleanValue(e.targetName),
    address: cleanValue(e.address),
    sessionId: cleanValue(e.sessionId),
  };
  if (typeof e.durationMs === 'number' && Number.isFinite(e.durationMs) && e.durationMs >= 0) out.durationMs = Math.round(e.durationMs);
  if (e.detail !== undefined && e.detail !== null && e.detail !== '') out.detail = cleanValue(e.detail, DETAIL_MAX);
  return out;
}

/** A stored line as an event, or null when it is not one (corrupt, cut off, foreign). */
export function parseAuditLine(line: string): AuditEvent | null {
  let raw: unknown;
  try {
    raw = JSON.parse(line);
  } catch {
    return null;
  }
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) return null;
  const r = raw as Record<string, unknown>;
  if (typeof r.time !== 'string' || typeof r.event !== 'string' || !EVENT_NAMES.has(r.event)) return null;
  for (const key of ['user', 'target', 'targetName', 'address', 'sessionId'] as const) if (typeof r[key] !== 'string') return null;
  const e: AuditEvent = {
    time: r.time,
    event: r.event as AuditEvent['event'],
    user: r.user as string,
    target: r.target as string,
    targetName: r.targetName as string,
    address: r.address as string,
    sessionId: r.sessionId as string,
  };
  if (typeof r.durationMs === 'number') e.durationMs = r.durationMs;
  if (typeof r.detail === 'string') e.detail = r.detail;
  return e;
}

/** One CSV cell: a leading `= + - @` (or tab/CR) defused with `'`, quoted when it must be. */
export function csvCell(value: string | number | undefined): string {
  if (value === undefined) return '';
  let s = String(value);
  if (/^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

/** The entries as CSV (header first, CRLF line ends). */
export function auditCsv(entries: readonly AuditEvent[]): string {
  let out = `${AUDIT_CSV_COLUMNS.join(',')}\r\n`;
  for (const e of entries) out += `${AUDIT_CSV_COLUMNS.map((c) => csvCell(e[c])).join(',')}\r\n`;
  return out;
}

/** Reads at most the last `max` bytes of `file` ('' when missing); a first partial line is dropped. */
async function readTail(file: string, max: number): Promise<string> {
  let handle: fsp.FileHandle;
  try {
    handle = await fsp.open(file, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return '';
    throw err;
  }
  try {
    const { size } = await handle.stat();
    const length = Math.min(size, max);
    const buf = Buffer.alloc(length);
    let got = 0;
    while (got < length) {
      const { bytesRead } = await handle.read(buf, got, length - got, size - length + got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    let text = buf.subarray(0, got).toString('utf8');
    if (size > length) {
      const nl = text.indexOf('\n');
      text = nl === -1 ? '' : text.slice(nl + 1);
    }
    return text;
  } finally {
    await handle.close();
  }
}

export class AuditLog implements AuditSink {
  /** `<dir>/audit.log`, or null in memory. */
  readonly file: string | null;
  /** `<dir>/audit.1.log`, or null in memory. */
  readonly oldFile: string | null;
  private readonly dir: string | null;
  private readonly log: Logger;
  private readonly journal: LineLimiter;
  private readonly maxBytes: number;
  /** Lines recorded and not yet handed to the writer. */
  private pending: string[] = [];
  private scheduled = false;
  /** The writer and readers, one after the other. */
  private queue: Promise<void> = Promise.resolve();
  /** Bytes in audit.log; -1 until the writer looked (at its first write or after a failure). */
  private size = -1;
  /** audit.log ends without a newline (cut off): the next write starts with one. */
  private needsNewline = false;
  /** In memory only: the lines, newest last (bounded like the two files). */
  private memory: string[] = [];
  private memoryBytes = 0;
  /** The error code of the last failed write, so a run of failures is logged once. */
  private failing: string | null = null;
  /** Events lost: dropped from a full queue or in a failed write. */
  lost = 0;

  constructor(options: AuditLogOptions) {
    this.dir = options.dir;
    this.file = options.dir === null ? null : path.join(options.dir, AUDIT_FILE_NAME);
    this.oldFile = options.dir === null ? null : path.join(options.dir, AUDIT_OLD_FILE_NAME);
    this.log = options.logger ?? silentLogger;
    this.maxBytes = options.maxFileBytes ?? AUDIT_FILE_MAX_BYTES;
    this.journal = new LineLimiter(this.log, options.journalLimit);
  }

  /** Records `event`: the journal line now, the file soon (see {@link flush}). Never throws. */
  record(event: AuditEvent): void {
    const e = normalizeEvent(event);
    // The journal's copy is bounded under churn (a loop of opened and dropped sessions); the file
    // below keeps every event.
    this.journal.line(`${e.event}\0${e.target}`, 'notice', 'audit', {
      event: e.event,
      user: e.user,
      target: e.target,
      targetName: e.targetName,
      address: e.address,
      sessionId: e.sessionId,
      durationMs: e.durationMs,
      detail: e.detail,
    }, 'audit events', { event: e.event, target: e.target, file: this.file ?? 'memory' });
    const line = `${JSON.stringify(e)}\n`;
    if (this.pending.length >= AUDIT_MAX_PENDING) {
      this.pending.shift();
      this.lost++;
    }
    this.pending.push(line);
    if (this.scheduled) return;
    this.scheduled = true;
    this.queue = this.queue.then(() => this.drain());
  }

  /** Resolves once every event recorded before the call is on disk (or lost to a failed write). */
  flush(): Promise<void> {
    this.journal.flush();
    return this.queue;
  }

  /**
   * Page `page` (1-based) of `limit` entries, newest first, including every event recorded before
   * the call.
   */
  page(page = 1, limit = AUDIT_DEFAULT_LIMIT): Promise<AuditPage> {
    return this.enqueue(async () => {
      const all = await this.readAll();
      const start = (page - 1) * limit;
      return { entries: all.slice(start, start + limit), page, limit, more: all.length > start + limit };
    });
  }

  /** Every entry kept, newest first. */
  entries(): Promise<AuditEvent[]> {
    return this.enqueue(() => this.readAll());
  }

  // ---- internals ---------------------------------------------------------------------------

  private enqueue<T>(task: () => Promise<T>): Promise<T> {
    const run = this.queue.then(task);
    this.queue = run.then(
      () => {},
      () => {},
    );
    return run;
  }

  /** Both files' entries, newest first; unreadable lines skipped. */
  private async readAll(): Promise<AuditEvent[]> {
    let text: string;
    if (this.file === null || this.oldFile === null) {
      text = this.memory.join('');
    } else {
      try {
        text = (await readTail(this.oldFile, this.maxBytes)) + (await readTail(this.file, this.maxBytes));
      } catch (err) {
        this.log.error('cannot read the audit trail', { file: this.file, error: (err as NodeJS.ErrnoException).code ?? 'unknown' });
        return [];
      }
    }
    const entries: AuditEvent[] = [];
    let skipped = 0;
    for (const line of text.split('\n')) {
      if (line.trim() === '') continue;
      const e = parseAuditLine(line);
      if (e) entries.push(e);
      else skipped++;
    }
    if (skipped > 0) this.log.warn('skipped unreadable lines in the audit trail', { file: this.file, lines: skipped });
    return entries.reverse();
  }

  /** Hands every pending line to the file (never rejects). */
  private async drain(): Promise<void> {
    this.scheduled = false;
    const lines = this.pending;
    this.pending = [];
    if (lines.length === 0) return;
    if (this.file === null) {
      this.keepInMemory(lines);
      return;
    }
    try {
      await this.writeLines(lines);
      if (this.failing !== null) this.log.notice('the audit trail is written again', { file: this.file });
      this.failing = null;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'unknown';
      this.lost += lines.length;
      this.size = -1;
      if (this.failing !== code) this.log.error('cannot write the audit trail; events are lost until it can', { file: this.file, error: code });
      this.failing = code;
    }
  }

  private async writeLines(lines: string[]): Promise<void> {
    const file = this.file!;
    if (this.size < 0) await this.open();
    let chunk = this.needsNewline ? '\n' : '';
    let chunkBytes = chunk.length;
    for (const line of lines) {
      const bytes = Buffer.byteLength(line);
      if (this.size + chunkBytes + bytes > this.maxBytes && this.size + chunkBytes > 0) {
        if (chunkBytes > 0) await this.append(chunk, chunkBytes);
        await fsp.rename(file, this.oldFile!);
        this.size = 0;
        chunk = '';
        chunkBytes = 0;
      }
      chunk += line;
      chunkBytes += bytes;
    }
    if (chunkBytes > 0) await this.append(chunk, chunkBytes);
    this.needsNewline = false;
  }

  private async append(text: string, bytes: number): Promise<void> {
    await fsp.appendFile(this.file!, text, { mode: AUDIT_FILE_MODE });
    this.size += bytes;
    this.needsNewline = false;
  }

  /** Creates the folder, learns the file's size and whether it ends cut off, makes it private. */
  private async open(): Promise<void> {
    const file = this.file!;
    await fsp.mkdir(this.dir!, { recursive: true, mode: AUDIT_DIR_MODE });
    this.size = 0;
    this.needsNewline = false;
    let handle: fsp.FileHandle | null = null;
    try {
      handle = await fsp.open(file, 'r');
      const { size } = await handle.stat();
      if (size > 0) {
        const last = Buffer.alloc(1);
        await handle.read(last, 0, 1, size - 1);
        this.needsNewline = last[0] !== 0x0a;
      }
      this.size = size;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    } finally {
      await handle?.close();
    }
    await this.tighten(file);
    await this.tighten(this.oldFile!);
  }

  /** Makes a file private if it is readable by others (copied in, or made by an older version). */
  private async tighten(file: string): Promise<void> {
    try {
      const { mode } = await fsp.stat(file);
      if ((mode & 0o077) === 0) return;
      await fsp.chmod(file, AUDIT_FILE_MODE);
      this.log.warn('the audit trail was readable by others; made it private (0600)', { file, was: (mode & 0o777).toString(8) });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }

  private keepInMemory(lines: string[]): void {
    for (const line of lines) {
      this.memory.push(line);
      this.memoryBytes += Buffer.byteLength(line);
    }
    while (this.memoryBytes > 2 * this.maxBytes && this.memory.length > 0) this.memoryBytes -= Buffer.byteLength(this.memory.shift()!);
  }
}
