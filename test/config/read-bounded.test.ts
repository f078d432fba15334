/**
 * readBounded, the one way the configuration files are read: only regular files (a symlink is
 * followed and what it points at is checked), at most the cap, never blocking on a FIFO.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { makeTempDir, removeDir } from '../helpers/app.js';
import { READ_CAP, readBounded } from '../../src/config/read-bounded.js';

describe('readBounded', () => {
  let dir: string;
  before(async () => {
    dir = await makeTempDir('read-bounded');
  });
  after(() => removeDir(dir));

  it('reads a regular file up to the cap exactly, and refuses one byte more without reading it', async () => {
    const at = path.join(dir, 'at-cap');
    fs.writeFileSync(at, 'x'.repeat(READ_CAP));
    const ok = await readBounded(at);
    assert.equal(ok.kind, 'ok');
    assert.equal(ok.kind === 'ok' && ok.text.length, READ_CAP);
    fs.appendFileSync(at, 'y');
    assert.deepEqual(await readBounded(at), { kind: 'refused', code: 'EFBIG', reason: 'it is too big (1.0 MiB; at most 1.0 MiB is read)' });
    assert.deepEqual(await readBounded(at, 10), { kind: 'refused', code: 'EFBIG', reason: 'it is too big (1.0 MiB; at most 0.0 MiB is read)' });
  });

  it('reads UTF-8 text and follows a symlink to a regular file', async () => {
    const file = path.join(dir, 'text');
    fs.writeFileSync(file, 'Grüße\n');
    const link = path.join(dir, 'link');
    fs.symlinkSync(file, link);
    assert.deepEqual(await readBounded(link), { kind: 'ok', text: 'Grüße\n' });
  });

  it('says missing for no file and for a dangling symlink', async () => {
    assert.deepEqual(await readBounded(path.join(dir, 'none')), { kind: 'missing' });
    const dangling = path.join(dir, 'dangling');
    fs.symlinkSync(path.join(dir, 'nowhere'), dangling);
    assert.deepEqual(await readBounded(dangling), { kind: 'missing' });
  });

  it('refuses a FIFO without blocking (no writer), a folder and devices, naming what they are', async () => {
    const fifo = path.join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    const cases: [string, RegExp][] = [
      [fifo, /^it is a FIFO \(named pipe\), not a regular file/],
      [dir, /^it is a folder, not a regular file/],
      ['/dev/zero', /^it is a character device, not a regular file/],
      ['/dev/urandom', /^it is a character device, not a regular file/],
    ];
    for (const [file, reason] of cases) {
      const got = await readBounded(file);
      assert.equal(got.kind, 'refused', file);
      assert.equal(got.kind === 'refused' && got.code, 'ENOTREG', file);
      assert.match(got.kind === 'refused' ? got.reason : '', reason, file);
    }
  });

  it('refuses a file it may not open, with the error code', async (t) => {
    if (process.getuid?.() === 0) {
      t.skip('root opens every file');
      return;
    }
    const secret = path.join(dir, 'secret');
    fs.writeFileSync(secret, '{}', { mode: 0o000 });
    assert.deepEqual(await readBounded(secret), { kind: 'refused', code: 'EACCES', reason: 'cannot open it (EACCES)' });
  });
});
