/**
 * @module
 * One error class for the whole app, {@link AppError}: a stable `code`, the HTTP `status` to answer
 * with, an optional `field` that names the input at fault, an optional `retryAfter` (seconds), and
 * the underlying `cause`. Every code has one kind in {@link ERROR_KINDS}: its Problem type
 * (`urn:ctrlx-novnc:problem:<slug>`, listed in docs/errors.md), its usual status and its title.
 *
 * Where an error becomes an answer: Problem JSON (src/ctrlx/problem.ts `problemOf`), the HTML error
 * page and the plain-text refusal of a WebSocket upgrade (src/web/respond.ts). Nothing else turns
 * errors into HTTP answers, and nothing parses an error's message.
 */
import { fieldMessageOf } from './common/form-rules.js';
import { type Lang, type Message, type MessageKey, render, translate } from './common/i18n/index.js';

/** What every error of one code has in common. */
export interface ErrorKind {
  /** The Problem type's last part: `urn:ctrlx-novnc:problem:<problem>`. */
  problem: string;
  /** The HTTP status, unless the error names another. */
  status: number;
  /** The Problem title, unless the error names another. */
  title: string;
  /** The heading of the HTML error page, when it differs from the title. */
  page?: string;
}

export const PROBLEM_TYPE_PREFIX = 'urn:ctrlx-novnc:problem:';

/** Every error code, with its Problem type, usual status and title. */
export const ERROR_KINDS = {
  /** Input that breaks a rule (the configuration, a probe, a callback body); `errors` lists every field. */
  ERR_VALIDATION: { problem: 'validation-failed', status: 400, title: 'Validation failed' },
  /** A configuration file loaded by ctrlX that is invalid (file, line, field). */
  ERR_CONFIG_INVALID: { problem: 'validation-failed', status: 422, title: 'The loaded noVNC settings are invalid' },
  /** A malformed request: no body, a body that is not JSON, an argument that makes no sense. */
  ERR_BAD_REQUEST: { problem: 'bad-request', status: 400, title: 'Bad request' },
  /** A bad command-line argument or option value. */
  ERR_INVALID_ARGUMENT: { problem: 'bad-request', status: 400, title: 'Bad request' },
  /** A `HOST:PORT` or port that does not parse. */
  ERR_INVALID_ADDRESS: { problem: 'bad-request', status: 400, title: 'Bad request' },
  ERR_NOT_FOUND: { problem: 'not-found', status: 404, title: 'Not found' },
  /** The request conflicts with the state: taking control of a watch-only target. */
  ERR_CONFLICT: { problem: 'conflict', status: 409, title: 'Conflict' },
  ERR_PAYLOAD_TOO_LARGE: { problem: 'payload-too-large', status: 413, title: 'Payload too large' },
  ERR_UNSUPPORTED_MEDIA_TYPE: { problem: 'unsupported-media-type', status: 415, title: 'Unsupported media type' },
  /** No, a malformed, an expired or a rejected ctrlX token. */
  ERR_UNAUTHORIZED: { problem: 'unauthorized', status: 401, title: 'Unauthorized', page: 'Login required' },
  /** A cross-origin request, or a user without the scope the route needs. */
  ERR_FORBIDDEN: { problem: 'forbidden', status: 403, title: 'Forbidden', page: 'Not allowed' },
  /** A request whose `Host` names a server the app does not answer to (DNS rebinding). */
  ERR_MISDIRECTED: { problem: 'misdirected-request', status: 421, title: 'Misdirected request' },
  /** Too many requests or changes from one client in the window. */
  ERR_TOO_MANY_REQUESTS: { problem: 'too-many-requests', status: 429, title: 'Too many requests' },
  /** A client locked out after too many failed logins. */
  ERR_TOO_MANY_FAILED_LOGINS: { problem: 'too-many-failed-logins', status: 429, title: 'Too many failed logins' },
  /** Something needed is not there now (the identity manager, a session slot, a target): try again later. */
  ERR_UNAVAILABLE: { problem: 'unavailable', status: 503, title: 'Service unavailable', page: 'Try again' },
  /** The ctrlX active configuration folder is not there (the plug is not connected yet). */
  ERR_CONFIG_UNAVAILABLE: { problem: 'unavailable', status: 503, title: 'Configuration not available' },
  /** Writing config.json or the passwords file failed (507 when the disk is full). */
  ERR_CONFIG_WRITE: { problem: 'write-failed', status: 500, title: 'Operation failed' },
  /** Anything unexpected; the detail is in the app log, never in the answer. */
  ERR_INTERNAL: { problem: 'internal-error', status: 500, title: 'Internal error' },
} as const satisfies Record<string, ErrorKind>;

export type ErrorCode = keyof typeof ERROR_KINDS;

export const ERR_VALIDATION = 'ERR_VALIDATION';
export const ERR_CONFIG_INVALID = 'ERR_CONFIG_INVALID';
export const ERR_BAD_REQUEST = 'ERR_BAD_REQUEST';
export const ERR_INVALID_ARGUMENT = 'ERR_INVALID_ARGUMENT';
export const ERR_INVALID_ADDRESS = 'ERR_INVALID_ADDRESS';
export const ERR_NOT_FOUND = 'ERR_NOT_FOUND';
export const ERR_CONFLICT = 'ERR_CONFLICT';
export const ERR_PAYLOAD_TOO_LARGE = 'ERR_PAYLOAD_TOO_LARGE';
export const ERR_UNSUPPORTED_MEDIA_TYPE = 'ERR_UNSUPPORTED_MEDIA_TYPE';
export const ERR_UNAUTHORIZED = 'ERR_UNAUTHORIZED';
export const ERR_FORBIDDEN = 'ERR_FORBIDDEN';
export const ERR_MISDIRECTED = 'ERR_MISDIRECTED';
export const ERR_TOO_MANY_REQUESTS = 'ERR_TOO_MANY_REQUESTS';
export const ERR_TOO_MANY_FAILED_LOGINS = 'ERR_TOO_MANY_FAILED_LOGINS';
export const ERR_UNAVAILABLE = 'ERR_UNAVAILABLE';
export const ERR_CONFIG_UNAVAILABLE = 'ERR_CONFIG_UNAVAILABLE';
export const ERR_CONFIG_WRITE = 'ERR_CONFIG_WRITE';
export const ERR_INTERNAL = 'ERR_INTERNAL';

