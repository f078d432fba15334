/**
 * The message catalogues (src/common/i18n/): English and German have the same keys and, per key,
 * the same placeholders, no text is empty; placeholders are filled; the language of a request
 * follows `?lang=` and else `Accept-Language` with its q-values (`de-*` is German).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { de } from '../../src/common/i18n/de.js';
import { en } from '../../src/common/i18n/en.js';
import * as rules from '../../src/common/form-rules.js';
import { CATALOGUES, fill, LANGUAGES, negotiateLanguage, pageLanguage, pickLanguage, placeholders, translate } from '../../src/common/i18n/index.js';

/** What differs between two catalogues: keys missing in either, placeholder sets that differ, empty texts. */
function catalogueProblems(a: Record<string, string>, b: Record<string, string>, names = ['en', 'de']): string[] {
  const problems: string[] = [];
  for (const key of Object.keys(a)) if (!Object.hasOwn(b, key)) problems.push(`${key}: missing in ${names[1]}`);
  for (const key of Object.keys(b)) if (!Object.hasOwn(a, key)) problems.push(`${key}: missing in ${names[0]}`);
  for (const key of Object.keys(a)) {
    if (!Object.hasOwn(b, key)) continue;
    const pa = placeholders(a[key]!).join(',');
    const pb = placeholders(b[key]!).join(',');
    if (pa !== pb) problems.push(`${key}: placeholders {${pa}} in ${names[0]} but {${pb}} in ${names[1]}`);
  }
  for (const [name, cat] of [[names[0], a], [names[1], b]] as const) {
    for (const [key, text] of Object.entries(cat)) if (!text.trim()) problems.push(`${key}: empty in ${name}`);
  }
  return problems;
}

describe('message catalogues', () => {
  it('English and German have the same keys and the same placeholders per key, and no empty text', () => {
    assert.deepEqual(LANGUAGES, ['en', 'de']);
    assert.deepEqual(catalogueProblems(en, de), []);
    assert.ok(Object.keys(en).length > 150, `a real catalogue (${Object.keys(en).length} keys)`);
  });

  it('the check finds a missing key, an extra key, a changed placeholder and an empty text', () => {
    const broken: Record<string, string> = { ...de };
    delete broken['viewer.connect'];
    broken['viewer.extra'] = 'x';
    broken['viewer.status.connecting'] = 'Verbinde mit {ziel}…';
    broken['viewer.cancel'] = ' ';
    const problems = catalogueProblems(en, broken);
    assert.ok(problems.includes('viewer.connect: missing in de'), problems.join('\n'));
    assert.ok(problems.includes('viewer.extra: missing in en'), problems.join('\n'));
    assert.ok(problems.some((p) => p.startsWith('viewer.status.connecting: placeholders {name}')), problems.join('\n'));
    assert.ok(problems.includes('viewer.cancel: empty in de'), problems.join('\n'));
  });

  it('German is German: the texts differ from English except for names, keys and numbers', () => {
    const same = Object.keys(en).filter((k) => en[k as keyof typeof en] === de[k as keyof typeof en]);
    // Words that are the same in both languages (keys, abbreviations, product words).
    const allowed = new Set(['problem.invalidField', 'settings.port', 'settings.name', 'settings.status', 'settings.password.optional', 'time.seconds', 'viewer.scaling.none', 'viewer.key.win', 'status.config.ok', 'status.relay', 'status.table.viewer', 'viewer.status.connectedDesktop']);
    assert.deepEqual(same.filter((k) => !allowed.has(k)), []);
    assert.equal(de['app.title'], 'Fernbildschirm');
    assert.equal(de['app.settings'], 'Einstellungen');
  });

  it('placeholders are filled; one without a value stays visible', () => {
    assert.equal(fill('Verbunden mit {name} — {desktop}', { name: 'Presse', desktop: 'HMI' }), 'Verbunden mit Presse — HMI');
    assert.equal(fill('{a}{a} {b}', { a: 1 }), '11 {b}');
    assert.equal(fill('no { brace', {}), 'no { brace');
    assert.equal(translate('de', 'viewer.status.retryIn', { seconds: 4 }), 'Neuer Versuch in 4 s.');
    assert.equal(translate('en', 'viewer.status.retryIn', { seconds: 4 }), 'Retrying in 4 s.');
    assert.deepEqual(placeholders('{b} and {a} and {b}'), ['a', 'b']);
    for (const lang of LANGUAGES) assert.equal(CATALOGUES[lang]['app.title'].length > 0, true);
  });
});

