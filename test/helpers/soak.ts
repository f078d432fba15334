/**
 * @module
 * The byte-exact echo soak, relay-agnostic: any WebSocket URL whose far end echoes TCP bytes.
 */
import assert from 'node:assert/strict';
import { FrameSource, FrameVerifier } from './stream.js';
import { collect, openClient, sendAll } from './ws-client.js';

const KiB = 1024;

/** Runs the echo soak: `count` seeded frames up, the same frames must come back in order. */
export async function echoSoak(url: string, seed: number, count: number, maxFrame = 64 * KiB): Promise<void> {
  const ws = await openClient(url);
  const source = new FrameSource(seed, count, maxFrame);
  const verifier = new FrameVerifier(maxFrame);
  const received = collect(ws);
  const allBack = new Promise<void>((resolve, reject) => {
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (!isBinary) reject(new Error('text message from the relay'));
      verifier.push(data);
      if (verifier.frames >= count || verifier.errors.length) resolve();
    });
    ws.once('close', (code: number) => reject(new Error(`closed with ${code} after ${verifier.frames} frames`)));
  });
  await sendAll(ws, () => source.next());
  await allBack;
  ws.close(1000);
  const end = await received;
  assert.deepEqual(verifier.errors, []);
  assert.equal(verifier.frames, count);
  assert.equal(verifier.bytes, source.bytes);
  assert.equal(verifier.partial, 0);
  assert.equal(end.textMessages, 0);
  assert.equal(end.code, 1000);
}
