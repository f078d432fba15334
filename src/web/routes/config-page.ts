/**
 * @module
 * The settings page `/ctrlx-novnc/config/`: a form of targets (name, host, port) that works
 * without JavaScript (POST, then 303 back with a message; errors next to their field) and is
 * enhanced by public/config.js to use the JSON API.
 */
import express, { Router, type Request, type Response } from 'express';
import { newTargetId, validateConfig, type Config, type FieldError } from '../../config/schema.js';
import { probeTarget, type ProbeResult } from '../../relay/probe.js';
import { isValidHost, parsePort } from '../../relay/address.js';
import { AppError } from '../../errors.js';
import { isSameOrigin } from '../security.js';
import type { RouteDeps } from '../app.js';

export const DEFAULT_VNC_PORT = 5900;
/** Form posts above this many bytes get 413. */
export const FORM_BODY_LIMIT = 32 * 1024;

/** One row of the form, as typed (strings), with its errors and probe result. */
export interface FormRow {
  id: string;
  name: string;
  host: string;
  port: string;
  errors: Partial<Record<'id' | 'name' | 'host' | 'port', string>>;
  probe?: ProbeResult;
}

export interface PageMessage {
  kind: 'ok' | 'error' | 'info';
  text: string;
}

const MESSAGES: Record<string, PageMessage> = {
  saved: { kind: 'ok', text: 'Saved. New viewer sessions use these targets now.' },
};

function rowsFromConfig(config: Config): FormRow[] {
  return config.targets.map((t) => ({ id: t.id, name: t.name, host: t.host, port: String(t.port), errors: {} }));
}

/** Reads a form field that may be repeated (one value per row). */
function list(value: unknown): string[] {
  if (value === undefined) return [];
  return (Array.isArray(value) ? value : [value]).map((v) => (typeof v === 'string' ? v : ''));
}

function rowsFromForm(body: Record<string, unknown>): FormRow[] {
  const ids = list(body.id);
  const names = list(body.name);
  const hosts = list(body.host);
  const ports = list(body.port);
  const n = Math.max(ids.length, names.length, hosts.length, ports.length);
  const rows: FormRow[] = [];
  for (let i = 0; i < n; i++) {
    rows.push({ id: ids[i] ?? '', name: names[i] ?? '', host: hosts[i] ?? '', port: ports[i] ?? '', errors: {} });
  }
  return rows;
}

/**
 * Turns the rows into a configuration: blank rows are dropped, a blank name becomes the host,
 * a blank port 5900, new rows get an id. Errors are attached to the rows they concern.
 */
function configFromRows(rows: FormRow[]): { config?: Config; errors: FieldError[] } {
  const used: Config = { version: 1, targets: [] };
  const rowOf: number[] = [];
  const targets: unknown[] = [];
  rows.forEach((row, i) => {
    const host = row.host.trim();
    const name = row.name.trim() || host;
    if (!host && !row.name.trim() && !row.port.trim()) return;
    const portText = row.port.trim();
    const port = portText === '' ? DEFAULT_VNC_PORT : /^\d+$/.test(portText) ? Number(portText) : portText;
    const id = row.id.trim() || newTargetId(used, name);
    used.targets.push({ id, name, host, port: 0 });
    rowOf.push(i);
    targets.push({ id, name, host, port });
  });
  const result = validateConfig({ targets }, { versionOptional: true });
  if (result.ok) return { config: result.config, errors: [] };
  for (const e of result.errors) {
    const m = /^targets\[(\d+)\]\.(id|name|host|port)$/.exec(e.field);
    const row = m ? rows[rowOf[Number(m[1])]!] : undefined;
    if (row && m) row.errors[m[2] as keyof FormRow['errors']] ??= e.message.replace(/^port must be a number$/, 'port must be a number from 1 to 65535');
  }
  return { errors: result.errors };
}

export function configPageRouter(deps: RouteDeps): Router {
  const { store, csrf } = deps;
  const router = Router();

  const render = (res: Response, rows: FormRow[], message: PageMessage | null, status = 200): void => {
    const shown = rows.length ? rows : [{ id: '', name: '', host: '', port: String(DEFAULT_VNC_PORT), errors: {} }];
    res.status(status).render('config', {
      rows: shown,
      message,
      csrf: csrf.token,
      status: deps.status(),
      defaultPort: DEFAULT_VNC_PORT,
    });
  };

  router.get('/', deps.guard.page('manage'), (req: Request, res: Response) => {
    const key = typeof req.query.m === 'string' ? req.query.m : '';
    render(res, rowsFromConfig(store.config), MESSAGES[key] ?? null);
  });

  router.post('/', express.urlencoded({ extended: false, limit: FORM_BODY_LIMIT, parameterLimit: 1000 }), deps.guard.page('manage'), async (req, res) => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    if (!isSameOrigin(req) || !csrf.verify(body._csrf)) {
      render(
        res,
        rowsFromConfig(store.config),
        { kind: 'error', text: 'This form has expired or did not come from this page (the app may have restarted). Nothing was saved: check the values and save again.' },
        403,
      );
      return;
    }
    const rows = rowsFromForm(body);

    if (body.action === 'add') {
      rows.push({ id: '', name: '', host: '', port: String(DEFAULT_VNC_PORT), errors: {} });
      render(res, rows, { kind: 'info', text: 'Target added below; Save to apply.' });
      return;
    }
    if (typeof body.remove === 'string' && /^\d+$/.test(body.remove)) {
      rows.splice(Number(body.remove), 1);
      render(res, rows, { kind: 'info', text: 'Target removed from the form; Save to apply.' });
      return;
    }
    if (typeof body.probe === 'string' && /^\d+$/.test(body.probe) && rows[Number(body.probe)]) {
      const row = rows[Number(body.probe)]!;
      const host = row.host.trim();
      if (!isValidHost(host)) row.errors.host = 'host must be an IPv4 or IPv6 address or a host name (RFC 1123)';
      let port = DEFAULT_VNC_PORT;
      try {
        if (row.port.trim()) port = parsePort(row.port.trim(), 'port');
      } catch (err) {
        row.errors.port = (err as AppError).message;
      }
      if (!row.errors.host && !row.errors.port) row.probe = await probeTarget(host, port, deps.probeTimeout);
      render(res, rows, null);
      return;
    }

    const { config, errors } = configFromRows(rows);
    if (!config) {
      const first = errors[0]!;
      render(res, rows, { kind: 'error', text: `Not saved: ${first.field}: ${first.message}` }, 400);
      return;
    }
    try {
      await store.save(config);
    } catch (err) {
      render(res, rows, { kind: 'error', text: err instanceof Error ? err.message : String(err) }, err instanceof AppError ? err.status : 500);
      return;
    }
    res.redirect(303, './?m=saved');
  });

  return router;
}
