/**
 * Parsing request envelopes and serialising responses and events. The envelope is checked by hand:
 * it is the hot path, and its rules are few and fixed.
 */
import { isUtf8 } from 'node:buffer';
import { DaemonError, type ErrorPayload } from '../client/errors.js';
import { EVENT_NAME_RE, MAX_TIMEOUT_MS, nowSeconds, type CorrelationId } from '../client/protocol.js';
import type { EmittedEvent } from './plugin-api.js';

export interface ParsedRequest {
  event: string;
  data: Record<string, unknown>;
  correlationId: CorrelationId | null;
  timeoutMs: number | undefined;
}

export type ParseResult = { ok: true; req: ParsedRequest } | { ok: false; error: DaemonError; event: string | null; correlationId: CorrelationId | null };

const fail = (code: 'BAD_JSON' | 'BAD_FRAME', message: string, event: string | null = null, correlationId: CorrelationId | null = null, details?: Record<string, unknown>): ParseResult => ({
  ok: false,
  error: new DaemonError(code, message, details),
  event,
  correlationId,
});

const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export function parseRequest(line: Buffer): ParseResult {
  if (!isUtf8(line)) return fail('BAD_JSON', 'frame is not valid UTF-8');
  let msg: unknown;
  try {
    msg = JSON.parse(line.toString('utf8'));
  } catch (e) {
    return fail('BAD_JSON', `frame is not valid JSON: ${(e as Error).message}`);
  }
  if (!isPlainObject(msg)) return fail('BAD_FRAME', 'frame must be a JSON object with an "event" field');
  const cid = msg.correlation_id;
  let correlationId: CorrelationId | null = null;
  if (typeof cid === 'string' || (typeof cid === 'number' && Number.isFinite(cid))) correlationId = cid;
  else if (cid !== undefined && cid !== null) return fail('BAD_FRAME', 'correlation_id must be a string or a number', null, null, { path: 'correlation_id' });
  const event = msg.event;
  if (event === undefined) return fail('BAD_FRAME', 'missing "event"', null, correlationId, { path: 'event' });
  if (typeof event !== 'string' || !EVENT_NAME_RE.test(event)) {
    return fail('BAD_FRAME', `"event" must match namespace:action (lowercase, e.g. "system:ping"), got ${JSON.stringify(event)?.slice(0, 100)}`, null, correlationId, { path: 'event' });
  }
  const data = msg.data;
  if (data !== undefined && data !== null && !isPlainObject(data)) return fail('BAD_FRAME', '"data" must be a JSON object', event, correlationId, { path: 'data' });
  const t = msg.timeout_ms;
  if (t !== undefined && t !== null && (typeof t !== 'number' || !Number.isFinite(t) || t <= 0 || t > MAX_TIMEOUT_MS)) {
    return fail('BAD_FRAME', `"timeout_ms" must be a positive number of milliseconds up to ${MAX_TIMEOUT_MS}`, event, correlationId, { path: 'timeout_ms' });
  }
  return { ok: true, req: { event, data: (data ?? {}) as Record<string, unknown>, correlationId, timeoutMs: (t ?? undefined) as number | undefined } };
}

export function responseFrame(event: string | null, correlationId: CorrelationId | null, data: Record<string, unknown>): string {
  return `{"kind":"response","event":${JSON.stringify(event)},"correlation_id":${JSON.stringify(correlationId)},"data":${JSON.stringify(data)},"timestamp":${nowSeconds()}}\n`;
}

export function errorFrame(event: string | null, correlationId: CorrelationId | null, error: ErrorPayload): string {
  return `{"kind":"response","event":${JSON.stringify(event)},"correlation_id":${JSON.stringify(correlationId)},"error":${JSON.stringify(error)},"timestamp":${nowSeconds()}}\n`;
}

/** The part of an event frame shared by every subscription it goes to, serialised once per event. */
const bodies = new WeakMap<EmittedEvent, string>();

export function eventFrame(ev: EmittedEvent, subscription: string): string {
  let body = bodies.get(ev);
  if (body === undefined) {
    body = `{"kind":"event","event":${JSON.stringify(ev.event)},"data":${JSON.stringify(ev.data)},"seq":${ev.seq},"timestamp":${ev.timestamp},"context":${JSON.stringify(ev.context)},"subscription":`;
    bodies.set(ev, body);
  }
  return `${body}${JSON.stringify(subscription)}}\n`;
}

/**
 * A frame the kernel sends on its own (`monitor:dropped`, `monitor:skipped`): no context, and `seq`
 * is the last event it accounts for. `subscription` is null when it concerns the whole connection.
 */
export function noticeFrame(event: string, data: Record<string, unknown>, seq: number, subscription: string | null): string {
  return `{"kind":"event","event":${JSON.stringify(event)},"data":${JSON.stringify(data)},"seq":${seq},"timestamp":${nowSeconds()},"subscription":${JSON.stringify(subscription)}}\n`;
}
