/**
 * An agent turn given a goal (`agent:send {goal}`) as a trace: a one-step plan whose step is an agent
 * turn with the agent's spec and the turn's message, and one item holding the events its tool calls
 * (and its children's) made and its reply. So `workflow:run_goal` can follow it like any trace, and an
 * agent turn can follow any trace of that shape: one agent step, not a foreach, answering text.
 */
import type { Plan } from './follow-plan.js';
import type { ItemRow, TraceRow, TraceStore } from './store.js';

/** The agent a turn ran on, as an agent step spawns it again (a fallback, or a followed workflow run). */
export interface TurnSpec {
  profile?: string | undefined;
  model?: string | undefined;
  system?: string | undefined;
  tools?: string[] | undefined;
}

/** The step id of the plan a turn is learned as. */
export const TURN_STEP = 'turn';

export function turnPlan(goal: string, message: string, spec: TurnSpec): Plan {
  const agent: Record<string, unknown> = {
    ...(spec.profile ? { profile: spec.profile } : {}),
    ...(spec.model ? { model: spec.model } : {}),
    ...(spec.system ? { system: spec.system } : {}),
    ...(spec.tools?.length ? { tools: spec.tools } : {}),
    message,
  };
  return { name: 'agent-turn', description: goal.slice(0, 10_000), steps: [{ id: TURN_STEP, agent }] };
}

/** The step and item of a trace an agent turn can follow; null when the trace is not of that shape. */
export function turnItem(store: TraceStore, t: TraceRow): { step: string; item: ItemRow; reply: string } | null {
  const plan = JSON.parse(t.plan) as Plan;
  if (plan.steps.length !== 1) return null;
  const s = plan.steps[0]!;
  if (!s.agent || s.foreach !== undefined || s.output === 'json') return null;
  const item = store.item(t.trace_id, s.id, 0);
  if (!item || item.status !== 'succeeded') return null;
  const out = item.output === null ? null : (JSON.parse(item.output) as { reply?: unknown } | null);
  if (!out || typeof out.reply !== 'string') return null;
  return { step: s.id, item, reply: out.reply };
}