describe('language negotiation', () => {
  const cases: [string | undefined, 'en' | 'de'][] = [
    [undefined, 'en'],
    ['', 'en'],
    ['de', 'de'],
    ['de-DE', 'de'],
    ['de-AT,de;q=0.9', 'de'],
    ['DE-ch', 'de'],
    ['en-US,en;q=0.9,de;q=0.8', 'en'],
    ['fr-FR,fr;q=0.9,de;q=0.8,en;q=0.7', 'de'],
    ['fr-FR,fr;q=0.9,en;q=0.8,de;q=0.7', 'en'],
    ['en;q=0.5,de;q=0.6', 'de'],
    ['de;q=0,en', 'en'],
    ['de;q=0', 'en'],
    ['fr, *;q=0.5', 'en'],
    ['ja', 'en'],
    ['de;q=abc', 'en'],
    ['de;q=2', 'en'],
    ['  de-DE ; q=0.8 , en ; q=0.7', 'de'],
    ['en;q=0.8,de;q=0.8', 'en'],
    ['de;q=0.8,en;q=0.8', 'de'],
  ];
  for (const [header, want] of cases) {
    it(`Accept-Language ${JSON.stringify(header)} → ${want}`, () => assert.equal(negotiateLanguage(header), want));
  }

  it('?lang= forces the language; an unknown ?lang= is ignored', () => {
    assert.deepEqual(pickLanguage('de', 'en-US'), { lang: 'de', forced: true });
    assert.deepEqual(pickLanguage('en', 'de-DE'), { lang: 'en', forced: true });
    assert.deepEqual(pickLanguage('fr', 'de-DE'), { lang: 'de', forced: false });
    assert.deepEqual(pickLanguage(['de'], 'en'), { lang: 'en', forced: false });
    assert.deepEqual(pickLanguage(undefined, undefined), { lang: 'en', forced: false });
  });

  it('a page takes its language from <html lang>', () => {
    assert.equal(pageLanguage('de'), 'de');
    assert.equal(pageLanguage('de-DE'), 'de');
    assert.equal(pageLanguage('en'), 'en');
    assert.equal(pageLanguage(''), 'en');
    assert.equal(pageLanguage(null), 'en');
    assert.equal(pageLanguage('fr'), 'en');
  });
});

describe('the form\'s messages in German', () => {
  it('every field message constant of the form rules has its German text; other texts stay as they are', () => {
    const constants = Object.entries(rules).filter(([name, v]) => name.endsWith('_MESSAGE') && typeof v === 'string') as [string, string][];
    assert.ok(constants.length >= 10, constants.map(([n]) => n).join(', '));
    for (const [name, text] of constants) {
      assert.ok(rules.fieldMessageOf(text), `${name} is a catalogue message`);
      const german = rules.fieldMessageIn(text, 'de');
      assert.notEqual(german, text, `${name} in German`);
      assert.equal(rules.fieldMessageIn(text, 'en'), text);
    }
    assert.equal(rules.fieldMessageIn('something else', 'de'), 'something else');
    assert.equal(rules.PORT_MESSAGE, 'Port: enter a number from 1 to 65535');
    assert.equal(rules.fieldMessageIn(rules.PORT_MESSAGE, 'de'), 'Port: Geben Sie eine Zahl von 1 bis 65535 ein');
  });

  it('labels, a taken id, cleared passwords and the page\'s own checks in German', () => {
    assert.equal(rules.targetLabel(1, 'Schweißen', 'de'), 'Ziel 2 (Schweißen)');
    assert.equal(rules.targetLabel(0, '', 'de'), 'Ziel 1');
    assert.equal(rules.targetLabel(1, 'Welder'), 'Target 2 (Welder)');
    assert.equal(rules.duplicateIdMessage('press', 0), 'ID: "press" is already used by target 1');
    assert.equal(translate('de', rules.duplicateId('press', 0).key, rules.duplicateId('press', 0).params), 'ID: „press“ wird bereits von Ziel 1 verwendet');
    assert.match(rules.passwordsClearedText(['Presse', 'Linie 2'], 'de'), /^Das gespeicherte VNC-Passwort von „Presse“, „Linie 2“ wurde gelöscht/);
    assert.deepEqual(rules.targetProblems({ id: 'a', name: '', host: '192.168.1.300', port: 0 }, 'de').map((p) => p.message), [
      'Name: Geben Sie einen Namen ein, z. B. HMI Pressenlinie',
      'Host: Vier Zahlen mit Punkten müssen eine IPv4-Adresse sein, jede Zahl von 0 bis 255, z. B. 192.168.1.20',
      'Port: Geben Sie eine Zahl von 1 bis 65535 ein',
    ]);
  });

  it('Test connection answers in German by outcome; English keeps the probe\'s own sentence', () => {
    const vnc = { ok: true, outcome: 'vnc', message: 'VNC server, RFB 003.008; logged in, no password needed', target: '10.0.0.5:5900', version: 'RFB 003.008', asksPassword: false };
    assert.equal(rules.probeText(vnc, false, 'de'), 'VNC-Server, RFB 003.008. Er verlangt kein Passwort: Viewer verbinden sich ohne Passwort.');
    assert.equal(rules.probeText(vnc, false), 'VNC server, RFB 003.008. It asks for no password: viewers connect without one.');
    const rejected = { ...vnc, ok: false, outcome: 'login-rejected', asksPassword: true };
    assert.equal(rules.probeText(rejected, true, 'de'), 'VNC-Server, RFB 003.008. Er verlangt ein Passwort: Das eingegebene Passwort wurde nicht angenommen (falsches Passwort).');
    const refused = { ok: false, outcome: 'refused', message: 'connection refused: nothing listens on 10.0.0.5:5900', target: '10.0.0.5:5900' };
    assert.equal(rules.probeText(refused, false, 'de'), 'Verbindung abgelehnt: Unter 10.0.0.5:5900 antwortet kein Dienst');
    assert.equal(rules.probeText(refused, false, 'en'), refused.message);
    const earlier = { ...refused, nextTestIn: 7, message: `${refused.message} (tested 3 s ago; …)` };
    assert.match(rules.probeText(earlier, false, 'de'), /^Verbindung abgelehnt: .* \(Antwort eines früheren Tests: .* in 7 s\)$/);
    assert.equal(rules.probeText(earlier, false, 'en'), earlier.message);
  });
});

