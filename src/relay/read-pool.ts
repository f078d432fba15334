/**
 * @module
 * Where target reads land. Every target socket reads (`onread`) up to 256 KiB at a time, instead
 * of Node's 64 KiB, into one buffer shared by all sessions: the relay is single-threaded and each
 * read is copied out before the next, so no read allocates a fresh 64 KiB buffer. Small reads are
 * copied into Node's shared 8 KiB pool (while relaying straight into their WebSocket frame, see
 * `RelaySession.frameSmallRead`; else with `Buffer.from`), large ones into a recycled slab that
 * goes back to the pool once the browser socket has taken its bytes.
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
