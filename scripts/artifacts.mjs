#!/usr/bin/env node
/**
 * Writes what a ctrlX partner submission needs (app development guide, "artifacts") into
 * dist/artifacts/ — a release, so it refuses to run while package.json names no publisher
 * (`author`, `homepage`):
 *
 *   snaps/          ctrlx-novnc_<version>_arm64.snap (mandatory) and _amd64.snap (ctrlX CORE virtual)
 *   disclosure/     fossinfo.json (everything bundled, with licence texts) and foss-offer.txt
 *   buildinfo/      snapcraft.yaml, package-manifest.json and the validation descriptions
 *   documentation/  manual.pdf, test-setup-description.pdf, release-notes.pdf,
 *                   architecture-overview.pdf (from docs/*.md)
 *   SHA256SUMS      of every file above
 *
 *   node scripts/artifacts.mjs [--out DIR]          (npm run artifacts)
 *   node scripts/artifacts.mjs docs --out DIR       only the three PDFs
 *
 * The PDFs are Markdown rendered with `marked` and printed by chromium (playwright-core,
 * `$CHROMIUM_PATH` or /usr/bin/chromium).
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { marked } from 'marked';
import { ROOT, buildSnaps, checkMetadata, packageJson, readSnapcraft } from './stage.mjs';

const log = (msg) => process.stderr.write(`artifacts: ${msg}\n`);

class UsageError extends Error {}

/** The documents: Markdown in docs/ → PDF in documentation/, under the names the guide uses. */
export const DOCUMENTS = [
  { source: 'docs/manual.md', pdf: 'manual.pdf' },
  { source: 'docs/test-setup.md', pdf: 'test-setup-description.pdf' },
  { source: 'docs/release-notes.md', pdf: 'release-notes.pdf' },
  { source: 'docs/architecture.md', pdf: 'architecture-overview.pdf' },
];

const escapeHtml = (s) => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);

const STYLE = `
  @page { size: A4; margin: 20mm 18mm 22mm 18mm; }
  body { font-family: "DejaVu Sans", "Liberation Sans", Arial, sans-serif; font-size: 10pt; line-height: 1.45; color: #111; }
  h1 { font-size: 18pt; margin: 0 0 12pt; border-bottom: 1.5pt solid #333; padding-bottom: 4pt; }
  h2 { font-size: 13pt; margin: 16pt 0 6pt; page-break-after: avoid; }
  h3 { font-size: 11pt; margin: 12pt 0 4pt; page-break-after: avoid; }
  table { border-collapse: collapse; width: 100%; margin: 6pt 0; page-break-inside: auto; }
  tr { page-break-inside: avoid; }
  th, td { border: 0.5pt solid #999; padding: 3pt 5pt; text-align: left; vertical-align: top; }
  th { background: #eee; }
  code { font-family: "DejaVu Sans Mono", "Liberation Mono", monospace; font-size: 8.5pt; }
  pre { background: #f4f4f4; border: 0.5pt solid #ccc; padding: 6pt; white-space: pre-wrap; page-break-inside: avoid; }
  li { margin: 2pt 0; }
`;

/** A whole HTML page for one Markdown document; the title is its first `# ` heading. */
export function documentHtml(markdown) {
  const title = /^# (.+)$/m.exec(markdown)?.[1] ?? 'ctrlx-novnc';
  const body = marked.parse(markdown, { async: false, gfm: true });
  return {
    title,
    html: `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title><style>${STYLE}</style></head><body>${body}</body></html>`,
  };
}

/**
 * Renders the three documents into `outDir` as PDF with chromium's print. Returns the files.
 * @returns {Promise<string[]>}
 */
