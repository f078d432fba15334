/**
 * The app answers in the request's language: pages (`<html lang>`, their texts), the login and
 * error pages, and the Problem JSON users see (titles, details of the login, permission and relay
 * refusals) follow `?lang=` and else `Accept-Language`; the Problem `type` is the same in every
 * language; `?lang=` stays in the links from the viewer to the settings.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { SCOPE_MANAGE, SCOPE_VIEW } from '../../src/ctrlx/auth.js';
import { ERROR_KINDS, type ErrorCode } from '../../src/errors.js';
import { en } from '../../src/common/i18n/en.js';
import { API, PREFIX, RELAY, assertProblem, client, config, csrfToken, startTestApp, target, vncServer, type FakeServer, type TestApp } from '../helpers/app.js';
import { makeToken, startFakeIdm, type FakeIdm } from '../helpers/fake-idm.js';
import { recordReliability } from '../helpers/reliability.js';

const DE = { 'Accept-Language': 'de-DE,de;q=0.9,en;q=0.8' };
const EN = { 'Accept-Language': 'en-US,en;q=0.9' };

describe('answers in the request\'s language', () => {
  let idm: FakeIdm;
  let vnc: FakeServer;
  let app: TestApp;
  let http: ReturnType<typeof client>;
  const viewer = makeToken('bediener', [SCOPE_VIEW]);
  const manager = makeToken('techniker', [SCOPE_MANAGE]);
  const bearer = (token: string, lang: Record<string, string>): { headers: Record<string, string> } => ({ headers: { Authorization: `Bearer ${token}`, ...lang } });

  before(async () => {
    idm = await startFakeIdm();
    for (const t of [viewer, manager]) idm.valid.add(t);
    vnc = await vncServer('lang');
    app = await startTestApp({ initial: config(target('presse', vnc.port, '127.0.0.1', 'Presse')), auth: { validityUrl: idm.url, cacheSeconds: 60 } });
    http = client(app.port);
  });
  after(async () => {
    await app?.close();
    await vnc?.close();
    await idm?.close();
  });

  it('the English Problem titles are the error kinds\' titles (the catalogue and src/errors.ts agree)', () => {
    for (const [code, kind] of Object.entries(ERROR_KINDS) as [ErrorCode, (typeof ERROR_KINDS)[ErrorCode]][]) {
      assert.equal(en[`problem.title.${code}`], kind.title, code);
      if ('page' in kind) assert.equal(en[`problem.page.${code}` as keyof typeof en], kind.page, `${code} page`);
    }
  });

  it('a Problem without a login: German with Accept-Language: de, English without; the type is the same', async () => {
    const de = assertProblem(await http.get(`${API}/status`, { headers: DE }), 401);
    assert.equal(de.title, 'Nicht angemeldet');
    assert.equal(de.detail, 'Eine ctrlX-Anmeldung ist erforderlich: Öffnen Sie diese App über das ctrlX-Menü.');
    const english = assertProblem(await http.get(`${API}/status`, { headers: EN }), 401);
    assert.equal(english.title, 'Unauthorized');
    assert.equal(english.detail, 'A ctrlX login is required: open this app from the ctrlX menu.');
    assert.equal(de.type, english.type);
    assert.equal(de.type, 'urn:ctrlx-novnc:problem:unauthorized');
    const plain = assertProblem(await http.get(`${API}/status`), 401);
    assert.equal(plain.title, 'Unauthorized', 'no Accept-Language: English');
  });

  it('?lang= forces the language over Accept-Language', async () => {
    const res = await http.get(`${API}/status?lang=de`, { headers: EN });
    assert.equal(assertProblem(res, 401).title, 'Nicht angemeldet');
    assert.equal(res.headers['content-language'], 'de');
    assert.match(String(res.headers.vary), /Accept-Language/i);
    const back = await http.get(`${API}/status?lang=en`, { headers: DE });
    assert.equal(assertProblem(back, 401).title, 'Unauthorized');
  });

  it('a missing permission names the ctrlX permission in German', async () => {
    const res = await http.get(`${API}/config`, bearer(viewer, DE));
    const body = assertProblem(res, 403);
    assert.equal(body.title, 'Verboten');
    assert.match(body.detail, /^Benutzer „bediener“ darf die Einstellungen des Fernbildschirms nicht ändern \(dafür ist die Berechtigung „Fernbildschirme verwalten“ nötig/);
  });

  it('the relay preflight answers the viewer in its language (unknown target)', async () => {
    const de = assertProblem(await http.get(`${RELAY}?target=fehlt`, bearer(viewer, DE)), 404, { kind: 'unknown-target' });
    assert.equal(de.title, 'Unbekanntes Ziel');
    assert.equal(de.detail, 'Unbekanntes VNC-Ziel „fehlt“.');
    const english = assertProblem(await http.get(`${RELAY}?target=fehlt`, bearer(viewer, EN)), 404, { kind: 'unknown-target' });
    assert.equal(english.title, 'Unknown target');
    assert.equal(english.detail, 'Unknown VNC target "fehlt".');
    assert.equal(de.code, english.code);
  });

  it('the login page and the error page are German with Accept-Language: de', async () => {
    const login = await http.get(`${PREFIX}/viewer/`, { headers: DE });
    assert.equal(login.status, 401);
    assert.match(login.text, /<html lang="de">/);
    assert.match(login.text, /<h1>Anmeldung erforderlich<\/h1>/);
    assert.match(login.text, /Öffnen Sie <strong>Fernbildschirm<\/strong> über die ctrlX-Seitenleiste/);
    const missing = await http.get(`${PREFIX}/nichts-hier`, bearer(viewer, DE));
    assert.equal(missing.status, 404);
    assert.match(missing.text, /<h1>Nicht gefunden<\/h1>/);
    assert.match(missing.text, /Hier ist nichts: \/ctrlx-novnc\/nichts-hier/);
  });

  it('the viewer page: <html lang>, its texts, and ?lang= kept in the link to the settings', async () => {
    const de = await http.get(`${PREFIX}/viewer/`, bearer(manager, DE));
    assert.equal(de.status, 200);
    assert.match(de.text, /<html lang="de">/);
    assert.match(de.text, /<title>Fernbildschirm<\/title>/);
    assert.match(de.text, /<span class="label">Jetzt verbinden<\/span>/);
    assert.match(de.text, /<span class="label">Einstellungen<\/span>/);
    assert.match(de.text, /href="\.\.\/config\/" id="settings-link"/, 'chosen by Accept-Language: the link needs no ?lang=');
    const forced = await http.get(`${PREFIX}/viewer/?lang=de`, bearer(manager, EN));
    assert.match(forced.text, /<html lang="de">/);
    assert.match(forced.text, /href="\.\.\/config\/\?lang=de" id="settings-link"/);
    const english = await http.get(`${PREFIX}/viewer/`, bearer(manager, EN));
    assert.match(english.text, /<html lang="en">/);
    assert.match(english.text, /<span class="label">Connect now<\/span>/);
    recordReliability({
      table: 'inputs',
      name: 'pages and problems in the request language',
      tried: 'login page, error page, viewer page, 401/403/404 Problem JSON with Accept-Language de-DE, en-US, none, and ?lang= against it',
      outcome: 'German with de-*, English otherwise, ?lang= wins; Problem type URNs identical in both languages; ?lang= kept in the settings link',
    });
  });
});

describe('rate limits in the request\'s language', () => {
  let app: TestApp;
  before(async () => {
    app = await startTestApp({ rateLimits: { changes: { limit: 1, windowMs: 120_000 } } });
  });
  after(async () => {
    await app?.close();
  });

  it('the second save within the window: a 429 in German, the window in German words; English for English', async () => {
    const http = client(app.port);
    assert.equal((await http.put(`${API}/config`, config(), { headers: DE })).status, 200);
    const de = assertProblem(await http.put(`${API}/config`, config(), { headers: DE }), 429);
    assert.equal(de.title, 'Zu viele Änderungen');
    assert.match(de.detail, /^Zu oft gespeichert oder getestet von Ihrer Adresse \(mehr als 1-mal in 2 Minuten\); versuchen Sie es in \d+ s erneut\.$/);
    const english = assertProblem(await http.put(`${API}/config`, config(), { headers: EN }), 429);
    assert.equal(english.title, 'Too many changes');
    assert.match(english.detail, /^Too many saves and tests from your address \(more than 1 in 2 minutes\); try again in \d+ s\.$/);
    assert.equal(de.type, english.type);
  });
});

describe('the settings in German: field messages of the API and of the form without JavaScript', () => {
  let app: TestApp;
  let http: ReturnType<typeof client>;
  before(async () => {
    app = await startTestApp({ initial: config(target('presse', 5900, '192.168.1.50', 'Presse')) });
    http = client(app.port);
  });
  after(async () => {
    await app?.close();
  });

  it('PUT api/v1/config with a wrong port and a taken id: Problem detail and field messages in German, fields as paths', async () => {
    const bad = { targets: [{ id: 'presse', name: 'Presse', host: '192.168.1.300', port: 0 }, { id: 'Presse', name: 'Zwei', host: 'hmi-2', port: 5901 }] };
    const de = assertProblem(await http.put(`${API}/config`, bad, { headers: DE }), 400);
    assert.equal(de.title, 'Prüfung fehlgeschlagen');
    assert.equal(de.field, 'targets[0].host');
    assert.equal(de.detail, 'Die Konfiguration ist ungültig: targets[0].host: Host: Vier Zahlen mit Punkten müssen eine IPv4-Adresse sein, jede Zahl von 0 bis 255, z. B. 192.168.1.20');
    assert.deepEqual(de.errors, [
      { field: 'targets[0].host', message: 'Host: Vier Zahlen mit Punkten müssen eine IPv4-Adresse sein, jede Zahl von 0 bis 255, z. B. 192.168.1.20' },
      { field: 'targets[0].port', message: 'Port: Geben Sie eine Zahl von 1 bis 65535 ein' },
      { field: 'targets[1].id', message: 'ID: „Presse“ wird bereits von Ziel 1 verwendet' },
    ]);
    const english = assertProblem(await http.put(`${API}/config`, bad, { headers: EN }), 400);
    assert.deepEqual(
      english.errors.map((e: { message: string }) => e.message),
      ['Host: four numbers with dots must be an IPv4 address, each number from 0 to 255, e.g. 192.168.1.20', 'Port: enter a number from 1 to 65535', 'ID: "Presse" is already used by target 1'],
    );
    assert.equal(english.type, de.type);
  });

  it('Test connection with a wrong address: the Problem in German', async () => {
    const de = assertProblem(await http.post(`${API}/probe`, { host: '', port: 'x' }, { headers: DE }), 400);
    assert.match(de.detail, /^Dieses Ziel kann nicht getestet werden: host: Host: Geben Sie eine IP-Adresse oder einen Hostnamen ein/);
    assert.deepEqual(de.errors.map((e: { field: string }) => e.field), ['host', 'port']);
  });

  it('the form without JavaScript with ?lang=de: German page, German error next to the field, ?lang=de kept after saving', async () => {
    const page = await http.get(`${PREFIX}/config/?lang=de`, { headers: EN });
    assert.equal(page.status, 200);
    assert.match(page.text, /<html lang="de">/);
    assert.match(page.text, /<h1>VNC-Ziele<\/h1>/);
    assert.match(page.text, /<form id="config-form" method="post" action="\.\/\?lang=de"/);
    assert.match(page.text, /href="\.\.\/viewer\/\?lang=de">Viewer öffnen<\/a>/);
    assert.match(page.text, />Verbindung testen<\/button>/);
    const token = csrfToken(page.text);
    const row = (port: string): [string, string][] => [['id', 'presse'], ['name', 'Presse'], ['host', '192.168.1.50'], ['port', port], ['idleTimeout', '']];
    const bad = await http.form(`${PREFIX}/config/?lang=de`, [['_csrf', token], ...row('70000'), ['action', 'save']], { headers: EN });
    assert.equal(bad.status, 400);
    assert.match(bad.text, /Nicht gespeichert: Ziel 1 \(Presse\): Port: Geben Sie eine Zahl von 1 bis 65535 ein/);
    assert.match(bad.text, /<span class="error" data-for="port">Port: Geben Sie eine Zahl von 1 bis 65535 ein<\/span>/);
    const saved = await http.form(`${PREFIX}/config/?lang=de`, [['_csrf', token], ...row('5901'), ['action', 'save']], { headers: EN });
    assert.equal(saved.status, 303);
    assert.equal(saved.headers.location, './?m=saved&lang=de');
    const after = await http.get(`${PREFIX}/config/?m=saved&lang=de`, { headers: EN });
    assert.match(after.text, /Gespeichert\. Neue Viewer-Sitzungen verwenden ab jetzt diese Ziele\./);
  });
});

