/**
 * docs/errors.md, section "WebSocket close codes", lists exactly the rows of the failure table
 * (src/common/failures.ts): the same codes and kinds, HTTP status, retry and fix. A code added,
 * renumbered or dropped on one side only fails here.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { FAILURES, type FailureRow } from '../../src/common/failures.js';

const DOC = new URL('../../../docs/errors.md', import.meta.url);

/** The table rows of one `## ` section, as cells. */
function sectionRows(markdown: string, heading: string): string[][] {
  const lines = markdown.split('\n');
  const start = lines.indexOf(`## ${heading}`);
  assert.ok(start >= 0, `docs/errors.md has a "## ${heading}" section`);
  const rows: string[][] = [];
  for (const line of lines.slice(start + 1)) {
    if (line.startsWith('## ')) break;
    if (!line.startsWith('|')) continue;
    const cells = line.split('|').slice(1, -1).map((c) => c.trim());
    if (cells[0] === 'code' || /^-+$/.test(cells[0] ?? '')) continue;
    rows.push(cells);
  }
  return rows;
}

/** The documented columns of a row: code, kind, HTTP, retry, fix. */
const columns = (kind: string, r: FailureRow): string[] => [String(r.code), `\`${kind}\``, r.status ? String(r.status) : '–', r.retry ? 'yes' : 'no', r.fix];

describe('docs/errors.md: WebSocket close codes', () => {
  it('lists every row of the failure table, in its order, and nothing else', () => {
    const documented = sectionRows(readFileSync(DOC, 'utf8'), 'WebSocket close codes').map((cells) => cells.slice(0, 5));
    const table = Object.entries(FAILURES).map(([kind, row]) => columns(kind, row));
    assert.deepEqual(documented, table);
  });

  it('gives every kind a code of its own', () => {
    const codes = Object.values(FAILURES).map((r) => r.code);
    assert.equal(new Set(codes).size, codes.length);
    // The two oldest keep their numbers (viewers and scripts out there know them).
    assert.deepEqual([FAILURES['target-changed'].code, FAILURES.idle.code], [4000, 4001]);
  });
});
