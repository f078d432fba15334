/**
 * @module
 * The settings page `/ctrlx-novnc/config/`: a form of targets (name, host, port, VNC password,
 * idle timeout)
 * that works without JavaScript (POST, then 303 back with a message; errors next to their field)
 * and is enhanced by public/config.js to use the JSON API. A password is never sent back to the
 * browser: the page only says whether one is stored.
 */
import express, { Router, type Request, type Response } from 'express';
import { validateConfigInput, validateProbeTarget, type Config, type FieldError } from '../../config/schema.js';
import { ADDRESS_CLEARS_PASSWORD, DEFAULT_VNC_PORT, PASSWORD_AND_REMOVE, passwordsClearedText, rowFieldOf, targetsFromRows, type RowField } from '../../shared/form-rules.js';
import type { ConfigService } from '../../config/service.js';
import type { ProbeResult } from '../../relay/probe.js';
import { ERR_INTERNAL } from '../../errors.js';
import { toAppError } from '../respond.js';
import { isSameOrigin } from '../security.js';
import type { RouteDeps } from '../deps.js';

export { DEFAULT_VNC_PORT } from '../../shared/form-rules.js';
/** Form posts above this many bytes get 413. */
export const FORM_BODY_LIMIT = 32 * 1024;

/**
 * One row of the form, as typed (strings), with its errors and probe result. Never the password
 * itself: only whether one is stored, whether one was typed, and the "remove password" tick.
 */
export interface FormRow {
  id: string;
  name: string;
  host: string;
  port: string;
  /** Minutes without input before a session is closed; '' for never. */
  idleTimeout: string;
  /** `on-request`, `immediate` or `watch-only`. */
  control: string;
  allowResize: boolean;
  /** A password is stored for this row's target id. */
  passwordSet: boolean;
  /** A password was typed in this post (it is not shown again: the field stays empty). */
  passwordTyped: boolean;
  /** "Remove password" is ticked. */
  removePassword: boolean;
  errors: Partial<Record<RowField, string>>;
  probe?: ProbeResult;
}

/** Shown next to a password field when the page comes back without saving what was typed. */
const RETYPE_PASSWORD = 'Not saved yet: type the password again before saving (it is never shown on the page).';

export interface PageMessage {
  kind: 'ok' | 'error' | 'info';
  text: string;
}

const MESSAGES: Record<string, PageMessage> = {
  saved: { kind: 'ok', text: 'Saved. New viewer sessions use these targets now.' },
};

function emptyRow(): FormRow {
  return { id: '', name: '', host: '', port: String(DEFAULT_VNC_PORT), idleTimeout: '', control: 'on-request', allowResize: false, passwordSet: false, passwordTyped: false, removePassword: false, errors: {} };
}

function rowsFromConfig(service: ConfigService): FormRow[] {
  return service.current.targets.map((t) => ({
    id: t.id,
    name: t.name,
    host: t.host,
    port: String(t.port),
    idleTimeout: t.idleTimeout === undefined ? '' : String(t.idleTimeout),
    control: t.control ?? 'on-request',
    allowResize: t.allowResize === true,
    passwordSet: service.hasPassword(t.id),
    passwordTyped: false,
    removePassword: false,
    errors: {},
  }));
}

/** Reads a form field that may be repeated (one value per row). */
function list(value: unknown): string[] {
  if (value === undefined) return [];
  return (Array.isArray(value) ? value : [value]).map((v) => (typeof v === 'string' ? v : ''));
}

/**
 * The rows of a post, and the passwords typed (by row, '' when none). "Remove password"
 * checkboxes carry their row's target id: unticked boxes are not posted, so an index would not
 * line up.
 */
function rowsFromForm(body: Record<string, unknown>, service: ConfigService): { rows: FormRow[]; typed: string[] } {
  const ids = list(body.id);
  const names = list(body.name);
  const hosts = list(body.host);
  const ports = list(body.port);
  const passwords = list(body.password);
  // Pages rendered before this field existed post none: '' (never) for every row.
  const idles = list(body.idleTimeout);
  // Selects, so one value per row is always posted (an unticked checkbox would not be).
  const controls = list(body.control);
  const resizes = list(body.allowResize);
  const remove = new Set(list(body.removePassword).filter(Boolean));
  const n = Math.max(ids.length, names.length, hosts.length, ports.length, passwords.length, idles.length);
  const rows: FormRow[] = [];
  const typed: string[] = [];
  for (let i = 0; i < n; i++) {
    const id = ids[i] ?? '';
    const password = passwords[i] ?? '';
    typed.push(password);
    rows.push({
      id,
      name: names[i] ?? '',
      host: hosts[i] ?? '',
      port: ports[i] ?? '',
      idleTimeout: idles[i] ?? '',
      control: controls[i] || 'on-request',
      allowResize: resizes[i] === 'on',
      passwordSet: id !== '' && service.hasPassword(id),
      passwordTyped: password !== '',
      removePassword: id !== '' && remove.has(id),
      errors: {},
    });
  }
  return { rows, typed };
}

