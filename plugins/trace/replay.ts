/**
 * One step of a followed run (`trace:replay_step`). An agent step replays the events its agents' tool
 * calls made, in order, with no model call, and answers the output recorded for it. An event step
 * runs its event (it never needed a model) and checks the answer against the recorded one. A replayed
 * result that differs in a way that matters — an error where there was none or another error, another
 * exit code, a timeout — is a divergence: the step falls back to the model from there (a fresh agent
 * with the step's own spec is told what was done and what came back differently), and every step
 * that needs it is done for real too. What the fallback did is recorded; settling the run repairs the
 * trace with it.
 */
import type Database from 'better-sqlite3';
import { DaemonError, isDaemonError, runLazy, type CallContext, type ErrorCode } from '../../daemon/plugin-api.js';
import { ancestors, MODEL_WORK, type Plan } from './follow-plan.js';
import type { RecordedEvent, TraceStore } from './store.js';

export interface ReplayInput {
  run_id: string;
  step: string;
  index: number;
  key?: string | undefined;
  live: {
    event?: string | undefined;
    data?: Record<string, unknown> | undefined;
    agent?: Record<string, unknown> | undefined;
    output?: 'json' | 'text' | undefined;
  };
}

export interface ReplayDeps {
  db: Database.Database;
  store: TraceStore;
  fallbackTimeoutMs: number;
  /** A changed stdout or stderr is a divergence too (trace.output_matters). */
  outputMatters: boolean;
  emit(event: string, data: Record<string, unknown>, call: CallContext): void;
}

/** The fields of an answer whose change means the world is not as it was when the trace was made. */
const MATTERS = ['exit_code', 'timed_out', 'oom_killed', 'is_error', 'isError'] as const;
/** And with trace.output_matters, these: what a program printed, which a recorded reply may quote. */
const OUTPUT = ['stdout', 'stderr'] as const;

type Outcome =
  { result: unknown; error?: undefined } | { result?: undefined; error: { code: string; message: string } };

/** Why a replayed event's outcome differs from the recorded one in a way that matters; null when it does not. */
export function divergence(rec: RecordedEvent, now: Outcome, o: { output?: boolean } = {}): string | null {
  const was = rec.error?.code ?? null;
  const is = now.error?.code ?? null;
  if (was !== is)
    return was === null
      ? `${rec.event} failed with ${is} (it succeeded when recorded)`
      : is === null
        ? `${rec.event} succeeded (it failed with ${was} when recorded)`
        : `${rec.event} failed with ${is} (${was} when recorded)`;
  if (is !== null) return null;
  const a = rec.result as Record<string, unknown> | null | undefined;
  const b = now.result as Record<string, unknown> | null | undefined;
  if (!a || !b || typeof a !== 'object' || typeof b !== 'object') return null;
  for (const k of MATTERS) {
    if (a[k] !== b[k])
      return `${rec.event} ${k} ${JSON.stringify(b[k] ?? null)} (${JSON.stringify(a[k] ?? null)} when recorded)`;
  }
  if (o.output) {
    for (const k of OUTPUT) {
      if (a[k] !== b[k])
        return `${rec.event} ${k} changed (${clip(b[k] ?? null, 200)}; ${clip(a[k] ?? null, 200)} when recorded)`;
    }
  }
  return null;
}

/** What replaying a recorded list of events did: every event performed now, and where it diverged. */
export interface Replayed {
  done: RecordedEvent[];
  diverged: { at: number; reason: string } | null;
}

/**
 * Perform recorded events in order (model work skipped: its effects are the recorded events around
 * it), stopping at the first whose outcome differs in a way that matters.
 */
export async function replayEvents(
  call: CallContext,
  events: RecordedEvent[],
  o: { output: boolean },
): Promise<Replayed> {
  const done: RecordedEvent[] = [];
  for (const [at, rec] of events.entries()) {
    if (MODEL_WORK.test(rec.event)) {
      done.push(rec);
      continue;
    }
    const now = await perform(call, rec.event, rec.data);
    done.push({ event: rec.event, data: rec.data, ...(rec.tool ? { tool: rec.tool } : {}), ...now });
    const why = divergence(rec, now, o);
    if (why) return { done, diverged: { at, reason: why } };
  }
  return { done, diverged: null };
}

