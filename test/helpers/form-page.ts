/**
 * @module
 * Reading the settings page's HTML (rendered without JavaScript) in tests: its target rows, the
 * values of their inputs and the error shown next to a field.
 */
import assert from 'node:assert/strict';

/** The `<fieldset>` of each target row, in order. */
export function rowsOf(html: string): string[] {
  return html.split(/<fieldset class="card target(?: open)?"/).slice(1).map((chunk) => chunk.slice(0, chunk.indexOf('</fieldset>')));
}

/** The value of the input `name` in a row. */
export function fieldValue(row: string, name: string): string {
  const m = new RegExp(`name="${name}" value="([^"]*)"`).exec(row);
  assert.ok(m, `row has an input ${name}`);
  return m[1]!;
}

/** The error text shown for `field` in a row. */
export function errorOf(row: string, field: string): string {
  const m = new RegExp(`<span class="error" data-for="${field}">([^<]*)</span>`).exec(row);
  assert.ok(m, `row has an error slot for ${field}`);
  return m[1]!;
}
