/**
 * Parsing request envelopes and serialising responses and events. The envelope is checked by hand:
 * it is the hot path, and its rules are few and fixed.
 */
import { isUtf8 } from 'node:buffer';
import { DaemonError, type ErrorPayload } from '../client/errors.js';
import { EVENT_NAME_RE, MAX_TIMEOUT_MS, nowSeconds, type CorrelationId } from '../client/protocol.js';
import { firstTooDeep, pathToMark, pruneTooDeep } from './json-depth.js';
import type { EmittedEvent } from './plugin-api.js';

export interface ParsedRequest {
  event: string;
  data: Record<string, unknown>;
  correlationId: CorrelationId | null;
  timeoutMs: number | undefined;
}

export type ParseResult =
  | { ok: true; req: ParsedRequest }
  | { ok: false; error: DaemonError; event: string | null; correlationId: CorrelationId | null };

const fail = (
  code: 'BAD_JSON' | 'BAD_FRAME' | 'INVALID_DATA',
  message: string,
  event: string | null = null,
  correlationId: CorrelationId | null = null,
  details?: Record<string, unknown>,
): ParseResult => ({
  ok: false,
  error: new DaemonError(code, message, details),
  event,
  correlationId,
});

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** Default of `daemon.max_json_depth`: levels of objects and arrays a frame may nest, the frame itself being level 1. */
export const DEFAULT_MAX_JSON_DEPTH = 64;

export function parseRequest(line: Buffer, maxDepth = DEFAULT_MAX_JSON_DEPTH): ParseResult {
  if (!isUtf8(line)) return fail('BAD_JSON', 'frame is not valid UTF-8');
  // Checked before parsing: a value nested deeper than this is refused, whoever would have walked it.
  const tooDeep = firstTooDeep(line, maxDepth) >= 0;
  let msg: unknown;
  try {
    msg = JSON.parse(tooDeep ? pruneTooDeep(line, maxDepth) : line.toString('utf8'));
  } catch (e) {
    return fail('BAD_JSON', `frame is not valid JSON: ${(e as Error).message}`);
  }
  if (!isPlainObject(msg)) return fail('BAD_FRAME', 'frame must be a JSON object with an "event" field');
  if (tooDeep) return refuseTooDeep(msg, maxDepth);
  const cid = msg.correlation_id;
  let correlationId: CorrelationId | null = null;
  if (typeof cid === 'string' || (typeof cid === 'number' && Number.isFinite(cid))) correlationId = cid;
  else if (cid !== undefined && cid !== null)
    return fail('BAD_FRAME', 'correlation_id must be a string or a number', null, null, { path: 'correlation_id' });
  const event = msg.event;
  if (event === undefined) return fail('BAD_FRAME', 'missing "event"', null, correlationId, { path: 'event' });
  if (typeof event !== 'string' || !EVENT_NAME_RE.test(event)) {
    return fail(
      'BAD_FRAME',
      `"event" must match namespace:action (lowercase, e.g. "system:ping"), got ${JSON.stringify(event)?.slice(0, 100)}`,
      null,
      correlationId,
      { path: 'event' },
    );
  }
  const data = msg.data;
  if (data !== undefined && data !== null && !isPlainObject(data))
    return fail('BAD_FRAME', '"data" must be a JSON object', event, correlationId, { path: 'data' });
  const t = msg.timeout_ms;
  if (t !== undefined && t !== null && (typeof t !== 'number' || !Number.isFinite(t) || t <= 0 || t > MAX_TIMEOUT_MS)) {
    return fail(
      'BAD_FRAME',
      `"timeout_ms" must be a positive number of milliseconds up to ${MAX_TIMEOUT_MS}`,
      event,
      correlationId,
      { path: 'timeout_ms' },
    );
  }
  return {
    ok: true,
    req: {
      event,
      data: (data ?? {}) as Record<string, unknown>,
      correlationId,
      timeoutMs: (t ?? undefined) as number | undefined,
    },
  };
}

/**
 * A frame that nests too deep, answered with the envelope fields it has: INVALID_DATA naming the path
 * when the depth is inside `data` (what the event's schema would have judged), BAD_FRAME otherwise.
 */
function refuseTooDeep(msg: Record<string, unknown>, maxDepth: number): ParseResult {
  const cid = msg.correlation_id;
  const correlationId = typeof cid === 'string' || (typeof cid === 'number' && Number.isFinite(cid)) ? cid : null;
  const event = typeof msg.event === 'string' && EVENT_NAME_RE.test(msg.event) ? msg.event : null;
  const path = pathToMark(msg) ?? [];
  const limit = { max_json_depth: maxDepth };
  if (event === null || path[0] !== 'data') {
    return fail(
      'BAD_FRAME',
      `frame nests deeper than ${maxDepth} levels of objects and arrays (daemon.max_json_depth)`,
      event,
      correlationId,
      { ...limit, path: path.join('.') },
    );
  }
  const at = path.slice(1).map(String).join('.') || '(data)';
  const message = `nested deeper than ${maxDepth} levels of objects and arrays (daemon.max_json_depth)`;
  return fail('INVALID_DATA', `${event}: ${at}: ${message}`, event, correlationId, {
    ...limit,
    issues: [{ path: at, message, code: 'too_deep' }],
  });
}

export function responseFrame(
  event: string | null,
  correlationId: CorrelationId | null,
  data: Record<string, unknown>,
): string {
  return `{"kind":"response","event":${JSON.stringify(event)},"correlation_id":${JSON.stringify(correlationId)},"data":${JSON.stringify(data)},"timestamp":${nowSeconds()}}\n`;
}

export function errorFrame(event: string | null, correlationId: CorrelationId | null, error: ErrorPayload): string {
  return `{"kind":"response","event":${JSON.stringify(event)},"correlation_id":${JSON.stringify(correlationId)},"error":${JSON.stringify(error)},"timestamp":${nowSeconds()}}\n`;
}

/**
 * The part of an event frame shared by every subscription it goes to: serialised and encoded once
 * per event, then written by reference to each subscriber, followed by its subscription's own end.
 */
const bodies = new WeakMap<EmittedEvent, Buffer>();

export function eventBody(ev: EmittedEvent): Buffer {
  let body = bodies.get(ev);
  if (body === undefined) {
    body = Buffer.from(
      `{"kind":"event","event":${JSON.stringify(ev.event)},"data":${JSON.stringify(ev.data)},"seq":${ev.seq},"timestamp":${ev.timestamp},"context":${JSON.stringify(ev.context)},"subscription":`,
    );
    bodies.set(ev, body);
  }
  return body;
}

/** What follows the shared body in a subscription's event frames: its id and the frame's end. */
export function eventEnd(subscription: string): Buffer {
  return Buffer.from(`${JSON.stringify(subscription)}}\n`);
}

/**
 * A frame the kernel sends on its own (`monitor:dropped`, `monitor:skipped`): no context, and `seq`
 * is the last event it accounts for. `subscription` is null when it concerns the whole connection.
 */
export function noticeFrame(
  event: string,
  data: Record<string, unknown>,
  seq: number,
  subscription: string | null,
): string {
  return `{"kind":"event","event":${JSON.stringify(event)},"data":${JSON.stringify(data)},"seq":${seq},"timestamp":${nowSeconds()},"subscription":${JSON.stringify(subscription)}}\n`;
}
