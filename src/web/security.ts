/**
 * @module
 * Cross-site protections: the same-origin check used for WebSocket upgrades and state-changing
 * requests, the CSRF token of the HTML forms, and the security headers of every response.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { NextFunction, Request, Response } from 'express';
import { AppError, ERR_INVALID_ARGUMENT } from '../errors.js';

/** The host the browser used, as the reverse proxy forwards it. */
function requestHost(req: IncomingMessage): string | undefined {
  const forwarded = req.headers['x-forwarded-host'];
  const host = (Array.isArray(forwarded) ? forwarded[0] : forwarded)?.split(',')[0]?.trim() || req.headers.host;
  return host?.toLowerCase();
}

/**
 * True when the request carries no `Origin` (not a browser page, e.g. curl or the ctrlX
 * Solutions app calling back) or an `Origin` whose host matches the host the browser addressed,
 * or one of `allowed` (full origins such as `https://hmi.example`).
 */
export function isSameOrigin(req: IncomingMessage, allowed: readonly string[] = []): boolean {
  const origin = req.headers.origin;
  if (origin === undefined) return true;
  if (allowed.includes(origin)) return true;
  if (origin === 'null') return false;
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return false;
  }
  return url.host.toLowerCase() === requestHost(req);
}

/**
 * Parses `--allow-origin LIST`: `*` (any origin) or comma-separated origins such as
 * `https://hmi.plant.example,http://10.0.0.5:8080`, each returned as a browser writes it in
 * `Origin` (scheme and host in lower case, no default port, no path).
 * @throws {AppError} ERR_INVALID_ARGUMENT naming the entry at fault
 */
export function parseAllowedOrigins(list: string, flag = '--allow-origin'): '*' | string[] {
  if (list.trim() === '*') return '*';
  return list.split(',').map((raw) => {
    const entry = raw.trim();
    let url: URL | undefined;
    try {
      url = new URL(entry);
    } catch {
      url = undefined;
    }
    const bare = url && (url.pathname === '/' || url.pathname === '') && !url.search && !url.hash && !url.username && !url.password;
    if (!url || !bare || (url.protocol !== 'http:' && url.protocol !== 'https:') || !entry.includes('://')) {
      throw new AppError(ERR_INVALID_ARGUMENT, `${flag}: "${entry}" is not an origin such as https://hmi.example (or * for any)`, { status: 400 });
    }
    return url.origin;
  });
}

/** CSRF tokens for the HTML forms: an HMAC over a per-process secret (a restart expires forms). */
export class CsrfTokens {
  private readonly secret: Buffer;
  readonly token: string;

  constructor(secret: Buffer = randomBytes(32)) {
    this.secret = secret;
    this.token = createHmac('sha256', this.secret).update('ctrlx-novnc form v1').digest('base64url');
  }

  verify(candidate: unknown): boolean {
    if (typeof candidate !== 'string') return false;
    const a = Buffer.from(candidate);
    const b = Buffer.from(this.token);
    return a.length === b.length && timingSafeEqual(a, b);
  }
}

/**
 * Security headers on every response. The CSP allows same-origin framing (the ctrlX UI embeds
 * the pages) and nothing from other origins; `no-referrer` keeps a `?token=` out of Referer.
 * `Cache-Control: no-store` by default: pages carry the login token (in links and forms) and the
 * API answers carry the configuration, neither may stay in a browser or proxy cache; and a page
 * names the hashed files of the build that rendered it. The static files (static.ts: the pages'
 * bundles, named by content hash) replace it with year-long `immutable` caching.
 */
export function securityHeaders(_req: Request, res: Response, next: NextFunction): void {
  res.setHeader(
    'Content-Security-Policy',
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
      "frame-ancestors 'self'; base-uri 'none'; form-action 'self'; object-src 'none'",
  );
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('X-Frame-Options', 'SAMEORIGIN');
  res.setHeader('Referrer-Policy', 'no-referrer');
  res.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
  res.setHeader('Cache-Control', 'no-store');
  next();
}
