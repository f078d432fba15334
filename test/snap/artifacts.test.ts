/**
 * `npm run artifacts` (scripts/artifacts.mjs): the certification documents become PDFs with the
 * headings of their Markdown (printed by chromium, read back with poppler's pdftotext), the FOSS
 * source offer names every bundled component, and a release is refused while package.json names
 * no publisher. The snaps themselves are built and checked by snap.test.ts.
 *
 * Needs chromium and poppler-utils (.ci/run installs them); skipped with a reason otherwise.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, describe, it } from 'node:test';
import { ROOT, hasCommand, readJson } from './helpers.js';

interface ArtifactsModule {
  DOCUMENTS: { source: string; pdf: string }[];
  renderDocuments(outDir: string, options?: { version?: string }): Promise<string[]>;
  fossOffer(foss: unknown, publisher: { name: string; version: string; author: string; url: string }): string;
  releasePublisher(): { version: string; author: string; url: string };
}
const artifacts = (await import(pathToFileURL(path.join(ROOT, 'scripts', 'artifacts.mjs')).href)) as ArtifactsModule;

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const missing = [...(fs.existsSync(CHROMIUM) ? [] : ['chromium']), ...(hasCommand('pdftotext', '-v') ? [] : ['poppler-utils (pdftotext)'])];
const skip = missing.length ? `missing: ${missing.join(', ')} (see .ci/run)` : false;

/** The text of a PDF, whitespace runs made single spaces. */
function pdfText(file: string): string {
  const r = spawnSync('pdftotext', ['-enc', 'UTF-8', file, '-'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.replace(/\s+/g, ' ');
}

/** The `#`, `##` and `###` headings of a Markdown file, as text. */
function headings(markdown: string): string[] {
  return [...markdown.matchAll(/^#{1,3} (.+)$/gm)].map((m) => m[1]!.replace(/`/g, '').replace(/\*\*/g, '').trim());
}

describe('certification artifacts', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ctrlx-novnc-artifacts-'));
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('manual, test setup, release notes and the architecture overview become PDFs with every heading of their Markdown', { skip, timeout: 120_000 }, async () => {
    const version = readJson(path.join(ROOT, 'package.json')).version;
    const out = path.join(tmp, 'documentation');
    const files = await artifacts.renderDocuments(out, { version });
    assert.deepEqual(files.map((f) => path.basename(f)), ['manual.pdf', 'test-setup-description.pdf', 'release-notes.pdf', 'architecture-overview.pdf']);
    // What each document must cover (issue 15: install, configure, use, remove; the standard
    // scenario with a VNC server, a target, a session, save and load; the version's notes).
    const required: Record<string, string[]> = {
      'manual.pdf': ['Requirements', 'Installation', 'Configuration', 'Saving and loading with Solutions', 'App health', 'Use', 'Diagnosis', 'Removal'],
      'test-setup-description.pdf': ['Test equipment', 'The VNC server', 'Standard scenario', 'A VNC target', 'A session', 'Save and load'],
      'release-notes.pdf': [`Version ${version}`, 'Features', 'Technical data', 'Known limitations'],
      'architecture-overview.pdf': ['Modules', 'A configuration change travels one way', 'Failures travel as codes', 'Where a new feature goes'],
    };
    for (const doc of artifacts.DOCUMENTS) {
      const file = path.join(out, doc.pdf);
      assert.equal(fs.readFileSync(file).subarray(0, 5).toString('latin1'), '%PDF-', `${doc.pdf} is a PDF`);
      const text = pdfText(file);
      const markdown = fs.readFileSync(path.join(ROOT, doc.source), 'utf8');
      const own = headings(markdown);
      for (const r of required[doc.pdf]!) assert.ok(own.some((h) => h.endsWith(r)), `${doc.source} has a heading "${r}"`);
      for (const h of own) assert.ok(text.includes(h), `${doc.pdf} shows the heading "${h}"`);
      assert.ok(text.includes(`ctrlx-novnc ${version}`), `${doc.pdf}: the footer names the version`);
      assert.doesNotMatch(text, /\]\(|\*\*|^#/m, `${doc.pdf}: Markdown was rendered, not printed`);
    }
  });

  it('the FOSS source offer names each bundled component with its licence and where its source is', () => {
    const foss = {
      components: [
        { name: '@novnc/novnc', version: '1.7.0', homepage: 'https://novnc.com', purl: 'pkg:npm/%40novnc/novnc@1.7.0', licenses: [{ name: 'Mozilla Public License 2.0', spdx: 'MPL-2.0' }, { name: 'BSD', spdx: 'BSD-3-Clause' }] },
        { name: 'Node.js', version: '24.22.3', homepage: 'https://nodejs.org', purl: 'pkg:generic/nodejs@24.22.3', licenses: [{ name: 'MIT', spdx: 'MIT' }] },
        { name: 'pako (bundled in @novnc/novnc vendor/pako)', homepage: 'https://github.com/nodeca/pako', licenses: [{ name: 'MIT', spdx: 'MIT' }] },
      ],
    };
    const text = artifacts.fossOffer(foss, { name: 'ctrlx-novnc', version: '0.1.0', author: 'ACME GmbH', url: 'https://acme.example/novnc' });
    assert.match(text, /^Written offer for source code: ctrlx-novnc 0\.1\.0\n/);
    assert.match(text, /by ACME GmbH/);
    assert.match(text, /three years/);
    assert.match(text, /Ask for it at https:\/\/acme\.example\/novnc/);
    assert.match(text, /- @novnc\/novnc 1\.7\.0 \(MPL-2\.0 AND BSD-3-Clause\)\n {2}source: https:\/\/registry\.npmjs\.org\/@novnc\/novnc\/-\/novnc-1\.7\.0\.tgz\n/);
    assert.match(text, /- Node\.js 24\.22\.3 \(MIT\)\n {2}source: https:\/\/nodejs\.org\/dist\/v24\.22\.3\/node-v24\.22\.3\.tar\.gz\n/);
    assert.match(text, /- pako \(bundled in @novnc\/novnc vendor\/pako\) \(MIT\)\n {2}source: https:\/\/github\.com\/nodeca\/pako\n/);
  });

  it('a release is refused while package.json has no author or homepage', () => {
    const pkg = readJson(path.join(ROOT, 'package.json'));
    if (!pkg.author || !pkg.homepage) assert.throws(() => artifacts.releasePublisher(), /refusing to build a release: package\.json has no "author" or no "homepage"/);
    else assert.equal(artifacts.releasePublisher().url, pkg.homepage);

    // `npm run artifacts` in a copy without a publisher: one error line, exit 1, nothing written.
    const repo = path.join(tmp, 'repo');
    for (const dir of ['scripts', 'snap', 'configs', 'docs']) fs.cpSync(path.join(ROOT, dir), path.join(repo, dir), { recursive: true });
    const { author: _a, homepage: _h, ...anonymous } = pkg;
    fs.writeFileSync(path.join(repo, 'package.json'), JSON.stringify(anonymous, null, 2));
    const snapcraft = path.join(repo, 'snap', 'snapcraft.yaml');
    fs.writeFileSync(snapcraft, fs.readFileSync(snapcraft, 'utf8').replace(/^( {2}author:).*$/m, '$1').replace(/^( {2}url:).*$/m, '$1'));
    fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(repo, 'node_modules'));
    const r = spawnSync('npm', ['run', '--silent', 'artifacts'], { cwd: repo, encoding: 'utf8', env: { ...process.env, npm_config_update_notifier: 'false' } });
    assert.equal(r.status, 1, r.stdout + r.stderr);
    const errors = r.stderr.split('\n').filter((l) => l.startsWith('artifacts: error:'));
    assert.equal(errors.length, 1, r.stderr);
    assert.match(errors[0]!, /refusing to build a release: package\.json has no "author" or no "homepage"/);
    assert.equal(fs.existsSync(path.join(repo, 'dist')), false, 'nothing written');
    assert.equal(fs.existsSync(path.join(repo, '.cache')), false, 'nothing staged or downloaded');
  });
});
