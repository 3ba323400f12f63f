/**
 * workflow:run_goal: a goal, run as a workflow that follows a learned trace when there is one and is
 * planned and learned otherwise. The trace plugin is reached through its events only (trace:find,
 * trace:begin, trace:run): it records the learned run, hands back the definition that replays a trace
 * (each step a trace:replay_step), and says once the run has settled what it cost and saved.
 */
import { DaemonError } from '../../client/errors.js';
import type { EventContext } from '../../client/protocol.js';

export interface GoalRequest {
  goal: string;
  mode: 'auto' | 'learn' | 'follow';
  budget_usd?: number | undefined;
  run_id?: string | undefined;
  wait: boolean;
}

export interface GoalDeps {
  request<T = Record<string, unknown>>(event: string, data: Record<string, unknown>, ctx?: EventContext): Promise<T>;
  exists(runId: string): boolean;
  newRunId(): string;
  /** Plan the goal and start the run (source learn); planning is charged to the run. */
  plan(goal: string, runId: string, budgetUsd: number | undefined): Promise<Record<string, unknown>>;
  /** Start a run of the replaying definition (source follow). */
  follow(definition: Record<string, unknown>, runId: string, budgetUsd: number | undefined): Promise<Record<string, unknown>>;
  /** The run's workflow:status once it has ended. */
  wait(runId: string): Promise<Record<string, unknown>>;
}

interface Found {
  trace_id: string;
  match: 'exact' | 'similar';
  score: number;
  status: string;
}

const unknownEvent = (e: unknown): boolean => e instanceof DaemonError && e.code === 'UNKNOWN_EVENT';

export async function runGoal(d: GoalDeps, r: GoalRequest): Promise<Record<string, unknown>> {
  const runId = r.run_id ?? d.newRunId();
  if (!d.exists(runId)) {
    let found: Found | undefined;
    if (r.mode !== 'learn') {
      try {
        const f = await d.request<{ matches: Found[] }>('trace:find', { goal: r.goal, limit: 1, include_demoted: r.mode === 'follow' });
        found = f.matches[0];
      } catch (e) {
        if (!unknownEvent(e)) throw e;
        if (r.mode === 'follow') throw new DaemonError('UNAVAILABLE', 'following a trace needs the trace plugin, which is not loaded');
      }
      if (r.mode === 'follow' && !found) throw new DaemonError('NOT_FOUND', 'no trace of this goal (trace:find finds none at the threshold); run it with mode learn or auto first', { goal: r.goal });
    }
    if (found) {
      const b = await d.request<{ definition: Record<string, unknown> }>('trace:begin', { run_id: runId, goal: r.goal, mode: 'follow', trace_id: found.trace_id, match: found.match, score: found.score });
      await d.follow(b.definition, runId, r.budget_usd);
    } else {
      await d.request('trace:begin', { run_id: runId, goal: r.goal, mode: 'learn' }).catch((e: unknown) => {
        // Without the trace plugin a goal is still planned and run; it is just not learned.
        if (!unknownEvent(e)) throw e;
      });
      await d.plan(r.goal, runId, r.budget_usd);
    }
  }
  const view = await d.request<Record<string, unknown>>('trace:run', { run_id: runId, wait: false }).catch(() => null);
  if (!r.wait) return { run_id: runId, goal: r.goal, mode: view?.mode ?? 'learn', trace_id: view?.trace_id ?? null, status: 'running' };
  const st = await d.wait(runId);
  // The trace is stored or updated once the run's end is settled: answer with that.
  const settled = await d.request<Record<string, unknown>>('trace:run', { run_id: runId, wait: true }).catch(() => view);
  return {
    run_id: runId, goal: r.goal, mode: settled?.mode ?? 'learn', status: st.status, outputs: st.outputs, cost_usd: st.cost_usd ?? 0,
    saved_usd: settled?.saved_usd ?? null, trace_id: settled?.trace_id ?? null, match: settled?.match ?? null, score: settled?.score ?? null,
    diverged: settled?.diverged ?? [], repaired: settled?.repaired ?? 0, learned: settled?.learned ?? null, error: st.error ?? null,
  };
}
