/**
 * @module
 * The settings page `/ctrlx-novnc/config/`: a form of targets (name, host, port, VNC password,
 * idle timeout)
 * that works without JavaScript (POST, then 303 back with a message; errors next to their field)
 * and is enhanced by public/config.js to use the JSON API. A password is never sent back to the
 * browser: the page only says whether one is stored.
 */
import express, { Router, type Request, type Response } from 'express';
import { passwordProblem, validateConfigInput, validateProbeTarget, type Config, type FieldError } from '../../config/schema.js';
import {
  DEFAULT_VNC_PORT,
  fieldInWords,
  PASSWORD_AND_REMOVE,
  passwordsClearedText,
  probeText,
  rowFieldOf,
  targetLabel,
  targetsFromRows,
  type RowField,
} from '../../common/form-rules.js';
import type { ConfigService } from '../../config/service.js';
import type { ProbeResult } from '../../relay/probe.js';
import { ERR_INTERNAL, fieldMessageIn } from '../../errors.js';
import { LANGUAGES, type Lang, type MessageKey, translate } from '../../common/i18n/index.js';
import { reachWords } from '../../common/reach.js';
import { languageOf } from '../language.js';
import { toAppError } from '../respond.js';
import { isSameOrigin } from '../security.js';
import type { RouteDeps } from '../deps.js';

export { DEFAULT_VNC_PORT } from '../../common/form-rules.js';
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

/** Shown next to a password field when the page comes back without saving what was typed (in every language). */
const RETYPE_PASSWORD = new Set(LANGUAGES.map((lang) => translate(lang, 'settings.msg.retype')));

export interface PageMessage {
  kind: 'ok' | 'error' | 'info';
  text: string;
}

