/**
 * @module
 * Where target reads land. Every target socket reads (`onread`) up to 256 KiB at a time, instead
 * of Node's 64 KiB, into one buffer shared by all sessions: the relay is single-threaded and each
 * read is copied out before the next, so no read allocates a fresh 64 KiB buffer. Small reads are
 * copied, while relaying, straight into their WebSocket frame cut from the frame pool below (see
 * `RelaySession.frameSmallRead`), else with `Buffer.from` into Node's 8 KiB pool; large ones into a
 * recycled slab that goes back to the pool once the browser socket has taken its bytes.
 */

/** Largest single read from a target socket. */
export const READ_SIZE = 256 * 1024;

/** The buffer every target socket reads into; a read must be copied out before the next one. */
export const readBuffer = Buffer.allocUnsafeSlow(READ_SIZE);

/** Reads up to this size are copied with `Buffer.from` (Node's pool); larger ones into a slab. */
export const SMALL_READ = 4096;

/** Slabs whose bytes have been handed to a browser socket, ready for reuse; at most 16 (4 MiB). */
const freeSlabs: Buffer[] = [];
const MAX_FREE_SLABS = 16;

/** A slab of {@link READ_SIZE} bytes: a recycled one when there is one. */
export function takeSlab(): Buffer {
  return freeSlabs.pop() ?? Buffer.allocUnsafeSlow(READ_SIZE);
}

/** Returns a slab whose bytes nobody reads any more. */
export function giveSlab(slab: Buffer): void {
  if (freeSlabs.length < MAX_FREE_SLABS) freeSlabs.push(slab);
}

/**
 * Where {@link frameBuffer} cuts its buffers from; replaced, never reused, once used up. 32 KiB:
 * under the snap's malloc mmap threshold (64 KiB, snap/snapcraft.yaml), so a new pool comes from
 * the malloc arena's reused memory, not from a fresh mmap and its page faults.
 */
const FRAME_POOL_SIZE = 32 * 1024;
let framePool = Buffer.allocUnsafeSlow(FRAME_POOL_SIZE);
let frameOffset = 0;

/**
 * A buffer of `size` bytes (at most {@link SMALL_READ} + 4) for one small WebSocket frame: a view
 * of a 32 KiB pool, as `Buffer.allocUnsafe` cuts from Node's 8 KiB one, without its size check's
 * wrapper allocating per call. Pool bytes are never handed out twice: a frame may still be queued
 * on a socket when the pool is replaced, and the old pool lives as long as such views do.
 */
export function frameBuffer(size: number): Buffer {
  if (frameOffset + size > framePool.length) {
    framePool = Buffer.allocUnsafeSlow(FRAME_POOL_SIZE);
    frameOffset = 0;
  }
  const out = framePool.subarray(frameOffset, frameOffset + size);
  frameOffset = (frameOffset + size + 7) & ~7; // 8-byte aligned, as Node's pool
  return out;
}
