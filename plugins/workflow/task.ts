/**
 * What the scheduler hands to the part that acts (an event or an agent turn), and the small pure
 * rules around it: the idempotency key of an attempt, the id field each known event keeps it in, the
 * JSON inside an agent's reply, and which failures are worth another attempt.
 */
import { createHash } from 'node:crypto';
import { DaemonError, type ErrorCode } from '../../client/errors.js';
import type { EventContext } from '../../client/protocol.js';
import type { AgentSpec, StepDef } from './definition.js';
import type { StepError } from './store.js';

/** One execution of a step (or of one foreach item), as the performer sees it. */
export interface TaskSpec {
  run_id: string;
  workflow: string;
  step: StepDef;
  /** The foreach item's index; 0 for a step without foreach. */
  idx: number;
  attempt: number;
  /** Deterministic per (run, step, item, attempt): a repeat after a crash uses the same one. */
  key: string;
  /** Causality for the work: a child of the run's context, carrying `workflow_id` (the budget scope). */
  context: EventContext;
  /** An event step's data, templates resolved, the key filled in where the event takes one. */
  data?: Record<string, unknown>;
  /** An agent step's spec, templates resolved. */
  agent?: AgentSpec;
  /** Most time the attempt may take (the step's timeout_s, else the configured default). */
  timeoutMs: number;
}

/** The field where each event that takes an idempotency key keeps it (filled in when the step leaves it out). */
export const KEY_FIELDS: Readonly<Record<string, string>> = {
  'completion:request': 'request_id',
  'completion:async': 'request_id',
  'agent:send': 'turn_id',
  'agent:message': 'message_id',
  'workflow:start': 'run_id',
  'trace:replay_step': 'key',
};

const MAX_KEY = 90;

/**
 * The key of an attempt: `<run>.<step>[.<item>].a<attempt>`, shortened with a hash when long, so
 * it fits every id field it goes into (a turn id is at most 100 characters and gets suffixes).
 */
export function taskKey(runId: string, stepId: string, idx: number | null, attempt: number): string {
  const k = `${runId}.${stepId}${idx === null ? '' : `.${idx}`}.a${attempt}`;
  if (k.length <= MAX_KEY) return k;
  const h = createHash('sha256').update(k).digest('hex').slice(0, 16);
  return `${k.slice(0, MAX_KEY - 17)}-${h}`;
}

/**
 * The JSON value in a model's reply: the whole text, else a fenced ```json block, else the span from
 * the first `{` or `[` to the last matching bracket. Throws when there is none.
 */
export function jsonInReply(text: string): unknown {
  const t = text.trim();
  const attempts: string[] = [t];
  const fence = /```(?:json)?\s*\n([\s\S]*?)```/i.exec(t);
  if (fence) attempts.push(fence[1]!.trim());
  const open = t.search(/[[{]/);
  if (open >= 0) {
    const close = t[open] === '{' ? t.lastIndexOf('}') : t.lastIndexOf(']');
    if (close > open) attempts.push(t.slice(open, close + 1));
  }
  for (const a of attempts) {
    try {
      return JSON.parse(a) as unknown;
    } catch {
      // try the next reading
    }
  }
  throw new DaemonError(
    'INVALID_DATA',
    `the reply holds no JSON value (output: json): ${t.slice(0, 200)}${t.length > 200 ? '…' : ''}`,
    { reply: t.slice(0, 2000) },
  );
}

/** Failures another attempt cannot change: not retried. */
const FINAL: ReadonlySet<ErrorCode> = new Set(['BUDGET_EXCEEDED', 'CANCELLED', 'LOOP_DETECTED', 'UNKNOWN_EVENT']);

export function errorOf(e: unknown): StepError {
  if (e instanceof DaemonError)
    return { code: e.code, message: e.message, ...(e.details ? { details: e.details } : {}) };
  return { code: 'HANDLER_ERROR', message: e instanceof Error ? e.message : String(e) };
}

/** A failure a retry may fix (not a budget refusal, a cancel, a loop, or a mistake in the definition). */
export function retryable(err: StepError): boolean {
  return !FINAL.has(err.code as ErrorCode) && err.details?.retry !== false;
}

/** Wait before attempt `next` (2, 3, …): backoff_s doubled per earlier retry, capped. */
export function backoffMs(retry: { backoff_s: number; max_backoff_s?: number | undefined }, next: number): number {
  const s = retry.backoff_s * 2 ** Math.max(0, next - 2);
  return Math.round(Math.min(s, retry.max_backoff_s ?? Infinity, 86_400) * 1000);
}
