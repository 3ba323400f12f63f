export { EventClient, Subscription, type ConnectOptions, type RequestOpts } from './event-client.js';
export { DaemonError, ERROR_CODES, isDaemonError, type ErrorCode, type ErrorPayload } from './errors.js';
export * from './protocol.js';
export { defaultSocketPath } from './socket-path.js';