/** What the model is told when it takes over a task whose replay diverged (appended to the task's message). */
export function fallbackNote(done: RecordedEvent[], reason: string): string {
  return `[agentd] This task was done before, and its recorded steps were replayed. These tool calls have been made already, in order, with what they returned now:
${done.map((e, i) => `${i + 1}. ${e.tool ? `${e.tool} → ` : ''}${e.event} ${clip(e.data)} → ${clip(e.error ? { error: e.error } : e.result)}`).join('\n')}
The last one's result differs from when the task was recorded (${reason}). Carry on from here: finish the task, calling tools as needed.`;
}

async function perform(
  call: CallContext,
  event: string,
  data: Record<string, unknown>,
  timeoutMs?: number,
): Promise<Outcome> {
  try {
    return { result: await call.request(event, data, timeoutMs ? { timeoutMs } : {}) };
  } catch (e) {
    if (isDaemonError(e)) return { error: { code: e.code, message: e.message } };
    return { error: { code: 'HANDLER_ERROR', message: e instanceof Error ? e.message : String(e) } };
  }
}

/**
 * The JSON value in a model's reply (the whole text, a fenced block, or the outermost brackets), as a
 * workflow step with `output: json` reads it.
 */
export function jsonInReply(text: string): unknown {
  const t = text.trim();
  const tries = [t];
  const fence = /```(?:json)?\s*\n([\s\S]*?)```/i.exec(t);
  if (fence) tries.push(fence[1]!.trim());
  const open = t.search(/[[{]/);
  if (open >= 0) {
    const close = t[open] === '{' ? t.lastIndexOf('}') : t.lastIndexOf(']');
    if (close > open) tries.push(t.slice(open, close + 1));
  }
  for (const x of tries) {
    try {
      return JSON.parse(x) as unknown;
    } catch {
      // the next reading
    }
  }
  throw new DaemonError('INVALID_DATA', `the reply holds no JSON value (output: json): ${t.slice(0, 200)}`, {
    reply: t.slice(0, 2000),
  });
}

/** Agent ids are at most 128 characters; keys at most 100. */
const fallbackAgentId = (key: string): string => `tr.${key}`.slice(0, 128);

export class Replayer {
  private readonly plans = new Map<string, { version: number; ancestors: Map<string, Set<string>> }>();

  constructor(private readonly deps: ReplayDeps) {}

  private ancestorsOf(traceId: string): Map<string, Set<string>> {
    const t = this.deps.store.get(traceId);
    if (!t) return new Map();
    const got = this.plans.get(traceId);
    if (got && got.version === t.version) return got.ancestors;
    const a = ancestors(JSON.parse(t.plan) as Plan);
    this.plans.set(traceId, { version: t.version, ancestors: a });
    return a;
  }

  async step(d: ReplayInput, call: CallContext): Promise<unknown> {
    const run = this.deps.store.run(d.run_id);
    if (!run || run.mode !== 'follow' || !run.trace_id)
      throw new DaemonError('NOT_FOUND', `run ${d.run_id} is not following a trace`, { run_id: d.run_id });
    const traceId = run.trace_id;
    const key = d.key ?? `${d.run_id}.${d.step}.${d.index}`;
    const item = this.deps.store.item(traceId, d.step, d.index);
    const diverged = new Set(this.deps.store.divergences(d.run_id).map((x) => x.step));
    const upstream = [...(this.ancestorsOf(traceId).get(d.step) ?? [])].find((s) => diverged.has(s));
    const note = (at: number, reason: string, prefix: RecordedEvent[], fallbackKey: string | null): void => {
      const row = {
        run_id: d.run_id,
        step: d.step,
        idx: d.index,
        at,
        reason,
        prefix: JSON.stringify(prefix),
        fallback_key: fallbackKey,
        created_at: Date.now(),
      };
      if (runLazy(this.deps.db, () => this.deps.store.putDivergence(row))) {
        this.deps.emit(
          'trace:diverged',
          { run_id: d.run_id, trace_id: traceId, step: d.step, index: d.index, at, reason },
          call,
        );
      }
    };

    if (d.live.event) {
      const data = { ...(d.live.data ?? {}) };
      const now = await perform(call, d.live.event, data);
      const rec = item ? (JSON.parse(item.events) as RecordedEvent[])[0] : undefined;
      const why = upstream
        ? `needs ${upstream}, which diverged`
        : !rec
          ? 'nothing recorded for this item'
          : divergence(rec, now, { output: this.deps.outputMatters });
      if (why) note(0, why, [{ event: d.live.event, data, ...now }], null);
      if (now.error) throw new DaemonError(now.error.code as ErrorCode, now.error.message);
      return now.result;
    }

    if (!d.live.agent)
      throw new DaemonError('INVALID_DATA', `step ${d.step} has neither an event nor an agent to fall back to`);
    if (upstream) return this.fallback(d, key, call, [], note, `needs ${upstream}, which diverged`);
    if (!item) return this.fallback(d, key, call, [], note, 'nothing recorded for this item');
    if (!item.complete) return this.fallback(d, key, call, [], note, 'the recording of this item is incomplete');
    if (item.status === 'failed') {
      const err = JSON.parse(item.error ?? '{}') as { code?: ErrorCode; message?: string };
      throw new DaemonError(err.code ?? 'HANDLER_ERROR', err.message ?? 'failed when recorded', { replayed: true });
    }
    const r = await replayEvents(call, JSON.parse(item.events) as RecordedEvent[], { output: this.deps.outputMatters });
    if (r.diverged) return this.fallback(d, key, call, r.done, note, r.diverged.reason, r.diverged.at);
    const out = item.output === null ? null : (JSON.parse(item.output) as unknown);
    if (d.live.output === 'json' || out === null || typeof out !== 'object' || Array.isArray(out)) return out;
    return { ...(out as Record<string, unknown>), cost_usd: 0, replayed: true };
  }

  /**
   * The model does the step from here: a fresh agent with the step's spec gets its message and, when
   * events were replayed, what they returned (the last one differently). Its turn is recorded.
   */
  private async fallback(
    d: ReplayInput,
    key: string,
    call: CallContext,
    done: RecordedEvent[],
    note: (at: number, reason: string, prefix: RecordedEvent[], fb: string | null) => void,
    reason: string,
    at = -1,
  ): Promise<unknown> {
    const spec = d.live.agent!;
    const agentId = fallbackAgentId(key);
    const fbKey = `fb.${key}`;
    runLazy(this.deps.db, () => {
      this.deps.store.putKey(d.run_id, fbKey, d.step, d.index, 0, true);
      this.deps.store.putAgent(agentId, d.run_id, fbKey);
    });
    note(at, reason, done, fbKey);
    const message = typeof spec.message === 'string' ? spec.message : '';
    const told = done.length === 0 ? message : `${message}\n\n${fallbackNote(done, reason)}`;
    const { message: _m, agent_id: _a, ...rest } = spec;
    try {
      await call.request(
        'agent:spawn',
        { ...rest, agent_id: agentId, metadata: { trace_fallback: d.run_id, step: d.step, item: d.index } },
        { timeoutMs: 30_000 },
      );
    } catch (e) {
      // Spawned by this same attempt before a crash: carry on with it.
      if (!(isDaemonError(e) && e.code === 'CONFLICT')) throw e;
    }
    try {
      const r = await call.request<{ reply: string; turn_id: string; cost_usd: number; stop_reason: string }>(
        'agent:send',
        {
          agent_id: agentId,
          message: told,
          turn_id: key.slice(0, 100),
          wait: true,
        },
        { timeoutMs: this.deps.fallbackTimeoutMs },
      );
      if (d.live.output === 'json') return jsonInReply(r.reply);
      return {
        reply: r.reply,
        turn_id: r.turn_id,
        cost_usd: r.cost_usd,
        agent_id: agentId,
        stop_reason: r.stop_reason,
      };
    } finally {
      void call
        .request('agent:terminate', { agent_id: agentId, reason: 'trace fallback done' }, { timeoutMs: 10_000 })
        .catch(() => undefined);
    }
  }
}

function clip(v: unknown, n = 1500): string {
  const s = JSON.stringify(v) ?? 'null';
  return s.length > n ? `${s.slice(0, n)}…` : s;
}
