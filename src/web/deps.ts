/**
 * @module
 * What the web layer needs from the rest of the app: the types app.ts and the route modules share.
 * Imported one way only (app.ts and routes/* import this module; it imports no web module), so the
 * web layer has no import circle.
 */
import type { AuditLog } from '../audit/audit-log.js';
import type { ConfigService, ConfigServiceStatus } from '../config/service.js';
import type { Supervisor } from '../supervisor/supervisor.js';
import type { ViewerEventHub } from './events.js';
import type { Guard } from './access.js';
import type { RateLimiters } from './rate-limit.js';
import type { CsrfTokens } from './security.js';
import type { Logger } from '../log.js';

/** Everything the routes need, already built and checked. */
export interface WebDeps {
  /** The configuration service: the only way to change targets and passwords. */
  config: ConfigService;
  supervisor: Supervisor;
  csrf: CsrfTokens;
  /** Token and scope checks; default: none (authentication off). */
  guard?: Guard;
  /** Requests per client on the API and for changes (see rate-limit.ts); default: no limits. */
  rateLimits?: Pick<RateLimiters, 'api' | 'changes'>;
  /** The viewer pages' event streams (`GET api/v1/events`); without it that route answers 404. */
  events?: ViewerEventHub;
  /** The audit trail `GET api/v1/audit` reads; without it that route answers 404. */
  audit?: Pick<AuditLog, 'page' | 'entries'>;
  /** The status object of `GET api/v1/status` and the page's panel. */
  status: () => AppStatus;
  probeTimeout: number;
  /** The built static files (scripts/bundle.mjs); default: dist/static of the package. */
  staticDir?: string;
  logger: Logger;
}

/** What the routers get: the dependencies with the defaults filled in. */
export type RouteDeps = WebDeps & { guard: Guard };

export interface AppStatus {
  version: string;
  startedAt: string;
  config: ConfigServiceStatus;
  relay: ReturnType<Supervisor['status']>;
}
