/**
 * The one error catalogue shared by the daemon and its clients. Codes cross the socket as data;
 * never branch on message text. Codes are never reused or renamed.
 */
export const ERROR_CODES = {
  BAD_JSON: { retryable: false, doc: 'The frame is not valid JSON (or not valid UTF-8).' },
  BAD_FRAME: {
    retryable: false,
    doc: 'Valid JSON, but not a request envelope: not an object, missing or ill-formed `event`, `data` not an object, bad `correlation_id` or `timeout_ms`.',
  },
  FRAME_TOO_LARGE: {
    retryable: false,
    doc: 'A request frame exceeds `daemon.max_frame_bytes` (default 1 MiB; the rest of the line is discarded), or an answer would exceed `daemon.max_answer_bytes` (default 16 MiB: ask for a smaller page, `limit` then `cursor`).',
  },
  UNKNOWN_EVENT: {
    retryable: false,
    doc: 'No handler is registered for the event; `details.suggestions` lists close names.',
  },
  INVALID_DATA: {
    retryable: false,
    doc: '`data` failed the event schema; `details.issues` lists each failing path and why.',
  },
  TIMEOUT: {
    retryable: true,
    doc: "The handler did not answer within `timeout_ms` (or the parent request's remaining time).",
  },
  HANDLER_ERROR: {
    retryable: false,
    doc: 'The handler threw an unexpected error; the daemon logged it and carries on.',
  },
  SHUTTING_DOWN: { retryable: true, doc: 'The daemon is shutting down and accepts no new requests.' },
  OVERLOADED: {
    retryable: true,
    doc: "A bounded queue is full; retry later. With `correlation_id: null` it is the connection's last frame: past `daemon.max_connections`, or answers left unread past `daemon.connection_buffer_max_bytes`.",
  },
  NOT_FOUND: {
    retryable: false,
    doc: 'The named object (agent, request, checkpoint, node, subscription…) does not exist.',
  },
  CONFLICT: {
    retryable: false,
    doc: 'The request conflicts with current state (duplicate id, wrong state for the operation).',
  },
  UNAVAILABLE: {
    retryable: true,
    doc: 'A backend (Docker, Neo4j, the Anthropic API, a plugin that failed to start) is unreachable; `message` says why.',
  },
  BUDGET_EXCEEDED: { retryable: false, doc: 'The call would exceed a budget limit; nothing was spent.' },
  LOOP_DETECTED: {
    retryable: false,
    doc: 'The causal chain is deeper than `router.max_depth`: work causing work without end.',
  },
  CANCELLED: { retryable: false, doc: 'The work was cancelled before it finished.' },
  UNAUTHORIZED: {
    retryable: false,
    doc: 'The HTTP gateway refused the request: the bearer token is missing or wrong.',
  },
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export const isErrorCode = (v: unknown): v is ErrorCode =>
  typeof v === 'string' && Object.prototype.hasOwnProperty.call(ERROR_CODES, v);

/** The error payload of a failed response, as it crosses the socket. */
export interface ErrorPayload {
  code: ErrorCode;
  message: string;
  details?: Record<string, unknown>;
}

/**
 * An error with a stable code. Handlers throw it; the daemon turns it into a response's `error`;
 * the client rebuilds it from that payload so callers can `switch (err.code)`.
 */
export class DaemonError extends Error {
  readonly code: ErrorCode;
  readonly details?: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, details?: Record<string, unknown>, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DaemonError';
    this.code = code;
    if (details !== undefined) this.details = details;
  }

  get retryable(): boolean {
    return ERROR_CODES[this.code].retryable;
  }

  toPayload(): ErrorPayload {
    return this.details === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, details: this.details };
  }

  static fromPayload(p: ErrorPayload): DaemonError {
    return new DaemonError(isErrorCode(p.code) ? p.code : 'HANDLER_ERROR', p.message, p.details);
  }
}

export const isDaemonError = (e: unknown): e is DaemonError => e instanceof DaemonError;
