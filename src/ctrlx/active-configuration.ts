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
import { z } from 'zod';
import { AppError, ERR_CONFIG_INVALID } from '../errors.js';
import type { ConfigService } from '../config/service.js';
import { PROBLEM_TYPES, problem, type Problem } from './problem.js';

export const CallbackBody = z.object({
  configurationPath: z.string().max(4096).optional(),
  id: z.string().max(256).optional(),
  phase: z.string({ error: 'phase must be a string' }).min(1, { error: 'phase is required' }).max(64),
});
export type CallbackBody = z.infer<typeof CallbackBody>;

export type CallbackResult = { status: 204 } | { status: number; problem: Problem };

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
    const invalid = err instanceof AppError && err.code === ERR_CONFIG_INVALID;
    return failure(err, body, invalid ? 'The loaded noVNC settings are invalid' : 'Loading the noVNC settings failed');
  }
  return { status: 204 };
}

function failure(err: unknown, body: CallbackBody, title: string): CallbackResult {
  const status = err instanceof AppError ? err.status : 500;
  const type =
    err instanceof AppError && err.code === ERR_CONFIG_INVALID
      ? PROBLEM_TYPES.validation
      : status === 503
        ? PROBLEM_TYPES.unavailable
        : PROBLEM_TYPES.writeFailed;
  const detail = withOperationId(err instanceof Error ? err.message : String(err), body.id);
  return {
    status,
    problem: problem(status, type, title, detail, {
      ...(err instanceof AppError && err.field ? { field: err.field } : {}),
      dynamicDescription: detail,
      severity: 'Error',
    }),
  };
}
