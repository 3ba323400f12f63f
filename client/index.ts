export {
  EventClient,
  Subscription,
  type ConnectOptions,
  type RequestOpts,
  type EventName,
  type SubscribeOptions,
} from './event-client.js';
export type { KnownEvent, KnownEmittedEvent } from './event-names.js';
export { DaemonError, ERROR_CODES, isDaemonError, type ErrorCode, type ErrorPayload } from './errors.js';
export * from './protocol.js';
export { defaultSocketPath } from './socket-path.js';
export { unixSeconds, isoToUnixSeconds, unixSecondsToMs, roundUsd } from './units.js';
