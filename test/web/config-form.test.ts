/**
 * The settings page without JavaScript: the urlencoded form with its CSRF token saves and answers
 * 303 with a message; errors come back next to their field with the typed values kept; add,
 * remove and "Test connection" work as plain submits; a missing or wrong token, or a foreign
 * Origin, is refused with nothing saved; everything user-supplied is HTML-escaped.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, beforeEach, describe, it } from 'node:test';
import {
  API,
  PREFIX,
  client,
  closedPort,
  config,
  csrfToken,
  startTestApp,
  target,
  tcpServer,
  type FakeServer,
  type TestApp,
} from '../helpers/app.js';
import { rowsOf, fieldValue, errorOf } from '../helpers/form-page.js';
import { serializeConfig, type Config } from '../../src/config/schema.js';

const PAGE = `${PREFIX}/config/`;

/** The page's status message (`#message`). */
function messageOf(html: string): { kind: string; text: string } {
  const m = /<div id="message" class="message([^"]*)"[^>]*>([^<]*)<\/div>/.exec(html);
  assert.ok(m, 'page has a message box');
  return { kind: m[1]!.trim(), text: m[2]! };
}

type Row = { id?: string; name?: string; host?: string; port?: string };

/** Form fields for `rows` (in order) plus extra fields. */
function fields(token: string | null, rows: Row[], extra: [string, string][] = [['action', 'save']]): [string, string][] {
  const out: [string, string][] = token === null ? [] : [['_csrf', token]];
  for (const r of rows) {
    out.push(['id', r.id ?? ''], ['name', r.name ?? ''], ['host', r.host ?? ''], ['port', r.port ?? '']);
  }
  return [...out, ...extra];
}

