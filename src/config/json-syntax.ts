/**
 * @module
 * Where a JSON text stops being valid, and why, in fixed words that never quote the text.
 *
 * `JSON.parse` messages quote the file ("Unexpected token 'x', "{"password": x…" is not valid
 * JSON") and some name no position at all, so config.json errors are described from this small
 * scanner instead: a VNC password typed into the file by hand must not reach the settings page,
 * the status API or a load error.
 */

export interface JsonSyntaxError {
  /** Index (UTF-16 code units) of the offending character, or the text length at an early end. */
  offset: number;
  /** 1-based line of `offset`. */
  line: number;
  /** 1-based column of `offset` on its line. */
  column: number;
  /** What is wrong, in words; never a piece of the text. */
  reason: string;
}

type Expect = 'value' | 'value-or-close' | 'key' | 'key-or-close' | 'colon' | 'after';

const WHITESPACE = new Set([0x20, 0x09, 0x0a, 0x0d]);
const ESCAPES = new Set(['"', '\\', '/', 'b', 'f', 'n', 'r', 't']);
const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
const HEX4 = /[0-9a-fA-F]{4}/y;

/** 1-based line and column of `offset` in `text`. */
export function lineAndColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = text.indexOf('\n'); i !== -1 && i < offset; i = text.indexOf('\n', i + 1)) {
    line++;
    lineStart = i + 1;
  }
  return { line, column: offset - lineStart + 1 };
}

/**
 * Finds the first syntax error of `text` as JSON (RFC 8259), or null when it is valid JSON.
 * Iterative, so deep nesting cannot overflow the stack.
 */
export function findJsonSyntaxError(text: string): JsonSyntaxError | null {
  const n = text.length;
  const stack: ('{' | '[')[] = [];
  let expect: Expect = 'value';
  let i = 0;
  const fail = (offset: number, reason: string): JsonSyntaxError => ({ offset, ...lineAndColumn(text, offset), reason });

  /** Scans the string starting at `i` (a quote); returns the index after it, or an error. */
  const scanString = (start: number): number | JsonSyntaxError => {
    for (let j = start + 1; j < n; j++) {
      const c = text.charCodeAt(j);
      if (c === 0x22) return j + 1;
      if (c === 0x5c) {
        const e = text[j + 1];
        if (e === 'u') {
          HEX4.lastIndex = j + 2;
          if (!HEX4.test(text)) return fail(j, 'a \\u escape in a string needs four hexadecimal digits');
          j += 5;
        } else if (e !== undefined && ESCAPES.has(e)) {
          j++;
        } else if (e === undefined) {
          break;
        } else {
          return fail(j, 'a string has an invalid escape (only \\" \\\\ \\/ \\b \\f \\n \\r \\t and \\uXXXX are allowed)');
        }
      } else if (c === 0x0a || c === 0x0d) {
        return fail(j, 'a string is not closed before the end of its line');
      } else if (c < 0x20) {
        return fail(j, 'a string contains a control character (write it as an escape such as \\t)');
      }
    }
    return fail(start, 'a string that starts here is not closed');
  };

  for (;;) {
    while (i < n && WHITESPACE.has(text.charCodeAt(i))) i++;
    if (i >= n) {
      if (expect === 'after' && stack.length === 0) return null;
      if (text.trim() === '' && stack.length === 0) return fail(n, 'the file is empty');
      const open = stack.at(-1);
      return fail(n, `the file ends too early${open === '{' ? ' (an object is not closed with "}")' : open === '[' ? ' (a list is not closed with "]")' : ''}`);
    }
    const c = text[i]!;
    switch (expect) {
      case 'after': {
        const top = stack.at(-1);
        if (top === undefined) return fail(i, 'there is more after the end of the JSON value');
        if (c === ',') {
          expect = top === '{' ? 'key' : 'value';
          i++;
        } else if ((top === '{' && c === '}') || (top === '[' && c === ']')) {
          stack.pop();
          i++;
        } else {
          return fail(i, top === '{' ? 'expected "," or "}" after a value in an object' : 'expected "," or "]" after a value in a list');
        }
        continue;
      }
      case 'colon':
        if (c !== ':') return fail(i, 'expected ":" after a property name');
        expect = 'value';
        i++;
        continue;
      case 'key-or-close':
      case 'key': {
        if (expect === 'key-or-close' && c === '}') {
          stack.pop();
          expect = 'after';
          i++;
          continue;
        }
        if (c !== '"') {
          return fail(i, expect === 'key' ? 'expected a property name in double quotes (a "," too many?)' : 'expected a property name in double quotes');
        }
        const end = scanString(i);
        if (typeof end !== 'number') return end;
        i = end;
        expect = 'colon';
        continue;
      }
      case 'value-or-close':
      case 'value': {
        if (expect === 'value-or-close' && c === ']') {
          stack.pop();
          expect = 'after';
          i++;
          continue;
        }
        if (c === '{' || c === '[') {
          stack.push(c);
          expect = c === '{' ? 'key-or-close' : 'value-or-close';
          i++;
          continue;
        }
        if (c === '"') {
          const end = scanString(i);
          if (typeof end !== 'number') return end;
          i = end;
        } else if (c === '-' || (c >= '0' && c <= '9')) {
          NUMBER.lastIndex = i;
          // `01`, `1.`, `1e` and a lone `-` stop the pattern early, or fail it.
          if (!NUMBER.test(text) || /[0-9.eE]/.test(text[NUMBER.lastIndex] ?? '')) {
            return fail(i, 'a number is malformed (no leading zeros; digits needed after "-", "." and "e")');
          }
          i = NUMBER.lastIndex;
        } else if (text.startsWith('true', i) || text.startsWith('null', i)) {
          i += 4;
        } else if (text.startsWith('false', i)) {
          i += 5;
        } else if (i === 0 && c === '\uFEFF') {
          return fail(i, 'the file starts with a byte order mark (save it as UTF-8 without BOM)');
        } else {
          return fail(i, 'expected a value (an object, a list, a string, a number, true, false or null)');
        }
        expect = 'after';
        continue;
      }
    }
  }
}
