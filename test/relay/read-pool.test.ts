/**
 * The frame pool of the relay's small reads (src/relay/read-pool.ts): every frame buffer is bytes
 * of its own, also across the pool's replacement, so a frame still queued on a socket is never
 * overwritten by a later one.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SMALL_READ, frameBuffer } from '../../src/relay/read-pool.js';

test('frame buffers never share bytes, within a pool and after it is replaced', () => {
  const frames: Buffer[] = [];
  // Sizes from 3 bytes to a full small read with its 4-byte header: well over one pool.
  for (let i = 0; i < 200; i++) {
    const size = i % 2 ? SMALL_READ + 4 : 3 + i;
    const frame = frameBuffer(size);
    assert.equal(frame.length, size);
    frame.fill(i & 0xff);
    frames.push(frame);
  }
  // Each one still holds what was written into it: no later frame overlapped it.
  for (const [i, frame] of frames.entries()) assert.ok(frame.every((b) => b === (i & 0xff)), `frame ${i} was overwritten`);
  const pools = new Set(frames.map((f) => f.buffer));
  assert.ok(pools.size > 1, 'the test spans a pool replacement');
  for (const frame of frames) assert.equal(frame.byteOffset % 8, 0, 'frames start 8-byte aligned');
});
