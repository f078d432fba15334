/**
 * @module
 * ctrlX save/load of the active configuration (package-manifest `commands.activeConfiguration`):
 * the callbacks' body and their answers. What a phase does is the configuration service's
 * ({@link ConfigService.load}, {@link ConfigService.persist}); this module only speaks ctrlX.
 *
 * Save: write the configuration in use to config.json (204).
 * Load: `query` → (Solutions copies the archived folder in) → `prepare` → `load` (read and validate
 * the file; Problem JSON if invalid) → `validate` → `activate` (the relay now runs with it) or
 * `abort` (back to the previous configuration). Unknown phases: 204.
 */
import { string, typeName, type Issue } from '../config/schema.js';
import type { ConfigService } from '../config/service.js';
import { AppError, ERR_CONFIG_INVALID, ERR_INTERNAL } from '../errors.js';
import type { CtrlxDiagnosis } from './problem.js';

/** The body of a save/load callback (other fields are ignored). */
export interface CallbackBody {
  configurationPath?: string | undefined;
  id?: string | undefined;
  phase: string;
}

const STRING_MESSAGE = (v: unknown): string => `Invalid input: expected string, received ${typeName(v)}`;
const tooBig = (max: number): string => `Too big: expected string to have <=${max} characters`;

/** A callback body checked: the known fields, or a problem per field (`(root)` for a non-object). */
export function parseCallbackBody(raw: unknown): { ok: true; body: CallbackBody } | { ok: false; errors: { field: string; message: string }[] } {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    return { ok: false, errors: [{ field: '(root)', message: `Invalid input: expected object, received ${typeName(raw)}` }] };
  }
  const value = raw as Record<string, unknown>;
  const issues: Issue[] = [];
  const optionalText = (field: string, max: number): string | undefined => {
    const v = value[field];
    if (v === undefined) return undefined;
    return string({ type: STRING_MESSAGE(v), max: [max, tooBig(max)] })(v, [field], issues) as string | undefined;
  };
  const body: CallbackBody = {
    configurationPath: optionalText('configurationPath', 4096),
    id: optionalText('id', 256),
    // The field's one message covers its length too (as the API always said).
    phase: string({ type: 'phase must be a string', min: [1, 'phase is required'], max: [64, 'phase must be a string'] })(value.phase, ['phase'], issues) as string,
  };
  if (issues.length) return { ok: false, errors: issues.map((i) => ({ field: i.path.join('.'), message: i.message })) };
  if (!('configurationPath' in value)) delete body.configurationPath;
  if (!('id' in value)) delete body.id;
  return { ok: true, body };
}

/** 204, or the failure with the ctrlX fields its Problem JSON carries. */
export type CallbackResult = { status: 204 } | { error: AppError; diagnosis: CtrlxDiagnosis };

/**
 * ctrlX wants a save/load failure's messages to end with the callback's operation id, `[<id>]`, so
 * the Solutions app can tie them to the operation. No `mainDiagnosisCode` is sent: the schema's
 * example value 080F0100 means "Error in diagnostic system" on ctrlX OS, and the app has no
 * diagnosis code of its own.
 */
export function withOperationId(text: string, id: string | undefined): string {
  return id ? `${text} [${id}]` : text;
}

/** `POST api/v1/save`: the ctrlX save phase. */
export async function saveCallback(config: ConfigService, body: CallbackBody): Promise<CallbackResult> {
  try {
    await config.persist(body.id);
  } catch (err) {
    return failure(err, body, 'Saving the noVNC settings failed');
  }
  return { status: 204 };
}

/** `POST api/v1/load`: one phase of a ctrlX load. */
export async function loadCallback(config: ConfigService, body: CallbackBody): Promise<CallbackResult> {
  try {
    await config.load(body.phase, body.id);
  } catch (err) {
    return failure(err, body, 'Loading the noVNC settings failed');
  }
  return { status: 204 };
}

/**
 * The answer to a failed callback: the error's status and Problem type, `title` (unless the error
 * has a title of its own kind, e.g. an invalid file), and messages that end with the operation id.
 */
function failure(err: unknown, body: CallbackBody, title: string): CallbackResult {
  const e = err instanceof AppError ? err : new AppError(ERR_INTERNAL, err instanceof Error ? err.message : String(err), { cause: err });
  const detail = withOperationId(e.message, body.id);
  const error = new AppError(e.code, detail, {
    status: e.status,
    title: e.code === ERR_CONFIG_INVALID ? e.title : title,
    ...(e.field !== undefined ? { field: e.field } : {}),
    ...(e.retryAfter !== undefined ? { retryAfter: e.retryAfter } : {}),
    cause: e,
  });
  return { error, diagnosis: { dynamicDescription: detail, severity: 'Error' } };
}
