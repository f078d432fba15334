/**
 * The ctrlX package manifest, the validation descriptions and snap/snapcraft.yaml: valid against
 * the official schemas (copied into test/snap/schemas), consistent with each other, and consistent
 * with the app — its prefix, socket, scopes, app folder, and routes that really answer (the app
 * runs in-process with ctrlX authentication against a fake identity manager).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import Ajv2020Module from 'ajv/dist/2020.js';
import { parse as parseYaml } from 'yaml';
import AjvModule from 'ajv';
import { startApp, type RunningApp } from '../../src/app.js';
import { SCOPE_ADMIN, SCOPE_MANAGE, SCOPE_OPERATE, SCOPE_VIEW } from '../../src/ctrlx/auth.js';
import { APP_NAME, PREFIX, runtimePaths } from '../../src/ctrlx/paths.js';
import { APP_DIR_NAME } from '../../src/config/store.js';
import { MANIFEST_PATH, ROOT, SCHEMAS, makeToken, readJson, request, stageModule, startFakeIdm, type FakeIdm } from './helpers.js';

const Ajv2020 = Ajv2020Module.default;
const Ajv = AjvModule.default;

const manifest = readJson(MANIFEST_PATH);
const VALIDATION = path.join(ROOT, 'configs', 'validation');

function validate(ajv: InstanceType<typeof Ajv> | InstanceType<typeof Ajv2020>, schemaFile: string, data: unknown): void {
  const check = ajv.compile(readJson(schemaFile));
  const ok = check(data);
  assert.ok(ok, `${path.basename(schemaFile)}: ${JSON.stringify(check.errors, null, 2)}`);
}

/** Every menu entry, flattened. */
function menuEntries(): any[] {
  const out: any[] = [];
  const walk = (entries: any[]): void => {
    for (const e of entries ?? []) {
      out.push(e);
      walk(e.items);
    }
  };
  for (const group of Object.values(manifest.menus ?? {})) walk(group as any[]);
  return out;
}

