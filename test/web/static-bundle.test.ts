/**
 * The pages' static files (scripts/bundle.mjs at build time, src/web/static.ts at run time): one
 * bundled, minified script per page and the style sheets, named by content hash, precompressed
 * with brotli and gzip; served with year-long immutable caching, the encoding chosen by
 * `Accept-Encoding` (br > gzip > identity) with `Vary`, and exact Content-Type/Content-Length.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import zlib from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import { packageRoot } from '../../src/ctrlx/paths.js';
import { PREFIX, client, makeTempDir, removeDir, startTestApp, type HttpResponse, type TestApp } from '../helpers/app.js';
import { recordReliability } from '../helpers/reliability.js';

interface BundleModule {
  buildStatic(options: { srcDir?: string; commonDir?: string; outDir?: string; entries?: string[] }): Promise<{ files: Record<string, string> }>;
}

async function bundleModule(): Promise<BundleModule> {
  return (await import(pathToFileURL(path.join(packageRoot(), 'scripts', 'bundle.mjs')).href)) as BundleModule;
}

describe('the build of the static files (scripts/bundle.mjs)', () => {
  let dir: string;
  before(async () => {
    dir = await makeTempDir('bundle');
  });
  after(() => removeDir(dir));

  /** A tiny page tree as public/ and src/common/ look: a page importing `../common/x.js`. */
  function writeSources(rule: string, colour: string): { srcDir: string; commonDir: string } {
    const srcDir = path.join(dir, 'public');
    const commonDir = path.join(dir, 'common');
    fs.mkdirSync(srcDir, { recursive: true });
    fs.mkdirSync(commonDir, { recursive: true });
    fs.writeFileSync(path.join(commonDir, 'rule.ts'), `export const RULE: string = ${JSON.stringify(rule)};\n`);
    fs.writeFileSync(path.join(srcDir, 'page.js'), "import { RULE } from '../common/rule.js';\ndocument.title = RULE;\n");
    fs.writeFileSync(path.join(srcDir, 'page.css'), `body { color: ${colour}; }\n`);
    return { srcDir, commonDir };
  }

  it('names each file by its content: the same sources give the same names, a change renames only the changed file', async () => {
    const { buildStatic } = await bundleModule();
    const out = path.join(dir, 'out');
    const entries = ['page.js', 'page.css'];
    const first = await buildStatic({ ...writeSources('Port: enter a number', '#123456'), outDir: out, entries });
    assert.match(first.files['page.js']!, /^page-[0-9a-f]{10}\.js$/);
    assert.match(first.files['page.css']!, /^page-[0-9a-f]{10}\.css$/);
    assert.deepEqual(JSON.parse(fs.readFileSync(path.join(out, 'manifest.json'), 'utf8')), first);

    // The shared module is bundled in (TypeScript compiled), the import gone; the output minified.
    const js = fs.readFileSync(path.join(out, first.files['page.js']!), 'utf8');
    assert.ok(js.includes('Port: enter a number'), js);
    assert.doesNotMatch(js, /import|\.\.\/common/);
    assert.doesNotMatch(js, /\n\s+/, 'minified');

    // Precompressed copies decompress to the file itself.
    for (const name of Object.values(first.files)) {
      const file = path.join(out, name);
      const raw = fs.readFileSync(file);
      if (fs.existsSync(`${file}.br`)) assert.deepEqual(zlib.brotliDecompressSync(fs.readFileSync(`${file}.br`)), raw);
      if (fs.existsSync(`${file}.gz`)) assert.deepEqual(zlib.gunzipSync(fs.readFileSync(`${file}.gz`)), raw);
    }

    const again = await buildStatic({ ...writeSources('Port: enter a number', '#123456'), outDir: out, entries });
    assert.deepEqual(again, first, 'deterministic: same content, same names');

    const changed = await buildStatic({ ...writeSources('Port: enter a number from 1 to 65535', '#123456'), outDir: out, entries });
    assert.notEqual(changed.files['page.js'], first.files['page.js'], 'a change in an imported shared module renames the page script');
    assert.equal(changed.files['page.css'], first.files['page.css'], 'the unchanged style sheet keeps its name');
    assert.ok(!fs.existsSync(path.join(out, first.files['page.js']!)), 'the output folder holds only the current build');

    const restyled = await buildStatic({ ...writeSources('Port: enter a number from 1 to 65535', '#654321'), outDir: out, entries });
    assert.notEqual(restyled.files['page.css'], changed.files['page.css']);
    assert.equal(restyled.files['page.js'], changed.files['page.js']);
  });

  it('the build the app serves holds every page file with its .br and .gz copies, smaller than the file', () => {
    const out = path.join(packageRoot(), 'dist', 'static');
    const { files } = JSON.parse(fs.readFileSync(path.join(out, 'manifest.json'), 'utf8')) as { files: Record<string, string> };
    assert.deepEqual(Object.keys(files).sort(), ['config.js', 'login.js', 'style.css', 'viewer.css', 'viewer.js']);
    for (const name of Object.values(files)) {
      const size = fs.statSync(path.join(out, name)).size;
      for (const ext of ['.br', '.gz']) assert.ok(fs.statSync(path.join(out, name + ext)).size < size, name + ext);
    }
  });
});

