/**
 * @module
 * A small YAML subset: enough to read `snap/snapcraft.yaml` (and the `meta/snap.yaml` this project
 * writes) and to write `meta/snap.yaml`, without a YAML dependency.
 *
 * Reads: block mappings and sequences (a sequence item may itself be a mapping), flow sequences
 * `[a, b]` and flow mappings `{a: b}` of scalars, plain / 'single' / "double" quoted scalars,
 * block scalars `|` and `>` (with `-`/`+` chomping), `#` comments, an empty value as null.
 * Every scalar stays a string (snap metadata is strings); `true`/`false`/numbers are not typed.
 * Anything else (anchors, tags, multi-document, multi-line plain scalars, complex keys) throws,
 * naming the line, instead of being misread.
 */

/** @param {string} message @param {number} lineNo */
function fail(message, lineNo) {
  return new Error(`YAML (subset) line ${lineNo + 1}: ${message}`);
}

/** Removes a trailing ` # comment` outside quotes. */
function stripComment(text) {
  let quote = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quote) {
      if (c === '\\' && quote === '"') i++;
      else if (c === quote) quote = '';
    } else if (c === '"' || c === "'") {
      quote = c;
    } else if (c === '#' && (i === 0 || text[i - 1] === ' ' || text[i - 1] === '\t')) {
      return text.slice(0, i).trimEnd();
    }
  }
  return text.trimEnd();
}

