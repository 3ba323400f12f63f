/**
 * The socket protocol's envelope as the gateway speaks it over HTTP and WebSocket: request
 * parsing with the same rules and codes as the socket, frames in the same shapes, and the HTTP
 * status each error code maps to.
 */
import { DaemonError, type ErrorCode, type ErrorPayload } from '../../client/errors.js';
import { EVENT_NAME_RE, MAX_TIMEOUT_MS, nowSeconds, type CorrelationId } from '../../client/protocol.js';
import type { EmittedEvent } from '../../daemon/plugin-api.js';

/** HTTP status by error code (the contract's table; codes of a bad request itself are 4xx too). */
const STATUS: Partial<Record<ErrorCode, number>> = {
  BAD_JSON: 400,
  BAD_FRAME: 400,
  INVALID_DATA: 400,
  UNAUTHORIZED: 401,
  BUDGET_EXCEEDED: 402,
  NOT_FOUND: 404,
  UNKNOWN_EVENT: 404,
  CONFLICT: 409,
  FRAME_TOO_LARGE: 413,
  OVERLOADED: 429,
  UNAVAILABLE: 503,
  SHUTTING_DOWN: 503,
  TIMEOUT: 504,
};

export const httpStatusOf = (code: ErrorCode): number => STATUS[code] ?? 500;

export interface ParsedFrame {
  event: string;
  data: Record<string, unknown>;
  correlationId: CorrelationId | null;
  timeoutMs: number | undefined;
}

export type FrameResult =
  | { ok: true; req: ParsedFrame }
  | { ok: false; error: DaemonError; event: string | null; correlationId: CorrelationId | null };

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

const bad = (
  code: 'BAD_JSON' | 'BAD_FRAME',
  message: string,
  event: string | null = null,
  correlationId: CorrelationId | null = null,
): FrameResult => ({
  ok: false,
  error: new DaemonError(code, message),
  event,
  correlationId,
});

/** A timeout as a client may give it (envelope field or query parameter). */
export function checkTimeout(t: unknown): number | undefined | DaemonError {
  if (t === undefined || t === null) return undefined;
  if (typeof t !== 'number' || !Number.isFinite(t) || t <= 0 || t > MAX_TIMEOUT_MS) {
    return new DaemonError(
      'BAD_FRAME',
      `"timeout_ms" must be a positive number of milliseconds up to ${MAX_TIMEOUT_MS}`,
    );
  }
  return t;
}

/** One WebSocket message as a request envelope (the socket's rules, without the line framing). */
export function parseFrame(text: string): FrameResult {
  let msg: unknown;
  try {
    msg = JSON.parse(text);
  } catch (e) {
    return bad('BAD_JSON', `frame is not valid JSON: ${(e as Error).message}`);
  }
  if (!isPlainObject(msg)) return bad('BAD_FRAME', 'frame must be a JSON object with an "event" field');
  const cid = msg.correlation_id;
  let correlationId: CorrelationId | null = null;
  if (typeof cid === 'string' || (typeof cid === 'number' && Number.isFinite(cid))) correlationId = cid;
  else if (cid !== undefined && cid !== null) return bad('BAD_FRAME', 'correlation_id must be a string or a number');
  const event = msg.event;
  if (typeof event !== 'string' || !EVENT_NAME_RE.test(event)) {
    return bad(
      'BAD_FRAME',
      `"event" must match namespace:action (lowercase, e.g. "system:ping"), got ${JSON.stringify(event)?.slice(0, 100)}`,
      null,
      correlationId,
    );
  }
  const data = msg.data;
  if (data !== undefined && data !== null && !isPlainObject(data))
    return bad('BAD_FRAME', '"data" must be a JSON object', event, correlationId);
  const t = checkTimeout(msg.timeout_ms);
  if (t instanceof DaemonError) return { ok: false, error: t, event, correlationId };
  return { ok: true, req: { event, data: (data ?? {}) as Record<string, unknown>, correlationId, timeoutMs: t } };
}

/** An HTTP body as an event's data: empty means `{}`; anything but a JSON object is refused. */
export function parseBody(body: Buffer | string | undefined): Record<string, unknown> | DaemonError {
  const text = typeof body === 'string' ? body : body ? body.toString('utf8') : '';
  if (text.trim() === '') return {};
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    return new DaemonError('BAD_JSON', `body is not valid JSON: ${(e as Error).message}`);
  }
  return isPlainObject(v) ? v : new DaemonError('BAD_FRAME', "body must be a JSON object (the event's data)");
}

export const responseFrame = (event: string | null, cid: CorrelationId | null, data: Record<string, unknown>): string =>
  `{"kind":"response","event":${JSON.stringify(event)},"correlation_id":${JSON.stringify(cid)},"data":${JSON.stringify(data)},"timestamp":${nowSeconds()}}`;

export const errorFrame = (event: string | null, cid: CorrelationId | null, error: ErrorPayload): string =>
  `{"kind":"response","event":${JSON.stringify(event)},"correlation_id":${JSON.stringify(cid)},"error":${JSON.stringify(error)},"timestamp":${nowSeconds()}}`;

/** What every subscription's frame of one event shares, serialised once however many clients get it. */
const bodies = new WeakMap<EmittedEvent, string>();

export function eventFrame(ev: EmittedEvent, subscription: string): string {
  let body = bodies.get(ev);
  if (body === undefined) {
    body = `{"kind":"event","event":${JSON.stringify(ev.event)},"data":${JSON.stringify(ev.data)},"seq":${ev.seq},"timestamp":${ev.timestamp},"context":${JSON.stringify(ev.context)},"subscription":`;
    bodies.set(ev, body);
  }
  return `${body}${JSON.stringify(subscription)}}`;
}

/** A frame the gateway sends on its own (monitor:dropped, monitor:skipped, gateway:gap), as the kernel does. */
export const noticeFrame = (
  event: string,
  data: Record<string, unknown>,
  seq: number,
  subscription: string | null,
): string =>
  `{"kind":"event","event":${JSON.stringify(event)},"data":${JSON.stringify(data)},"seq":${seq},"timestamp":${nowSeconds()},"subscription":${JSON.stringify(subscription)}}`;

export const errorBody = (e: DaemonError): string => JSON.stringify({ error: e.toPayload() });
