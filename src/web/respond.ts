/**
 * @module
 * Errors as HTTP answers, in one place: any error becomes an {@link AppError}
 * ({@link toAppError}), which is answered as Problem JSON ({@link sendProblem}: the API, the relay
 * preflight), as the HTML error page ({@link renderError}: pages and form posts), or as the
 * plain-text refusal of a relay upgrade ({@link refuseUpgrade}), with `Retry-After` when it says
 * when to try again and `WWW-Authenticate` on a 401.
 */
import type { Duplex } from 'node:stream';
import type { Request, Response } from 'express';
import { PREFIX } from '../ctrlx/paths.js';
import { rejectUpgrade } from '../relay/upgrade.js';
import { languageOf } from './language.js';
import { problemOf, type ProblemExtensions } from '../ctrlx/problem.js';
import {
  AppError,
  ERR_BAD_REQUEST,
  ERR_INTERNAL,
  ERR_PAYLOAD_TOO_LARGE,
  ERR_UNAUTHORIZED,
  ERR_UNSUPPORTED_MEDIA_TYPE,
} from '../errors.js';

/** The challenge sent with a 401. */
export const WWW_AUTHENTICATE = 'Bearer realm="ctrlx-novnc"';

/** ` (at position N)` from a JSON.parse message, or ''. */
function jsonErrorPosition(message: string | undefined): string {
  const m = /position (\d+)/.exec(message ?? '');
  return m ? ` (at position ${m[1]})` : '';
}

/**
 * `err` as an AppError: itself, or what an error of Express's body parsers means; anything else is
 * an internal error whose detail stays in the log.
 */
export function toAppError(err: unknown): AppError {
  if (err instanceof AppError) return err;
  const e = err as { status?: number; statusCode?: number; type?: string; message?: string } | null;
  switch (e?.type) {
    case 'entity.too.large':
      return new AppError(ERR_PAYLOAD_TOO_LARGE, 'The request body is too large.', { i18n: { key: 'problem.bodyTooLarge' } });
    case 'entity.parse.failed':
      // Not the parser's message: it quotes the body, which may hold a VNC password.
      return new AppError(ERR_BAD_REQUEST, `The body is not valid JSON${jsonErrorPosition(e.message)}.`);
    case 'parameters.too.many':
      return new AppError(ERR_PAYLOAD_TOO_LARGE, 'Too many form fields.', { i18n: { key: 'problem.tooManyFields' } });
    case 'charset.unsupported':
    case 'encoding.unsupported':
      return new AppError(ERR_UNSUPPORTED_MEDIA_TYPE, e.message ?? 'Unsupported encoding.');
  }
  const status = e?.status ?? e?.statusCode;
  if (status && status >= 400 && status < 500) return new AppError(ERR_BAD_REQUEST, e?.message ?? 'Bad request.', { status });
  return new AppError(ERR_INTERNAL, 'An unexpected error occurred; see the app log.', { cause: err, i18n: { key: 'problem.internal' } });
}

function setHeaders(res: Response, err: AppError): void {
  if (err.retryAfter !== undefined) res.setHeader('Retry-After', String(err.retryAfter));
}

/** Answers `err` as Problem JSON; `extra` adds members (e.g. the ctrlX fields of a callback answer). */
export function sendProblem(res: Response, err: AppError, extra?: ProblemExtensions): void {
  setHeaders(res, err);
  if (err.code === ERR_UNAUTHORIZED) res.setHeader('WWW-Authenticate', WWW_AUTHENTICATE);
  res.status(err.status).type('application/problem+json').send(JSON.stringify(problemOf(err, extra, languageOf(res))));
}

/** Answers `err` as the HTML error page (the login page for a 401). */
export function renderError(res: Response, err: AppError): void {
  setHeaders(res, err);
  const lang = languageOf(res);
  res.status(err.status).render(err.code === ERR_UNAUTHORIZED ? 'login' : 'error', { title: err.pageTitleIn(lang), detail: err.messageIn(lang) });
}

/** True for the paths answered with Problem JSON: the API and the relay's preflight. */
export function wantsProblem(req: Request): boolean {
  const path = req.originalUrl.split('?')[0] ?? '';
  return path.startsWith(`${PREFIX}/api/`) || path.startsWith(`${PREFIX}/websockify`);
}

/** Answers `err` as the request's path expects: Problem JSON or the error page. */
export function sendError(req: Request, res: Response, err: AppError): void {
  if (wantsProblem(req)) sendProblem(res, err);
  else renderError(res, err);
}

/** Refuses a relay upgrade with `err`: a real HTTP response before the socket closes. */
export function refuseUpgrade(socket: Duplex, err: AppError): void {
  const headers: Record<string, string> = {};
  if (err.code === ERR_UNAUTHORIZED) headers['WWW-Authenticate'] = WWW_AUTHENTICATE;
  if (err.retryAfter !== undefined) headers['Retry-After'] = String(err.retryAfter);
  rejectUpgrade(socket, err.status, err.message, headers);
}
