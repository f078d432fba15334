/**
 * @module
 * The client-to-server messages of RFB (rfbproto) that noVNC sends: for each type, how many bytes
 * tell its size, its size, the fixed part before any variable data, and whether it is user input.
 * The one table of message sizes: the demo server parses by it, the relay's watch
 * filter (rfb/client-filter.ts) walks the browser's stream by it.
 */
import {
  MSG_CLIENT_CUT_TEXT,
  MSG_FRAMEBUFFER_UPDATE_REQUEST,
  MSG_KEY_EVENT,
  MSG_POINTER_EVENT,
  MSG_SET_ENCODINGS,
  MSG_SET_PIXEL_FORMAT,
} from './protocol.js';

export interface ClientMessage {
  /** Bytes needed before {@link size} can tell the size (at least 1: the type). */
  need: number;
  /** Bytes of the fixed part (for SetEncodings and ClientCutText, before the variable data). */
  header: number;
  /**
   * The whole message's size from its first `need` bytes (more may be passed); negative for a
   * form that cannot be followed.
   */
  size: (head: Buffer) => number;
  /** True for user input (keys, pointer, clipboard text); a function when the bytes decide. */
  input: boolean | ((head: Buffer) => boolean);
}

const fixed = (n: number): ClientMessage['size'] => () => n;

export const CLIENT_MESSAGES: Readonly<Record<number, ClientMessage>> = {
  [MSG_SET_PIXEL_FORMAT]: { need: 1, header: 20, size: fixed(20), input: false },
  [MSG_SET_ENCODINGS]: { need: 4, header: 4, size: (h) => 4 + 4 * h.readUInt16BE(2), input: false },
  [MSG_FRAMEBUFFER_UPDATE_REQUEST]: { need: 1, header: 10, size: fixed(10), input: false },
  [MSG_KEY_EVENT]: { need: 1, header: 8, size: fixed(8), input: true },
  // With the marker bit 0x80 the extended form (ExtendedMouseButtons) has a 7th byte.
  [MSG_POINTER_EVENT]: { need: 2, header: 6, size: (h) => (h[1]! & 0x80 ? 7 : 6), input: true },
  // A negative length is the extended clipboard (its absolute value), whose Request/Notify/Provide
  // messages noVNC also sends by itself: only plain text counts as input.
  [MSG_CLIENT_CUT_TEXT]: { need: 8, header: 8, size: (h) => 8 + Math.abs(h.readInt32BE(4)), input: (h) => h.readInt32BE(4) >= 0 },
  150: { need: 1, header: 10, size: fixed(10), input: false }, // EnableContinuousUpdates
  248: { need: 9, header: 9, size: (h) => 9 + h[8]!, input: false }, // ClientFence
  250: { need: 1, header: 4, size: fixed(4), input: true }, // xvp (reboot/shutdown requests)
  251: { need: 8, header: 8, size: (h) => 8 + 16 * h[6]!, input: false }, // SetDesktopSize
  253: { need: 4, header: 4, size: (h) => 4 + h.readUInt16BE(2), input: false }, // gii
  // QEMU: only its extended key event (subtype 0, 12 bytes) is sent by noVNC.
  255: { need: 2, header: 12, size: (h) => (h[1] === 0 ? 12 : -1), input: true },
};