describe('serving the static files', () => {
  let t: TestApp;
  let http: ReturnType<typeof client>;
  let viewerJs: string;
  let viewerCss: string;

  before(async () => {
    t = await startTestApp();
    http = client(t.port);
    const page = await http.get(`${PREFIX}/viewer/`);
    viewerJs = /<script src="\.\.\/static\/(viewer-[0-9a-f]{10}\.js)" type="module">/.exec(page.text)?.[1] ?? '';
    viewerCss = /<link rel="stylesheet" href="\.\.\/static\/(viewer-[0-9a-f]{10}\.css)">/.exec(page.text)?.[1] ?? '';
  });
  after(() => t?.close());

  const get = (name: string, acceptEncoding: string | null, method: 'GET' | 'HEAD' = 'GET'): Promise<HttpResponse> =>
    (method === 'GET' ? http.get : http.head)(`${PREFIX}/static/${name}`, acceptEncoding === null ? {} : { headers: { 'Accept-Encoding': acceptEncoding } });

  it('the pages name their hashed files; the pages themselves are never cached', async () => {
    assert.ok(viewerJs && viewerCss, 'the viewer page links its hashed script and style sheet');
    for (const p of ['viewer/', 'config/']) {
      const res = await http.get(`${PREFIX}/${p}`);
      assert.equal(res.status, 200);
      assert.match(String(res.headers['cache-control']), /no-store|no-cache/, p);
      assert.match(res.text, /\.\.\/static\/(viewer|config)-[0-9a-f]{10}\.js"/);
      assert.match(res.text, /\.\.\/static\/(viewer|style)-[0-9a-f]{10}\.css"/);
    }
  });

  it('chooses br over gzip over identity by Accept-Encoding, with Vary, Content-Type and the exact Content-Length', async () => {
    const identity = await get(viewerJs, 'identity');
    assert.equal(identity.status, 200);
    assert.equal(identity.headers['content-encoding'], undefined);
    const raw = identity.body;
    assert.ok(raw.length > 100_000, `the viewer bundle holds noVNC (${raw.length} B)`);
    assert.ok(raw.toString().includes('RFB'), 'noVNC is in the bundle');

    const cases: [string | null, 'br' | 'gzip' | 'identity'][] = [
      ['gzip, deflate, br, zstd', 'br'],
      ['br', 'br'],
      ['gzip, deflate', 'gzip'],
      ['gzip;q=1.0, br;q=0', 'gzip'],
      ['br;q=0, gzip;q=0', 'identity'],
      ['*', 'br'],
      ['*;q=0, gzip', 'gzip'],
      ['identity', 'identity'],
      ['deflate', 'identity'],
      ['', 'identity'],
      [null, 'identity'],
    ];
    for (const [header, expected] of cases) {
      for (const name of [viewerJs, viewerCss]) {
        const res = await get(name, header);
        const what = `${name} Accept-Encoding: ${header}`;
        assert.equal(res.status, 200, what);
        assert.equal(res.headers['content-encoding'], expected === 'identity' ? undefined : expected, what);
        assert.match(String(res.headers['vary']), /Accept-Encoding/i, what);
        assert.equal(res.headers['cache-control'], 'public, max-age=31536000, immutable', what);
        assert.equal(res.headers['content-type'], name.endsWith('.js') ? 'text/javascript; charset=utf-8' : 'text/css; charset=utf-8', what);
        assert.equal(Number(res.headers['content-length']), res.body.length, what);
        const decoded = expected === 'br' ? zlib.brotliDecompressSync(res.body) : expected === 'gzip' ? zlib.gunzipSync(res.body) : res.body;
        if (name === viewerJs) {
          assert.deepEqual(decoded, raw, what);
          if (expected !== 'identity') assert.ok(res.body.length < raw.length / 3, `${what}: ${res.body.length} of ${raw.length} B`);
        }
      }
    }
    const head = await get(viewerJs, 'br', 'HEAD');
    assert.equal(head.status, 200);
    assert.equal(head.headers['content-encoding'], 'br');
    assert.equal(head.body.length, 0);
    assert.equal(Number(head.headers['content-length']), (await get(viewerJs, 'br')).body.length);
    recordReliability({
      table: 'inputs',
      name: 'Accept-Encoding on the static files',
      tried: `${cases.length} Accept-Encoding headers (q-values, *, none, unknown codings) × script and style sheet, and HEAD`,
      outcome: 'br when accepted, else gzip, else identity; each body decodes to the built file byte for byte; Content-Length exact, Vary: Accept-Encoding, immutable caching on every answer',
    });
  });

  it('serves nothing else under static/: no sources, no unhashed names, no manifest, no noVNC or shared modules', async () => {
    for (const p of [
      'static/viewer.js',
      'static/config.js',
      'static/style.css',
      'static/manifest.json',
      `static/${viewerJs}.br`,
      'static/../package.json',
      'novnc/core/rfb.js',
      'shared/failures.js',
    ]) {
      const res = await http.get(`${PREFIX}/${p}`);
      assert.equal(res.status, 404, `${p}: ${res.status}`);
    }
  });
});
