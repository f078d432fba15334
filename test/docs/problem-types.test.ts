/**
 * docs/errors.md "## Problem types" and the code agree: the same Problem types, each with the same
 * error codes, and each code's status listed; no Problem type is coined outside `ERROR_KINDS`.
 * Change one without the other and this fails.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { ERROR_KINDS, PROBLEM_TYPES, PROBLEM_TYPE_PREFIX, problemType, type ErrorCode } from '../../src/errors.js';
import { packageRoot } from '../../src/ctrlx/paths.js';

const ROOT = packageRoot();

interface Row {
  type: string;
  statuses: number[];
  codes: string[];
}

/** The rows of the table in the "## Problem types" section. */
function documentedRows(): Row[] {
  const text = fs.readFileSync(path.join(ROOT, 'docs', 'errors.md'), 'utf8');
  const start = text.indexOf('\n## Problem types\n');
  assert.ok(start !== -1, 'docs/errors.md has a "## Problem types" section');
  const rest = text.slice(start + 1);
  const next = rest.indexOf('\n## ', 1);
  const section = next === -1 ? rest : rest.slice(0, next);
  const rows: Row[] = [];
  for (const line of section.split('\n')) {
    const cells = line.split('|').map((c) => c.trim());
    // | `urn:…` | 400, 422 | `ERR_A`, `ERR_B` | when |
    const type = /^`([^`]+)`$/.exec(cells[1] ?? '')?.[1];
    if (!type?.startsWith(PROBLEM_TYPE_PREFIX)) continue;
    rows.push({
      type,
      statuses: (cells[2] ?? '').split(',').map((s) => Number(s.trim())),
      codes: [...(cells[3] ?? '').matchAll(/`([A-Z_]+)`/g)].map((m) => m[1]!),
    });
  }
  return rows;
}

/** Every `.ts` file under `dir`. */
function sources(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? sources(p) : e.name.endsWith('.ts') ? [p] : [];
  });
}

describe('docs/errors.md problem types', () => {
  const rows = documentedRows();
  const codes = Object.keys(ERROR_KINDS) as ErrorCode[];

  it('lists exactly the Problem types of the code, once each', () => {
    const types = rows.map((r) => r.type);
    assert.equal(new Set(types).size, types.length, `a type is listed twice: ${types.join(', ')}`);
    assert.deepEqual([...types].sort(), [...PROBLEM_TYPES].sort());
  });

  it('names, for each type, exactly the error codes that answer with it', () => {
    for (const row of rows) {
      const inCode = codes.filter((c) => problemType(c) === row.type).sort();
      assert.deepEqual([...row.codes].sort(), inCode, `error codes of ${row.type}`);
    }
    assert.deepEqual(rows.flatMap((r) => r.codes).sort(), [...codes].sort(), 'every error code is in the table once');
  });

  it("lists each code's HTTP status with its type", () => {
    for (const row of rows) {
      assert.ok(row.statuses.every((s) => Number.isInteger(s) && s >= 400 && s <= 599), `statuses of ${row.type}: ${row.statuses.join(', ')}`);
      for (const code of row.codes) {
        const status = ERROR_KINDS[code as ErrorCode]?.status;
        assert.ok(row.statuses.includes(status), `${code} answers ${status}, the table says ${row.statuses.join(', ')} for ${row.type}`);
      }
    }
  });

  it('has no Problem type written anywhere in src/ but in the table of src/errors.ts', () => {
    const stray: string[] = [];
    for (const file of sources(path.join(ROOT, 'src'))) {
      const text = fs.readFileSync(file, 'utf8');
      for (const m of text.matchAll(/urn:ctrlx-novnc:problem:[a-z-]*/g)) {
        if (m[0] !== PROBLEM_TYPE_PREFIX && !PROBLEM_TYPES.includes(m[0])) stray.push(`${path.relative(ROOT, file)}: ${m[0]}`);
      }
    }
    assert.deepEqual(stray, []);
  });
});
