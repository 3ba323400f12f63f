/**
 * Runs for a goal and learned traces. `workflow:plan {goal}`, `workflow:run_goal` and `workflow:start
 * {goal}` reach the trace plugin through its events only (trace:find, trace:get, trace:begin,
 * trace:run): a goal with a trace is answered with the trace's plan and, when it is run, follows it
 * (each step a trace:replay_step, no model call); a goal without one is planned, and a run for it is
 * recorded so that it becomes the goal's trace when it succeeds.
 */
import { DaemonError } from '../../client/errors.js';

export type GoalMode = 'auto' | 'learn' | 'follow';
export type GoalOrigin = 'run_goal' | 'plan' | 'start';

export interface GoalRequest {
  goal: string;
  mode: GoalMode;
  budget_usd?: number | undefined;
  run_id?: string | undefined;
  wait: boolean;
}

type Req = <T = Record<string, unknown>>(event: string, data: Record<string, unknown>) => Promise<T>;

/** A trace found for a goal. */
export interface Found {
  trace_id: string;
  match: 'exact' | 'similar';
  score: number;
  status: string;
}

/** What trace:begin answers for a followed run. */
export interface Following {
  trace_id: string;
  version: number;
  plan: Record<string, unknown>;
  inputs: Record<string, unknown>;
  definition: Record<string, unknown>;
}

const unknownEvent = (e: unknown): boolean => e instanceof DaemonError && e.code === 'UNKNOWN_EVENT';

/**
 * The trace a goal follows: none in learn mode; in follow mode NOT_FOUND without one. Inputs, when
 * given, must be the ones the trace was learned with (its recorded events used them).
 */
export async function findTrace(
  request: Req,
  goal: string,
  mode: GoalMode,
  inputs?: Record<string, unknown>,
): Promise<Found | undefined> {
  if (mode === 'learn') return undefined;
  let found: Found | undefined;
  try {
    const f = await request<{ matches: Found[] }>('trace:find', {
      goal,
      limit: 1,
      include_demoted: mode === 'follow',
      ...(inputs && Object.keys(inputs).length ? { inputs } : {}),
    });
    found = f.matches[0];
  } catch (e) {
    if (!unknownEvent(e)) throw e;
    if (mode === 'follow')
      throw new DaemonError('UNAVAILABLE', 'following a trace needs the trace plugin, which is not loaded');
  }
  if (mode === 'follow' && !found)
    throw new DaemonError(
      'NOT_FOUND',
      'no trace of this goal (trace:find finds none at the threshold); run it with mode learn or auto first',
      { goal },
    );
  return found;
}

/** Record a run for a goal before it starts, so that it is kept as the goal's trace when it succeeds. */
export async function beginLearn(
  request: Req,
  runId: string,
  goal: string,
  inputs: Record<string, unknown>,
  origin: GoalOrigin,
): Promise<void> {
  await request('trace:begin', { run_id: runId, goal, mode: 'learn', inputs, origin }).catch((e: unknown) => {
    // Without the trace plugin a goal is still planned and run; it is just not learned.
    if (!unknownEvent(e)) throw e;
  });
}

/** Record a run that follows a trace; answers the trace's plan, its inputs and the replaying definition. */
export function beginFollow(
  request: Req,
  runId: string,
  goal: string,
  found: Found,
  origin: GoalOrigin,
): Promise<Following> {
  return request<Following>('trace:begin', {
    run_id: runId,
    goal,
    mode: 'follow',
    trace_id: found.trace_id,
    match: found.match,
    score: found.score,
    origin,
  });
}

/** How the answer of workflow:plan says where the definition came from. */
export const fromTrace = (
  found: { trace_id: string; match: string | null; score: number | null },
  version: number,
  inputs: unknown,
): Record<string, unknown> => ({
  trace_id: found.trace_id,
  version,
  match: found.match,
  score: found.score,
  inputs,
});

export interface GoalDeps {
  request: Req;
  exists(runId: string): boolean;
  newRunId(): string;
  /** Start a run for the goal: follow its trace, or plan it and learn (workflow:plan with start). */
  start(goal: string, mode: GoalMode, runId: string, budgetUsd: number | undefined): Promise<Record<string, unknown>>;
  /** The run's workflow:status once it has ended. */
  wait(runId: string): Promise<Record<string, unknown>>;
}

/** workflow:run_goal: start the run (unless it exists), then answer what ran, what it cost and saved. */
export async function runGoal(d: GoalDeps, r: GoalRequest): Promise<Record<string, unknown>> {
  const runId = r.run_id ?? d.newRunId();
  if (!d.exists(runId)) await d.start(r.goal, r.mode, runId, r.budget_usd);
  const view = await d.request<Record<string, unknown>>('trace:run', { run_id: runId, wait: false }).catch(() => null);
  if (!r.wait)
    return {
      run_id: runId,
      goal: r.goal,
      mode: view?.mode ?? 'learn',
      trace_id: view?.trace_id ?? null,
      status: 'running',
    };
  const st = await d.wait(runId);
  // The trace is stored or updated once the run's end is settled: answer with that.
  const settled = await d
    .request<Record<string, unknown>>('trace:run', { run_id: runId, wait: true })
    .catch(() => view);
  return {
    run_id: runId,
    goal: r.goal,
    mode: settled?.mode ?? 'learn',
    status: st.status,
    outputs: st.outputs,
    cost_usd: st.cost_usd ?? 0,
    saved_usd: settled?.saved_usd ?? null,
    trace_id: settled?.trace_id ?? null,
    match: settled?.match ?? null,
    score: settled?.score ?? null,
    diverged: settled?.diverged ?? [],
    repaired: settled?.repaired ?? 0,
    learned: settled?.learned ?? null,
    error: st.error ?? null,
  };
}
