/**
 * @module
 * Rows for docs/reliability.md. A test that proves a reliability claim records it here while it
 * runs; `scripts/reliability.mjs` (run after `npm test`) builds the table from these records and
 * checks it against the committed docs/reliability.md, so every row there comes from a test that
 * ran in that very run. A test that cannot run here (a tool or a kernel feature is missing)
 * records why with {@link recordSkipped}, so the check can tell "not possible on this machine"
 * from "no test makes this claim any more".
 */
import fs from 'node:fs';
import path from 'node:path';

/** Which table of docs/reliability.md a row belongs to. */
export type ReliabilityTable = 'load' | 'faults' | 'inputs';

export interface ReliabilityRow {
  table: ReliabilityTable;
  /** Stable, unique name of the claim, e.g. "target resets mid-stream". The key of the row. */
  name: string;
  /** What was done: load held, fault injected or inputs tried, with counts ("50 viewers × 120 s"). */
  tried: string;
  /** What happened, measured ("all 50 sessions closed with 1011 ECONNRESET; old config intact"). */
  outcome: string;
  /** Bytes lost or reordered, where the test counts them. */
  bytesLost?: number;
}

/** One line of a records file, as scripts/reliability.mjs reads it. */
export interface ReliabilityRecord extends Partial<ReliabilityRow> {
  table: ReliabilityTable;
  name: string;
  /** The test file that produced the record, as a source path (`test/relay/sessions.test.ts`). */
  file?: string;
  /** Set instead of `tried`/`outcome` when the test could not run here: why. */
  skipped?: string;
  node: string;
  at: string;
}

/** Where the records of this run go: one JSON-lines file per test process. */
export function reliabilityDir(): string {
  return process.env['RELIABILITY_DIR'] ?? path.resolve('build', 'reliability');
}

/**
 * The running test file as a source path: the test runner starts one process per file, so
 * `argv[1]` is `…/build/test/relay/sessions.test.js` → `test/relay/sessions.test.ts`.
 */
function testFile(): string | undefined {
  const main = (process.argv[1] ?? '').replaceAll('\\', '/');
  const at = main.lastIndexOf('/test/');
  return at === -1 ? undefined : main.slice(at + 1).replace(/\.js$/, '.ts');
}

function append(record: Omit<ReliabilityRecord, 'node' | 'at' | 'file'>): void {
  const dir = reliabilityDir();
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${process.pid}.jsonl`);
  const full: ReliabilityRecord = { ...record, file: testFile(), node: process.version, at: new Date().toISOString() };
  fs.appendFileSync(file, `${JSON.stringify(full)}\n`);
}

/** Records one row; call it only after the test's assertions for that claim have passed. */
export function recordReliability(row: ReliabilityRow): void {
  for (const key of ['name', 'tried', 'outcome'] as const) {
    if (!row[key] || /[\r\n]/.test(row[key])) throw new TypeError(`reliability row ${key} must be one non-empty line`);
  }
  append(row);
}

/** Records that the test behind row `name` could not run on this machine, and why. */
export function recordSkipped(table: ReliabilityTable, name: string, why: string): void {
  append({ table, name, skipped: why });
}
