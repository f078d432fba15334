/**
 * @module
 * The WebSocket-to-TCP relay: public exports only.
 */
export { Relay, type RelayOptions, type RelayStats } from './relay-server.js';
export {
  RelaySession,
  type RelayTarget,
  type SessionInfo,
  type SessionEnd,
  CLOSE_NORMAL,
  CLOSE_GOING_AWAY,
  CLOSE_UNSUPPORTED_DATA,
  CLOSE_TOO_BIG,
  CLOSE_INTERNAL_ERROR,
  CLOSE_TARGET_CHANGED,
} from './relay.js';
export { rejectUpgrade } from './upgrade.js';
export { parseHostPort, formatHostPort, isValidHost, type HostPort } from './address.js';
