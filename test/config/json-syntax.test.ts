/**
 * config.json syntax errors: the line, the column and what is wrong, in fixed words that never
 * quote the file (a password typed into the file by hand must not reach the settings page, the
 * status API or a load error). The scanner agrees with JSON.parse on what is valid.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { findJsonSyntaxError, lineAndColumn } from '../../src/config/json-syntax.js';
import { parseConfigText } from '../../src/config/store.js';
import { serializeConfig } from '../../src/config/schema.js';
import { API, PREFIX, client, config, editConfigFile, startTestApp, target, waitFor, type TestApp } from '../helpers/app.js';
import { between, prng } from '../helpers/stream.js';

const SECRET = 'Hunter2-geheim';

describe('findJsonSyntaxError', () => {
  const table: [string, string, number, number, RegExp][] = [
    ['an unquoted word (a password typed in bare)', `{"a": ${SECRET}}`, 1, 7, /^expected a value \(an object, a list, a string, a number, true, false or null\)$/],
    ['a string not closed at the end of the file', `{"a": "${SECRET}`, 1, 7, /^a string that starts here is not closed$/],
    ['a string not closed at the end of its line', `{\n  "a": "${SECRET},\n  "b": 1\n}`, 2, 24, /^a string is not closed before the end of its line$/],
    ['a control character in a string', '{"a": "x\u0001y"}', 1, 9, /^a string contains a control character/],
    ['an invalid escape', '{"a": "\\q"}', 1, 8, /^a string has an invalid escape/],
    ['a short \\u escape', '{"a": "\\u12"}', 1, 8, /^a \\u escape in a string needs four hexadecimal digits$/],
    ['a trailing comma in an object', '{"a": 1,\n}', 2, 1, /^expected a property name in double quotes \(a "," too many\?\)$/],
    ['a trailing comma in a list', '[1, 2,]', 1, 7, /^expected a value/],
    ['a single-quoted name', "{'a': 1}", 1, 2, /^expected a property name in double quotes$/],
    ['a missing colon', '{"a" 1}', 1, 6, /^expected ":" after a property name$/],
    ['a missing comma between properties', '{\n  "a": 1\n  "b": 2\n}', 3, 3, /^expected "," or "}" after a value in an object$/],
    ['a missing comma in a list', '[1 2]', 1, 4, /^expected "," or "]" after a value in a list$/],
    ['a leading zero', '{"port": 05900}', 1, 10, /^a number is malformed/],
    ['a lone minus', '[-]', 1, 2, /^a number is malformed/],
    ['a number ending in a point', '[1.]', 1, 2, /^a number is malformed/],
    ['more after the value', '{} {}', 1, 4, /^there is more after the end of the JSON value$/],
    ['an empty file', '', 1, 1, /^the file is empty$/],
    ['only white space', '\n\n  ', 3, 3, /^the file is empty$/],
    ['a cut-off object', '{"version": 1, "targets": [', 1, 28, /^the file ends too early \(a list is not closed with "\]"\)$/],
    ['a cut-off list in an object', '{"a": {"b": 1}', 1, 15, /^the file ends too early \(an object is not closed with "\}"\)$/],
    ['a byte order mark', '\uFEFF{}', 1, 1, /^the file starts with a byte order mark/],
    ['NUL bytes', '\0\0\0', 1, 1, /^expected a value/],
    ['a misspelt literal', '[tru]', 1, 2, /^expected a value/],
  ];
  for (const [what, text, line, column, reason] of table) {
    it(`finds ${what} at line ${line}, column ${column}`, () => {
      assert.throws(() => JSON.parse(text), SyntaxError, 'the case is invalid JSON');
      const e = findJsonSyntaxError(text);
      assert.ok(e, 'an error is found');
      assert.deepEqual([e.line, e.column], [line, column], `${e.reason}`);
      assert.match(e.reason, reason);
      assert.ok(!e.reason.includes(SECRET.slice(0, 4)), 'the reason never quotes the text');
    });
  }

  for (const valid of ['{}', '[]', '0', '-0.5e+10', '"\\u00e9\\n"', ' {"a": [true, false, null, {"b": "c"}]} \n', serializeConfig(config(target('a', 5900)))]) {
    it(`finds nothing wrong in ${JSON.stringify(valid).slice(0, 40)}`, () => assert.equal(findJsonSyntaxError(valid), null));
  }

  it('copes with deep nesting without overflowing the stack', () => {
    const deep = '['.repeat(200_000);
    const e = findJsonSyntaxError(deep);
    assert.ok(e);
    assert.match(e.reason, /ends too early/);
    assert.equal(findJsonSyntaxError('['.repeat(50_000) + ']'.repeat(50_000)), null);
  });

  it('agrees with JSON.parse on 20000 mutated configuration files (seeded)', () => {
    const rand = prng(0x5eed);
    const rnd = (n: number): number => between(rand, 0, n - 1);
    const valid = serializeConfig({ version: 1, targets: [{ ...target('press', 5900, '192.168.1.50', 'Press "A"'), idleTimeout: 30 }] });
    const base = `${valid}{"x": [1.5e3, -0, true, null, "\\u00e9\\t"]}`;
    const alphabet = '{}[]:," \n\\u0-1.eE+tfn\t/x\u0001\u00e9';
    for (let k = 0; k < 20_000; k++) {
      const chars = base.slice(k % 2 ? base.indexOf('{"x"') : 0, k % 2 ? undefined : base.indexOf('{"x"')).split('');
      for (let m = 1 + rnd(3); m > 0; m--) {
        const at = rnd(chars.length + 1);
        const c = alphabet[rnd(alphabet.length)]!;
        const op = rnd(3);
        if (op === 0) chars.splice(at, 1);
        else if (op === 1) chars.splice(at, 0, c);
        else chars[at] = c;
      }
      const text = chars.join('');
      let parses = true;
      try {
        JSON.parse(text);
      } catch {
        parses = false;
      }
      const e = findJsonSyntaxError(text);
      assert.equal(e === null, parses, `JSON.parse ${parses ? 'accepts' : 'refuses'} ${JSON.stringify(text)}, the scanner says ${e?.reason ?? 'valid'}`);
      if (e) assert.ok(e.offset >= 0 && e.offset <= text.length);
    }
  });

  it('counts lines and columns from 1', () => {
    assert.deepEqual(lineAndColumn('ab\ncd\r\nef', 0), { line: 1, column: 1 });
    assert.deepEqual(lineAndColumn('ab\ncd\r\nef', 4), { line: 2, column: 2 });
    assert.deepEqual(lineAndColumn('ab\ncd\r\nef', 7), { line: 3, column: 1 });
  });
});

describe('config.json syntax errors never show the file content', () => {
  // Each file holds the secret next to the syntax error, where JSON.parse's message would quote it.
  const files: [string, string][] = [
    ['a bare password', `{\n  "version": 1,\n  "password": ${SECRET},\n  "targets": []\n}\n`],
    ['a password in an unclosed string', `{\n  "version": 1,\n  "targets": [],\n  "password": "${SECRET}\n}\n`],
    ['a password after a missing comma', `{"version": 1 "password": "${SECRET}", "targets": []}`],
    ['a password in single quotes', `{"version": 1, "targets": [], 'password': '${SECRET}'}`],
  ];
  for (const [what, text] of files) {
    it(`gives line and column but no content for ${what}`, () => {
      const parsed = parseConfigText(text, '/x/config.json');
      assert.ok('error' in parsed);
      const { error } = parsed;
      assert.match(error.reason, /^not valid JSON: /);
      assert.equal(typeof error.line, 'number');
      assert.equal(typeof error.column, 'number');
      for (const part of [SECRET, SECRET.slice(0, 6), SECRET.slice(-6)]) {
        assert.ok(!JSON.stringify(error).includes(part), `the error holds "${part}": ${JSON.stringify(error)}`);
      }
    });
  }

  it('places a bare password at its line and column', () => {
    const parsed = parseConfigText(files[0]![1], 'config.json');
    assert.ok('error' in parsed);
    assert.deepEqual([parsed.error.line, parsed.error.column], [3, 15]);
  });

  describe('through the app (status API, settings page, load callback)', () => {
    let t: TestApp;
    before(async () => {
      t = await startTestApp({ initial: config(target('press', 5900, '192.168.1.50')) });
    });
    after(() => t.close());

    it('shows the line and column on the page and in the status, and never the secret', async () => {
      const http = client(t.port);
      editConfigFile(t.file, files[0]![1]);
      await waitFor('the file error', async () => (await http.status()).config.state === 'invalid');
      const status = await http.status();
      assert.equal(status.config.error?.line, 3);
      assert.equal(status.config.error?.column, 15);
      const page = await http.get(`${PREFIX}/config/`);
      assert.match(page.text, /, line 3, column 15: not valid JSON: expected a value/);
      const load = await http.post(`${API}/load`, { configurationPath: 'solutions/DefaultSolution/configurations/appdata', id: 'l1', phase: 'load' });
      assert.equal(load.status, 422);
      assert.match(load.json().detail, /config\.json \(line 3\): not valid JSON: expected a value/);
      await http.post(`${API}/load`, { configurationPath: 'solutions/DefaultSolution/configurations/appdata', id: 'l1', phase: 'abort' });
      for (const answer of [JSON.stringify(status), page.text, load.text]) {
        assert.ok(!answer.includes(SECRET.slice(0, 6)), 'an answer holds the secret');
      }
    });
  });
});
