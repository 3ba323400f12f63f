/**
 * What crosses the bus, and how what arrives from it is checked. Anything from NATS is untrusted
 * input: it is parsed and validated here and refused with the same typed errors the socket uses
 * (BAD_JSON, BAD_FRAME, INVALID_DATA), never thrown into the daemon.
 */
import { z } from 'zod';
import { DaemonError, isErrorCode, type ErrorPayload } from '../../client/errors.js';
import { EVENT_NAME_RE, MAX_TIMEOUT_MS, type EventContext } from '../../client/protocol.js';
import { formatIssues, listIssues } from '../../client/issues.js';

const id = z.string().min(1).max(200);
const node = z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/);

export const contextSchema = z.object({
  id,
  parent_id: id.nullable(),
  root_id: id,
  depth: z.number().int().min(0).max(1_000_000),
  agent_id: z.string().max(200).optional(),
  origin: node.optional(),
});

const eventName = z.string().regex(EVENT_NAME_RE, 'event names are namespace:action');
const data = z.record(z.string(), z.unknown());

/** A request sent to the fleet (core request/reply, or a durable job). */
export const requestEnvelope = z.object({
  v: z.literal(1),
  event: eventName,
  data: data.default({}),
  context: contextSchema,
  /** Time the caller had left when it sent; the server never takes longer. */
  timeout_ms: z.number().int().min(1).max(MAX_TIMEOUT_MS),
  from: node,
  /** Durable jobs only. */
  job_id: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,120}$/)
    .optional(),
  /** Durable jobs only: epoch ms after which the caller no longer waits (needs roughly synced clocks). */
  expires_at: z.number().optional(),
});
export type RequestEnvelope = z.infer<typeof requestEnvelope>;

export const replyEnvelope = z.union([
  z.object({ ok: z.literal(true), node, data, job_id: z.string().optional() }),
  z.object({
    ok: z.literal(false),
    node: node.optional(),
    job_id: z.string().optional(),
    error: z.object({ code: z.string(), message: z.string(), details: z.record(z.string(), z.unknown()).optional() }),
  }),
]);
export type ReplyEnvelope = z.infer<typeof replyEnvelope>;

export const eventEnvelope = z.object({
  v: z.literal(1),
  event: eventName,
  data,
  context: contextSchema,
  origin: node,
  seq: z.number().int().min(0),
  timestamp: z.number(),
});
export type EventEnvelope = z.infer<typeof eventEnvelope>;

export const heartbeatEnvelope = z.object({
  v: z.literal(1),
  node,
  serves: z.array(z.string()).max(1000),
  publish: z.array(z.string()).max(1000),
  pid: z.number().int(),
  started_at: z.number(),
  interval_ms: z.number().int().min(1),
});
export type HeartbeatEnvelope = z.infer<typeof heartbeatEnvelope>;

const enc = new TextEncoder();
const dec = new TextDecoder('utf-8', { fatal: true });

export const encode = (v: unknown): Uint8Array => enc.encode(JSON.stringify(v));

export type Decoded<T> = { ok: true; value: T } | { ok: false; error: DaemonError };

/** The JSON object a message holds, or the typed refusal. */
function parseObject(bytes: Uint8Array): Decoded<Record<string, unknown>> {
  let raw: unknown;
  try {
    raw = JSON.parse(dec.decode(bytes));
  } catch (e) {
    return {
      ok: false,
      error: new DaemonError('BAD_JSON', `message from the bus is not JSON: ${(e as Error).message}`),
    };
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    return { ok: false, error: new DaemonError('BAD_FRAME', 'message from the bus is not a JSON object') };
  }
  return { ok: true, value: raw as Record<string, unknown> };
}

/** Parse and validate one message from the bus. Never throws. */
export function decode<S extends z.ZodType>(bytes: Uint8Array, schema: S): Decoded<z.output<S>> {
  const o = parseObject(bytes);
  if (!o.ok) return o;
  const raw = o.value;
  const r = schema.safeParse(raw);
  if (!r.success) {
    const issues = listIssues(r.error.issues, '(message)');
    const bad = issues.some((i) => i.path === 'data' || i.path.startsWith('data.'));
    return {
      ok: false,
      error: new DaemonError(
        bad ? 'INVALID_DATA' : 'BAD_FRAME',
        `message from the bus refused: ${formatIssues(r.error.issues, { root: '(message)', max: 1 })}`,
        { issues },
      ),
    };
  }
  return { ok: true, value: r.data };
}

export function errorReply(node: string | undefined, e: DaemonError, jobId?: string): ReplyEnvelope {
  return { ok: false, ...(node ? { node } : {}), ...(jobId ? { job_id: jobId } : {}), error: e.toPayload() };
}

/** Rebuild the typed error a remote daemon answered with. */
export function replyError(r: Extract<ReplyEnvelope, { ok: false }>): DaemonError {
  const p: ErrorPayload = {
    code: isErrorCode(r.error.code) ? r.error.code : 'HANDLER_ERROR',
    message: r.error.message,
    details: { ...(r.error.details ?? {}), ...(r.node ? { node: r.node } : {}) },
  };
  return DaemonError.fromPayload(p);
}

