/**
 * @module
 * An in-process relay wired the way `ctrlx-novnc relay` wires it: an `http.Server` on 127.0.0.1:0
 * answering plain requests with 426/405 and handing every upgrade to a {@link Relay}. Log lines are
 * captured (no time stamps) so tests can read them.
 */
import http from 'node:http';
import type net from 'node:net';
import type { TestContext } from 'node:test';
import { Relay, type RelayOptions, type RelayTarget } from '../../src/relay/index.js';
import type { SessionSecrets } from '../../src/relay/relay.js';
import { createLogger } from '../../src/log.js';
import { wsUrl } from './ws-client.js';

export interface RelayHarness {
  relay: Relay;
  server: http.Server;
  port: number;
  url: string;
  /** Every log line the relay wrote, without time stamps, e.g. `info  relay: session start id=1 …`. */
  logs: string[];
  /** Closes the relay (waiting for its sessions) and the HTTP server. */
  close(): Promise<void>;
}

export async function startRelay(
  target: RelayTarget,
  options: RelayOptions = {},
  secrets: SessionSecrets = {},
): Promise<RelayHarness> {
  const logs: string[] = [];
  const logger = createLogger({ level: 'debug', timestamps: false, sink: (_level, line) => logs.push(line) }).child(
    'relay',
  );
  const relay = new Relay({ logger, ...options });
  const server = http.createServer((req, res) => {
    res.writeHead(req.method === 'GET' || req.method === 'HEAD' ? 426 : 405, {
      'Content-Type': 'text/plain; charset=utf-8',
      Upgrade: 'websocket',
      Connection: 'close',
    });
    res.end('This is a WebSocket-to-TCP relay: connect with a WebSocket client.\n');
  });
  server.on('upgrade', (req, socket, head) => relay.handleUpgrade(req, socket, head, target, secrets));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as net.AddressInfo).port;
  let closing: Promise<void> | undefined;
  return {
    relay,
    server,
    port,
    url: wsUrl(port),
    logs,
    close: () =>
      (closing ??= (async () => {
        server.close();
        await relay.close();
        server.closeAllConnections();
      })()),
  };
}

/** The `key=value` fields of a log line (values unquoted). */
export function logFields(line: string): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const m of line.matchAll(/ ([\w-]+)=("(?:[^"\\]|\\.)*"|\S*)/g)) {
    const raw = m[2]!;
    fields[m[1]!] = raw.startsWith('"') ? (JSON.parse(raw) as string) : raw;
  }
  return fields;
}

/** Log lines whose message (after the `scope: ` prefix) is `msg`. */
export function linesOf(logs: readonly string[], msg: string): string[] {
  return logs.filter((l) => l.includes(`: ${msg} `) || l.endsWith(`: ${msg}`));
}

/** {@link startRelay}, closed when the test `t` ends (pass or fail). */
export async function relayFor(t: TestContext, target: RelayTarget, options: RelayOptions = {}): Promise<RelayHarness> {
  const h = await startRelay(target, options);
  t.after(() => h.close());
  return h;
}
