/**
 * @module
 * A small fake of the ctrlX identity manager's token validity endpoint
 * (`GET /identity-manager/api/v2/auth/token/validity`, Bearer token → `{"valid": bool}`), and a
 * builder of ctrlX-shaped JWTs (ES384 header, claims exp/iat/name/scope[]; the signature is random:
 * only the fake decides what is valid, as the real identity manager does).
 */
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';

export const VALIDITY_PATH = '/identity-manager/api/v2/auth/token/validity';

export interface FakeIdm {
  /** The validity endpoint URL. */
  url: string;
  /** Tokens the fake answers `valid: true` for. */
  valid: Set<string>;
  /** Requests received, with the token each carried. */
  requests: string[];
  /** Stops answering (closes the listener; connections are refused). */
  close(): Promise<void>;
}

export async function startFakeIdm(): Promise<FakeIdm> {
  const valid = new Set<string>();
  const requests: string[] = [];
  const server = http.createServer((req, res) => {
    const token = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '')?.[1] ?? '';
    requests.push(token);
    if (req.method !== 'GET' || req.url !== VALIDITY_PATH) {
      res.writeHead(404).end();
      return;
    }
    if (!token) {
      res.writeHead(401, { 'Content-Type': 'application/json' }).end('{"code":401}');
      return;
    }
    res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ valid: valid.has(token) }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}${VALIDITY_PATH}`,
    valid,
    requests,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A ctrlX-shaped JWT for `name` with `scope`, expiring `ttlSeconds` from now (negative: expired). */
export function makeToken(name: string, scope: string[], ttlSeconds = 3600): string {
  const now = Math.floor(Date.now() / 1000);
  const enc = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64url');
  const header = enc({ alg: 'ES384', typ: 'JWT' });
  const payload = enc({ exp: now + ttlSeconds, iat: now, id: '1', name, nonce: randomBytes(4).toString('hex'), plchandle: 0, remoteauth: '', scope });
  return `${header}.${payload}.${randomBytes(96).toString('base64url')}`;
}
