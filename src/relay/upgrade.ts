/**
 * @module
 * Refusing an upgrade politely: a real HTTP response (status line, short text body,
 * `Connection: close`) before the socket closes, never a silent drop.
 */
import type { Duplex } from 'node:stream';
import { http } from '../builtins.js';

/** Answers an upgrade request with `status` and a one-line `message`, then closes the socket. */
export function rejectUpgrade(
  socket: Duplex,
  status: number,
  message: string,
  headers: Record<string, string> = {},
): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const body = message.endsWith('\n') ? message : `${message}\n`;
  const lines = [
    `HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? 'Error'}`,
    'Connection: close',
    'Content-Type: text/plain; charset=utf-8',
    `Content-Length: ${Buffer.byteLength(body)}`,
    ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
  ];
  socket.end(`${lines.join('\r\n')}\r\n\r\n${body}`);
}
