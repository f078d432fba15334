/**
 * @module
 * Problem JSON (RFC 9457) bodies, the one error format of the API and the ctrlX callbacks, made
 * from an {@link AppError} by {@link problemOf} and nothing else. The types are listed in
 * docs/errors.md (kept in step with `ERROR_KINDS` by test/docs/problem-types.test.ts).
 */
import { type AppError, type FieldError, fieldMessageIn } from '../errors.js';
import { DEFAULT_LANGUAGE, type Lang } from '../common/i18n/index.js';

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

/** The ctrlX fields a save/load callback adds to its Problem. */
export type CtrlxDiagnosis = Pick<Problem, 'dynamicDescription' | 'severity'>;

/**
 * Members an answer adds to the standard ones (RFC 9457 extension members): the ctrlX fields of a
 * callback answer, or any other member a route documents.
 */
export type ProblemExtensions = CtrlxDiagnosis & { [member: string]: unknown };

/**
 * The Problem JSON of `err`, with `extra` members, its title, detail and field messages in `lang`
 * (the request's language, see src/web/language.ts); `type` is the same in every language.
 */
export function problemOf(err: AppError, extra: ProblemExtensions = {}, lang: Lang = DEFAULT_LANGUAGE): Problem {
  return {
    type: err.type,
    title: err.titleIn(lang),
    status: err.status,
    detail: err.messageIn(lang),
    ...(err.field !== undefined ? { field: err.field } : {}),
    ...(err.errors ? { errors: err.errors.map((e) => ({ field: e.field, message: fieldMessageIn(e, lang) })) } : {}),
    ...extra,
  };
}
