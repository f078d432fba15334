/**
 * @module
 * One error class for the whole app: a stable `code`, the HTTP `status` to answer with, an optional
 * `field` that names the input at fault, and the underlying `cause`.
 */

export const ERR_INVALID_ARGUMENT = 'ERR_INVALID_ARGUMENT';
export const ERR_INVALID_ADDRESS = 'ERR_INVALID_ADDRESS';
export const ERR_CONFIG_UNAVAILABLE = 'ERR_CONFIG_UNAVAILABLE';
export const ERR_CONFIG_WRITE = 'ERR_CONFIG_WRITE';
export const ERR_CONFIG_INVALID = 'ERR_CONFIG_INVALID';

export type ErrorCode =
  | typeof ERR_INVALID_ARGUMENT
  | typeof ERR_INVALID_ADDRESS
  | typeof ERR_CONFIG_UNAVAILABLE
  | typeof ERR_CONFIG_WRITE
  | typeof ERR_CONFIG_INVALID;

export interface AppErrorOptions {
  status?: number;
  field?: string;
  cause?: unknown;
}

export class AppError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly field: string | undefined;

  constructor(code: ErrorCode, message: string, options: AppErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AppError';
    this.code = code;
    this.status = options.status ?? 500;
    this.field = options.field;
  }
}