describe('package manifest and validation files', () => {
  // The official schema (v1.7) breaks the 2020-12 meta-schema in one place
  // ($defs/requiredScope/properties/identifier/examples is a string, not an array), so it is used
  // without meta-validation; `strict: false` because it carries non-standard annotations.
  const manifestAjv = (): InstanceType<typeof Ajv2020> => new Ajv2020({ allErrors: true, strict: false, validateSchema: false });

  it('the manifest is valid against the package-manifest schema (draft 2020-12)', () => {
    const ajv = manifestAjv();
    validate(ajv, path.join(SCHEMAS, 'package-manifest.v1.7.schema.json'), manifest);
  });

  it('the validation descriptions are valid against their schemas (draft-07)', () => {
    const ajv = new Ajv({ allErrors: true, strict: false });
    for (const name of ['portlist', 'unixsocket', 'slotplug']) {
      validate(ajv, path.join(SCHEMAS, 'validation', `${name}-description.v1.schema.json`), readJson(path.join(VALIDATION, `${name}-description.json`)));
    }
  });

  it('a broken manifest fails the schema (the validator really checks)', () => {
    const ajv = manifestAjv();
    const check = ajv.compile(readJson(path.join(SCHEMAS, 'package-manifest.v1.7.schema.json')));
    const broken = structuredClone(manifest);
    broken.menus.sidebar[0].items[0].unknownField = true;
    delete broken.menus.sidebar[0].items[1].items;
    assert.equal(check(broken), false);
  });

  it('id, file name, proxy mapping, socket and slots agree with the app and snapcraft.yaml', async () => {
    const snapcraft = (await stageModule()).readSnapcraft();
    assert.equal(manifest.id, APP_NAME);
    assert.equal(snapcraft.name, APP_NAME);
    assert.equal(path.basename(MANIFEST_PATH), `${APP_NAME}.package-manifest.json`);
    assert.match(manifest.version, /^\d+\.\d+\.\d+$/);

    const [mapping, ...others] = manifest.services.proxyMapping;
    assert.equal(others.length, 0);
    assert.equal(mapping.name, `${APP_NAME}.web`);
    assert.equal(mapping.url, PREFIX, 'the proxy forwards the full path: routes live under the prefix');
    assert.deepEqual(mapping.options, [{ option: 'websocket', value: '' }]);
    assert.deepEqual(mapping.restricted, [`${PREFIX}/api`]);

    // The binding is the socket the app listens on with $SNAP set.
    const paths = runtimePaths({ SNAP: '/snap/x/1', SNAP_DATA: '/var/snap/x/1', SNAP_COMMON: '/var/snap/x/common' });
    const rel = path.relative('/var/snap/x/1', paths.socket!);
    assert.equal(mapping.binding, `unix://{$SNAP_DATA}/${rel}`);
    assert.ok(rel.length + 1 <= 50, `socket path after $SNAP_DATA must be at most 50 characters: ${rel}`);
    assert.equal(rel, `package-run/${APP_NAME}/${APP_NAME}.web.sock`, 'the ctrlX convention: $SNAP_DATA/package-run/<snap>/<snap>.web.sock');
    assert.equal(path.basename(path.dirname(rel)), APP_NAME, 'the folder in package-run must be the snap name');

    // package-run slot: the socket's folder; package-assets slot: where the manifest is staged.
    const slotPath = (s: string): string => s.replace(/\$\{(CRAFT|SNAPCRAFT)_PROJECT_NAME\}/g, snapcraft.name);
    assert.deepEqual(snapcraft.slots['package-run'].source.write.map(slotPath), [`$SNAP_DATA/${path.dirname(rel)}`]);
    assert.deepEqual(snapcraft.slots['package-assets'].source.read.map(slotPath), [`$SNAP/package-assets/${APP_NAME}`]);
    assert.equal(snapcraft.plugs['active-solution'].target, '$SNAP_COMMON/solutions');
    assert.equal(path.relative('/var/snap/x/common', paths.solutionsDir), 'solutions');

    // The socket description: the official example's shape for a socket the proxy maps (a
    // lowercase `<snap>.<service>.sock` name, routing internal: only the proxy on the device
    // connects to it), the name the app's socket, the purpose long enough (basechecks §4).
    const unix = readJson(path.join(VALIDATION, 'unixsocket-description.json'));
    const example = readJson(path.join(SCHEMAS, 'validation', 'example.unixsocket-description.v1.json'));
    assert.deepEqual(
      unix.sockets.map((s: { name: string }) => s.name),
      [`/var/snap/${APP_NAME}/current/${rel}`],
    );
    for (const socket of unix.sockets) {
      assert.deepEqual(Object.keys(socket).sort(), Object.keys(example.sockets[0]).sort());
      assert.equal(socket.routing, example.sockets[0].routing, 'a proxy-mapped socket is internal, as in the official example');
      assert.match(socket.name, /^[a-z0-9/._-]+\.web\.sock$/);
      assert.ok(socket.purpose.length >= 16);
    }
    for (const key of ['$schema', '$id', 'type', 'title', 'description']) assert.equal(unix[key], example[key], `unixsocket ${key}`);

    // The port list: its id is the snap name (basechecks §3.3), no port is opened.
    const portlist = readJson(path.join(VALIDATION, 'portlist-description.json'));
    assert.equal(portlist.id, APP_NAME);
    assert.deepEqual(portlist.ports, []);
  });

  it('scopes: the three the app checks are declared; menus use only declared scopes and link with the token', () => {
    const [set] = manifest['scopes-declaration'];
    assert.equal(set.identifier, `${APP_NAME}.web`);
    const declared = set.scopes.map((s: { identifier: string }) => s.identifier).sort();
    assert.deepEqual(declared, [SCOPE_VIEW, SCOPE_OPERATE, SCOPE_MANAGE].sort());
    for (const id of declared) assert.match(id, new RegExp(`^${APP_NAME}\\.web\\.[a-z_]+\\.(r|w|rw|x)$`));

    const entries = menuEntries();
    const ids = entries.map((e) => e.id);
    assert.equal(new Set(ids).size, ids.length, 'menu entry ids must be unique');
    for (const e of entries) {
      assert.ok(e.id.startsWith(APP_NAME), `menu id ${e.id} must start with the snap name`);
      assert.ok(e.permissions?.length, `menu entry ${e.id} needs permissions`);
      for (const p of e.permissions) assert.ok(declared.includes(p), `${e.id}: undeclared scope ${p}`);
      if (e.link) {
        assert.ok(e.link.startsWith(`${PREFIX}/`), `${e.id}: link outside the prefix`);
        assert.ok(e.link.endsWith('?token=${bearertoken}'), `${e.id}: link must pass the token`);
      }
    }
    assert.ok(manifest.menus.sidebar.length === 1 && manifest.menus.settings.length === 1);
    const settingsLinks = entries.filter((e) => e.link?.includes('/config/'));
    for (const e of settingsLinks) assert.deepEqual(e.permissions, [SCOPE_MANAGE], `${e.id}: the settings need the manage scope`);
    // Every role that may open the viewer sees its menu entries.
    for (const e of entries.filter((x) => x.link?.includes('/viewer/'))) assert.deepEqual([...e.permissions].sort(), [SCOPE_VIEW, SCOPE_OPERATE, SCOPE_MANAGE].sort(), e.id);
  });

  it('i18n: every tag of the manifest has its texts in the English and the German language file, nothing else; English is the manifest\'s own', () => {
    const dir = path.join(ROOT, 'configs', 'package-assets', 'i18n');
    // The SDK's names: i18n/<snap name>.package-manifest.<language tag>.json (doc/package-assets.md).
    assert.deepEqual(fs.readdirSync(dir).sort(), [`${APP_NAME}.package-manifest.de.json`, `${APP_NAME}.package-manifest.en.json`]);
    const files = { en: readJson(path.join(dir, `${APP_NAME}.package-manifest.en.json`)), de: readJson(path.join(dir, `${APP_NAME}.package-manifest.de.json`)) };
    // The texts each tag translates: the fields of the tagged object that are shown to users (a
    // scope's `name`; an app folder's `name` is the folder's, not a text).
    const wanted = new Map<string, string>();
    const tags: string[] = [];
    const walk = (node: unknown): void => {
      if (Array.isArray(node)) for (const n of node) walk(n);
      else if (node && typeof node === 'object') {
        const o = node as Record<string, unknown>;
        if (typeof o.i18n === 'string') {
          tags.push(o.i18n);
          const fields = typeof o.identifier === 'string' ? ['name', 'description'] : ['title', 'description'];
          for (const f of fields) if (typeof o[f] === 'string') wanted.set(`${o.i18n}.${f}`, o[f] as string);
        }
        for (const v of Object.values(o)) walk(v);
      }
    };
    walk(manifest);
    assert.equal(new Set(tags).size, tags.length, 'i18n tags must be unique');
    // Tagged: every menu entry, the scope set and each scope, the app folder.
    for (const e of menuEntries()) assert.ok(typeof e.i18n === 'string', `menu entry ${e.id} needs an i18n tag`);
    const [set] = manifest['scopes-declaration'];
    for (const s of [set, ...set.scopes]) assert.ok(typeof s.i18n === 'string', `${s.identifier} needs an i18n tag`);
    for (const d of manifest.configuration.appDirectories) assert.ok(typeof d.i18n === 'string', `app folder ${d.name} needs an i18n tag`);
    for (const [lang, file] of Object.entries(files)) {
      // Dot notation, flat: every value a non-empty text.
      for (const [key, value] of Object.entries(file)) assert.ok(typeof value === 'string' && value.trim(), `${lang}: ${key} must be a text`);
      const keys = Object.keys(file).sort();
      assert.deepEqual(keys.filter((k) => !wanted.has(k)), [], `${lang}: keys no tag of the manifest uses`);
      assert.deepEqual([...wanted.keys()].filter((k) => !Object.hasOwn(file, k)), [], `${lang}: keys the manifest uses but the file lacks`);
    }
    for (const [key, text] of wanted) assert.equal(files.en[key], text, `en: ${key} is the manifest's own text`);
    for (const key of wanted.keys()) assert.notEqual(files.de[key], files.en[key], `de: ${key} is translated`);
    // The permission names the pages use (src/common/i18n) are the ones the ctrlX user management shows.
    assert.equal(files.de['scopes.manage.name'], 'Fernbildschirme verwalten');
    assert.equal(files.en['scopes.manage.name'], 'Manage remote screens');
  });

  it('active configuration: save/load commands and the app folder match the app', () => {
    const { save, load } = manifest.commands.activeConfiguration;
    assert.deepEqual(save, [{ id: APP_NAME, subject: save[0].subject, url: `${PREFIX}/api/v1/save` }]);
    assert.deepEqual(load, [{ id: APP_NAME, subject: load[0].subject, url: `${PREFIX}/api/v1/load` }]);
    for (const c of [...save, ...load]) assert.ok(c.url.startsWith(mappingRestricted()), `${c.url} must be proxy-restricted`);
    assert.deepEqual(
      manifest.configuration.appDirectories.map((d: { name: string; copyOnLoad: boolean }) => [d.name, d.copyOnLoad]),
      [[APP_DIR_NAME, true]],
    );
  });

  it('snapcraft.yaml follows the ctrlX rules and declares only justified, unreserved interfaces', async () => {
    const s = (await stageModule()).readSnapcraft();
    assert.match(s.name, /^ctrlx-[a-z0-9-]{1,26}$/);
    assert.ok(s.title.length >= 3 && s.title.length <= 40);
    assert.equal(s.base, 'core24');
    assert.equal(s.confinement, 'strict');
    assert.equal(s.grade, 'stable');
    assert.deepEqual(Object.keys(s.platforms).sort(), ['amd64', 'arm64']);
    assert.match((await stageModule()).nodeVersion(), /^24\.\d+\.\d+$/, 'Node 24 LTS is bundled');
    const m = /^<!--[ \t]*\n[ \t]*author:.*\n[ \t]*url:.*\n[ \t]*-->[ \t]*\n([\s\S]+)$/.exec(s.description);
    assert.ok(m, 'description must start with the <!-- author / url --> comment');
    assert.ok(m[1]!.trim().length >= 16);

    const apps = Object.values(s.apps) as any[];
    assert.equal(apps.length, 1);
    const [app] = apps;
    assert.equal(app.daemon, 'simple');
    assert.equal(app['restart-condition'], 'always');
    const delay = /^(\d+)(ms|s|m)$/.exec(app['restart-delay']);
    assert.ok(delay, 'restart-delay must be set');
    const seconds = Number(delay[1]) * (delay[2] === 'ms' ? 0.001 : delay[2] === 'm' ? 60 : 1);
    assert.ok(seconds >= 5, `restart-delay ${app['restart-delay']} must be at least 5 s`);
    assert.deepEqual([...app.plugs].sort(), ['active-solution', 'network', 'network-bind']);
    assert.deepEqual([...app.slots].sort(), ['package-assets', 'package-run']);
    assert.deepEqual(s.hooks['connect-plug-active-solution'].plugs, ['active-solution']);
    assert.ok(fs.statSync(path.join(ROOT, 'snap', 'hooks', 'connect-plug-active-solution')).mode & 0o100, 'the hook must be executable');

    // Reserved or denied for apps (appdevguide_reserved-interfaces).
    const reserved = ['network-control', 'network-manager', 'system-files', 'home', 'process-control', 'docker', 'docker-support', 'kernel-module-control', 'hardware-observe', 'system-observe', 'mount-observe', 'snapd-control', 'shutdown'];
    const interfaces = (plugsOrSlots: Record<string, any> | undefined, names: string[]): string[] =>
      names.map((n) => plugsOrSlots?.[n]?.interface ?? n);
    const plugIfs = interfaces(s.plugs, app.plugs);
    for (const p of plugIfs) assert.ok(!reserved.includes(p), `reserved interface ${p}`);
    assert.ok(!(s.plugs?.['package-run']), 'a package-run plug is reserved');
    assert.ok(!(s.slots?.['active-solution']), 'an active-solution slot is reserved');
    assert.ok(app.plugs.length <= 8 && app.slots.length <= 8);

    // Every plug and slot is justified in slotplug-description.json, and nothing else is.
    const sp = readJson(path.join(VALIDATION, 'slotplug-description.json'));
    assert.deepEqual(sp.plugs.map((p: { name: string }) => p.name).sort(), [...app.plugs].sort());
    assert.deepEqual(sp.slots.map((p: { name: string }) => p.name).sort(), [...app.slots].sort());
    for (const e of [...sp.plugs, ...sp.slots]) assert.ok(e.purpose.length > 40, `${e.name}: justify it`);
  });

  it('snapcraft.yaml has a literal version, equal to package.json\'s', async () => {
    const text = fs.readFileSync(path.join(ROOT, 'snap', 'snapcraft.yaml'), 'utf8');
    const pkg = readJson(path.join(ROOT, 'package.json'));
    assert.match(text, /^version: \d+\.\d+\.\d+$/m, 'a literal version: line (the ctrlX version check reads it)');
    assert.doesNotMatch(text, /^adopt-info:/m);
    assert.equal((await stageModule()).readSnapcraft().version, pkg.version);
  });

  it('the description\'s author and url are package.json\'s author and homepage; while unset, one warning', async () => {
    const stage = await stageModule();
    const snapcraft = stage.readSnapcraft();
    const pkg = readJson(path.join(ROOT, 'package.json'));
    // The repository as it is: consistent; a warning exactly while package.json lacks either.
    const actual = stage.checkMetadata();
    assert.equal(actual.version, pkg.version);
    assert.equal(actual.warning !== undefined, !pkg.author || !pkg.homepage);
    if (actual.warning) {
      assert.doesNotMatch(actual.warning, /\n/, 'one line');
      assert.match(actual.warning, /package\.json has no .*(author|homepage)/);
      assert.match(actual.warning, /npm run artifacts refuses/);
    }

    const describe = (author: string, url: string): string => `<!--\nauthor: ${author}\nurl: ${url}\n-->\nShows a VNC screen in the ctrlX UI.\n`;
    const withPublisher = { ...snapcraft, description: describe('ACME GmbH', 'https://acme.example/novnc') };
    const publisher = { ...pkg, author: 'ACME GmbH <apps@acme.example> (https://acme.example)', homepage: 'https://acme.example/novnc' };
    assert.deepEqual(stage.checkMetadata(withPublisher, publisher), {
      version: pkg.version,
      author: 'ACME GmbH',
      url: 'https://acme.example/novnc',
      warning: undefined,
    });
    assert.equal(stage.checkMetadata(withPublisher, { ...publisher, author: { name: 'ACME GmbH' } }).warning, undefined);
    // Two sources that differ are refused, naming both values.
    assert.throws(() => stage.checkMetadata(withPublisher, { ...publisher, homepage: 'https://other.example' }), /url "https:\/\/acme\.example\/novnc".*homepage "https:\/\/other\.example": make them equal/);
    assert.throws(() => stage.checkMetadata(snapcraft, publisher), /author "".*author "ACME GmbH"/);
    assert.throws(() => stage.checkMetadata({ ...withPublisher, version: '9.9.9' }, publisher), /version "9\.9\.9" but package\.json "\d+\.\d+\.\d+"/);
    assert.throws(() => stage.checkMetadata({ ...withPublisher, description: 'No comment at all, only text.' }, publisher), /must start with the comment/);
    assert.throws(() => stage.checkMetadata(withPublisher, { ...publisher, homepage: 'acme.example' }), /not an http\(s\) address/);
  });

  it('meta/snap.yaml derived from snapcraft.yaml keeps the daemon, hooks, plugs and slots and reads back', async () => {
    const stage = await stageModule();
    const pkg = readJson(path.join(ROOT, 'package.json'));
    for (const arch of ['amd64', 'arm64']) {
      const text = stage.snapYaml(arch);
      const meta = parseYaml(text);
      // snapd reads snap.yaml as YAML 1.1 (yes/no/on/off are booleans there): same reading.
      assert.deepEqual(parseYaml(text, { version: '1.1' }), meta);
      for (const v of Object.values(meta.apps.web.environment)) assert.equal(typeof v, 'string');
      assert.equal(meta.name, APP_NAME);
      assert.equal(meta.version, pkg.version);
      assert.deepEqual(meta.architectures, [arch]);
      assert.equal(meta.base, 'core24');
      assert.equal(meta.parts, undefined);
      assert.equal(meta.platforms, undefined);
      assert.match(meta.apps.web.command, /^bin\/node( --[a-z-]+)* \$SNAP\/app\/dist\/cli\.js serve$/);
      assert.match(meta.apps.web.environment.NODE_OPTIONS, /--max-old-space-size=\d+/);
      assert.equal(meta.apps.web['restart-delay'], '10s');
      assert.deepEqual(meta.slots['package-run'].source.write, [`$SNAP_DATA/package-run/${APP_NAME}`]);
      assert.deepEqual(meta.slots['package-assets'].source.read, [`$SNAP/package-assets/${APP_NAME}`]);
      assert.deepEqual(meta.hooks['connect-plug-active-solution'], { plugs: ['active-solution'] });
    }
    assert.throws(() => stage.snapYaml('riscv64'), /not in snapcraft.yaml platforms/);
  });
});

