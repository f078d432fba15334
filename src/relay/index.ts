/**
 * @module
 * The WebSocket-to-TCP relay: public exports only.
 */
export { Relay, type RelayOptions, type RelayStats } from './relay-server.js';
export { RelaySession, type RelayTarget, type SessionInfo, type SessionEnd, type EndKind } from './relay.js';
export { FAILURES, failureOf, type FailureKind } from '../common/failures.js';
export { rejectUpgrade } from './upgrade.js';
export { parseHostPort, formatHostPort, isValidHost, type HostPort } from './address.js';
