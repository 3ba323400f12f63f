/**
 * The definition a followed run executes: the trace's plan with each event and agent step turned into
 * a `trace:replay_step` event step that keeps the step's DAG place (needs, foreach, when, retry,
 * on_failure). The original event or agent turn rides along in `live`, templates and all, so the run
 * resolves it as it would have; the replay uses it only when the step must be done for real (nothing
 * recorded, or the replay diverged). Wait steps stay waits: a person's approval is not replayed.
 */

/** The fields of a plan's step that this module reads; everything else is carried over untouched. */
interface PlanStep {
  id: string;
  event?: string;
  data?: Record<string, unknown>;
  agent?: Record<string, unknown>;
  output?: 'json' | 'text';
  foreach?: string;
  wait?: unknown;
  needs?: string[];
  [k: string]: unknown;
}

export interface Plan {
  name: string;
  steps: PlanStep[];
  [k: string]: unknown;
}

/** Events that are model work: never replayed (their effects are the recorded events around them). */
export const MODEL_WORK = /^(agent|completion|conversation|workflow|trace):/;

export function followDefinition(plan: Plan): Plan {
  const steps = plan.steps.map((s): PlanStep => {
    if (s.wait !== undefined || (!s.event && !s.agent)) return s;
    const { event, data, agent, output, ...place } = s;
    const live: Record<string, unknown> = event
      ? { event, data: data ?? {} }
      : { agent, ...(output ? { output } : {}) };
    return {
      ...place,
      event: 'trace:replay_step',
      data: { run_id: '{{ run.id }}', step: s.id, ...(s.foreach !== undefined ? { index: '{{ index }}' } : {}), live },
    };
  });
  return { ...plan, steps };
}

/** Each step's needs, transitively: a step is done for real when any of them diverged. */
export function ancestors(plan: Plan): Map<string, Set<string>> {
  const direct = new Map(plan.steps.map((s) => [s.id, s.needs ?? []]));
  const memo = new Map<string, Set<string>>();
  const visit = (id: string, seen: Set<string>): Set<string> => {
    const got = memo.get(id);
    if (got) return got;
    const out = new Set<string>();
    for (const n of direct.get(id) ?? []) {
      if (seen.has(n)) continue;
      out.add(n);
      for (const a of visit(n, new Set([...seen, n]))) out.add(a);
    }
    memo.set(id, out);
    return out;
  };
  for (const s of plan.steps) visit(s.id, new Set([s.id]));
  return memo;
}