/** The Problem type URI of `code`. */
export function problemType(code: ErrorCode): string {
  return PROBLEM_TYPE_PREFIX + ERROR_KINDS[code].problem;
}

/** Every Problem type the app answers with (docs/errors.md lists the same). */
export const PROBLEM_TYPES: readonly string[] = [...new Set(Object.keys(ERROR_KINDS).map((c) => problemType(c as ErrorCode)))];

/** One problem with an input, naming the field (`targets[0].host`) it concerns. */
export interface FieldError {
  field: string;
  message: string;
  /**
   * The message as a catalogue message, for answers in the request's language, when it has
   * placeholders (set non-enumerable: never sent, not compared); the form's fixed messages are
   * found by their text.
   */
  i18n?: Message;
}

/** The catalogue message of a field error: its own, or that of a message of the form's rules. */
function fieldMessageOfError(error: FieldError): Message | undefined {
  return error.i18n ?? fieldMessageOf(error.message);
}

/** The message of a field error in `lang` (as written when it has no catalogue message). */
export function fieldMessageIn(error: FieldError, lang: Lang): string {
  const m = fieldMessageOfError(error);
  return m ? render(lang, m) : error.message;
}

export interface AppErrorOptions {
  /** The HTTP status, when not the kind's (e.g. 507 for a full disk). */
  status?: number;
  /** The title, when not the kind's (e.g. "Too many changes"). */
  title?: string;
  /** The input at fault, e.g. `targets[0].host`. */
  field?: string;
  /** Every input at fault (validation). */
  errors?: readonly FieldError[];
  /** Seconds until the client may try again (429, 503): sent as `Retry-After`. */
  retryAfter?: number;
  /**
   * The message as a catalogue key (src/common/i18n/): the Problem `detail` and the error page
   * show it in the request's language. The English `message` is still what logs and tests read.
   */
  i18n?: Message;
  /** The title as a catalogue key, when it is not the kind's. */
  titleKey?: MessageKey;
  cause?: unknown;
}

export class AppError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly title: string;
  readonly field: string | undefined;
  readonly errors: readonly FieldError[] | undefined;
  readonly retryAfter: number | undefined;
  readonly i18n: Message | undefined;
  readonly titleKey: MessageKey | undefined;

  constructor(code: ErrorCode, message: string, options: AppErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AppError';
    this.code = code;
    this.status = options.status ?? ERROR_KINDS[code].status;
    this.title = options.title ?? ERROR_KINDS[code].title;
    this.field = options.field;
    this.errors = options.errors;
    this.retryAfter = options.retryAfter;
    this.i18n = options.i18n;
    this.titleKey = options.titleKey;
  }

  /** The Problem title in `lang`: the kind's, or the error's own when it has a key for it. */
  titleIn(lang: Lang): string {
    if (this.titleKey) return translate(lang, this.titleKey);
    return this.title === ERROR_KINDS[this.code].title ? translate(lang, `problem.title.${this.code}`) : this.title;
  }

  /** The message (Problem `detail`) in `lang`, when it has a catalogue key; else as written. */
  messageIn(lang: Lang): string {
    return this.i18n ? render(lang, this.i18n) : this.message;
  }

  /** The heading of the HTML error page in `lang`. */
  pageTitleIn(lang: Lang): string {
    const kind: ErrorKind = ERROR_KINDS[this.code];
    if (this.titleKey || this.title !== kind.title) return this.titleIn(lang);
    return kind.page ? translate(lang, `problem.page.${this.code}` as MessageKey) : this.titleIn(lang);
  }

  /** The Problem type URI. */
  get type(): string {
    return problemType(this.code);
  }

  /** The heading of the HTML error page. */
  get pageTitle(): string {
    const kind: ErrorKind = ERROR_KINDS[this.code];
    return this.title !== kind.title ? this.title : (kind.page ?? kind.title);
  }
}

/** A 400 for invalid input, naming the first field and listing all. */
export function validationError(errors: readonly FieldError[], detailPrefix = 'The configuration is invalid'): AppError {
  const first = errors[0];
  // The detail in the request's language where the prefix is one the pages show.
  const prefix = PREFIX_KEYS.find((key) => translate('en', key) === detailPrefix);
  let i18n: Message | undefined;
  if (prefix) {
    const message = first ? fieldMessageOfError(first) : undefined;
    const parts: Record<string, Message> = { prefix: { key: prefix }, ...(message ? { message } : {}) };
    i18n = first
      ? { key: 'problem.invalidField', params: { field: first.field, ...(message ? {} : { message: first.message }) }, parts }
      : { key: prefix };
  }
  return new AppError(ERR_VALIDATION, first ? `${detailPrefix}: ${first.field}: ${first.message}` : detailPrefix, {
    ...(first ? { field: first.field } : {}),
    errors,
    ...(i18n ? { i18n } : {}),
  });
}

/** The prefixes of validation details that the pages show (the configuration, Test connection). */
const PREFIX_KEYS: readonly MessageKey[] = ['problem.prefix.config', 'problem.prefix.probe'];