/** Parses one scalar token (already trimmed). */
function scalar(token, lineNo) {
  if (token === '' || token === '~' || token === 'null') return null;
  if (token.startsWith('"')) {
    if (!token.endsWith('"') || token.length < 2) throw fail(`unterminated string ${token}`, lineNo);
    try {
      return JSON.parse(token);
    } catch {
      throw fail(`unsupported escape in ${token}`, lineNo);
    }
  }
  if (token.startsWith("'")) {
    if (!token.endsWith("'") || token.length < 2) throw fail(`unterminated string ${token}`, lineNo);
    return token.slice(1, -1).replace(/''/g, "'");
  }
  if (/^[&*!%@`]/.test(token)) throw fail(`unsupported syntax (anchor, alias, tag or reserved) in ${token}`, lineNo);
  return token;
}

/** Splits a flow collection's inside at top-level commas. */
function splitFlow(inner, lineNo) {
  const parts = [];
  let depth = 0;
  let quote = '';
  let start = 0;
  for (let i = 0; i < inner.length; i++) {
    const c = inner[i];
    if (quote) {
      if (c === '\\' && quote === '"') i++;
      else if (c === quote) quote = '';
    } else if (c === '"' || c === "'") quote = c;
    else if (c === '[' || c === '{') depth++;
    else if (c === ']' || c === '}') depth--;
    else if (c === ',' && depth === 0) {
      parts.push(inner.slice(start, i).trim());
      start = i + 1;
    }
  }
  if (quote || depth !== 0) throw fail('unbalanced flow collection', lineNo);
  const last = inner.slice(start).trim();
  if (last) parts.push(last);
  return parts;
}

/** Finds the `: ` (or final `:`) that separates a key from its value, outside quotes. */
function keySplit(text) {
  let quote = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quote) {
      if (c === '\\' && quote === '"') i++;
      else if (c === quote) quote = '';
    } else if ((c === '"' || c === "'") && i === 0) quote = c;
    else if (c === ':' && (i === text.length - 1 || text[i + 1] === ' ')) return i;
    else if (c === '[' || c === '{') return -1;
  }
  return -1;
}

/** A value written on the same line as its key or dash: scalar or flow collection. */
function inlineValue(token, lineNo) {
  if (token.startsWith('[')) {
    if (!token.endsWith(']')) throw fail('a flow sequence must end on its line', lineNo);
    return splitFlow(token.slice(1, -1), lineNo).map((t) => inlineValue(t, lineNo));
  }
  if (token.startsWith('{')) {
    if (!token.endsWith('}')) throw fail('a flow mapping must end on its line', lineNo);
    const out = {};
    for (const part of splitFlow(token.slice(1, -1), lineNo)) {
      const k = keySplit(part);
      if (k < 0) throw fail(`expected key: value in ${part}`, lineNo);
      out[scalar(part.slice(0, k).trim(), lineNo)] = inlineValue(part.slice(k + 1).trim(), lineNo);
    }
    return out;
  }
  return scalar(token, lineNo);
}

/**
 * Parses `text` into plain objects, arrays, strings and nulls.
 * @param {string} text
 * @returns {unknown}
 */
export function parse(text) {
  const raw = text.replace(/\r\n?/g, '\n').split('\n');
  /** @type {{ indent: number, text: string, no: number }[]} */
  const lines = [];
  // Block scalars are cut out here, keyed by line, so the structural pass sees one line each.
  /** @type {Map<number, string>} */
  const blocks = new Map();
  for (let i = 0; i < raw.length; i++) {
    const line = raw[i];
    if (/^\s*(#.*)?$/.test(line)) continue;
    if (line.includes('\t') && /^\s*\t/.test(line)) throw fail('tabs are not allowed for indentation', i);
    if (/^(---|\.\.\.)(\s|$)/.test(line)) {
      if (lines.length) throw fail('only one document is supported', i);
      continue;
    }
    const indent = line.length - line.trimStart().length;
    const content = stripComment(line.trim());
    lines.push({ indent, text: content, no: i });
    const m = /(?:^|:\s+|^-\s+)([|>])([+-]?)$/.exec(content);
    if (m) {
      // Collect the block: following lines more indented than this one (or blank).
      const body = [];
      let j = i + 1;
      let blockIndent = -1;
      for (; j < raw.length; j++) {
        const l = raw[j];
        if (l.trim() === '') {
          body.push('');
          continue;
        }
        const ind = l.length - l.trimStart().length;
        if (ind <= indent) break;
        if (blockIndent < 0) blockIndent = ind;
        if (ind < blockIndent) throw fail('block scalar lines must share an indentation', j);
        body.push(l.slice(blockIndent));
      }
      // Trailing blank lines belong to chomping, not to the next key.
      let end = body.length;
      while (end > 0 && body[end - 1] === '') end--;
      const kept = body.slice(0, end);
      let value;
      if (m[1] === '|') value = kept.join('\n');
      else value = kept.join('\n').replace(/([^\n])\n(?=[^\n ])/g, '$1 ');
      if (m[2] === '-') value = value.replace(/\n+$/, '');
      else if (m[2] === '+') value = `${value}\n${body.slice(end).map(() => '\n').join('')}`;
      else value = value === '' ? '' : `${value}\n`;
      blocks.set(lines.length - 1, value);
      i = j - 1;
    }
  }

  let pos = 0;

  /** Parses the node starting at lines[pos] with exactly `indent`. */
  function node(indent) {
    const first = lines[pos];
    if (first.text.startsWith('- ') || first.text === '-') return sequence(indent);
    return mapping(indent);
  }

  /** The value after `key:` or `- `: inline, a block scalar, or a nested node on the next lines. */
  function valueAfter(token, index, parentIndent, allowSameIndentSeq) {
    if (blocks.has(index)) return blocks.get(index);
    if (token !== '') return inlineValue(token, lines[index].no);
    const next = lines[pos];
    if (!next) return null;
    if (next.indent > parentIndent) return node(next.indent);
    // YAML allows a sequence at the same indentation as its mapping key.
    if (allowSameIndentSeq && next.indent === parentIndent && next.text.startsWith('- ')) return sequence(parentIndent);
    return null;
  }

  function mapping(indent) {
    const out = {};
    while (pos < lines.length && lines[pos].indent === indent && !lines[pos].text.startsWith('- ')) {
      const { text, no } = lines[pos];
      const index = pos;
      const k = keySplit(text);
      if (k < 0) throw fail(`expected "key: value", got ${text}`, no);
      const key = scalar(text.slice(0, k).trim(), no);
      if (key === null || key.startsWith('?')) throw fail('unsupported key', no);
      if (Object.hasOwn(out, key)) throw fail(`duplicate key ${key}`, no);
      pos++;
      out[key] = valueAfter(text.slice(k + 1).trim(), index, indent, true);
    }
    if (pos < lines.length && lines[pos].indent > indent) throw fail('unexpected indentation', lines[pos].no);
    return out;
  }

  function sequence(indent) {
    const out = [];
    while (pos < lines.length && lines[pos].indent === indent && (lines[pos].text.startsWith('- ') || lines[pos].text === '-')) {
      const { text, no } = lines[pos];
      const rest = text === '-' ? '' : text.slice(2).trim();
      const index = pos;
      if (rest !== '' && keySplit(rest) >= 0 && !rest.startsWith('[') && !rest.startsWith('{')) {
        // `- key: value` starts a mapping whose keys sit at the dash's indent + 2.
        const childIndent = indent + (text.length - text.slice(1).trimStart().length);
        lines[pos] = { indent: childIndent, text: rest, no };
        out.push(mapping(childIndent));
      } else {
        pos++;
        out.push(valueAfter(rest, index, indent, false));
      }
    }
    if (pos < lines.length && lines[pos].indent > indent) throw fail('unexpected indentation', lines[pos].no);
    return out;
  }

  if (lines.length === 0) return null;
  const result = node(lines[0].indent);
  if (pos < lines.length) throw fail('unexpected content', lines[pos].no);
  return result;
}

const PLAIN = /^[A-Za-z0-9_./$~][A-Za-z0-9_ ./$~+=@,()-]*$/;
const RESERVED = /^(true|false|yes|no|on|off|null|~|y|n)$/i;

/** A scalar as plain text where that is unambiguous, else JSON-quoted (valid YAML). */
function emitScalar(value) {
  if (value === null || value === undefined) return '';
  if (typeof value === 'boolean' || typeof value === 'number') return String(value);
  const s = String(value);
  if (PLAIN.test(s) && !RESERVED.test(s) && !/^[-+.]?\d/.test(s) && !s.endsWith(' ')) return s;
  return JSON.stringify(s);
}

/**
 * Writes plain objects, arrays of scalars and strings as block-style YAML. Multi-line strings
 * become `|` literal blocks.
 * @param {Record<string, unknown>} doc
 * @returns {string}
 */
export function stringify(doc) {
  const lines = [];
  const walk = (obj, indent) => {
    const pad = ' '.repeat(indent);
    for (const [key, value] of Object.entries(obj)) {
      if (value === undefined) continue;
      const k = emitScalar(key);
      if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
        if (Object.keys(value).length === 0) lines.push(`${pad}${k}: {}`);
        else {
          lines.push(`${pad}${k}:`);
          walk(value, indent + 2);
        }
      } else if (Array.isArray(value)) {
        if (!value.every((v) => v === null || typeof v !== 'object')) throw new Error(`${key}: only lists of scalars can be written`);
        lines.push(`${pad}${k}: [${value.map(emitScalar).join(', ')}]`);
      } else if (typeof value === 'string' && value.includes('\n')) {
        const chomp = value.endsWith('\n') ? '' : '-';
        lines.push(`${pad}${k}: |${chomp}`);
        const body = value.endsWith('\n') ? value.slice(0, -1) : value;
        for (const l of body.split('\n')) lines.push(l === '' ? '' : `${pad}  ${l}`);
      } else {
        lines.push(value === null ? `${pad}${k}:` : `${pad}${k}: ${emitScalar(value)}`);
      }
    }
  };
  walk(doc, 0);
  return `${lines.join('\n')}\n`;
}
