/**
 * The YAML subset that reads snap/snapcraft.yaml and writes meta/snap.yaml (scripts/lib/yaml-subset.mjs):
 * what it reads, that what it writes reads back, and that it refuses what it does not understand
 * instead of misreading it.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { yamlModule } from './helpers.js';

const { parse, stringify } = await yamlModule();

describe('YAML subset', () => {
  it('reads mappings, lists (block and flow), quoted scalars, comments and empty values', () => {
    const doc = parse(
      [
        '# comment',
        'name: ctrlx-novnc   # trailing comment',
        'empty:',
        "quoted: 'it''s # not a comment'",
        'double: "a\\tb"',
        'flow: [a, "b c", $SNAP/x]',
        'map: {interface: content, content: solutions}',
        'platforms:',
        '  amd64:',
        '    build-on: [amd64, arm64]',
        'list:',
        '- one',
        '- key: v',
        '  other: w',
        'nested:',
        '  - NODE_VERSION: "24.21.0"   # pinned',
        "organize:",
        "  'package-assets/*': package-assets/${CRAFT_PROJECT_NAME}/",
        'url: https://example.com/a#b',
      ].join('\n'),
    );
    assert.deepEqual(doc, {
      name: 'ctrlx-novnc',
      empty: null,
      quoted: "it's # not a comment",
      double: 'a\tb',
      flow: ['a', 'b c', '$SNAP/x'],
      map: { interface: 'content', content: 'solutions' },
      platforms: { amd64: { 'build-on': ['amd64', 'arm64'] } },
      list: ['one', { key: 'v', other: 'w' }],
      nested: [{ NODE_VERSION: '24.21.0' }],
      organize: { 'package-assets/*': 'package-assets/${CRAFT_PROJECT_NAME}/' },
      url: 'https://example.com/a#b',
    });
  });

  it('reads block scalars with chomping; # inside them is text', () => {
    const doc = parse(
      ['a: |', '  line 1', '  # not a comment', '', '  line 3', 'b: |-', '  x', '  y', 'c: >', '  folded', '  text', 'd: 1'].join('\n'),
    );
    assert.deepEqual(doc, { a: 'line 1\n# not a comment\n\nline 3\n', b: 'x\ny', c: 'folded text\n', d: '1' });
  });

  it('writes what it reads back, quoting what would change meaning', () => {
    const doc = {
      name: 'ctrlx-novnc',
      version: '0.1.0',
      yes: 'yes',
      colon: 'a: b',
      hash: 'a #b',
      description: '<!--\nauthor: x\n-->\nText.\n',
      apps: { web: { command: 'bin/node $SNAP/app/dist/cli.js serve', plugs: ['network', 'network-bind'], environment: { A: '--x=1 --y=2' } } },
      empty: {},
    };
    assert.deepEqual(parse(stringify(doc)), doc);
    assert.match(stringify(doc), /^version: "0\.1\.0"$/m);
  });

  it('refuses anchors, tags, tabs and second documents', () => {
    assert.throws(() => parse('a: &x 1\nb: *x'), /unsupported syntax/);
    assert.throws(() => parse('a: !!str 1'), /unsupported syntax/);
    assert.throws(() => parse('a:\n\tb: 1'), /tabs/);
    assert.throws(() => parse('a: 1\n---\nb: 2'), /one document/);
    assert.throws(() => parse('a: 1\na: 2'), /duplicate key/);
  });
});
