#!/usr/bin/env node
/**
 * Builds the pages' static files: one minified ES module per page (public/viewer.js with
 * src/common/ and noVNC's core, public/config.js, public/login.js) and the style sheets, each under
 * a name with its content hash, with precompressed `.br` and `.gz` copies beside it and a
 * `manifest.json` (page name → hashed name) that the server reads at start (src/web/static.ts).
 *
 *   node scripts/bundle.mjs [--out DIR]      default: dist/static (part of `npm run build`)
 *
 * The pages keep their imports as written for the browser (`../common/x.js`, `../novnc/core/…`):
 * the build maps them to src/common/x.ts and the installed @novnc/novnc package.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import zlib from 'node:zlib';
import * as esbuild from 'esbuild';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** The files the pages load, relative to the source folder (public/). */
export const ENTRIES = ['viewer.js', 'config.js', 'login.js', 'viewer.css', 'style.css'];

/** The installed noVNC package folder (holds core/ and vendor/). */
function novncDir() {
  return path.resolve(path.dirname(fileURLToPath(import.meta.resolve('@novnc/novnc'))), '..');
}

/** `../common/x.js` → `<common>/x.ts`, `../novnc/…` → the noVNC package, as the pages write them. */
function pageImports(commonDir) {
  return {
    name: 'page-imports',
    setup(build) {
      build.onResolve({ filter: /^\.\.\/common\// }, (args) => {
        const file = path.join(commonDir, args.path.slice('../common/'.length).replace(/\.js$/, '.ts'));
        return { path: file };
      });
      build.onResolve({ filter: /^\.\.\/novnc\// }, (args) => ({ path: path.join(novncDir(), args.path.slice('../novnc/'.length)) }));
    },
  };
}

/** The first 10 hex digits of the sha256 of `data`: what the file name carries. */
export function contentHash(data) {
  return createHash('sha256').update(data).digest('hex').slice(0, 10);
}

/**
 * Bundles `entries` of `srcDir` into `outDir` (emptied first). Returns the manifest
 * `{ files: { 'viewer.js': 'viewer-<hash>.js', … } }`, also written to `outDir/manifest.json`.
 * Every file gets `.br` (brotli, quality 11) and `.gz` (gzip -9) copies when they are smaller.
 */
export async function buildStatic({
  srcDir = path.join(ROOT, 'public'),
  commonDir = path.join(ROOT, 'src', 'common'),
  outDir = path.join(ROOT, 'dist', 'static'),
  entries = ENTRIES,
} = {}) {
  const result = await esbuild.build({
    absWorkingDir: srcDir,
    entryPoints: entries.map((e) => path.join(srcDir, e)),
    outdir: outDir,
    outbase: srcDir,
    bundle: true,
    format: 'esm',
    minify: true,
    target: ['es2022'],
    charset: 'utf8',
    legalComments: 'eof',
    write: false,
    logLevel: 'silent',
    plugins: [pageImports(commonDir)],
  });
  fs.rmSync(outDir, { recursive: true, force: true });
  fs.mkdirSync(outDir, { recursive: true });
  const files = {};
  for (const out of result.outputFiles) {
    const rel = path.relative(outDir, out.path);
    const ext = path.extname(rel);
    const hashed = `${rel.slice(0, -ext.length)}-${contentHash(out.contents)}${ext}`;
    const file = path.join(outDir, hashed);
    fs.writeFileSync(file, out.contents);
    const br = zlib.brotliCompressSync(out.contents, {
      params: {
        [zlib.constants.BROTLI_PARAM_QUALITY]: zlib.constants.BROTLI_MAX_QUALITY,
        [zlib.constants.BROTLI_PARAM_MODE]: zlib.constants.BROTLI_MODE_TEXT,
        [zlib.constants.BROTLI_PARAM_SIZE_HINT]: out.contents.length,
      },
    });
    const gz = zlib.gzipSync(out.contents, { level: zlib.constants.Z_BEST_COMPRESSION });
    if (br.length < out.contents.length) fs.writeFileSync(`${file}.br`, br);
    if (gz.length < out.contents.length) fs.writeFileSync(`${file}.gz`, gz);
    files[rel] = hashed;
  }
  const manifest = { files: Object.fromEntries(Object.entries(files).sort(([a], [b]) => a.localeCompare(b))) };
  fs.writeFileSync(path.join(outDir, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  return manifest;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const i = args.indexOf('--out');
  const outDir = i === -1 ? undefined : path.resolve(args[i + 1] ?? '');
  try {
    const manifest = await buildStatic(outDir ? { outDir } : {});
    const dir = outDir ?? path.join(ROOT, 'dist', 'static');
    for (const name of Object.values(manifest.files)) {
      const size = (f) => (fs.existsSync(f) ? fs.statSync(f).size : 0);
      const f = path.join(dir, name);
      process.stderr.write(`bundle: ${name} ${size(f)} B (br ${size(`${f}.br`)}, gzip ${size(`${f}.gz`)})\n`);
    }
  } catch (err) {
    process.stderr.write(`bundle: error: ${err.message}\n`);
    process.exit(1);
  }
}
