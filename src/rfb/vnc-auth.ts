/**
 * @module
 * VNC Authentication (RFB security type 2): the 16-byte challenge and the DES response. Shared by
 * the demo server (which checks responses) and the relay (which answers challenges for the user).
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { desEncryptBlock } from './des.js';

/** Length of the challenge and of the response, in bytes. */
export const VNC_AUTH_CHALLENGE_LENGTH = 16;

/** Reverses the bit order of a byte: VNC's DES key uses each password byte "lowest bit first". */
function reverseBits(byte: number): number {
  let out = 0;
  for (let i = 0; i < 8; i++) out |= ((byte >> i) & 1) << (7 - i);
  return out;
}

/**
 * The DES key VNC derives from a password: its first 8 bytes (Latin-1; longer passwords are cut,
 * shorter ones padded with zeros), each with its bit order reversed.
 */
export function vncAuthKey(password: string): Buffer {
  const key = Buffer.alloc(8);
  const bytes = Buffer.from(password, 'latin1');
  for (let i = 0; i < 8 && i < bytes.length; i++) key[i] = reverseBits(bytes[i]!);
  return key;
}

/**
 * The client's answer to a challenge: both 8-byte halves DES-encrypted with {@link vncAuthKey}.
 * @throws {RangeError} when the challenge is not 16 bytes.
 */
export function vncAuthResponse(password: string, challenge: Uint8Array): Buffer {
  if (challenge.length !== VNC_AUTH_CHALLENGE_LENGTH) {
    throw new RangeError(`VNC auth challenge must be ${VNC_AUTH_CHALLENGE_LENGTH} bytes, got ${challenge.length}`);
  }
  const key = vncAuthKey(password);
  const first = desEncryptBlock(key, challenge.subarray(0, 8));
  return Buffer.concat([first, desEncryptBlock(key, challenge.subarray(8, 16))]);
}

/** A fresh random challenge. */
export function vncAuthChallenge(): Buffer {
  return randomBytes(VNC_AUTH_CHALLENGE_LENGTH);
}

/** True when `response` is the right answer to `challenge` for `password` (constant-time compare). */
export function checkVncAuthResponse(password: string, challenge: Uint8Array, response: Uint8Array): boolean {
  const expected = vncAuthResponse(password, challenge);
  return response.length === expected.length && timingSafeEqual(expected, response);
}
