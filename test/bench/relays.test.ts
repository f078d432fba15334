/**
 * The benchmark's `ours-snap` column: our relay started with exactly the snap daemon's Node flags
 * and environment, as snap/snapcraft.yaml states them (read from the file, not copied by hand).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { killAll, startRelay, type RelayProc } from '../../bench/relays.js';
import { freePort } from '../helpers/targets.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

describe('bench: the ours-snap column', () => {
  let relay: RelayProc | undefined;
  after(async () => {
    await relay?.stop();
    killAll();
  });

  it("runs our relay with the snap daemon's Node flags and environment from snap/snapcraft.yaml", async () => {
    const web = parseYaml(fs.readFileSync(path.join(ROOT, 'snap', 'snapcraft.yaml'), 'utf8')).apps.web;
    const words = String(web.command).split(/\s+/);
    const flags = words.slice(1, words.findIndex((w) => w.endsWith('cli.js')));
    assert.ok(flags.length > 0, 'the snap command has node flags');

    relay = await startRelay('ours-snap', await freePort());
    const argv = fs.readFileSync(`/proc/${relay.pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
    // node, then exactly the snap's flags, then the CLI and its arguments.
    assert.deepEqual(argv.slice(1, 1 + flags.length), flags);
    assert.match(argv[1 + flags.length]!, /cli\.js$/);
    assert.equal(argv[2 + flags.length], 'relay');
    const environ = new Map(
      fs
        .readFileSync(`/proc/${relay.pid}/environ`, 'utf8')
        .split('\0')
        .filter(Boolean)
        .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)] as const),
    );
    for (const [key, value] of Object.entries(web.environment as Record<string, unknown>)) {
      assert.equal(environ.get(key), String(value), key);
    }
  });

  it('the ours column keeps Node defaults: no snap flags, no snap NODE_OPTIONS', async () => {
    await relay?.stop();
    relay = await startRelay('ours', await freePort());
    const argv = fs.readFileSync(`/proc/${relay.pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
    assert.match(argv[1]!, /cli\.js$/);
    const environ = fs.readFileSync(`/proc/${relay.pid}/environ`, 'utf8').split('\0');
    assert.ok(!environ.some((kv) => kv.startsWith('NODE_OPTIONS=') && kv.length > 'NODE_OPTIONS='.length));
  });
});
