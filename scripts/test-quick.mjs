#!/usr/bin/env node
/**
 * The quick suite (`npm run test:quick`, after the same compile as `npm test`): every compiled test
 * under build/test/ except the slow kinds, run with Node's test runner like `npm test`:
 * - chromium: test/e2e/, and any other test file that drives the browser (imports helpers/browser);
 * - snap builds: test/snap/snap.test.ts (builds, unpacks and runs both snaps);
 * - soak: test/soak/;
 * - faults: test/faults/ (SIGKILLs, full disks, resets, shutdown under load).
 * `npm test` stays the full suite. `--list` prints the files instead of running them.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const tests = path.join(root, 'build', 'test');

/** Folders of build/test/ left out entirely. */
const SLOW_FOLDERS = ['e2e', 'soak', 'faults'];
/** Single files left out (paths below build/test/). */
const SLOW_FILES = ['snap/snap.test.js'];
/** A compiled test that imports the browser harness needs chromium. */
const DRIVES_CHROMIUM = /from ['"](\.\.\/)+helpers\/browser\.js['"]/;

if (!fs.existsSync(tests)) {
  console.error('build/test/ is missing: compile first (npm run test:quick does)');
  process.exit(2);
}

/** Every *.test.js below `dir`, sorted, as paths relative to build/test/. */
function testFiles(dir) {
  const out = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...testFiles(full));
    else if (entry.name.endsWith('.test.js')) out.push(path.relative(tests, full));
  }
  return out.sort();
}

const quick = testFiles(tests).filter((file) => {
  const posix = file.split(path.sep).join('/');
  if (SLOW_FOLDERS.includes(posix.split('/')[0])) return false;
  if (SLOW_FILES.includes(posix)) return false;
  return !DRIVES_CHROMIUM.test(fs.readFileSync(path.join(tests, file), 'utf8'));
});

if (process.argv.includes('--list')) {
  for (const file of quick) console.log(path.join('build', 'test', file));
  process.exit(0);
}

// Most of these tests wait on sockets, timers and child processes, not on the CPU: three files at
// a time (npm test runs one at a time on 2 cores) keep the run short on a 2-core machine.
const concurrency = process.env['TEST_CONCURRENCY'] ?? '3';
const run = spawnSync(process.execPath, ['--test', `--test-concurrency=${concurrency}`, '--test-reporter=spec', ...quick.map((f) => path.join(tests, f))], {
  cwd: root,
  stdio: 'inherit',
});
process.exit(run.status ?? 1);
