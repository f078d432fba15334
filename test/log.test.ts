/**
 * src/log.ts: the line format, and the journal priorities under systemd. The default sink is
 * checked in a child process (its stdout and stderr are what journald would read).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { JOURNAL_PRIORITY, createLogger, escapeControl, formatLine, type LogLevel } from '../src/log.js';

const LOG_MODULE = pathToFileURL(path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'src', 'log.js')).href;

/** Runs a child that logs one line per level through the default sink; returns its stdout and stderr lines. */
function logInChild(env: NodeJS.ProcessEnv): { stdout: string[]; stderr: string[] } {
  const script = `
    const { createLogger } = await import(${JSON.stringify(LOG_MODULE)});
    const log = createLogger({ level: 'debug' }).child('web');
    log.debug('d', { n: 1 }); log.info('i'); log.notice('n'); log.warn('w', { why: 'a b' }); log.error('e');`;
  const base: NodeJS.ProcessEnv = { PATH: process.env.PATH };
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { env: { ...base, ...env }, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const lines = (s: string): string[] => s.split('\n').filter(Boolean);
  return { stdout: lines(r.stdout), stderr: lines(r.stderr) };
}

describe('log', () => {
  it('under systemd ($JOURNAL_STREAM set) every line starts with its sd-daemon priority', () => {
    const { stdout, stderr } = logInChild({ JOURNAL_STREAM: '8:12345', INVOCATION_ID: 'x' });
    assert.deepEqual(stdout, ['<7>debug web: d n=1', '<6>info  web: i', '<5>notice web: n']);
    assert.deepEqual(stderr, ['<4>warn  web: w why="a b"', '<3>error web: e']);
  });

  it('off the device (no $JOURNAL_STREAM) the lines stay as they are', () => {
    const { stdout, stderr } = logInChild({ INVOCATION_ID: 'x' });
    assert.deepEqual(stdout, ['debug web: d n=1', 'info  web: i', 'notice web: n']);
    assert.deepEqual(stderr, ['warn  web: w why="a b"', 'error web: e']);
    const stamped = logInChild({});
    assert.match(stamped.stdout[1]!, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z info {2}web: i$/);
  });

  it('the priorities are the sd-daemon ones; a sink gets them only when asked', () => {
    assert.deepEqual(JOURNAL_PRIORITY, { error: 3, warn: 4, notice: 5, info: 6, debug: 7 });
    const lines: [LogLevel, string][] = [];
    const sink = (level: LogLevel, line: string): void => void lines.push([level, line]);
    const saved = process.env.JOURNAL_STREAM;
    process.env.JOURNAL_STREAM = '8:1';
    try {
      createLogger({ sink, timestamps: false }).warn('plain');
      createLogger({ sink, timestamps: false, journal: true }).child('a').child('b').error('prefixed', { code: 1011 });
      createLogger({ sink, timestamps: false, journal: true, level: 'warn' }).notice('below the level');
    } finally {
      if (saved === undefined) delete process.env.JOURNAL_STREAM;
      else process.env.JOURNAL_STREAM = saved;
    }
    assert.deepEqual(lines, [
      ['warn', 'warn  plain'],
      ['error', '<3>error a.b: prefixed code=1011'],
    ]);
  });

  describe('control characters', () => {
    /** Every character that must not reach a line raw: C0, DEL, C1, U+2028, U+2029. */
    const controls = [
      ...Array.from({ length: 0x20 }, (_, i) => i),
      0x7f,
      ...Array.from({ length: 0x20 }, (_, i) => 0x80 + i),
      0x2028,
      0x2029,
    ].map((c) => String.fromCharCode(c));
    /** True when `s` holds any of them raw. */
    const hasRaw = (s: string): boolean => [...s].some((c) => controls.includes(c));

    it('escapes each of them as \\xNN or \\uNNNN', () => {
      assert.equal(escapeControl('a\x1b[31mb'), 'a\\x1b[31mb');
      assert.equal(escapeControl('\n\r\t\x00\x7f\x85\x9f'), '\\x0a\\x0d\\x09\\x00\\x7f\\x85\\x9f');
      assert.equal(escapeControl('x\u2028y\u2029z'), 'x\\u2028y\\u2029z');
      assert.equal(escapeControl('plain äö € 日本'), 'plain äö € 日本');
      for (const c of controls) assert.ok(!hasRaw(escapeControl(`<${c}>`)), `U+${c.charCodeAt(0).toString(16)}`);
    });

    it('no logged value or message carries one raw, and a line stays one line', () => {
      const evil = `${controls.join('')}"quoted" back\\slash`;
      const line = formatLine(`msg ${evil}`, { user: evil, n: 1, bare: `a${'\x9b'}b`, empty: '' });
      assert.ok(!hasRaw(line), line);
      assert.equal(line.split('\n').length, 1);
      assert.match(line, / user="\\x00\\x01.*\\x1b.*\\x7f\\x80.*\\x9f\\u2028\\u2029\\"quoted\\" back\\\\slash" n=1 bare="a\\x9bb" empty=""$/);
      // Plain values stay bare, as before.
      assert.equal(formatLine('m', { a: 'x', b: 'a b', c: 'k=v' }), 'm a=x b="a b" c="k=v"');
    });

    it('a logger writes the escaped form through its sink, scope included', () => {
      const lines: string[] = [];
      createLogger({ sink: (_l, line) => lines.push(line), timestamps: false })
        .child('a\x1bb')
        .warn('token rejected\r\nerror forged line', { user: '\x1b]0;title\x07\x1b[2J' });
      assert.deepEqual(lines, ['warn  a\\x1bb: token rejected\\x0d\\x0aerror forged line user="\\x1b]0;title\\x07\\x1b[2J"']);
    });
  });
});
