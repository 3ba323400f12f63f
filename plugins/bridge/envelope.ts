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
  job_id: z.string().regex(/^[A-Za-z0-9_-]{1,120}$/).optional(),
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

/** Parse and validate one message from the bus. Never throws. */
export function decode<S extends z.ZodType>(bytes: Uint8Array, schema: S): Decoded<z.output<S>> {
  let raw: unknown;
  try {
    raw = JSON.parse(dec.decode(bytes));
  } catch (e) {
    return { ok: false, error: new DaemonError('BAD_JSON', `message from the bus is not JSON: ${(e as Error).message}`) };
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    return { ok: false, error: new DaemonError('BAD_FRAME', 'message from the bus is not a JSON object') };
  }
  const r = schema.safeParse(raw);
  if (!r.success) {
    const issues = listIssues(r.error.issues, '(message)');
    const bad = issues.some((i) => i.path === 'data' || i.path.startsWith('data.'));
    return {
      ok: false,
      error: new DaemonError(bad ? 'INVALID_DATA' : 'BAD_FRAME', `message from the bus refused: ${formatIssues(r.error.issues, { root: '(message)', max: 1 })}`, { issues }),
    };
  }
  return { ok: true, value: r.data };
}

export function errorReply(node: string | undefined, e: DaemonError, jobId?: string): ReplyEnvelope {
  return { ok: false, ...(node ? { node } : {}), ...(jobId ? { job_id: jobId } : {}), error: e.toPayload() };
}

/** Rebuild the typed error a remote daemon answered with. */
export function replyError(r: Extract<ReplyEnvelope, { ok: false }>): DaemonError {
  const p: ErrorPayload = { code: isErrorCode(r.error.code) ? r.error.code : 'HANDLER_ERROR', message: r.error.message, details: { ...(r.error.details ?? {}), ...(r.node ? { node: r.node } : {}) } };
  return DaemonError.fromPayload(p);
}

/** A context as it travels: causality kept, origin set to the sending node. */
export function wireContext(c: EventContext, origin: string): EventContext {
  const out: EventContext = { id: c.id, parent_id: c.parent_id, root_id: c.root_id, depth: c.depth, origin };
  if (c.agent_id !== undefined) out.agent_id = c.agent_id;
  return out;
}