function mappingRestricted(): string {
  return manifest.services.proxyMapping[0].restricted[0] as string;
}

describe('the manifest against the running app (ctrlX authentication on)', () => {
  let tmp: string;
  let idm: FakeIdm;
  let app: RunningApp;
  let port: number;
  const tokens: Record<string, string> = {};

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ctrlx-novnc-manifest-'));
    fs.mkdirSync(path.join(tmp, 'solutions', 'activeConfiguration'), { recursive: true });
    idm = await startFakeIdm();
    for (const [name, scopes] of Object.entries({ viewer: [SCOPE_VIEW], operator: [SCOPE_OPERATE], manager: [SCOPE_MANAGE], admin: [SCOPE_ADMIN], other: ['rexroth-solutions.web.all.r'] })) {
      tokens[name] = makeToken(name, scopes);
      idm.valid.add(tokens[name]!);
    }
    app = await startApp({
      listen: { host: '127.0.0.1', port: 0 },
      solutionsDir: path.join(tmp, 'solutions'),
      appDataDir: path.join(tmp, 'app'),
      auth: { validityUrl: idm.url },
      // The requests name the device as the ctrlX reverse proxy would; on the device the app listens
      // on its unix socket, where no Host check applies.
      allowedHosts: ['ctrlx.example'],
    });
    port = Number(app.address.split(':').pop());
  });

  after(async () => {
    await app?.stop();
    await idm?.close();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('every menu link opens for the scopes it is gated by, and not for others', async () => {
    for (const entry of menuEntries().filter((e) => e.link)) {
      const allowed: string[] = entry.permissions;
      for (const [who, token] of Object.entries(tokens)) {
        const scope = who === 'viewer' ? SCOPE_VIEW : who === 'operator' ? SCOPE_OPERATE : who === 'manager' ? SCOPE_MANAGE : who === 'admin' ? SCOPE_ADMIN : 'other';
        const link = entry.link.replace('${bearertoken}', token);
        const res = await request({ port }, 'GET', link);
        const expected = allowed.includes(scope) || who === 'admin' ? 200 : 403;
        assert.equal(res.status, expected, `${entry.id} as ${who}: ${link.split('?')[0]} → ${res.status}`);
      }
      const anonymous = await request({ port }, 'GET', entry.link.replace('?token=${bearertoken}', ''));
      assert.equal(anonymous.status, 401, `${entry.id} without a token`);
    }
  });

  it('the save and load URLs are the app callbacks (POST, manage scope, 204)', async () => {
    const { save, load } = manifest.commands.activeConfiguration;
    const body = (phase: string) => ({ configurationPath: 'solutions/DefaultSolution/configurations/appdata', id: 'a1b2c3', phase });
    const saved = await request({ port }, 'POST', save[0].url, { token: tokens.manager, json: body('save') });
    assert.equal(saved.status, 204, saved.body);
    assert.ok(fs.existsSync(path.join(tmp, 'solutions', 'activeConfiguration', APP_DIR_NAME, 'config.json')), 'save writes config.json in the app folder');
    for (const phase of ['query', 'prepare', 'load', 'validate', 'activate']) {
      const res = await request({ port }, 'POST', load[0].url, { token: tokens.admin, json: body(phase) });
      assert.equal(res.status, 204, `load phase ${phase}: ${res.body}`);
    }
    // The same requests without the right scope or without a token are refused, and an unknown
    // API URL is a 404: the 204s above really come from the callbacks.
    assert.equal((await request({ port }, 'POST', save[0].url, { token: tokens.viewer, json: body('save') })).status, 403);
    assert.equal((await request({ port }, 'POST', load[0].url, { json: body('query') })).status, 401);
    assert.equal((await request({ port }, 'POST', `${PREFIX}/api/v1/no-such-callback`, { token: tokens.manager, json: body('save') })).status, 404);
  });
});
