/**
 * What a recorded run becomes once it has ended. A learned run that succeeded becomes a trace (or
 * replaces the one of the same goal): its final plan, and for every step item the events its agents'
 * tool calls made and its output. A followed run updates its trace's counters; the items it had to do
 * for real (a divergence, nothing recorded) are written over with what was done, so the next follow
 * replays the repaired version; a followed run that failed counts against the trace, and a trace whose
 * success rate falls below the bar is demoted.
 */
import type { RecordedEvent, ItemRow, KeyRow, TraceStore } from './store.js';

/** What `workflow:status {versions: true}` answers, as far as settling reads it. */
export interface RunStatus {
  status: string;
  cost_usd: number | null;
  created_at: number | null;
  finished_at: number | null;
  steps: Record<
    string,
    { status: string; output?: unknown; error?: unknown; kind?: string; items?: { total: number } }
  >;
  versions?: Array<{
    definition: {
      steps: Array<{ id: string; event?: string; data?: unknown; agent?: unknown; wait?: unknown; foreach?: string }>;
    };
  }>;
}

export const TERMINAL = new Set(['succeeded', 'failed', 'cancelled', 'budget_exhausted']);

/** The recorded events of one task key, in order; null when a call's events were too large to carry. */
export function eventsOf(store: TraceStore, runId: string, key: string): RecordedEvent[] | null {
  const out: RecordedEvent[] = [];
  for (const c of store.calls(runId, key)) {
    if (c.events === null) return null;
    out.push(...(JSON.parse(c.events) as RecordedEvent[]));
  }
  return out;
}

/** The last attempt's key of each step item (the one whose outcome the run kept). */
export function lastKeys(keys: KeyRow[]): Map<string, KeyRow> {
  const out = new Map<string, KeyRow>();
  for (const k of keys) {
    if (k.fallback) continue;
    const id = `${k.step}\u0000${k.idx}`;
    const prior = out.get(id);
    if (!prior || k.attempt > prior.attempt) out.set(id, k);
  }
  return out;
}

/** The items of a learned run: one per step (per foreach item) that ran. */
export function learnedItems(
  store: TraceStore,
  runId: string,
  traceId: string,
  st: RunStatus,
  plan: {
    steps: Array<{ id: string; event?: string; data?: unknown; agent?: unknown; wait?: unknown; foreach?: string }>;
  },
): ItemRow[] {
  const keys = lastKeys(store.keys(runId));
  const items: ItemRow[] = [];
  for (const s of plan.steps) {
    if (s.wait !== undefined || (!s.event && !s.agent)) continue;
    const state = st.steps[s.id];
    if (!state || state.status === 'skipped' || state.status === 'pending') continue;
    const n =
      s.foreach !== undefined ? (Array.isArray(state.output) ? state.output.length : (state.items?.total ?? 0)) : 1;
    for (let idx = 0; idx < n; idx++) {
      const output =
        s.foreach !== undefined ? ((state.output as unknown[] | undefined)?.[idx] ?? null) : (state.output ?? null);
      const failed = output === null && state.error !== undefined;
      const key = keys.get(`${s.id}\u0000${s.foreach !== undefined ? idx : 0}`);
      let events: RecordedEvent[] | null;
      let complete: boolean;
      if (s.event) {
        events = [
          {
            event: s.event,
            data: (s.data ?? {}) as Record<string, unknown>,
            ...(failed ? { error: state.error as { code: string; message: string } } : { result: output }),
          },
        ];
        complete = true;
      } else {
        events = key ? eventsOf(store, runId, key.key) : null;
        complete = events !== null && key !== undefined && store.complete(runId, key.key);
      }
      items.push({
        trace_id: traceId,
        step: s.id,
        idx,
        kind: s.event ? 'event' : 'agent',
        status: failed ? 'failed' : 'succeeded',
        output: JSON.stringify(output),
        error: failed ? JSON.stringify(state.error) : null,
        events: JSON.stringify(events ?? []),
        complete: complete ? 1 : 0,
      });
    }
  }
  return items;
}

/** The items a followed run did for real, as the trace should now hold them. */
export function repairedItems(store: TraceStore, runId: string, traceId: string, st: RunStatus): ItemRow[] {
  const out: ItemRow[] = [];
  for (const dv of store.divergences(runId)) {
    const state = st.steps[dv.step];
    if (!state || state.status !== 'succeeded') continue;
    const prefix = JSON.parse(dv.prefix) as RecordedEvent[];
    const output =
      isForeach(st, dv.step) && Array.isArray(state.output) ? (state.output[dv.idx] ?? null) : (state.output ?? null);
    if (!dv.fallback_key) {
      // An event step: what it answered now is what it answers.
      out.push({
        trace_id: traceId,
        step: dv.step,
        idx: dv.idx,
        kind: 'event',
        status: 'succeeded',
        output: JSON.stringify(output),
        error: null,
        events: JSON.stringify(prefix),
        complete: 1,
      });
      continue;
    }
    const more = eventsOf(store, runId, dv.fallback_key);
    out.push({
      trace_id: traceId,
      step: dv.step,
      idx: dv.idx,
      kind: 'agent',
      status: 'succeeded',
      output: JSON.stringify(output),
      error: null,
      events: JSON.stringify([...prefix, ...(more ?? [])]),
      complete: more !== null && store.complete(runId, dv.fallback_key) ? 1 : 0,
    });
  }
  return out;
}

const isForeach = (st: RunStatus, step: string): boolean => st.steps[step]?.items !== undefined;