/** A context as it travels: causality kept, origin set to the sending node. */
export function wireContext(c: EventContext, origin: string): EventContext {
  const out: EventContext = { id: c.id, parent_id: c.parent_id, root_id: c.root_id, depth: c.depth, origin };
  if (c.agent_id !== undefined) out.agent_id = c.agent_id;
  return out;
}

// ---- the request path's envelopes, checked by hand ------------------------------------------------
// Every cross-daemon request decodes one request envelope (at the server) and one reply (at the
// caller). These check exactly what requestEnvelope and replyEnvelope do (a test holds them to it),
// without the schema library's per-message work or a copy of the data: the data is handed on as
// parsed, and the event's own schema validates it where it runs.

const NODE_RE = /^[a-z0-9][a-z0-9_-]{0,62}$/;
const JOB_ID_RE = /^[A-Za-z0-9_-]{1,120}$/;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isId = (v: unknown): boolean => typeof v === 'string' && v.length >= 1 && v.length <= 200;
const isInt = (v: unknown, min: number, max: number): boolean =>
  typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max;
const isNode = (v: unknown): boolean => typeof v === 'string' && NODE_RE.test(v);

function refused(path: string, message: string): Decoded<never> {
  const code = path === 'data' || path.startsWith('data.') ? 'INVALID_DATA' : 'BAD_FRAME';
  return {
    ok: false,
    error: new DaemonError(code, `message from the bus refused: ${path}: ${message}`, {
      issues: [{ path, message, code: 'invalid' }],
    }),
  };
}

/** The first thing wrong with a context as it travels, or null. */
function contextProblem(c: unknown): [string, string] | null {
  if (!isObject(c)) return ['context', 'must be an object'];
  if (!isId(c.id)) return ['context.id', 'must be a string of 1 to 200 characters'];
  if (c.parent_id !== null && !isId(c.parent_id))
    return ['context.parent_id', 'must be null or a string of 1 to 200 characters'];
  if (!isId(c.root_id)) return ['context.root_id', 'must be a string of 1 to 200 characters'];
  if (!isInt(c.depth, 0, 1_000_000)) return ['context.depth', 'must be an integer from 0 to 1000000'];
  if (c.agent_id !== undefined && !(typeof c.agent_id === 'string' && c.agent_id.length <= 200))
    return ['context.agent_id', 'must be a string of at most 200 characters'];
  if (c.origin !== undefined && !isNode(c.origin)) return ['context.origin', 'must be a node name'];
  return null;
}

/** decode(bytes, requestEnvelope), checked by hand. Never throws. */
export function decodeRequest(bytes: Uint8Array): Decoded<RequestEnvelope> {
  const o = parseObject(bytes);
  if (!o.ok) return o;
  const m = o.value;
  // First: data that is wrong is INVALID_DATA whatever else is (as the schema's refusal says).
  if (m.data === undefined) m.data = {};
  else if (!isObject(m.data)) return refused('data', 'must be an object');
  if (m.v !== 1) return refused('v', 'must be 1');
  if (typeof m.event !== 'string' || !EVENT_NAME_RE.test(m.event))
    return refused('event', 'event names are namespace:action');
  const bad = contextProblem(m.context);
  if (bad) return refused(bad[0], bad[1]);
  if (!isInt(m.timeout_ms, 1, MAX_TIMEOUT_MS))
    return refused('timeout_ms', `must be an integer from 1 to ${MAX_TIMEOUT_MS}`);
  if (!isNode(m.from)) return refused('from', 'must be a node name');
  if (m.job_id !== undefined && !(typeof m.job_id === 'string' && JOB_ID_RE.test(m.job_id)))
    return refused('job_id', 'must be 1 to 120 letters, digits, _ or -');
  if (m.expires_at !== undefined && typeof m.expires_at !== 'number') return refused('expires_at', 'must be a number');
  return { ok: true, value: m as RequestEnvelope };
}

/** decode(bytes, replyEnvelope), checked by hand. Never throws. */
export function decodeReply(bytes: Uint8Array): Decoded<ReplyEnvelope> {
  const o = parseObject(bytes);
  if (!o.ok) return o;
  const m = o.value;
  if (m.job_id !== undefined && typeof m.job_id !== 'string') return refused('job_id', 'must be a string');
  if (m.ok === true) {
    if (!isNode(m.node)) return refused('node', 'must be a node name');
    if (!isObject(m.data)) return refused('data', 'must be an object');
    return { ok: true, value: m as ReplyEnvelope };
  }
  if (m.ok !== false) return refused('ok', 'must be true or false');
  if (m.node !== undefined && !isNode(m.node)) return refused('node', 'must be a node name');
  const e = m.error;
  if (!isObject(e) || typeof e.code !== 'string' || typeof e.message !== 'string')
    return refused('error', 'must be {code, message, details?}');
  if (e.details !== undefined && !isObject(e.details)) return refused('error.details', 'must be an object');
  return { ok: true, value: m as ReplyEnvelope };
}