export async function renderDocuments(outDir, { version = packageJson().version, executablePath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium' } = {}) {
  const { chromium } = await import('playwright-core');
  fs.mkdirSync(outDir, { recursive: true });
  const browser = await chromium.launch({ executablePath, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
  const files = [];
  try {
    const page = await browser.newPage();
    for (const doc of DOCUMENTS) {
      const { title, html } = documentHtml(fs.readFileSync(path.join(ROOT, doc.source), 'utf8'));
      // No network: the page is self-contained (no images, fonts or scripts to fetch).
      await page.route('**/*', (route) => route.abort());
      await page.setContent(html, { waitUntil: 'load' });
      const file = path.join(outDir, doc.pdf);
      await page.pdf({
        path: file,
        format: 'A4',
        printBackground: true,
        displayHeaderFooter: true,
        headerTemplate: '<span></span>',
        footerTemplate: `<div style="font-size:7pt;width:100%;padding:0 18mm;color:#555;display:flex;justify-content:space-between"><span>${escapeHtml(title)} · ctrlx-novnc ${escapeHtml(version)}</span><span><span class="pageNumber"></span> / <span class="totalPages"></span></span></div>`,
        margin: { top: '20mm', bottom: '22mm', left: '18mm', right: '18mm' },
      });
      await page.unroute('**/*');
      files.push(file);
      log(`${path.relative(process.cwd(), file) || file}: ${doc.source}`);
    }
  } finally {
    await browser.close();
  }
  return files;
}

/**
 * The written offer for the source code of the bundled open-source components (ctrlX FOSS
 * disclosure: `foss-sources.zip` or an offer), made from the FOSS list.
 */
export function fossOffer(foss, { name, version, author, url }) {
  // One line per paragraph: the names and the address vary in length.
  const lines = [
    `Written offer for source code: ${name} ${version}`,
    '',
    `${name} ${version} by ${author} contains the open-source components listed below (their licences and licence texts are in fossinfo.json, which is also part of the app as package-assets/${name}/${name}.fossinfo.json).`,
    '',
    `For at least three years after the last delivery of this version, ${author} provides the complete corresponding source code of these components, including the source of any component whose licence requires it (e.g. MPL-2.0 for noVNC), on a customary medium or for download, for no more than the cost of providing it. Ask for it at ${url}, naming the app and its version. The source code is also available from the public locations listed below.`,
    '',
    'Components:',
    '',
  ];
  for (const c of foss.components) {
    const licences = c.licenses.map((l) => l.spdx ?? l.name).join(' AND ');
    const source = c.purl?.startsWith('pkg:npm/')
      ? `https://registry.npmjs.org/${c.name}/-/${c.name.replace(/^@[^/]+\//, '')}-${c.version}.tgz`
      : c.name === 'Node.js'
        ? `https://nodejs.org/dist/v${c.version}/node-v${c.version}.tar.gz`
        : c.homepage;
    lines.push(`- ${c.name}${c.version ? ` ${c.version}` : ''} (${licences})`, `  source: ${source}`, `  project: ${c.homepage}`);
  }
  return `${lines.join('\n')}\n`;
}

function sha256(file) {
  return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

function filesBelow(dir) {
  return fs
    .readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile())
    .map((e) => path.relative(dir, path.join(e.parentPath ?? e.path, e.name)))
    .sort();
}

/**
 * The publisher, or a refusal: a release must name its author and url (the ctrlX validation
 * reads them, signed apps show "by <author>"), and they are never made up.
 */
export function releasePublisher() {
  const meta = checkMetadata();
  if (meta.warning) {
    throw new Error(
      'refusing to build a release: package.json has no "author" or no "homepage" (the publisher the ctrlX validation ' +
        "needs). Set both, and the same author and url in snap/snapcraft.yaml's description comment",
    );
  }
  return meta;
}

/** `npm run artifacts`: everything into `outDir`. */
export async function buildArtifacts(outDir) {
  const { version, author, url } = releasePublisher();
  const name = readSnapcraft().name;
  fs.rmSync(outDir, { recursive: true, force: true });
  const dir = (d) => {
    const p = path.join(outDir, d);
    fs.mkdirSync(p, { recursive: true });
    return p;
  };

  // The documents first: a broken document stops the release before the long snap build.
  await renderDocuments(dir('documentation'), { version });

  const snaps = dir('snaps');
  buildSnaps(['arm64', 'amd64'], snaps);
  const fossFile = path.join(snaps, `${name}_${version}.fossinfo.json`);
  const foss = JSON.parse(fs.readFileSync(fossFile, 'utf8'));
  fs.renameSync(fossFile, path.join(dir('disclosure'), 'fossinfo.json'));
  fs.writeFileSync(path.join(outDir, 'disclosure', 'foss-offer.txt'), fossOffer(foss, { name, version, author, url }));

  const buildinfo = dir('buildinfo');
  fs.copyFileSync(path.join(ROOT, 'snap', 'snapcraft.yaml'), path.join(buildinfo, 'snapcraft.yaml'));
  fs.copyFileSync(path.join(ROOT, 'configs', 'package-assets', `${name}.package-manifest.json`), path.join(buildinfo, 'package-manifest.json'));
  for (const f of ['portlist-description.json', 'unixsocket-description.json', 'slotplug-description.json']) {
    fs.copyFileSync(path.join(ROOT, 'configs', 'validation', f), path.join(buildinfo, f));
  }

  const sums = filesBelow(outDir).map((f) => `${sha256(path.join(outDir, f))}  ${f}`);
  fs.writeFileSync(path.join(outDir, 'SHA256SUMS'), `${sums.join('\n')}\n`);
  log(`wrote ${sums.length} files to ${path.relative(process.cwd(), outDir) || outDir}`);
  return filesBelow(outDir);
}

async function main(argv) {
  let out;
  const rest = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--out') out = argv[++i];
    else if (argv[i].startsWith('--out=')) out = argv[i].slice(6);
    else rest.push(argv[i]);
  }
  if (argv.includes('--out') && !out) throw new UsageError('--out needs a value');
  const [cmd, ...extra] = rest;
  if (extra.length || (cmd && cmd !== 'docs')) throw new UsageError('usage: node scripts/artifacts.mjs [docs] [--out DIR]');
  if (cmd === 'docs') {
    if (!out) throw new UsageError('docs needs --out DIR');
    await renderDocuments(path.resolve(out));
    return;
  }
  await buildArtifacts(path.resolve(out ?? path.join(ROOT, 'dist', 'artifacts')));
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).catch((err) => {
    process.stderr.write(`artifacts: ${err instanceof UsageError ? '' : 'error: '}${err.message}\n`);
    process.exit(err instanceof UsageError ? 2 : 1);
  });
}