const MESSAGES: Record<string, { kind: PageMessage['kind']; key: MessageKey }> = {
  saved: { kind: 'ok', key: 'settings.msg.saved' },
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
function askToRetype(rows: FormRow[], lang: Lang): void {
  for (const row of rows) if (row.passwordTyped) row.errors.password ??= translate(lang, 'settings.msg.retype');
}

/**
 * Turns the rows into a configuration and password changes by the form's rules
 * (src/common/form-rules.ts, the same the page's script applies), then the configuration's.
 * Errors are attached to the rows they concern.
 */
function configFromRows(
  rows: FormRow[],
  typed: string[],
  lang: Lang,
): { config: Config; passwords: Map<string, string | null>; errors: [] } | { config?: undefined; errors: FieldError[]; summary: string } {
  const { targets, rowOf, conflicts } = targetsFromRows(
    rows.map((row, i) => ({ ...row, password: typed[i] ?? '', removePassword: row.removePassword })),
  );
  const errors: FieldError[] = conflicts.map((i) => {
    rows[i]!.errors.password = fieldMessageIn({ field: 'password', message: PASSWORD_AND_REMOVE }, lang);
    return { field: `targets[${rowOf.indexOf(i)}].password`, message: PASSWORD_AND_REMOVE };
  });
  const result = validateConfigInput({ targets }, { versionOptional: true });
  if (result.ok && errors.length === 0) return { config: result.config, passwords: result.passwords, errors: [] };
  if (!result.ok) errors.push(...result.errors);
  let summary = '';
  for (const e of errors) {
    const at = rowFieldOf(e.field);
    const index = at ? rowOf[at.target] : undefined;
    const row = index === undefined ? undefined : rows[index];
    const message = fieldMessageIn(e, lang);
    if (row && at) row.errors[at.field] ??= message;
    // The first error in words: the row as the page numbers it, the field's own message.
    summary ||= row && index !== undefined ? `${targetLabel(index, row.name, lang)}: ${message}` : message;
  }
  return { errors, summary };
}

/** The order of a row's fields on the page: the first with an error gets the focus. */
const FIELD_ORDER: readonly RowField[] = ['name', 'host', 'port', 'password', 'idleTimeout'];

/** The first field with an error (row index and input name), for `autofocus`; null when none. */
export function firstError(rows: readonly FormRow[]): { row: number; field: RowField } | null {
  for (const [i, row] of rows.entries()) {
    if (row.errors.id) return { row: i, field: 'name' };
    // "Type the password again" is a reminder, not an error to fix first.
    for (const field of FIELD_ORDER) if (row.errors[field] && !RETYPE_PASSWORD.has(row.errors[field])) return { row: i, field };
  }
  return null;
}

/**
 * True when a form post comes from this site. Chromium sends `Origin: null` with a same-origin
 * form post from a page whose `Referrer-Policy` is `no-referrer` (all pages here), so such a post
 * counts when the browser itself marks it `Sec-Fetch-Site: same-origin` (a header no page can set).
 */
function fromThisSite(req: Request): boolean {
  if (isSameOrigin(req)) return true;
  return req.headers.origin === 'null' && req.headers['sec-fetch-site'] === 'same-origin';
}

/**
 * "Test connection" as the settings page asks for it (the form without JavaScript and
 * `POST api/v1/probe` with `login: true`): through the VNC login, with the password typed in the
 * row, or else the stored one of the saved target at that address (see Supervisor.probe and
 * relay/probe.ts for the lockout limits).
 * @returns the probe's answer, or the field errors of the input
 */
export async function probeForPage(
  deps: Pick<RouteDeps, 'supervisor' | 'probeTimeout'>,
  input: { host?: unknown; port?: unknown; password?: unknown },
): Promise<{ ok: true; result: ProbeResult } | { ok: false; errors: FieldError[] }> {
  const checked = validateProbeTarget(input.host, input.port);
  const errors: FieldError[] = checked.ok ? [] : [...checked.errors];
  let password: string | undefined;
  if (input.password !== undefined && input.password !== null && input.password !== '') {
    const problem = passwordProblem(input.password);
    if (problem === null) password = input.password as string;
    else errors.push({ field: 'password', message: problem });
  }
  if (!checked.ok || errors.length) return { ok: false, errors };
  return { ok: true, result: await deps.supervisor.probe(checked.host, checked.port, deps.probeTimeout, { login: true, password }) };
}

export function configPageRouter(deps: RouteDeps): Router {
  const { config: service, csrf } = deps;
  const router = Router();

  const render = (res: Response, rows: FormRow[], message: PageMessage | null, status = 200): void => {
    const shown = rows.length ? rows : [emptyRow()];
    const lang = languageOf(res);
    res.status(status).render('config', {
      rows: shown,
      message,
      focus: firstError(shown),
      fieldInWords: (field: string) => fieldInWords(field, lang),
      // What a Test connection found, in the page's words (the page's script says the same).
      probeWords: (row: FormRow) => (row.probe ? probeText(row.probe, row.passwordTyped, lang) : ''),
      // The reachability dot of a row: the newest of its last viewer session and the last Test
      // connection of its address (any user's), in words (the page's script keeps it live).
      reachability: (row: FormRow) => {
        const port = Number(row.port.trim() || DEFAULT_VNC_PORT);
        const reach = row.host.trim() && Number.isInteger(port) ? deps.supervisor.reach(row.id, row.host.trim(), port) : null;
        return reachWords(reach, lang);
      },
      csrf: csrf.token,
      status: deps.status(),
      defaultPort: DEFAULT_VNC_PORT,
      addressHint: translate(lang, 'form.addressClearsPassword'),
    });
  };

  router.get('/', deps.guard.page('manage'), (req: Request, res: Response) => {
    const lang = languageOf(res);
    const key = typeof req.query.m === 'string' ? req.query.m : '';
    const known = Object.hasOwn(MESSAGES, key) ? MESSAGES[key]! : null;
    let message: PageMessage | null = known ? { kind: known.kind, text: translate(lang, known.key) } : null;
    if (message && key === 'saved' && typeof req.query.cleared === 'string') {
      // Only names of configured targets, looked up by id: nothing of the query is echoed.
      const ids = new Set(req.query.cleared.split(','));
      const names = service.current.targets.filter((t) => ids.has(t.id)).map((t) => t.name);
      if (names.length) message = { kind: 'ok', text: `${message.text} ${passwordsClearedText(names, lang)}` };
    }
    render(res, rowsFromConfig(service), message);
  });

  router.post('/', express.urlencoded({ extended: false, limit: FORM_BODY_LIMIT, parameterLimit: 1000 }), deps.guard.page('manage'), async (req, res) => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    const lang = languageOf(res);
    if (!fromThisSite(req) || !csrf.verify(body._csrf)) {
      render(res, rowsFromConfig(service), { kind: 'error', text: translate(lang, 'settings.msg.expired') }, 403);
      return;
    }
    const { rows, typed } = rowsFromForm(body, service);

    if (body.action === 'add') {
      rows.push(emptyRow());
      askToRetype(rows, lang);
      render(res, rows, { kind: 'info', text: translate(lang, 'settings.msg.added') });
      return;
    }
    if (typeof body.remove === 'string' && /^\d+$/.test(body.remove)) {
      rows.splice(Number(body.remove), 1);
      askToRetype(rows, lang);
      render(res, rows, { kind: 'info', text: translate(lang, 'settings.msg.removed') });
      return;
    }
    if (typeof body.probe === 'string' && /^\d+$/.test(body.probe) && rows[Number(body.probe)]) {
      const index = Number(body.probe);
      const row = rows[index]!;
      const probed = await probeForPage(deps, { host: row.host, port: row.port.trim() || DEFAULT_VNC_PORT, password: typed[index] });
      if (probed.ok) row.probe = probed.result;
      else for (const e of probed.errors) row.errors[e.field as 'host' | 'port' | 'password'] = fieldMessageIn(e, lang);
      askToRetype(rows, lang);
      render(res, rows, null);
      return;
    }

    const built = configFromRows(rows, typed, lang);
    if (!built.config) {
      askToRetype(rows, lang);
      render(res, rows, { kind: 'error', text: translate(lang, 'settings.msg.notSaved', { problem: built.summary }) }, 400);
      return;
    }
    const { config, passwords } = built;
    let cleared: string[];
    try {
      cleared = (await service.save(config, passwords)).passwordsCleared;
    } catch (err) {
      const e = toAppError(err);
      if (e.code === ERR_INTERNAL) deps.logger.error('saving the settings failed', { error: err instanceof Error ? err.stack : String(err) });
      askToRetype(rows, lang);
      render(res, rows, { kind: 'error', text: e.messageIn(lang) }, e.status);
      return;
    }
    // A language forced with ?lang= stays (the form posts to ./?lang=…).
    const forced = res.locals.langQuery ? `&lang=${lang}` : '';
    res.redirect(303, cleared.length ? `./?m=saved${forced}&cleared=${cleared.map(encodeURIComponent).join(',')}` : `./?m=saved${forced}`);
  });

  return router;
}