/** Asks for typed passwords again on a page shown without saving them. */
function askToRetype(rows: FormRow[]): void {
  for (const row of rows) if (row.passwordTyped) row.errors.password ??= RETYPE_PASSWORD;
}

/**
 * Turns the rows into a configuration and password changes by the form's rules
 * (src/shared/form-rules.ts, the same the page's script applies), then the configuration's.
 * Errors are attached to the rows they concern.
 */
function configFromRows(
  rows: FormRow[],
  typed: string[],
): { config: Config; passwords: Map<string, string | null>; errors: [] } | { config?: undefined; errors: FieldError[] } {
  const { targets, rowOf, conflicts } = targetsFromRows(
    rows.map((row, i) => ({ ...row, password: typed[i] ?? '', removePassword: row.removePassword })),
  );
  const errors: FieldError[] = conflicts.map((i) => {
    rows[i]!.errors.password = PASSWORD_AND_REMOVE;
    return { field: `targets[${rowOf.indexOf(i)}].password`, message: PASSWORD_AND_REMOVE };
  });
  const result = validateConfigInput({ targets }, { versionOptional: true });
  if (result.ok && errors.length === 0) return { config: result.config, passwords: result.passwords, errors: [] };
  if (!result.ok) errors.push(...result.errors);
  for (const e of errors) {
    const at = rowFieldOf(e.field);
    const row = at ? rows[rowOf[at.target]!] : undefined;
    if (row && at) row.errors[at.field] ??= e.message.replace(/^port must be a number$/, 'port must be a number from 1 to 65535');
  }
  return { errors };
}

export function configPageRouter(deps: RouteDeps): Router {
  const { config: service, csrf } = deps;
  const router = Router();

  const render = (res: Response, rows: FormRow[], message: PageMessage | null, status = 200): void => {
    const shown = rows.length ? rows : [emptyRow()];
    res.status(status).render('config', {
      rows: shown,
      message,
      csrf: csrf.token,
      status: deps.status(),
      defaultPort: DEFAULT_VNC_PORT,
      addressHint: ADDRESS_CLEARS_PASSWORD,
    });
  };

  router.get('/', deps.guard.page('manage'), (req: Request, res: Response) => {
    const key = typeof req.query.m === 'string' ? req.query.m : '';
    let message = MESSAGES[key] ?? null;
    if (message && key === 'saved' && typeof req.query.cleared === 'string') {
      // Only names of configured targets, looked up by id: nothing of the query is echoed.
      const ids = new Set(req.query.cleared.split(','));
      const names = service.current.targets.filter((t) => ids.has(t.id)).map((t) => t.name);
      if (names.length) message = { kind: 'ok', text: `${message.text} ${passwordsClearedText(names)}` };
    }
    render(res, rowsFromConfig(service), message);
  });

  router.post('/', express.urlencoded({ extended: false, limit: FORM_BODY_LIMIT, parameterLimit: 1000 }), deps.guard.page('manage'), async (req, res) => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    if (!isSameOrigin(req) || !csrf.verify(body._csrf)) {
      render(
        res,
        rowsFromConfig(service),
        { kind: 'error', text: 'This form has expired or did not come from this page (the app may have restarted). Nothing was saved: check the values and save again.' },
        403,
      );
      return;
    }
    const { rows, typed } = rowsFromForm(body, service);

    if (body.action === 'add') {
      rows.push(emptyRow());
      askToRetype(rows);
      render(res, rows, { kind: 'info', text: 'Target added below; Save to apply.' });
      return;
    }
    if (typeof body.remove === 'string' && /^\d+$/.test(body.remove)) {
      rows.splice(Number(body.remove), 1);
      askToRetype(rows);
      render(res, rows, { kind: 'info', text: 'Target removed from the form; Save to apply.' });
      return;
    }
    if (typeof body.probe === 'string' && /^\d+$/.test(body.probe) && rows[Number(body.probe)]) {
      const row = rows[Number(body.probe)]!;
      const checked = validateProbeTarget(row.host, row.port.trim() || DEFAULT_VNC_PORT);
      if (checked.ok) row.probe = await deps.supervisor.probe(checked.host, checked.port, deps.probeTimeout);
      else for (const e of checked.errors) row.errors[e.field as 'host' | 'port'] = e.message;
      askToRetype(rows);
      render(res, rows, null);
      return;
    }

    const built = configFromRows(rows, typed);
    if (!built.config) {
      const first = built.errors[0]!;
      askToRetype(rows);
      render(res, rows, { kind: 'error', text: `Not saved: ${first.field}: ${first.message}` }, 400);
      return;
    }
    const { config, passwords } = built;
    let cleared: string[];
    try {
      cleared = (await service.save(config, passwords)).passwordsCleared;
    } catch (err) {
      const e = toAppError(err);
      if (e.code === ERR_INTERNAL) deps.logger.error('saving the settings failed', { error: err instanceof Error ? err.stack : String(err) });
      askToRetype(rows);
      render(res, rows, { kind: 'error', text: e.message }, e.status);
      return;
    }
    res.redirect(303, cleared.length ? `./?m=saved&cleared=${cleared.map(encodeURIComponent).join(',')}` : './?m=saved');
  });

  return router;
}