describe('settings page (no JavaScript)', () => {
  let t: TestApp;
  let http: ReturnType<typeof client>;
  let token: string;
  let vnc: FakeServer;
  const initial = config(target('press', 5900, '192.168.1.50', 'Press line'), target('weld', 5901, 'weld-hmi', 'Welder'));

  before(async () => {
    // A VNC server that asks for no password: greeting, security type None, SecurityResult OK.
    vnc = await tcpServer((socket) => {
      socket.write('RFB 003.008\n');
      let step = 0;
      socket.on('data', () => {
        if (step++ === 0) socket.write(Buffer.from([1, 1]));
        else socket.write(Buffer.alloc(4));
      });
    });
    t = await startTestApp({ initial: serializeConfig(initial) });
    http = client(t.port);
    token = csrfToken((await http.get(PAGE)).text);
  });
  after(async () => {
    await t.close();
    await vnc.close();
  });
  beforeEach(async () => {
    // Every test starts from the same saved configuration.
    const res = await http.put(`${API}/config`, initial);
    assert.equal(res.status, 200);
  });

  const saved = async (): Promise<Config> => JSON.parse(fs.readFileSync(t.file, 'utf8'));

  it('redirects the slashless address and renders the form with the targets and a CSRF token', async () => {
    const bare = await http.get(`${PREFIX}/config?x=1`);
    assert.equal(bare.status, 301);
    assert.equal(bare.headers.location, `${PREFIX}/config/?x=1`);

    const page = await http.get(PAGE);
    assert.equal(page.status, 200);
    assert.match(String(page.headers['content-type']), /^text\/html/);
    assert.match(String(page.headers['content-security-policy']), /script-src 'self'/);
    assert.equal(page.headers['x-frame-options'], 'SAMEORIGIN');
    assert.match(page.text, /<form id="config-form" method="post" action=".\/"/);
    assert.equal(csrfToken(page.text), token);
    const rows = rowsOf(page.text);
    assert.equal(rows.length, 2);
    assert.deepEqual(
      rows.map((r) => ['id', 'name', 'host', 'port'].map((f) => fieldValue(r, f))),
      [
        ['press', 'Press line', '192.168.1.50', '5900'],
        ['weld', 'Welder', 'weld-hmi', '5901'],
      ],
    );
    assert.equal(messageOf(page.text).kind, 'hidden');
    // Relative URLs only (the ctrlX reverse proxy forwards the full path).
    assert.match(page.text, /src="\.\.\/static\/config-[0-9a-f]{10}\.js"/);
  });

  it('makes Save the default button, so Enter in a field saves rather than testing row 1', async () => {
    const page = await http.get(PAGE);
    const form = page.text.slice(page.text.indexOf('<form id="config-form"'), page.text.indexOf('</form>'));
    const first = /<button type="submit"[^>]*>/.exec(form);
    assert.ok(first, 'the form has submit buttons');
    assert.match(first[0], /name="action" value="save"/);
    assert.match(first[0], /tabindex="-1"/);
  });

  it('shows one blank row with the default port when nothing is configured', async () => {
    await http.put(`${API}/config`, config());
    const rows = rowsOf((await http.get(PAGE)).text);
    assert.equal(rows.length, 1);
    assert.deepEqual(['id', 'name', 'host', 'port'].map((f) => fieldValue(rows[0]!, f)), ['', '', '', '5900']);
  });

  it('saves the form and answers 303 to the page with a message', async () => {
    const res = await http.form(PAGE, fields(token, [
      { id: 'press', name: 'Press line 2', host: '10.0.0.7', port: '5905' },
      { id: '', name: 'New HMI', host: 'fe80::1', port: '' }, // new row: id derived from the name, default port
      { id: '', name: '', host: '', port: '' }, // blank row: dropped
      { id: '', name: '', host: 'hmi-3', port: '5999' }, // no name: the host is the name
    ]));
    assert.equal(res.status, 303);
    assert.equal(res.headers.location, './?m=saved');
    const expected = config(
      target('press', 5905, '10.0.0.7', 'Press line 2'),
      target('new-hmi', 5900, 'fe80::1', 'New HMI'),
      target('hmi-3', 5999, 'hmi-3', 'hmi-3'),
    );
    assert.deepEqual(await http.config(), expected);
    assert.deepEqual(await saved(), expected);

    const page = await http.get(`${PAGE}?m=saved`);
    assert.deepEqual(messageOf(page.text), { kind: 'message-ok', text: 'Saved. New viewer sessions use these targets now.' });
    assert.equal(rowsOf(page.text).length, 3);
  });

  it('gives new rows ids that do not clash with existing ones', async () => {
    const res = await http.form(PAGE, fields(token, [
      { id: 'press', name: 'Press', host: '10.0.0.1', port: '5900' },
      { id: '', name: 'Press', host: '10.0.0.2', port: '5900' },
      { id: '', name: 'Press', host: '10.0.0.3', port: '5900' },
    ]));
    assert.equal(res.status, 303, res.text);
    assert.deepEqual((await http.config()).targets.map((x) => x.id), ['press', 'press-2', 'press-3']);
  });

  it('saving an all-blank form leaves no targets', async () => {
    const res = await http.form(PAGE, fields(token, [{ port: '' }]));
    assert.equal(res.status, 303);
    assert.deepEqual(await saved(), config());
  });

  const invalid: [string, Row, string, RegExp][] = [
    ['an invalid host', { id: 'weld', name: 'Welder', host: 'weld hmi', port: '5901' }, 'host', /^Host: enter an IP address or a host name, e\.g\. 192\.168\.1\.20 or hmi-press-2$/],
    ['a port out of range', { id: 'weld', name: 'Welder', host: 'weld-hmi', port: '70000' }, 'port', /^Port: enter a number from 1 to 65535$/],
    ['port 0', { id: 'weld', name: 'Welder', host: 'weld-hmi', port: '0' }, 'port', /^Port: enter a number from 1 to 65535$/],
    ['a port that is not a number', { id: 'weld', name: 'Welder', host: 'weld-hmi', port: 'vnc' }, 'port', /^Port: enter a number from 1 to 65535$/],
    ['an IPv4 address with a number over 255', { id: 'weld', name: 'Welder', host: '192.168.1.300', port: '5901' }, 'host', /^Host: four numbers with dots must be an IPv4 address, each number from 0 to 255, e\.g\. 192\.168\.1\.20$/],
    ['a name that is too long', { id: 'weld', name: 'W'.repeat(65), host: 'weld-hmi', port: '5901' }, 'name', /^Name: use at most 64 characters$/],
    ['a duplicate id', { id: 'press', name: 'Welder', host: 'weld-hmi', port: '5901' }, 'name', /^ID: &#34;press&#34; is already used by target 1$/],
  ];
  for (const [what, row, field, message] of invalid) {
    it(`answers 400 with the error next to the field for ${what}, keeping the typed values and saving nothing`, async () => {
      const before = fs.statSync(t.file);
      const first: Row = { id: 'press', name: 'Press line', host: '192.168.1.50', port: '5900' };
      const res = await http.form(PAGE, fields(token, [first, row]));
      assert.equal(res.status, 400);
      assert.match(String(res.headers['content-type']), /^text\/html/);
      const rows = rowsOf(res.text);
      assert.equal(rows.length, 2);
      assert.match(errorOf(rows[1]!, field), message, 'the message is inside the offending row');
      assert.match(rows[1]!, new RegExp(`name="${field}" value="[^"]*"[^>]*aria-invalid="true"`));
      assert.equal(errorOf(rows[0]!, field), '', 'the other row has no error');
      assert.doesNotMatch(rows[0]!, /aria-invalid/);
      assert.equal(fieldValue(rows[1]!, 'host'), row.host);
      assert.equal(fieldValue(rows[1]!, 'port'), row.port);
      assert.equal(fieldValue(rows[1]!, 'name'), row.name);
      const msg = messageOf(res.text);
      assert.equal(msg.kind, 'message-error');
      assert.match(msg.text, /^Not saved: Target 2 \([^)]*\): /);
      assert.doesNotMatch(msg.text, /targets\[|RFC/, 'no field paths or RFC numbers in what users read');
      // The focus goes to the field with the error (the only autofocus on the page).
      assert.equal(res.text.match(/ autofocus/g)?.length, 1);
      assert.match(rows[1]!, new RegExp(`name="${field}"[^>]*aria-invalid="true" autofocus>`));
      assert.deepEqual(await http.config(), initial);
      assert.equal(fs.statSync(t.file).mtimeMs, before.mtimeMs, 'nothing written');
    });
  }

  describe('refusals', () => {
    const change = (tok: string | null): [string, string][] => fields(tok, [{ id: 'x', name: 'Hacked', host: '10.6.6.6', port: '5900' }]);

    for (const [what, tok] of [
      ['a missing token', null],
      ['a wrong token', 'A'.repeat(43)],
      ['a token of the wrong length', 'abc'],
      ['an empty token', ''],
    ] as const) {
      it(`answers 403 and saves nothing for ${what}`, async () => {
        const res = await http.form(PAGE, change(tok));
        assert.equal(res.status, 403);
        assert.match(res.text, /Nothing was saved/);
        assert.deepEqual(await http.config(), initial);
        assert.deepEqual(await saved(), initial);
        // The page is redrawn from the saved configuration, not from the refused post.
        assert.doesNotMatch(res.text, /Hacked/);
      });
    }

    it('refuses the token of another app instance (a restart expires open forms)', async () => {
      const other = await startTestApp();
      try {
        const foreign = csrfToken((await client(other.port).get(PAGE)).text);
        assert.notEqual(foreign, token);
        const res = await http.form(PAGE, change(foreign));
        assert.equal(res.status, 403);
        assert.match(res.text, /expired/);
        assert.deepEqual(await saved(), initial);
      } finally {
        await other.close();
      }
    });

    it('refuses a post from another origin even with a valid token', async () => {
      const res = await http.form(PAGE, change(token), { headers: { Origin: 'http://evil.example' } });
      assert.equal(res.status, 403);
      assert.deepEqual(await saved(), initial);
    });

    it('refuses Origin: null unless the browser marks the post same-origin (another site cannot)', async () => {
      const res = await http.form(PAGE, change(token), { headers: { Origin: 'null', 'Sec-Fetch-Site': 'cross-site' } });
      assert.equal(res.status, 403);
      assert.deepEqual(await saved(), initial);
    });

    it('accepts its own origin, directly or through the reverse proxy (X-Forwarded-Host)', async () => {
      const direct = await http.form(PAGE, change(token), { headers: { Origin: t.origin } });
      assert.equal(direct.status, 303);
      const proxied = await http.form(PAGE, fields(token, [{ id: 'y', name: 'Proxied', host: '10.0.0.9', port: '5900' }]), {
        headers: { Origin: 'https://ctrlx-core.local', 'X-Forwarded-Host': 'ctrlx-core.local' },
      });
      assert.equal(proxied.status, 303);
      assert.equal((await saved()).targets[0]!.name, 'Proxied');
    });

    it('answers 413 for a form over the size limit', async () => {
      const res = await http.form(PAGE, fields(token, [{ id: 'x', name: 'n'.repeat(40_000), host: '10.0.0.1', port: '5900' }]));
      assert.equal(res.status, 413);
      assert.deepEqual(await saved(), initial);
    });
  });

  describe('buttons', () => {
    it('"Add target" redraws the form with an extra blank row and saves nothing', async () => {
      const typed: Row[] = [
        { id: 'press', name: 'Press line', host: '192.168.1.50', port: '5900' },
        { id: '', name: 'Typed not saved', host: '10.0.0.8', port: '' },
      ];
      const res = await http.form(PAGE, fields(token, typed, [['action', 'add']]));
      assert.equal(res.status, 200);
      const rows = rowsOf(res.text);
      assert.equal(rows.length, 3);
      assert.equal(fieldValue(rows[1]!, 'name'), 'Typed not saved', 'typed values are kept');
      assert.deepEqual(['id', 'name', 'host', 'port'].map((f) => fieldValue(rows[2]!, f)), ['', '', '', '5900']);
      assert.equal(messageOf(res.text).kind, 'message-info');
      assert.deepEqual(await saved(), initial);
    });

    it('"Remove" drops that row from the form only; Save then applies it', async () => {
      const typed: Row[] = [
        { id: 'press', name: 'Press line', host: '192.168.1.50', port: '5900' },
        { id: 'weld', name: 'Welder', host: 'weld-hmi', port: '5901' },
      ];
      const res = await http.form(PAGE, fields(token, typed, [['remove', '0']]));
      assert.equal(res.status, 200);
      const rows = rowsOf(res.text);
      assert.equal(rows.length, 1);
      assert.equal(fieldValue(rows[0]!, 'id'), 'weld');
      assert.match(messageOf(res.text).text, /Save to apply/);
      assert.deepEqual(await saved(), initial);
      // The remove buttons are renumbered.
      assert.match(rows[0]!, /name="remove" value="0"/);

      const save = await http.form(PAGE, fields(csrfToken(res.text), [typed[1]!]));
      assert.equal(save.status, 303);
      assert.deepEqual(await saved(), config(target('weld', 5901, 'weld-hmi', 'Welder')));
    });

    it('"Test connection" probes that row and shows the result in it, saving nothing', async () => {
      const dead = await closedPort();
      const typed: Row[] = [
        { id: 'press', name: 'Press line', host: '127.0.0.1', port: String(dead) },
        { id: 'weld', name: 'Welder', host: '127.0.0.1', port: String(vnc.port) },
      ];
      const res = await http.form(PAGE, fields(token, typed, [['probe', '1']]));
      assert.equal(res.status, 200);
      const rows = rowsOf(res.text);
      assert.match(rows[1]!, /<span class="probe probe-ok" data-field="probe" role="status">VNC server, RFB 003\.008\. It asks for no password: viewers connect without one\.<\/span>/);
      assert.match(rows[0]!, /<span class="probe" data-field="probe" role="status"><\/span>/);
      assert.deepEqual(await saved(), initial);

      const refused = await http.form(PAGE, fields(token, typed, [['probe', '0']]));
      assert.match(rowsOf(refused.text)[0]!, /<span class="probe probe-bad" data-field="probe" role="status">connection refused: nothing listens on 127.0.0.1:\d+<\/span>/);
    });

    it('"Test connection" on an invalid row shows the field errors instead of probing', async () => {
      const res = await http.form(PAGE, fields(token, [{ id: 'x', name: 'X', host: 'bad host', port: '99999' }], [['probe', '0']]));
      assert.equal(res.status, 200);
      const row = rowsOf(res.text)[0]!;
      assert.match(errorOf(row, 'host'), /^Host: /);
      assert.equal(errorOf(row, 'port'), 'Port: enter a number from 1 to 65535');
      assert.match(row, /<span class="probe" data-field="probe" role="status"><\/span>/);
    });

    it('"Test connection" uses port 5900 when the port is blank', async () => {
      const res = await http.form(PAGE, fields(token, [{ id: 'x', name: 'X', host: '127.0.0.1', port: '' }], [['probe', '0']]));
      assert.match(rowsOf(res.text)[0]!, /data-field="probe" role="status">[^<]*127\.0\.0\.1:5900/);
    });
  });

  describe('escaping', () => {
    const evil = '<script>alert(1)</script>"\'&';

    it('escapes a stored name everywhere it is shown', async () => {
      const res = await http.put(`${API}/config`, { targets: [{ id: 'x', name: evil, host: '10.0.0.1', port: 5900 }] });
      assert.equal(res.status, 200, res.text);
      const page = await http.get(PAGE);
      assert.doesNotMatch(page.text, /<script>alert/);
      assert.ok(page.text.includes('value="&lt;script&gt;alert(1)&lt;/script&gt;&#34;&#39;&amp;"'), 'the name is escaped in its input');
      // Only the page's own script tag.
      assert.equal(page.text.match(/<script/g)?.length, 1);
    });

    it('escapes typed values and messages in a redrawn form', async () => {
      const res = await http.form(PAGE, fields(token, [{ id: '', name: evil.repeat(3), host: '"><img src=x onerror=alert(1)>', port: '<b>' }]));
      assert.equal(res.status, 400);
      assert.doesNotMatch(res.text, /<script>alert|<img src=x|<b>/);
      assert.match(res.text, /&lt;script&gt;alert/);
      assert.match(res.text, /&#34;&gt;&lt;img src=x onerror=alert\(1\)&gt;/);
    });

    it('does not reflect unknown message keys or paths unescaped', async () => {
      const page = await http.get(`${PAGE}?m=${encodeURIComponent('<script>x</script>')}`);
      assert.equal(page.status, 200);
      assert.doesNotMatch(page.text, /<script>x/);
      const missing = await http.get(`${PREFIX}/${encodeURIComponent('<script>x</script>')}`);
      assert.equal(missing.status, 404);
      assert.doesNotMatch(missing.text, /<script>x/);
    });
  });
});
