/**
 * @module
 * Problem JSON (RFC 9457) bodies, the one error format of the API and the ctrlX callbacks.
 */
import type { Response } from 'express';
import type { FieldError } from '../config/schema.js';

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  /** The first invalid field, e.g. `targets[0].host`. */
  field?: string;
  /** Every invalid field. */
  errors?: FieldError[];
  /** ctrlX fields of a save/load callback failure (no `mainDiagnosisCode`: see active-configuration.ts). */
  dynamicDescription?: string;
  severity?: 'Error' | 'Warning';
}

/** Problem type URIs, one per kind of error (see docs/errors.md). */
export const PROBLEM_TYPES = {
  validation: 'urn:ctrlx-novnc:problem:validation-failed',
  notFound: 'urn:ctrlx-novnc:problem:not-found',
  unavailable: 'urn:ctrlx-novnc:problem:unavailable',
  writeFailed: 'urn:ctrlx-novnc:problem:write-failed',
  badRequest: 'urn:ctrlx-novnc:problem:bad-request',
  tooLarge: 'urn:ctrlx-novnc:problem:payload-too-large',
  unsupportedMedia: 'urn:ctrlx-novnc:problem:unsupported-media-type',
  forbidden: 'urn:ctrlx-novnc:problem:forbidden',
  unauthorized: 'urn:ctrlx-novnc:problem:unauthorized',
  tooManyRequests: 'urn:ctrlx-novnc:problem:too-many-requests',
  tooManyFailedLogins: 'urn:ctrlx-novnc:problem:too-many-failed-logins',
  internal: 'urn:ctrlx-novnc:problem:internal-error',
} as const;

export function problem(status: number, type: string, title: string, detail: string, extra: Partial<Problem> = {}): Problem {
  return { type, title, status, detail, ...extra };
}

/** A 400 for invalid input, naming the first field and listing all. */
export function validationProblem(errors: FieldError[], detailPrefix = 'The configuration is invalid'): Problem {
  const first = errors[0];
  return problem(
    400,
    PROBLEM_TYPES.validation,
    'Validation failed',
    first ? `${detailPrefix}: ${first.field}: ${first.message}` : detailPrefix,
    { ...(first ? { field: first.field } : {}), errors },
  );
}

export function sendProblem(res: Response, p: Problem): void {
  res.status(p.status).type('application/problem+json').send(JSON.stringify(p));
}
